//! Why a pending delivery waits: the message ahead of it in its dossier's order at the
//! same target. A delivery of a per-key route goes only when every older delivery of its
//! (unit, key) to that target has finished; a dead letter of a route with
//! `on_dead = "block"` holds the key until it is replayed or dropped. An operator (or the
//! unit) looking at a message that shows "pending, 0 attempts" needs to be told which
//! message it waits behind, and why that one is stuck.
//!
//! Cost: the dossier's own messages (the dossier index), never the queue or the outbox.

use super::keys;
use super::records::{DeadRecord, PendingRecord, decode};
use super::store::StoreError;
use super::{DeliveryState, Outbox};
use crate::envelope::{Envelope, MessageId};

/// The message a pending delivery waits behind, and where that one stands.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct WaitingBehind {
    pub id: MessageId,
    pub flow: String,
    /// `dead_letter` (it blocks the key until replayed or dropped) or `pending` (it is
    /// being delivered or retried first).
    pub why: &'static str,
    /// When it became a dead letter (for `dead_letter`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_since_ms: Option<u64>,
    /// Its reason (dead letter) or last error (pending), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
}

impl Outbox {
    /// What `env`'s pending delivery to `target` waits behind, if it waits for an older
    /// message of its dossier (None: it is not pending, its route keeps no order, or
    /// nothing older is unfinished).
    pub fn waiting_behind(
        &self,
        target: &str,
        env: &Envelope,
    ) -> Result<Option<WaitingBehind>, StoreError> {
        let dossier = match env.key.as_deref() {
            Some(key) => self.dossier_messages(key, 10_000)?,
            None => Vec::new(),
        };
        self.waiting_behind_in(target, env, &dossier)
    }

    /// [`Outbox::waiting_behind`] with the dossier's messages already read (oldest first).
    fn waiting_behind_in(
        &self,
        target: &str,
        env: &Envelope,
        dossier: &[Envelope],
    ) -> Result<Option<WaitingBehind>, StoreError> {
        let store = &self.inner.store;
        let Some(own) = store.get(&keys::delivery(keys::PENDING, target, &env.id))? else {
            return Ok(None);
        };
        let own: PendingRecord = decode(&own)?;
        let (Some(kh), Some(_)) = (own.key_hash, env.key.as_deref()) else {
            return Ok(None);
        };
        // The dossier's messages, oldest first: the first older one of the same unit
        // still unfinished at this target is the one ahead.
        for other in dossier {
            if other.id >= env.id {
                break;
            }
            if other.unit != env.unit || !other.targets.iter().any(|t| t == target) {
                continue;
            }
            if let Some(v) = store.get(&keys::delivery(keys::DEAD, target, &other.id))? {
                let r: DeadRecord = decode(&v)?;
                if r.key_hash == Some(kh) && r.block_on_dead {
                    return Ok(Some(WaitingBehind {
                        id: other.id,
                        flow: other.flow.clone(),
                        why: "dead_letter",
                        dead_since_ms: Some(r.dead_at_ms),
                        reason: Some(r.reason),
                        attempts: Some(r.attempts),
                    }));
                }
            } else if let Some(v) = store.get(&keys::delivery(keys::PENDING, target, &other.id))? {
                let r: PendingRecord = decode(&v)?;
                if r.key_hash == Some(kh) {
                    return Ok(Some(WaitingBehind {
                        id: other.id,
                        flow: other.flow.clone(),
                        why: "pending",
                        dead_since_ms: None,
                        reason: r.errors.last().map(|e| e.error.clone()),
                        attempts: Some(r.attempts),
                    }));
                }
            }
        }
        Ok(None)
    }

    /// [`Outbox::delivery_states`] with, for each pending delivery, what it waits behind
    /// (the dossier read once, and only when something is pending).
    pub fn delivery_states_explained(
        &self,
        env: &Envelope,
    ) -> Result<Vec<(String, DeliveryState, Option<WaitingBehind>)>, StoreError> {
        let mut dossier: Option<Vec<Envelope>> = None;
        let mut out = Vec::new();
        for (target, state) in self.delivery_states(env.id)? {
            let waiting = match (&state, env.key.as_deref()) {
                (DeliveryState::Pending { .. }, Some(key)) => {
                    if dossier.is_none() {
                        dossier = Some(self.dossier_messages(key, 10_000)?);
                    }
                    let dossier = dossier.as_deref().unwrap_or_default();
                    self.waiting_behind_in(&target, env, dossier)?
                }
                _ => None,
            };
            out.push((target, state, waiting));
        }
        Ok(out)
    }

    /// The same for each message of a dossier already read (`dossier`, oldest first): what
    /// the dossier view shows, without reading the dossier again for each event.
    pub fn dossier_states_explained(
        &self,
        env: &Envelope,
        dossier: &[Envelope],
    ) -> Result<Vec<(String, DeliveryState, Option<WaitingBehind>)>, StoreError> {
        let mut out = Vec::new();
        for (target, state) in self.delivery_states(env.id)? {
            let waiting = match state {
                DeliveryState::Pending { .. } => self.waiting_behind_in(&target, env, dossier)?,
                _ => None,
            };
            out.push((target, state, waiting));
        }
        Ok(out)
    }
}
