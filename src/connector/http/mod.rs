//! The generic HTTP connector: POSTs the (mapped) body to a configured URL with the message
//! id in `X-Message-Id`, so a receiver can drop the duplicates at-least-once delivery brings.

use super::auth::Auth;
use super::client::{BodyKept, outcome};
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
        tls: Option<&super::client::TlsConfig>,
    ) -> Result<Self, String> {
        let url = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
        let client = super::client::client(timeout, tls)?;
        Ok(HttpConnector { client, url, auth })
    }
}

impl RetryClassifier for HttpConnector {
    fn classify(&self, outcome: &RawOutcome) -> Verdict {
        HttpStatusClassifier.classify(outcome)
    }
}

impl Connector for HttpConnector {
    fn send<'a>(&'a self, message: &'a Envelope, body: &'a Outbound) -> BoxFuture<'a, RawOutcome> {
        Box::pin(self.post(message, body, BodyKept::OnError))
    }

    fn send_keeping_reply<'a>(
        &'a self,
        message: &'a Envelope,
        body: &'a Outbound,
    ) -> BoxFuture<'a, RawOutcome> {
        Box::pin(self.post(message, body, BodyKept::Always))
    }
}

impl HttpConnector {
    /// POST the body; `keep` says whether a successful reply's body is read.
    async fn post(&self, message: &Envelope, body: &Outbound, keep: BodyKept) -> RawOutcome {
        {
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
            // Each attempt is a span of the message's trace (W3C Trace Context).
            let request = match crate::tracecontext::traceparent_for(&message.trace_id) {
                Some(tp) => request.header("traceparent", tp),
                None => request,
            };
            let request = match self.auth.apply(&self.client, request).await {
                Ok(r) => r,
                Err(e) => return RawOutcome::Transport(format!("cannot authenticate: {e}")),
            };
            let outcome = outcome(request.send().await, keep).await;
            if matches!(outcome, RawOutcome::Response { status: 401, .. }) {
                self.auth.on_unauthorized().await;
            }
            outcome
        }
    }
}
