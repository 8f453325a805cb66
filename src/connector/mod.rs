//! Connectors speak to target systems. Each one sends a message and classifies the
//! outcome once, as delivered, retryable or permanent; the delivery core
//! ([`crate::delivery`]) acts on that verdict.
//!
//! One folder per kind — `http/` (any HTTP endpoint), `portal/` (the national portal:
//! session, `TraCuuHoSo`, batch merge), `payment/` (the payment platform, with its
//! `signature.rs`), `file_drop/` (a unit's import folder); the cluster's forwarding
//! connector lives with the cluster, in `transport/forward_connector.rs` — each with its own config
//! section (`config.rs`, re-exported by [`crate::config`]), built in one place
//! (`build.rs`) from the target's config. The `auth` and `tls` sections live beside the
//! code that uses them (`auth.rs`, `client.rs`). What they share sits beside them: the outbound
//! HTTP client (`client.rs`: timeouts, TLS, reading replies; the lookups use it too), the
//! credentials (`auth.rs`: API key, LGSP, OAuth2), the classifier for platforms whose
//! verdict is a code inside a 200 reply (`reply_code.rs`), and the traits below.

pub mod auth;
pub mod build;
pub mod client;
pub mod file_drop;
pub mod http;
pub mod payment;
pub mod portal;
pub mod reply_code;

pub use http::HttpConnector;
pub use payment::{PaymentConnector, PaymentCredentials};
pub use portal::{PortalConnector, PortalCredentials};

use crate::envelope::Envelope;
pub use crate::mappings::Outbound;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What happened on the wire, before classification.
#[derive(Debug)]
pub enum RawOutcome {
    /// The target answered.
    Response {
        status: u16,
        retry_after: Option<Duration>,
        /// The start of the body, for error messages.
        body: String,
    },
    /// No answer: connection refused, reset, DNS, TLS.
    Transport(String),
    /// No answer in time.
    Timeout,
    /// Not sent: the message cannot be put in this target's form (a permanent error).
    Invalid(String),
}

/// How the relay should treat an outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Worth another attempt; honour `retry_after` when the target gave one.
    Retryable {
        reason: String,
        status: Option<u16>,
        retry_after: Option<Duration>,
        /// The target is unwell (down, overloaded, erring): counts toward its circuit
        /// breaker. False for a per-message answer of a well target, such as the portal's
        /// "dossier not found" (the dossier's creation has not arrived yet).
        target_fault: bool,
    },
    /// Will never succeed as it is: mapping failure, rejected by the target.
    Permanent {
        reason: String,
        status: Option<u16>,
    },
}

/// Retry classification, implemented by every connector for its own protocol (the portal
/// reports business errors inside 200 replies, for example).
pub trait RetryClassifier {
    fn classify(&self, outcome: &RawOutcome) -> Verdict;
}

/// HTTP semantics most targets share: 2xx delivered; 408, 429 and 5xx retryable;
/// other 4xx permanent; no answer retryable.
pub struct HttpStatusClassifier;

impl RetryClassifier for HttpStatusClassifier {
    fn classify(&self, outcome: &RawOutcome) -> Verdict {
        match outcome {
            RawOutcome::Response { status, .. } if (200..300).contains(status) => {
                Verdict::Delivered
            }
            RawOutcome::Response {
                status,
                retry_after,
                body,
            } if *status == 408 || *status == 429 || *status >= 500 => Verdict::Retryable {
                reason: format!("HTTP {status}{}", snippet(body)),
                status: Some(*status),
                retry_after: *retry_after,
                target_fault: true,
            },
            RawOutcome::Response { status, body, .. } => Verdict::Permanent {
                reason: format!("HTTP {status}{}", snippet(body)),
                status: Some(*status),
            },
            RawOutcome::Transport(e) => Verdict::Retryable {
                reason: e.clone(),
                status: None,
                retry_after: None,
                target_fault: true,
            },
            RawOutcome::Timeout => Verdict::Retryable {
                reason: "timed out".into(),
                status: None,
                retry_after: None,
                target_fault: true,
            },
            RawOutcome::Invalid(why) => Verdict::Permanent {
                reason: why.clone(),
                status: None,
            },
        }
    }
}

/// The start of what a platform answered, for a reason: between `«»`, so that the logs
/// mask it whole ([`crate::redact`]) — a platform's words may echo the message.
pub(crate) fn snippet(body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        String::new()
    } else {
        let cut: String = body
            .chars()
            .filter(|c| *c != '«' && *c != '»')
            .take(200)
            .collect();
        format!(": «{cut}»")
    }
}

/// Sends messages to one target. `body` is the message in the target's format (after
/// its mapping); `message` carries the id, trace and attempt for headers and logs.
pub trait Connector: RetryClassifier + Send + Sync {
    fn send<'a>(&'a self, message: &'a Envelope, body: &'a Outbound) -> BoxFuture<'a, RawOutcome>;

    /// As [`Connector::send`], keeping the body of a successful reply (which `send` may
    /// skip reading): for routes that pass the reply on.
    fn send_keeping_reply<'a>(
        &'a self,
        message: &'a Envelope,
        body: &'a Outbound,
    ) -> BoxFuture<'a, RawOutcome> {
        self.send(message, body)
    }

    /// Bodies with the same group may be merged into one call ([`Connector::merge`]);
    /// None: this body goes alone (the default).
    fn batch_group(&self, _message: &Envelope, _body: &Outbound) -> Option<String> {
        None
    }

    /// One body carrying all of `bodies` (all of one group), or None if they cannot be.
    fn merge(&self, _bodies: &[&Outbound]) -> Option<Outbound> {
        None
    }

    /// Deliver several messages in one exchange with the target, each with its own
    /// verdict, in order; None: this connector cannot (the caller sends them one at a
    /// time). One permit covers the lot, so only a runtime without a rate limit uses it:
    /// the forwarder, which publishes a batch as one broker message per partition.
    fn deliver_each<'a>(
        &'a self,
        _messages: &'a [Envelope],
    ) -> Option<BoxFuture<'a, Vec<Verdict>>> {
        None
    }

    /// Send and classify, keeping what the target answered when it took the message (a
    /// route whose `replies` pass it on as an event of its own).
    fn deliver_keeping_reply<'a>(
        &'a self,
        message: &'a Envelope,
        body: &'a Outbound,
    ) -> BoxFuture<'a, (Verdict, Option<String>)> {
        Box::pin(async move {
            let outcome = self.send_keeping_reply(message, body).await;
            let verdict = self.classify(&outcome);
            let reply = match (&verdict, outcome) {
                (Verdict::Delivered, RawOutcome::Response { body, .. }) => Some(body),
                _ => None,
            };
            (verdict, reply)
        })
    }

    /// Send and classify.
    fn deliver<'a>(&'a self, message: &'a Envelope, body: &'a Outbound) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let outcome = self.send(message, body).await;
            self.classify(&outcome)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16) -> RawOutcome {
        RawOutcome::Response {
            status,
            retry_after: None,
            body: String::new(),
        }
    }

    #[test]
    fn http_statuses_are_classified_once() {
        let c = HttpStatusClassifier;
        assert_eq!(c.classify(&resp(202)), Verdict::Delivered);
        assert!(matches!(c.classify(&resp(503)), Verdict::Retryable { .. }));
        assert!(matches!(c.classify(&resp(429)), Verdict::Retryable { .. }));
        assert!(matches!(c.classify(&resp(400)), Verdict::Permanent { .. }));
        assert!(matches!(
            c.classify(&RawOutcome::Timeout),
            Verdict::Retryable { .. }
        ));
    }
}
