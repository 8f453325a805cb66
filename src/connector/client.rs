//! The HTTP client every outbound call uses — connectors and lookups alike: timeouts, TLS
//! (extra CA certificates, a client identity for mutual TLS), no proxy from the
//! environment; and how a reply is read (status, `Retry-After`, the body when needed).

use super::RawOutcome;
use std::time::Duration;

/// An HTTP client with an endpoint's timeout and TLS settings (every connector kind, and
/// the lookups). Never through a proxy from the environment.
pub fn client(timeout: Duration, tls: Option<&TlsConfig>) -> Result<reqwest::Client, String> {
    let builder = crate::tls_provider::http_client()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .pool_max_idle_per_host(64)
        .no_proxy();
    let builder = match tls {
        Some(t) => with_tls(
            builder,
            t.ca_file.as_deref(),
            t.client_cert.as_deref().zip(t.client_key.as_deref()),
        )?,
        None => builder,
    };
    builder.build().map_err(|e| e.to_string())
}

/// A client builder with the target's TLS settings: extra CA certificates and a client
/// identity for mutual TLS (PEM files).
pub fn with_tls(
    mut builder: reqwest::ClientBuilder,
    ca_file: Option<&std::path::Path>,
    identity: Option<(&std::path::Path, &std::path::Path)>,
) -> Result<reqwest::ClientBuilder, String> {
    if let Some(ca) = ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("{}: not a PEM certificate bundle: {e}", ca.display()))?;
        if certs.is_empty() {
            return Err(format!("{}: no certificate in it", ca.display()));
        }
        for c in certs {
            builder = builder.add_root_certificate(c);
        }
    }
    if let Some((cert, key)) = identity {
        let mut pem = std::fs::read(cert).map_err(|e| format!("{}: {e}", cert.display()))?;
        pem.push(b'\n');
        pem.extend(std::fs::read(key).map_err(|e| format!("{}: {e}", key.display()))?);
        let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
            format!(
                "client identity {} + {}: {e}",
                cert.display(),
                key.display()
            )
        })?;
        builder = builder.identity(id);
    }
    Ok(builder)
}

/// Which reply bodies a connector needs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum BodyKept {
    /// Only the start of an error reply (500 characters, for the dead letter's reason).
    OnError,
    /// Always, up to [`REPLY_LIMIT`]: the target reports its own outcome inside 200
    /// replies, or a route passes its reply on (`replies`).
    Always,
}

/// The most of a reply body the bus reads. A target answering more is cut off there
/// (its verdict is then read from what came): no target can make a delivery hold
/// memory in proportion to what it sends.
pub const REPLY_LIMIT: usize = 256 * 1024;

/// What came back for a request: status, `Retry-After` and (some of) the body, or why
/// nothing did.
pub async fn outcome(
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
        BodyKept::OnError => read_bounded(resp, 2048)
            .await
            .unwrap_or_default()
            .chars()
            .take(500)
            .collect(),
        BodyKept::Always => match read_bounded(resp, REPLY_LIMIT).await {
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

/// At most `limit` bytes of a reply body, as text (invalid UTF-8 replaced).
async fn read_bounded(mut resp: reqwest::Response, limit: usize) -> Result<String, reqwest::Error> {
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = limit - bytes.len();
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if bytes.len() >= limit {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

pub fn error_chain(e: &dyn std::error::Error) -> String {
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

pub use crate::config::TlsConfig;

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
