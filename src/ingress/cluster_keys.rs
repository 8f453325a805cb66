//! In a cluster, an `Idempotency-Key` is the cluster's: before a keyed request is stored,
//! the node claims its key from the cluster's guard ([`crate::transport::idempotency`]);
//! a key another node stored is answered here as that node's duplicate (`202`, its ids),
//! one another node is storing right now `409 idempotency_in_progress`. After the write
//! the node commits the ids (or releases the claim when nothing was stored).
//!
//! When the guard cannot be reached the request goes on with this node's own memory of
//! keys (logged, with the count of such requests): a resend to another node may then be
//! stored twice. In the `replicated` mode such a request is answered `503 not_replicated`
//! anyway (the broker is out of reach), so only a unit's resend of an unacknowledged
//! request can be stored twice, never an acknowledged one lost.

use crate::outbox::{Accepted, Outbox};
use crate::transport::idempotency::{Claim, IdempotencyGuard, Ticket};
use crate::web::ApiError;
use axum::http::StatusCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// This node's side of the cluster's idempotency keys.
pub struct ClusterKeys {
    pub guard: Arc<IdempotencyGuard>,
    /// The longest this node may take to store (and replicate) a request it claimed.
    pub hold: Duration,
    /// `[amqp] acknowledge = "replicated"`.
    pub replicated: bool,
    /// Requests checked against this node's memory only (the guard out of reach), shared
    /// with `/metrics`.
    pub local_only: Arc<AtomicU64>,
}

/// What to do with a keyed request.
pub enum Decision {
    /// Store it; commit or release the ticket after.
    Store(Option<Ticket>),
    /// Already stored in the cluster: answer these.
    Answered(Vec<Accepted>),
}

impl ClusterKeys {
    pub fn new(
        guard: Arc<IdempotencyGuard>,
        hold: Duration,
        replicated: bool,
        local_only: Arc<AtomicU64>,
    ) -> ClusterKeys {
        ClusterKeys {
            guard,
            hold,
            replicated,
            local_only,
        }
    }

    /// Claim `key` of `unit` before its request is stored.
    pub async fn before_store(
        &self,
        outbox: &Outbox,
        unit: &str,
        key: &str,
    ) -> Result<Decision, ApiError> {
        match self.guard.claim(unit, key, self.hold).await {
            Ok(Claim::First { ticket }) => Ok(Decision::Store(Some(ticket))),
            Ok(Claim::Duplicate {
                ids,
                replicated: false,
                ticket,
            }) if self.replicated => {
                // Stored here: the outbox answers it as its duplicate once replicated,
                // and this node commits it again as replicated.
                let here = ids
                    .first()
                    .is_some_and(|id| outbox.message(*id).is_ok_and(|m| m.is_some()));
                if here {
                    Ok(Decision::Store(Some(ticket)))
                } else {
                    Err(super::replicated::not_replicated_yet(unit))
                }
            }
            Ok(Claim::Duplicate { ids, .. }) => Ok(Decision::Answered(
                ids.into_iter()
                    .map(|id| Accepted {
                        id,
                        duplicate: true,
                    })
                    .collect(),
            )),
            Ok(Claim::InProgress { retry_after }) => Err(ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_in_progress",
                "a request with this Idempotency-Key is being stored by another node of the \
                 bus; resend it after Retry-After: the answer is then its 202 (duplicate)",
            )
            .field("idempotency-key")
            .retry_after(retry_after.as_secs().max(1))),
            Err(e) => {
                let n = self.local_only.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(%unit, error = %e, checked_here_only = n,
                        "the cluster's idempotency guard is out of reach: keys are checked \
                         against this node's memory only");
                }
                Ok(Decision::Store(None))
            }
        }
    }

    /// The request is stored as `accepted`; `replicated` once the broker confirmed it.
    pub async fn stored(&self, ticket: &Ticket, accepted: &[Accepted], replicated: bool) {
        let ids: Vec<_> = accepted.iter().map(|a| a.id).collect();
        if let Err(e) = self.guard.commit(ticket, &ids, replicated).await {
            // Stored all the same; the claim expires after its hold.
            tracing::warn!(error = %e, "could not tell the cluster a keyed request is stored");
        }
    }

    /// Nothing was stored: free the key for the unit's retry.
    pub async fn not_stored(&self, ticket: &Ticket) {
        if let Err(e) = self.guard.release(ticket).await {
            tracing::warn!(error = %e, "could not release an idempotency claim; it expires by itself");
        }
    }
}
