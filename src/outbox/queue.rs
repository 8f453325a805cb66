//! The in-memory scheduling state of one target: which of its pending deliveries may be
//! attempted now, keeping per-key FIFO order, retry times and blocked keys.
//!
//! Only a window of the target's pending deliveries lives in memory (`outbox.window`);
//! the rest wait on disk and are loaded in id order as the window drains, so a million
//! pending messages cost disk, not memory. Within the window, a keyed delivery is eligible
//! only when it is the oldest unfinished delivery of its key and the key is not blocked by
//! a dead letter.

use super::keys;
use super::records::{PendingRecord, decode};
use super::store::{Store, StoreError};
use crate::envelope::MessageId;
use crate::time::now_ms;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// What the scheduler needs to know of a pending delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryInfo {
    pub id: MessageId,
    pub key_hash: Option<u64>,
    pub block_on_dead: bool,
    /// Attempts made before this one.
    pub attempts: u32,
    pub next_due_ms: u64,
    pub payload_len: u32,
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
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// Behind an earlier delivery of the same key, or its key is blocked.
    Queued,
    Ready,
    /// Retry scheduled at this time (ms since epoch).
    Waiting(u64),
    /// Leased to a worker of this process.
    Leased,
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
}

struct State {
    entries: HashMap<MessageId, (DeliveryInfo, Slot)>,
    ready: BTreeSet<MessageId>,
    waiting: BTreeSet<(u64, MessageId)>,
    /// Unfinished in-memory deliveries per key, oldest first; only the front may run.
    keys: HashMap<u64, VecDeque<MessageId>>,
    /// Keys held back by a dead letter (route `on_dead = "block"`), with that letter's id.
    blocked: HashMap<u64, MessageId>,
    /// Last id loaded from disk or added directly; disk entries after it are not loaded.
    cursor: Option<MessageId>,
    /// There may be pending deliveries on disk after `cursor` that are not in memory.
    backlog: bool,
    /// Enqueues left on disk because of the backlog; tells a loader its scan is stale.
    skipped: u64,
    filling: bool,
    in_flight: usize,
    closed: bool,
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
        blocked: HashMap<u64, MessageId>,
    ) -> Self {
        TargetQueue {
            target,
            state: Mutex::new(State {
                entries: HashMap::new(),
                ready: BTreeSet::new(),
                waiting: BTreeSet::new(),
                keys: HashMap::new(),
                blocked,
                cursor: None,
                backlog: true,
                skipped: 0,
                filling: false,
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
        s.add(info);
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
        // A key's head that is already running keeps its place; the replayed message
        // sorts before it only if it is older, which `add` handles by id order.
        s.add(info);
        drop(s);
        self.notify.notify_waiters();
    }

    /// A dead letter was dropped by an operator: its key may go on.
    pub fn on_dropped(&self, key_hash: Option<u64>, id: MessageId) {
        let mut s = self.state.lock().unwrap();
        if let Some(k) = key_hash
            && s.blocked.get(&k) == Some(&id)
        {
            s.blocked.remove(&k);
            s.promote_head(k);
        }
        drop(s);
        self.notify.notify_waiters();
    }

    /// Wait for a delivery that may be attempted now. `None` once the queue is closed.
    pub async fn claim(self: &Arc<Self>) -> Option<Lease> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.fill_if_low();
            let wait = {
                let mut s = self.state.lock().unwrap();
                if s.closed {
                    return None;
                }
                let now = now_ms();
                s.promote_due(now);
                if let Some(id) = s.ready.pop_first() {
                    let entry = s.entries.get_mut(&id).expect("ready entries exist");
                    entry.1 = Slot::Leased;
                    let info = entry.0;
                    s.in_flight += 1;
                    return Some(Lease {
                        queue: Arc::clone(self),
                        info,
                        resolved: false,
                    });
                }
                match s.waiting.first() {
                    Some(&(due, _)) => Duration::from_millis(due.saturating_sub(now).max(1)),
                    None => Duration::from_secs(1),
                }
            };
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
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
        }
    }

    pub fn is_blocked(&self, key_hash: u64) -> bool {
        self.state.lock().unwrap().blocked.contains_key(&key_hash)
    }

    /// Load the next part of the on-disk backlog when the window runs low. The scan runs
    /// without the lock so that enqueues and claims go on meanwhile.
    fn fill_if_low(&self) {
        let (start, room, generation) = {
            let mut s = self.state.lock().unwrap();
            if !s.backlog || s.filling || s.entries.len() > self.window / 2 {
                return;
            }
            s.filling = true;
            let start = match s.cursor {
                Some(c) => keys::delivery(keys::PENDING, &self.target, &c.successor()),
                None => keys::target_prefix(keys::PENDING, &self.target),
            };
            (start, self.window - s.entries.len(), s.skipped)
        };
        let end = keys::prefix_end(&keys::target_prefix(keys::PENDING, &self.target));
        let scanned = self.load(&start, &end, room);
        let mut s = self.state.lock().unwrap();
        s.filling = false;
        match scanned {
            Ok(infos) => {
                let complete = infos.len() < room && s.skipped == generation;
                for info in infos {
                    s.cursor = Some(info.id);
                    if !s.entries.contains_key(&info.id) {
                        s.add(info);
                    }
                }
                if complete {
                    s.backlog = false;
                }
            }
            Err(e) => {
                tracing::error!(target_system = %self.target, error = %e, "cannot load pending deliveries")
            }
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
                Ok(DeliveryInfo::from_record(id, &decode::<PendingRecord>(v)?))
            })
            .collect()
    }

    /// The delivery succeeded (or was given up with `skip`): the key's next one may go.
    fn finish(&self, info: &DeliveryInfo, block_key: bool) {
        let mut s = self.state.lock().unwrap();
        s.in_flight -= 1;
        s.entries.remove(&info.id);
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
            } else {
                s.promote_head(k);
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

impl State {
    fn add(&mut self, info: DeliveryInfo) {
        let runnable = match info.key_hash {
            None => true,
            Some(k) => {
                let q = self.keys.entry(k).or_default();
                // Keep id order; new deliveries almost always go to the back.
                let pos = q.iter().rposition(|id| *id < info.id).map_or(0, |p| p + 1);
                q.insert(pos, info.id);
                if pos == 0 && q.len() > 1 {
                    // An older delivery (a replay) displaces a head that has not started.
                    let displaced = q[1];
                    self.demote(displaced);
                }
                pos == 0 && !self.blocked.contains_key(&k)
            }
        };
        self.entries.insert(info.id, (info, Slot::Queued));
        if runnable {
            self.activate(info.id);
        }
    }

    fn demote(&mut self, id: MessageId) {
        if let Some(entry) = self.entries.get_mut(&id) {
            match entry.1 {
                Slot::Ready => {
                    self.ready.remove(&id);
                    entry.1 = Slot::Queued;
                }
                Slot::Waiting(due) => {
                    self.waiting.remove(&(due, id));
                    entry.1 = Slot::Queued;
                }
                Slot::Queued | Slot::Leased => {}
            }
        }
    }

    fn activate(&mut self, id: MessageId) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        if entry.1 != Slot::Queued {
            return;
        }
        let due = entry.0.next_due_ms;
        if due > now_ms() {
            entry.1 = Slot::Waiting(due);
            self.waiting.insert((due, id));
        } else {
            entry.1 = Slot::Ready;
            self.ready.insert(id);
        }
    }

    fn promote_head(&mut self, key: u64) {
        if self.blocked.contains_key(&key) {
            return;
        }
        if let Some(&head) = self.keys.get(&key).and_then(|q| q.front()) {
            self.activate(head);
        }
    }

    fn promote_due(&mut self, now: u64) {
        while let Some(&(due, id)) = self.waiting.first() {
            if due > now {
                break;
            }
            self.waiting.pop_first();
            if let Some(entry) = self.entries.get_mut(&id)
                && entry.1 == Slot::Waiting(due)
            {
                entry.1 = Slot::Ready;
                self.ready.insert(id);
            }
        }
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
