//! Replies that go on: what a target answers, passed on as an event of another flow of
//! the same unit (a route's `replies = { <target> = "<flow>" }`). The delivery core asks
//! through [`crate::delivery::Replies`]; the routes answer here.
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

use super::{Route, Router};
use crate::connector::BoxFuture;
use crate::delivery::replies::{Replies, ReplyError, reply_event};
use crate::envelope::Envelope;
use crate::outbox::{EnqueueRequest, NewEvent, Outbox};
use std::sync::Arc;

/// Where replies go on (the routes), and the outbox they are stored in.
pub struct RoutedReplies {
    router: Arc<Router>,
    outbox: Outbox,
}

impl RoutedReplies {
    pub fn new(router: Arc<Router>, outbox: Outbox) -> RoutedReplies {
        RoutedReplies { router, outbox }
    }

    /// The route a reply of `target` to `envelope` goes on through, if its route wants it.
    pub fn route_for(&self, envelope: &Envelope, target: &str) -> Option<&Route> {
        let origin = self
            .router
            .resolve(&envelope.unit, Some(&envelope.flow))
            .ok()?;
        let flow = origin.replies.get(target)?;
        self.router.resolve(&envelope.unit, Some(flow)).ok()
    }

    /// Store `reply` (what `target` answered to `envelope`) as an event of `route`.
    async fn store(
        &self,
        route: &Route,
        envelope: &Envelope,
        target: &str,
        reply: &str,
    ) -> Result<(), ReplyError> {
        let payload = reply_event(envelope, target, reply);
        let key =
            match &route.key_pointer {
                Some(pointer) => super::extract_key(&payload, pointer, route.ordered).map_err(
                    |(_, reason)| ReplyError::Unusable {
                        target: target.to_string(),
                        flow: route.flow.clone(),
                        reason: format!("{reason} (at {pointer})"),
                    },
                )?,
                None => None,
            };
        let request = EnqueueRequest {
            from_reply: true,
            unit: envelope.unit.clone(),
            flow: route.flow.clone(),
            trace_id: envelope.trace_id.clone(),
            idempotency_key: Some(format!("reply/{}/{target}", envelope.id)),
            targets: route.targets.clone(),
            ordered: route.ordered,
            block_on_dead: route.block_on_dead,
            events: vec![NewEvent {
                key,
                targets: route.targets_for_event(&payload),
                payload,
            }],
        };
        self.outbox.enqueue(request).await?;
        Ok(())
    }
}

impl Replies for RoutedReplies {
    fn goes_on(&self, envelope: &Envelope, target: &str) -> bool {
        self.route_for(envelope, target).is_some()
    }

    fn pass_on<'a>(
        &'a self,
        envelope: &'a Envelope,
        target: &'a str,
        reply: &'a str,
    ) -> BoxFuture<'a, Result<(), ReplyError>> {
        Box::pin(async move {
            let route = self
                .route_for(envelope, target)
                .ok_or_else(|| ReplyError::Unusable {
                    target: target.to_string(),
                    flow: envelope.flow.clone(),
                    reason: "its route no longer passes this target's replies on".into(),
                })?;
            self.store(route, envelope, target, reply).await
        })
    }
}
