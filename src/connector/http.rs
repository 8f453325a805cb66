//! The generic HTTP connector: POSTs the (mapped) body to a configured URL with the message
//! id in `X-Message-Id`, so a receiver can drop the duplicates at-least-once delivery brings.

use super::auth::Auth;
use super::{
    BoxFuture, Connector, HttpStatusClassifier, Outbound, RawOutcome, RetryClassifier, Verdict,
};
use crate::envelope::Envelope;
use std::time::Duration;

pub struct HttpConnector {
    client: reqwest::Client,
    url: reqwest::Url,
    auth: Auth,
}

impl HttpConnector {
    pub fn new(url: &str, timeout: Duration) -> Result<Self, String> {
        Self::with_auth(url, timeout, Auth::None, None)
    }

    /// With credentials and TLS settings (CA bundle, client identity).
    pub fn with_auth(
        url: &str,
        timeout: Duration,
        auth: Auth,
        tls: Option<&crate::config::TlsConfig>,
    ) -> Result<Self, String> {
        let url = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
        let client = client(timeout, tls)?;
        Ok(HttpConnector { client, url, auth })
    }
}

/// An HTTP client with a target's timeout and TLS settings (every connector kind).
pub fn client(
    timeout: Duration,
    tls: Option<&crate::config::TlsConfig>,
) -> Result<reqwest::Client, String> {
    let builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .pool_max_idle_per_host(64)
        .no_proxy();
    let builder = match tls {
        Some(t) => super::auth::tls(
            builder,
            t.ca_file.as_deref(),
            t.client_cert.as_deref().zip(t.client_key.as_deref()),
        )?,
        None => builder,
    };
    builder.build().map_err(|e| e.to_string())
}

impl RetryClassifier for HttpConnector {
    fn classify(&self, outcome: &RawOutcome) -> Verdict {
        HttpStatusClassifier.classify(outcome)
    }
}

impl Connector for HttpConnector {
    fn send<'a>(&'a self, message: &'a Envelope, body: &'a Outbound) -> BoxFuture<'a, RawOutcome> {
        Box::pin(async move {
            let request = self
                .client
                .post(self.url.clone())
                .header("content-type", body.content_type)
                .header("x-message-id", message.id.to_string())
                .header("x-trace-id", &message.trace_id)
                .header("x-attempt", message.attempts.to_string())
                .header("x-unit", &message.unit)
                .header("x-flow", &message.flow)
                .body(body.body.clone());
            let request = match &message.key {
                // Keys are dossier codes and similar, never personal data.
                Some(k) => request.header("x-ordering-key", k),
                None => request,
            };
            let request = match self.auth.apply(&self.client, request).await {
                Ok(r) => r,
                Err(e) => return RawOutcome::Transport(format!("cannot authenticate: {e}")),
            };
            let outcome = outcome(request.send().await, BodyKept::OnError).await;
            if matches!(outcome, RawOutcome::Response { status: 401, .. }) {
                self.auth.on_unauthorized().await;
            }
            outcome
        })
    }
}

/// Which reply bodies a connector needs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKept {
    /// Only on errors (the first 500 characters, for the dead letter's reason).
    OnError,
    /// Always: the target reports its own outcome inside 200 replies.
    Always,
}

/// What came back for a request: status, `Retry-After` and (some of) the body, or why
/// nothing did.
pub(crate) async fn outcome(
    sent: Result<reqwest::Response, reqwest::Error>,
    keep: BodyKept,
) -> RawOutcome {
    let resp = match sent {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return RawOutcome::Timeout,
        Err(e) => return RawOutcome::Transport(error_chain(&e)),
    };
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let body = match keep {
        BodyKept::OnError if resp.status().is_success() => String::new(),
        BodyKept::OnError => resp
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(500)
            .collect(),
        BodyKept::Always => match resp.text().await {
            Ok(t) => t,
            Err(e) if e.is_timeout() => return RawOutcome::Timeout,
            Err(e) => return RawOutcome::Transport(error_chain(&e)),
        },
    };
    RawOutcome::Response {
        status,
        retry_after,
        body,
    }
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// `Retry-After` as delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        let d = parse_retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
