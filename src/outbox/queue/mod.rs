//! The in-memory scheduling state of one target: which of its pending deliveries may be
//! attempted now, keeping per-key FIFO order, retry times and blocked keys.
//!
//! Only a window of the target's pending deliveries lives in memory (`outbox.window`);
//! the rest wait on disk and are loaded in id order as the window drains, so a million
//! pending messages cost disk, not memory. Within the window, a keyed delivery is eligible
//! only when it is the oldest unfinished delivery of its key and the key is not blocked by
//! a dead letter.
//!
//! So that one key can never fill the window and hold back every other key, a key keeps
//! at most `window / 4` (≤ 64) deliveries in memory, and a blocked key none beyond the
//! dead letter's place. Deliveries left on disk for those reasons are *deferred*: the
//! queue remembers, per key, the oldest deferred id, and when the key has room again it
//! re-examines the disk from there (`rescan_from`). The invariant the loader keeps:
//! every pending delivery on disk up to `cursor` is in memory, deferred under its key,
//! or at or after `rescan_from`.

mod state;

use state::{Slot, State};

use super::keys;
use super::records::PendingRecord;
use super::store::{Store, StoreError};
use crate::envelope::MessageId;
use crate::time::now_ms;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

use super::key_hash::KeyHash;

/// What the scheduler needs to know of a pending delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryInfo {
    pub id: MessageId,
    pub key_hash: Option<KeyHash>,
    pub block_on_dead: bool,
    /// Attempts made before this one.
    pub attempts: u32,
    pub next_due_ms: u64,
    pub payload_len: u32,
    pub unit: crate::envelope::UnitTag,
    /// The record holds errors of earlier attempts (kept through a replay, which restarts
    /// the attempt count), so the delivered record should carry them on.
    pub had_errors: bool,
    /// The dossier whose KPI state this delivery settles ([`super::tally`]).
    pub tally: Option<u128>,
}

impl DeliveryInfo {
    pub fn from_record(id: MessageId, rec: &PendingRecord) -> Self {
        DeliveryInfo {
            id,
            key_hash: rec.key_hash,
            block_on_dead: rec.block_on_dead,
            attempts: rec.attempts,
            next_due_ms: rec.next_due_ms,
            payload_len: rec.payload_len,
            unit: crate::envelope::UnitTag::of(&rec.unit),
            had_errors: !rec.errors.is_empty(),
            tally: rec.tally,
        }
    }
}

/// Counts for status views.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct QueueCounts {
    pub in_memory: usize,
    pub ready: usize,
    pub retry_scheduled: usize,
    pub in_flight: usize,
    pub waiting_for_key: usize,
    pub blocked_keys: usize,
    pub backlog_on_disk: bool,
    /// Finished deliveries whose records the writer has not removed yet.
    pub finishing: usize,
}

/// Pending deliveries of one unit in a target's in-memory window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnitQueueCounts {
    pub pending: usize,
    pub in_flight: usize,
    pub retrying: usize,
    /// The oldest pending delivery (its id carries the time it was accepted).
    pub oldest: Option<MessageId>,
}

pub struct TargetQueue {
    pub target: String,
    state: Mutex<State>,
    notify: Notify,
    store: Arc<dyn Store>,
    window: usize,
}

impl TargetQueue {
    /// A queue whose pending deliveries are all on disk; `blocked` are the keys held back
    /// by dead letters found at start.
    pub fn new(
        target: String,
        store: Arc<dyn Store>,
        window: usize,
        blocked: HashMap<KeyHash, MessageId>,
    ) -> Self {
        TargetQueue {
            target,
            state: Mutex::new(State {
                entries: HashMap::new(),
                ready: BTreeSet::new(),
                waiting: BTreeSet::new(),
                keys: HashMap::new(),
                blocked,
                deferred: HashMap::new(),
                per_key_cap: (window / 4).clamp(1, 64),
                cursor: None,
                backlog: true,
                rescan_from: None,
                skipped: 0,
                filling: false,
                finishing: HashSet::new(),
                persisted_during_fill: Vec::new(),
                in_flight: 0,
                closed: false,
            }),
            notify: Notify::new(),
            store,
            window,
        }
    }

    /// A new delivery was made durable. It joins the window unless older ones still wait
    /// on disk (then the loader will reach it in order).
    pub fn on_enqueued(&self, info: DeliveryInfo) {
        let mut s = self.state.lock().unwrap();
        if s.backlog || s.entries.len() >= self.window {
            s.backlog = true;
            s.skipped += 1;
            return;
        }
        s.cursor = Some(s.cursor.map_or(info.id, |c| c.max(info.id)));
        s.admit(info);
        drop(s);
        self.notify.notify_waiters();
    }

    /// A dead letter was put back in the queue: it becomes the head of its key again.
    pub fn on_replayed(&self, info: DeliveryInfo) {
        let mut s = self.state.lock().unwrap();
        if let Some(k) = info.key_hash
            && s.blocked.get(&k) == Some(&info.id)
        {
            s.blocked.remove(&k);
        }
        // The replayed message sorts into its key by id: it is older than everything the
        // block held back, so it runs first.
        s.add(info);
        if let Some(k) = info.key_hash {
            s.release_deferred(k);
        }
        drop(s);
        self.notify.notify_waiters();
    }

    /// A dead letter was dropped by an operator: its key may go on.
    pub fn on_dropped(&self, key_hash: Option<KeyHash>, id: MessageId) {
        let mut s = self.state.lock().unwrap();
        if let Some(k) = key_hash
            && s.blocked.get(&k) == Some(&id)
        {
            s.blocked.remove(&k);
            s.promote_head(k);
            s.release_deferred(k);
        }
        drop(s);
        self.notify.notify_waiters();
    }

    /// The writer has removed the `q` record of a finished delivery.
    pub fn on_finish_persisted(&self, id: MessageId) {
        let mut s = self.state.lock().unwrap();
        if s.filling {
            s.persisted_during_fill.push(id);
        } else {
            s.finishing.remove(&id);
        }
    }

    /// Wait for a delivery that may be attempted now. `None` once the queue is closed.
    pub async fn claim(self: &Arc<Self>) -> Option<Lease> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wait = match self.poll_claim() {
                Ok(lease) => return lease,
                Err(wait) => wait,
            };
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// A delivery that may be attempted now, without waiting. `None` when there is none
    /// (or the queue is closed).
    pub fn try_claim(self: &Arc<Self>) -> Option<Lease> {
        self.poll_claim().ok().flatten()
    }

    /// `Ok(Some)` a lease, `Ok(None)` closed, `Err(d)` nothing now: look again within `d`.
    fn poll_claim(self: &Arc<Self>) -> Result<Option<Lease>, Duration> {
        self.fill_if_low();
        let mut s = self.state.lock().unwrap();
        if s.closed {
            return Ok(None);
        }
        let now = now_ms();
        s.promote_due(now);
        if let Some(id) = s.ready.pop_first() {
            let entry = s.entries.get_mut(&id).expect("ready entries exist");
            entry.1 = Slot::Leased;
            let info = entry.0;
            s.in_flight += 1;
            return Ok(Some(Lease {
                queue: Arc::clone(self),
                info,
                resolved: false,
            }));
        }
        Err(match s.waiting.first() {
            Some(&(due, _)) => Duration::from_millis(due.saturating_sub(now).max(1)),
            None => Duration::from_secs(1),
        })
    }

    /// Stop handing out deliveries; claimers return `None`.
    pub fn close(&self) {
        self.state.lock().unwrap().closed = true;
        self.notify.notify_waiters();
    }

    pub fn counts(&self) -> QueueCounts {
        let s = self.state.lock().unwrap();
        let waiting_for_key = s
            .entries
            .values()
            .filter(|(_, slot)| *slot == Slot::Queued)
            .count();
        QueueCounts {
            in_memory: s.entries.len(),
            ready: s.ready.len(),
            retry_scheduled: s.waiting.len(),
            in_flight: s.in_flight,
            waiting_for_key,
            blocked_keys: s.blocked.len(),
            backlog_on_disk: s.backlog,
            finishing: s.finishing.len(),
        }
    }

    /// The in-memory window of pending deliveries, counted per unit. The window holds the
    /// oldest pending deliveries of the target, so each unit's oldest is exact whenever the
    /// unit has anything in the window (with a backlog on disk, a unit whose deliveries
    /// are all on disk is missing here; its count is in the outbox totals).
    pub fn per_unit(&self) -> HashMap<crate::envelope::UnitTag, UnitQueueCounts> {
        let s = self.state.lock().unwrap();
        let mut out: HashMap<crate::envelope::UnitTag, UnitQueueCounts> = HashMap::new();
        for (info, slot) in s.entries.values() {
            let c = out.entry(info.unit).or_default();
            c.pending += 1;
            match slot {
                Slot::Leased => c.in_flight += 1,
                Slot::Waiting(_) => c.retrying += 1,
                Slot::Queued | Slot::Ready => {}
            }
            if c.oldest.is_none_or(|o| info.id < o) {
                c.oldest = Some(info.id);
            }
        }
        out
    }

    /// The scheduler's internal state, for diagnostics and test failure messages.
    pub fn debug_state(&self) -> String {
        let s = self.state.lock().unwrap();
        format!(
            "entries={:?} keys={:?} blocked={:?} deferred={:?} cursor={:?} backlog={} rescan_from={:?} finishing={:?}",
            s.entries
                .values()
                .map(|(i, slot)| (i.id, *slot))
                .collect::<Vec<_>>(),
            s.keys,
            s.blocked,
            s.deferred,
            s.cursor,
            s.backlog,
            s.rescan_from,
            s.finishing
        )
    }

    /// Load the next part of the on-disk backlog (or re-examine deferred deliveries) when
    /// the window runs low. The scan runs without the lock so that enqueues and claims go
    /// on meanwhile.
    fn fill_if_low(&self) {
        let prefix = keys::target_prefix(keys::PENDING, &self.target);
        let (start, rescanning, old_cursor, generation) = {
            let mut s = self.state.lock().unwrap();
            if s.filling || s.entries.len() > self.window / 2 {
                return;
            }
            let (start, rescanning) = if let Some(r) = s.rescan_from.take() {
                (keys::delivery(keys::PENDING, &self.target, &r), true)
            } else if s.backlog {
                let start = match s.cursor {
                    Some(c) => keys::delivery(keys::PENDING, &self.target, &c.successor()),
                    None => prefix.clone(),
                };
                (start, false)
            } else {
                return;
            };
            s.filling = true;
            (start, rescanning, s.cursor, s.skipped)
        };
        let limit = self.window.max(64);
        let scanned = self.load(&start, &keys::prefix_end(&prefix), limit);
        let mut s = self.state.lock().unwrap();
        s.filling = false;
        let rows = match scanned {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(target_system = %self.target, error = %e, "cannot load pending deliveries");
                if rescanning {
                    // Try again next time.
                    let from = keys::id_suffix(&start).expect("rescan start carries an id");
                    s.rescan_from = Some(s.rescan_from.map_or(from, |r| r.min(from)));
                }
                for id in std::mem::take(&mut s.persisted_during_fill) {
                    s.finishing.remove(&id);
                }
                return;
            }
        };
        let reached_end = rows.len() < limit;
        let mut last = None;
        let mut full = false;
        for info in rows {
            if s.entries.len() >= self.window {
                full = true;
                break;
            }
            last = Some(info.id);
            if !s.entries.contains_key(&info.id) && !s.finishing.contains(&info.id) {
                s.admit(info);
            }
        }
        if let Some(l) = last {
            if rescanning && old_cursor.is_some_and(|c| l < c) && (full || !reached_end) {
                // The rescan stopped short of the cursor: go on from here next time.
                let next = l.successor();
                s.rescan_from = Some(s.rescan_from.map_or(next, |r| r.min(next)));
            }
            if s.cursor.is_none_or(|c| l > c) {
                s.cursor = Some(l);
            }
        }
        if full || !reached_end {
            s.backlog = true;
        } else if s.skipped == generation {
            s.backlog = false;
        }
        for id in std::mem::take(&mut s.persisted_during_fill) {
            s.finishing.remove(&id);
        }
        drop(s);
        self.notify.notify_waiters();
    }

    fn load(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<DeliveryInfo>, StoreError> {
        let rows = self.store.scan(start, end, limit)?;
        rows.iter()
            .map(|(k, v)| {
                let id = keys::id_suffix(k)
                    .ok_or_else(|| StoreError::Corrupt("short pending key".into()))?;
                Ok(DeliveryInfo::from_record(
                    id,
                    &PendingRecord::from_bytes(v)?,
                ))
            })
            .collect()
    }

    /// The delivery succeeded (or was given up with `skip`): the key's next one may go.
    fn finish(&self, info: &DeliveryInfo, block_key: bool) {
        let mut s = self.state.lock().unwrap();
        s.in_flight -= 1;
        s.entries.remove(&info.id);
        s.finishing.insert(info.id);
        if let Some(k) = info.key_hash {
            let empty = match s.keys.get_mut(&k) {
                Some(q) => {
                    q.retain(|id| *id != info.id);
                    q.is_empty()
                }
                None => true,
            };
            if empty {
                s.keys.remove(&k);
            }
            if block_key {
                s.blocked.insert(k, info.id);
                s.evict_key(k);
                // Deliveries of the key already on disk wait for the operator too.
                if let Some(d) = s.deferred.get_mut(&k) {
                    d.released = false;
                }
            } else {
                s.promote_head(k);
                s.release_deferred(k);
            }
        }
        drop(s);
        self.notify.notify_waiters();
    }

    fn reschedule(&self, info: &DeliveryInfo, due_ms: u64) {
        let mut s = self.state.lock().unwrap();
        s.in_flight -= 1;
        if let Some(entry) = s.entries.get_mut(&info.id) {
            entry.0.attempts = info.attempts + 1;
            entry.0.next_due_ms = due_ms;
            entry.1 = Slot::Waiting(due_ms);
            s.waiting.insert((due_ms, info.id));
        }
        drop(s);
        self.notify.notify_waiters();
    }

    fn release(&self, info: &DeliveryInfo) {
        let mut s = self.state.lock().unwrap();
        s.in_flight -= 1;
        if let Some(entry) = s.entries.get_mut(&info.id) {
            entry.1 = Slot::Ready;
            s.ready.insert(info.id);
        }
        drop(s);
        self.notify.notify_waiters();
    }
}

/// A delivery handed to one worker. It ends in exactly one of delivered, retry or dead
/// (through the [`Outbox`](super::Outbox)); a lease dropped without an outcome (a panic,
/// a shutdown mid-attempt) goes back to ready.
pub struct Lease {
    queue: Arc<TargetQueue>,
    pub info: DeliveryInfo,
    resolved: bool,
}

impl Lease {
    pub fn target(&self) -> &str {
        &self.queue.target
    }

    pub(super) fn finish(mut self, block_key: bool) {
        self.resolved = true;
        self.queue.finish(&self.info, block_key);
    }

    pub(super) fn reschedule(mut self, due_ms: u64) {
        self.resolved = true;
        self.queue.reschedule(&self.info, due_ms);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.resolved {
            self.queue.release(&self.info);
        }
    }
}
