//! Why a pending delivery waits: the message ahead of it in its dossier's order at the
//! same target. A delivery of a per-key route goes only when every older delivery of its
//! (unit, key) to that target has finished; a dead letter of a route with
//! `on_dead = "block"` holds the key until it is replayed or dropped. An operator (or the
//! unit) looking at a message that shows "pending, 0 attempts" needs to be told which
//! message it waits behind, and why that one is stuck.
//!
//! Cost: the unit's index entries of the dossier up to the first one that holds the target
//! (read a page at a time, at most [`MAX_EXAMINED`]), never the queue or the outbox; a
//! dossier's view finds each target's holder once for all its events ([`Holders`]).

use super::keys;
use super::records::{DeadRecord, PendingRecord, decode};
use super::store::StoreError;
use super::{DeliveryState, Outbox};
use crate::envelope::{Envelope, MessageId};
use std::collections::HashMap;

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

/// Most index entries read to find what holds a dossier at one target (a dossier's events
/// beyond this are not searched for the one ahead).
const MAX_EXAMINED: usize = 10_000;

/// Per (unit, dossier, target), the oldest delivery that holds the rest back, once found:
/// every later pending delivery there waits behind it.
#[derive(Default)]
pub struct Holders(HashMap<(String, String, String), Option<WaitingBehind>>);

impl Outbox {
    /// What `env`'s pending delivery to `target` waits behind, if it waits for an older
    /// message of its dossier (None: it is not pending, its route keeps no order, or
    /// nothing older is unfinished).
    pub fn waiting_behind(
        &self,
        target: &str,
        env: &Envelope,
    ) -> Result<Option<WaitingBehind>, StoreError> {
        self.waiting_behind_in(target, env, &mut Holders::default())
    }

    /// [`Outbox::waiting_behind`], the holders found so far kept in `holders`.
    fn waiting_behind_in(
        &self,
        target: &str,
        env: &Envelope,
        holders: &mut Holders,
    ) -> Result<Option<WaitingBehind>, StoreError> {
        let store = &self.inner.store;
        let Some(own) = store.get(&keys::delivery(keys::PENDING, target, &env.id))? else {
            return Ok(None);
        };
        let own = PendingRecord::from_bytes(&own)?;
        let (Some(kh), Some(key)) = (own.key_hash, env.key.as_deref()) else {
            return Ok(None);
        };
        let slot = (env.unit.clone(), key.to_string(), target.to_string());
        let holder = match holders.0.get(&slot) {
            Some(found) => found.clone(),
            None => {
                let found = self.first_holder(&env.unit, key, target, kh)?;
                holders.0.insert(slot, found.clone());
                found
            }
        };
        // The holder is this delivery itself (it is the head) or an older one.
        Ok(holder.filter(|h| h.id < env.id))
    }

    /// The oldest of `unit`'s messages of dossier `key` still unfinished at `target`
    /// (pending, or a dead letter of a route that blocks on it).
    fn first_holder(
        &self,
        unit: &str,
        key: &str,
        target: &str,
        kh: super::KeyHash,
    ) -> Result<Option<WaitingBehind>, StoreError> {
        let store = &self.inner.store;
        let mut after = None;
        let mut examined = 0;
        while examined < MAX_EXAMINED {
            let page = self.dossier_ids(unit, key, after, 1_000)?;
            for id in &page.ids {
                examined += 1;
                let flow = || -> Result<String, StoreError> {
                    Ok(self.message(*id)?.map(|m| m.flow).unwrap_or_default())
                };
                if let Some(v) = store.get(&keys::delivery(keys::DEAD, target, id))? {
                    let r: DeadRecord = decode(&v)?;
                    if r.key_hash == Some(kh) && r.block_on_dead {
                        return Ok(Some(WaitingBehind {
                            id: *id,
                            flow: flow()?,
                            why: "dead_letter",
                            dead_since_ms: Some(r.dead_at_ms),
                            reason: Some(r.reason),
                            attempts: Some(r.attempts),
                        }));
                    }
                } else if let Some(v) = store.get(&keys::delivery(keys::PENDING, target, id))? {
                    let r = PendingRecord::from_bytes(&v)?;
                    if r.key_hash == Some(kh) {
                        return Ok(Some(WaitingBehind {
                            id: *id,
                            flow: flow()?,
                            why: "pending",
                            dead_since_ms: None,
                            reason: r.errors.last().map(|e| e.error.clone()),
                            attempts: Some(r.attempts),
                        }));
                    }
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(None)
    }

    /// [`Outbox::delivery_states`] with, for each pending delivery, what it waits behind
    /// (the dossier read once per target, and only when something is pending).
    pub fn delivery_states_explained(
        &self,
        env: &Envelope,
    ) -> Result<Vec<(String, DeliveryState, Option<WaitingBehind>)>, StoreError> {
        self.dossier_states_explained(env, &mut Holders::default())
    }

    /// [`Outbox::delivery_states_explained`] for one of a dossier's events, the holders
    /// shared by all of them.
    pub fn dossier_states_explained(
        &self,
        env: &Envelope,
        holders: &mut Holders,
    ) -> Result<Vec<(String, DeliveryState, Option<WaitingBehind>)>, StoreError> {
        let mut out = Vec::new();
        for (target, state) in self.delivery_states(env.id)? {
            let waiting = match state {
                DeliveryState::Pending { .. } => self.waiting_behind_in(&target, env, holders)?,
                _ => None,
            };
            out.push((target, state, waiting));
        }
        Ok(out)
    }
}
