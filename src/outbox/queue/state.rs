//! The scheduling state of one target's queue: which in-memory deliveries are ready,
//! waiting for a retry, leased or queued behind an earlier delivery of their dossier, and
//! which dossiers are held back (blocked by a dead letter, or with deliveries left on disk).

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Slot {
    /// Behind an earlier delivery of the same key, or its key is blocked.
    Queued,
    Ready,
    /// Retry scheduled at this time (ms since epoch).
    Waiting(u64),
    /// Leased to a worker of this process.
    Leased,
}

pub(super) struct State {
    pub(super) entries: HashMap<MessageId, (DeliveryInfo, Slot)>,
    pub(super) ready: BTreeSet<MessageId>,
    pub(super) waiting: BTreeSet<(u64, MessageId)>,
    /// Unfinished in-memory deliveries per key, oldest first; only the front may run.
    pub(super) keys: HashMap<KeyHash, VecDeque<MessageId>>,
    /// Keys held back by a dead letter (route `on_dead = "block"`), with that letter's id.
    pub(super) blocked: HashMap<KeyHash, MessageId>,
    /// Keys with pending deliveries on disk that are not in memory.
    pub(super) deferred: HashMap<KeyHash, Deferred>,
    /// Most deliveries of one key kept in memory.
    pub(super) per_key_cap: usize,
    /// Last id examined by the loader (or added directly).
    pub(super) cursor: Option<MessageId>,
    /// There may be pending deliveries on disk after `cursor` that are not in memory.
    pub(super) backlog: bool,
    /// Re-examine the disk from this id (inclusive): a deferred key has room again.
    pub(super) rescan_from: Option<MessageId>,
    /// Enqueues left on disk because of the backlog; tells a loader its scan is stale.
    pub(super) skipped: u64,
    pub(super) filling: bool,
    /// Deliveries finished in memory whose `q` record the writer has not removed yet; the
    /// loader must not take them for pending ones.
    pub(super) finishing: HashSet<MessageId>,
    /// Removals from `finishing` that arrived while a loader scanned: applied after the
    /// loader is done, since its scan may predate the removal of those records.
    pub(super) persisted_during_fill: Vec<MessageId>,
    pub(super) in_flight: usize,
    pub(super) closed: bool,
}

/// The oldest delivery of a key left on disk. Until the loader has reloaded it, no later
/// delivery of that key may enter memory, or it could overtake it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Deferred {
    pub(super) min: MessageId,
    /// The key has room again and a rescan from `min` is scheduled.
    pub(super) released: bool,
}

impl State {
    /// Take a delivery into memory, or defer it when its key is blocked, at its cap, or
    /// has an older delivery still on disk.
    pub(super) fn admit(&mut self, info: DeliveryInfo) {
        if let Some(k) = info.key_hash {
            if self.blocked.contains_key(&k) {
                self.defer(k, info.id, true);
                return;
            }
            match self.deferred.get(&k).copied() {
                Some(d) if d.released && info.id <= d.min => {
                    // The rescan reached the oldest deferred delivery: the key resumes.
                    self.deferred.remove(&k);
                }
                Some(_) => {
                    // An older delivery of the key is still on disk: wait behind it.
                    self.defer(k, info.id, false);
                    return;
                }
                None => {}
            }
            if self.keys.get(&k).map_or(0, |q| q.len()) >= self.per_key_cap {
                self.defer(k, info.id, true);
                return;
            }
        }
        self.add(info);
    }

    /// Leave `id` on disk under `key`. `hold` (blocked, or at the cap) cancels a scheduled
    /// release: the key must be released again before the loader takes it back.
    pub(super) fn defer(&mut self, key: KeyHash, id: MessageId, hold: bool) {
        let d = self.deferred.entry(key).or_insert(Deferred {
            min: id,
            released: false,
        });
        if id < d.min {
            d.min = id;
            d.released = false;
        }
        if hold {
            d.released = false;
        }
    }

    /// A key may take deliveries again: re-examine the disk from its oldest deferred one.
    pub(super) fn release_deferred(&mut self, key: KeyHash) {
        if self.blocked.contains_key(&key) {
            return;
        }
        if self.keys.get(&key).map_or(0, |q| q.len()) > self.per_key_cap / 2 {
            return;
        }
        if let Some(d) = self.deferred.get_mut(&key)
            && !d.released
        {
            d.released = true;
            let min = d.min;
            self.rescan_from = Some(self.rescan_from.map_or(min, |r| r.min(min)));
        }
    }

    /// A key was blocked: its waiting deliveries leave memory (they stay on disk).
    pub(super) fn evict_key(&mut self, key: KeyHash) {
        let Some(queue) = self.keys.remove(&key) else {
            return;
        };
        for id in queue {
            if self
                .entries
                .get(&id)
                .is_some_and(|(_, slot)| *slot != Slot::Queued)
            {
                // Only a blocked key's head could be running, and it is gone; never drop a
                // running delivery from memory all the same.
                self.keys.entry(key).or_default().push_back(id);
                continue;
            }
            self.entries.remove(&id);
            self.defer(key, id, true);
        }
    }

    pub(super) fn add(&mut self, info: DeliveryInfo) {
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

    pub(super) fn demote(&mut self, id: MessageId) {
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

    pub(super) fn activate(&mut self, id: MessageId) {
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

    pub(super) fn promote_head(&mut self, key: KeyHash) {
        if self.blocked.contains_key(&key) {
            return;
        }
        if let Some(&head) = self.keys.get(&key).and_then(|q| q.front()) {
            self.activate(head);
        }
    }

    pub(super) fn promote_due(&mut self, now: u64) {
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
