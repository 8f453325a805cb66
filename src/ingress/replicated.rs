//! `[amqp] acknowledge = "replicated"`: a request's `202` waits until the broker has
//! confirmed each of its events into its quorum queue, so that an ingress node lost with
//! its disk takes nothing acknowledged with it. The events are stored here first, as in
//! the `local` mode (idempotency, the dossier view, the unit's own queries read them),
//! and the relay forwards them as usual ([`crate::delivery::settlements`] tells when).
//!
//! When the broker does not confirm in time the answer is `503 not_replicated`: the
//! events stay stored here and go out when the broker takes them, so a unit that resends
//! with the same `Idempotency-Key` gets its `202 duplicate` once they are replicated.

use crate::delivery::settlements::{Settlements, Unsettled};
use crate::outbox::{Accepted, DeliveryState, Outbox};
use crate::route::Route;
use crate::web::ApiError;
use axum::http::StatusCode;
use std::sync::Arc;
use std::time::Duration;

/// Seconds a unit is told to wait before resending a request not replicated in time.
const NOT_REPLICATED_RETRY_AFTER_SECS: u64 = 5;

/// What an ingress node in the replicated mode waits with.
pub struct Replication {
    pub settlements: Arc<Settlements>,
    pub timeout: Duration,
}

impl Replication {
    /// Wait for the broker's confirms of `accepted`'s deliveries still pending here: each
    /// new event's (to the targets its route and `deliver_when` chose), and a duplicate's
    /// not yet forwarded (one forwarded long ago is not waited for again).
    pub async fn confirmed(
        &self,
        outbox: &Outbox,
        route: &Route,
        accepted: &[Accepted],
    ) -> Result<(), ApiError> {
        let mut items: Vec<(crate::envelope::MessageId, &str)> = Vec::new();
        for a in accepted {
            let states = outbox.delivery_states(a.id).map_err(|e| {
                ApiError::busy(format!("cannot read the stored request: {e}; retry later"))
            })?;
            for (target, state) in states {
                if matches!(state, DeliveryState::Pending { .. })
                    && let Some(t) = route.targets.iter().find(|t| **t == target)
                {
                    items.push((a.id, t.as_str()));
                }
            }
        }
        if items.is_empty() {
            return Ok(());
        }
        self.settlements
            .wait(&items, self.timeout)
            .await
            .map_err(|e| not_replicated(&route.unit, e))
    }
}

fn not_replicated(unit: &str, e: Unsettled) -> ApiError {
    tracing::warn!(%unit, error = %e, "request stored but not replicated in time");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_replicated",
        format!(
            "stored on this node but not yet replicated by the broker ({e}); it will be \
             forwarded when the broker takes it. Resend with the same Idempotency-Key: the \
             answer is 202 (duplicate) once it is replicated"
        ),
    )
    .retry_after(NOT_REPLICATED_RETRY_AFTER_SECS)
}

/// A resend of a request another node stored but has not yet replicated.
pub(super) fn not_replicated_yet(unit: &str) -> ApiError {
    tracing::info!(%unit, "resend of a request stored on another node, not yet replicated");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_replicated",
        "a request with this Idempotency-Key is stored on another node of the bus but not \
         yet replicated by the broker; resend it after Retry-After: the answer is 202 \
         (duplicate) once it is replicated",
    )
    .retry_after(NOT_REPLICATED_RETRY_AFTER_SECS)
}
