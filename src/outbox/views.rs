//! What status views read: where each delivery of a message stands, the messages of one
//! dossier, and the running per-unit counts.

use super::records::{self, AttemptError, DeadRecord, DoneRecord, PendingRecord, decode};
use super::store::StoreError;
use super::{Outbox, keys};
use crate::envelope::MessageId;
use std::sync::Arc;

/// Where one delivery of a message stands.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum DeliveryState {
    Pending {
        attempts: u32,
        next_attempt_ms: u64,
        last_error: Option<String>,
        errors: Vec<AttemptError>,
    },
    Delivered {
        at_ms: u64,
        attempts: u32,
        /// Failed attempts before the successful one.
        errors: Vec<AttemptError>,
    },
    Dropped {
        at_ms: u64,
        errors: Vec<AttemptError>,
    },
    /// Handed to the broker; a worker node has not reported it delivered yet.
    Forwarded { at_ms: u64 },
    Dead {
        reason: String,
        attempts: u32,
        dead_at_ms: u64,
        errors: Vec<AttemptError>,
    },
    /// Retention removed this delivery's record.
    Forgotten,
}

impl Outbox {
    /// Every unit with pending or dead deliveries counted at some target (the running
    /// counts), for views that look across units.
    pub fn units_counted(&self) -> std::collections::BTreeSet<String> {
        let counts = Arc::clone(&self.inner.counters.by_unit.lock().unwrap());
        counts.values().flat_map(|m| m.keys().cloned()).collect()
    }

    /// Pending and dead deliveries of one target per unit, as of the last write: running
    /// counts kept by the writer, never a count of records.
    pub fn per_unit(&self, target: &str) -> std::collections::BTreeMap<String, (u64, u64)> {
        let counts = Arc::clone(&self.inner.counters.by_unit.lock().unwrap());
        counts.get(target).cloned().unwrap_or_default()
    }

    /// Where each delivery of a message stands, per target.
    pub fn delivery_states(
        &self,
        id: MessageId,
    ) -> Result<Vec<(String, DeliveryState)>, StoreError> {
        let Some(env) = self.message(id)? else {
            return Ok(Vec::new());
        };
        let store = &self.inner.store;
        let mut out = Vec::new();
        for t in env.targets {
            let state = if let Some(v) = store.get(&keys::delivery(keys::PENDING, &t, &id))? {
                let r = PendingRecord::from_bytes(&v)?;
                DeliveryState::Pending {
                    attempts: r.attempts,
                    next_attempt_ms: r.next_due_ms,
                    last_error: r.errors.last().map(|e| e.error.clone()),
                    errors: r.errors,
                }
            } else if let Some(v) = store.get(&keys::delivery(keys::DONE, &t, &id))? {
                let r = DoneRecord::from_bytes(&v)?;
                match r.outcome {
                    records::DoneOutcome::Delivered => DeliveryState::Delivered {
                        at_ms: r.at_ms,
                        attempts: r.attempts,
                        errors: r.errors,
                    },
                    records::DoneOutcome::Forwarded => DeliveryState::Forwarded { at_ms: r.at_ms },
                    records::DoneOutcome::Dropped => DeliveryState::Dropped {
                        at_ms: r.at_ms,
                        errors: r.errors,
                    },
                }
            } else if let Some(v) = store.get(&keys::delivery(keys::DEAD, &t, &id))? {
                let r: DeadRecord = decode(&v)?;
                DeliveryState::Dead {
                    reason: r.reason,
                    attempts: r.attempts,
                    dead_at_ms: r.dead_at_ms,
                    errors: r.errors,
                }
            } else {
                DeliveryState::Forgotten
            };
            out.push((t, state));
        }
        Ok(out)
    }
}
