//! Replies that go on: what a target answers, passed on as an event of another flow of
//! the same unit (a route's `replies = { <target> = "<flow>" }`).
//!
//! Two flows of the national side need an answer carried further: the payment platform's
//! `Init` reply holds the link the citizen pays at (it goes back to the unit), and the
//! data store's upload reply holds the file id the portal's result sync must name. Both
//! are one mechanism here:
//!
//! ```text
//!  unit event ──► target A accepts, answers R ──► event of flow F: {"event", "reply": R, "source"}
//!                                                   └─► F's route: its targets, mappings, order
//! ```
//!
//! - The reply event is stored **before** the delivery to A is recorded as done: a crash
//!   in between sends the message to A again, and the reply event's idempotency key
//!   (`reply/<message id>/<target>`) makes the second one a duplicate of the first.
//! - It is taken even over the outbox's pending cap ([`EnqueueRequest::from_reply`]):
//!   refusing it would mean asking A again.
//! - Its ordering key comes from its own route's `key` pointer, read in the reply event
//!   (for example `/event/dossierId`), so a result synced after an upload takes its place
//!   among the dossier's other events on the portal.

use crate::connector::BoxFuture;
use crate::envelope::Envelope;
use crate::outbox::EnqueueError;
use serde_json::value::RawValue;

/// Where a target's replies go on. The routes know (a route's `replies`); the delivery
/// core only asks, through this trait, which the routing layer implements
/// ([`crate::route::replies::RoutedReplies`]).
pub trait Replies: Send + Sync {
    /// Whether `target`'s reply to `envelope` goes on as an event of another flow.
    fn goes_on(&self, envelope: &Envelope, target: &str) -> bool;

    /// Store `reply` (what `target` answered to `envelope`) as the event that goes on.
    fn pass_on<'a>(
        &'a self,
        envelope: &'a Envelope,
        target: &'a str,
        reply: &'a str,
    ) -> BoxFuture<'a, Result<(), ReplyError>>;
}

/// Why a reply could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    /// For now: the outbox is closing or cannot write. The delivery is tried again.
    #[error("the reply could not be stored: {0}")]
    Store(#[from] EnqueueError),
    /// Never: the reply event has no ordering key where its route looks for one, or the
    /// flow it should go on as is gone.
    #[error("the reply of `{target}` cannot go on as flow `{flow}`: {reason}")]
    Unusable {
        target: String,
        flow: String,
        reason: String,
    },
}

/// The reply event: the event that was sent, what the target answered (its JSON; a reply
/// that is not JSON as `{"text": ...}`), and where it came from.
pub fn reply_event(envelope: &Envelope, target: &str, reply: &str) -> Box<RawValue> {
    let answer = match serde_json::from_str::<serde_json::Value>(reply) {
        Ok(v) => v,
        Err(_) => serde_json::json!({ "text": reply }),
    };
    let source = serde_json::json!({
        "id": envelope.id.to_string(),
        "flow": envelope.flow,
        "target": target,
    });
    let text = format!(
        r#"{{"event":{},"reply":{},"source":{}}}"#,
        envelope.payload.get(),
        answer,
        source
    );
    RawValue::from_string(text).expect("built from valid JSON parts")
}

/// Store the platform's reply as an event of its own; the delivery counts once it is.
pub(super) async fn outcome_of_passing_on(
    replies: &dyn Replies,
    envelope: &Envelope,
    target: &str,
    reply: &str,
) -> super::Outcome {
    match replies.pass_on(envelope, target, reply).await {
        Ok(()) => super::Outcome::Delivered,
        Err(e @ ReplyError::Store(_)) => {
            // Sent again later; the reply event's idempotency key keeps it one.
            tracing::warn!(target_system = %target, id = %envelope.id, error = %e, "delivered, but its reply could not be stored yet");
            super::Outcome::Retry {
                delay: std::time::Duration::from_secs(5),
                error: crate::outbox::AttemptError {
                    at_ms: crate::time::now_ms(),
                    error: e.to_string(),
                    status: None,
                },
            }
        }
        Err(e @ ReplyError::Unusable { .. }) => super::Outcome::Dead {
            reason: e.to_string(),
            error: crate::outbox::AttemptError {
                at_ms: crate::time::now_ms(),
                error: e.to_string(),
                status: None,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::MessageId;

    fn envelope() -> Envelope {
        Envelope {
            id: MessageId(uuid::Uuid::now_v7()),
            unit: "nafosted".into(),
            flow: "fee_request".into(),
            key: None,
            payload: RawValue::from_string(r#"{"dossierCode":"HS-1"}"#.into()).unwrap(),
            received_ms: 0,
            trace_id: "t".into(),
            attempts: 1,
            idempotency_key: None,
            targets: vec!["payment".into()],
        }
    }

    #[test]
    fn a_reply_event_carries_the_event_and_the_answer() {
        let e = envelope();
        let v: serde_json::Value = serde_json::from_str(
            reply_event(
                &e,
                "payment",
                r#"{"MaLoi":"00","UrlThanhToan":"https://x/1"}"#,
            )
            .get(),
        )
        .unwrap();
        assert_eq!(v["event"]["dossierCode"], "HS-1");
        assert_eq!(v["reply"]["UrlThanhToan"], "https://x/1");
        assert_eq!(v["source"]["target"], "payment");
        assert_eq!(v["source"]["flow"], "fee_request");
        let plain: serde_json::Value =
            serde_json::from_str(reply_event(&e, "payment", "OK \"done\"").get()).unwrap();
        assert_eq!(plain["reply"]["text"], "OK \"done\"");
    }
}
