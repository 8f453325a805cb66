//! The parked dossiers of a partition: a dossier whose head event waits in a delay queue
//! holds its later events behind it. Saved, confirmed, to the partition's `.parked` queue
//! (a snapshot) before the delivery that changed it is acknowledged, and taken over with
//! the partition by the next worker (see `worker.rs`).
//!
//! The snapshot also remembers, for a while, which events of once-parked dossiers were
//! settled ([`Settled`]): an event handed on to a delay queue can exist twice (its copy
//! there, and the batch it came in, redelivered after a crash), and the copy that comes
//! back after its dossier went on must not be delivered again behind a later event.

use crate::envelope::MessageId;
use crate::outbox::KeyHash;
use std::collections::{HashMap, VecDeque};

/// A key whose head event waits in a delay queue: its later events follow it there, and
/// only the head is attempted. When the head is delivered (or dies), the first follower
/// becomes the head; the key is free again once no follower is left in the delay queues.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Parked {
    pub head: Option<MessageId>,
    pub delay_ms: u64,
    /// Later events of the key, in order, waiting in the delay queues.
    pub followers: VecDeque<MessageId>,
}

impl Parked {
    /// The head is done: the next event in line takes its place. `false` when none is
    /// left (the key is free).
    pub fn advance(&mut self) -> bool {
        self.head = self.followers.pop_front();
        self.head.is_some()
    }
}

/// Events of a once-parked key that were settled (delivered, or dead-lettered) after
/// they had been handed on to a delay queue, each remembered until `until_ms`: any copy
/// of one still travelling (a delay queue's, or a redelivered batch's) is dropped, never
/// delivered after the dossier's later events.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Settled {
    pub ids: VecDeque<(MessageId, u64)>,
}

impl Settled {
    /// How long a settled event is remembered: twice the longest delay queue, so a copy
    /// waiting there (even behind a broker outage of the same length) finds it.
    pub const KEEP_MS: u64 = 2 * super::RETRY_DELAYS_MS[super::RETRY_DELAYS_MS.len() - 1];
    /// Most events remembered per key (the newest kept).
    pub const MOST: usize = 64;

    pub fn remember(&mut self, id: MessageId, now_ms: u64) {
        if !self.contains(id) {
            self.ids.push_back((id, now_ms + Self::KEEP_MS));
        }
        while self.ids.len() > Self::MOST {
            self.ids.pop_front();
        }
    }

    pub fn contains(&self, id: MessageId) -> bool {
        self.ids.iter().any(|(i, _)| *i == id)
    }

    /// Forget what is older than its keeping time; `false` when nothing is left.
    pub fn expire(&mut self, now_ms: u64) -> bool {
        self.ids.retain(|(_, until)| *until > now_ms);
        !self.ids.is_empty()
    }
}

/// What a partition's `.parked` queue holds: the parked keys by hash.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct ParkedSnapshot {
    pub version: u32,
    pub parked: Vec<(KeyHash, Parked)>,
    /// Keys parked by an earlier release (FNV hashes) not seen since.
    #[serde(default)]
    pub legacy: Vec<(u64, Parked)>,
    /// Settled events of once-parked keys (absent in snapshots of earlier releases).
    #[serde(default)]
    pub settled: Vec<(KeyHash, Settled)>,
}

impl ParkedSnapshot {
    pub const VERSION: u32 = 3;

    /// Reads this release's snapshot or an earlier release's bare list of FNV-keyed
    /// entries.
    pub fn read(body: &[u8]) -> Result<ParkedSnapshot, serde_json::Error> {
        match serde_json::from_slice::<ParkedSnapshot>(body) {
            Ok(s) => Ok(s),
            Err(e) => match serde_json::from_slice::<Vec<(u64, Parked)>>(body) {
                Ok(legacy) => Ok(ParkedSnapshot {
                    version: 1,
                    parked: Vec::new(),
                    legacy,
                    settled: Vec::new(),
                }),
                Err(_) => Err(e),
            },
        }
    }
}

/// Move the entry an earlier release parked under `(unit, key)`'s FNV hash to `h`, its
/// hash now, unless `h` is parked already. `true` when something moved.
pub(super) fn adopt_legacy(
    parked: &mut HashMap<KeyHash, Parked>,
    legacy: &mut HashMap<u64, Parked>,
    h: KeyHash,
    unit: &str,
    key: &str,
) -> bool {
    if legacy.is_empty() || parked.contains_key(&h) {
        return false;
    }
    match legacy.remove(&crate::outbox::key_hash::legacy_key_hash(unit, key)) {
        Some(p) => {
            parked.insert(h, p);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::key_hash::{key_hash, legacy_key_hash};

    fn parked(head: MessageId) -> Parked {
        Parked {
            head: Some(head),
            delay_ms: 1000,
            followers: Default::default(),
        }
    }

    #[test]
    fn an_earlier_release_s_snapshot_is_read_and_its_keys_move_to_their_new_hash() {
        let head = MessageId::from_bytes([7; 16]);
        let old =
            serde_json::to_vec(&vec![(legacy_key_hash("naf", "HS-1"), parked(head))]).unwrap();
        let snapshot = ParkedSnapshot::read(&old).unwrap();
        assert!(snapshot.parked.is_empty());
        let mut current: HashMap<KeyHash, Parked> = snapshot.parked.into_iter().collect();
        let mut legacy: HashMap<u64, Parked> = snapshot.legacy.into_iter().collect();
        // Another dossier's event moves nothing.
        let other = key_hash("naf", "HS-2");
        assert!(!adopt_legacy(
            &mut current,
            &mut legacy,
            other,
            "naf",
            "HS-2"
        ));
        // The parked dossier's next event finds its head where the old worker left it.
        let h = key_hash("naf", "HS-1");
        assert!(adopt_legacy(&mut current, &mut legacy, h, "naf", "HS-1"));
        assert_eq!(current[&h].head, Some(head));
        assert!(legacy.is_empty());
        // This release's snapshot round-trips with 128-bit hashes.
        let now = ParkedSnapshot {
            version: ParkedSnapshot::VERSION,
            parked: current.into_iter().collect(),
            legacy: Vec::new(),
            settled: Vec::new(),
        };
        let again = ParkedSnapshot::read(&serde_json::to_vec(&now).unwrap()).unwrap();
        assert_eq!(again.parked[0].0, h);
        assert!(ParkedSnapshot::read(b"{\"nonsense\":1}").is_err());
    }
}

#[cfg(test)]
mod settled_tests {
    use super::*;

    #[test]
    fn settled_events_are_remembered_for_their_keeping_time_and_at_most_the_newest() {
        let mut s = Settled::default();
        let first = MessageId::from_bytes([1; 16]);
        s.remember(first, 1_000);
        s.remember(first, 2_000);
        assert_eq!(s.ids.len(), 1, "remembered once");
        assert!(s.contains(first));
        assert!(s.expire(1_000 + Settled::KEEP_MS - 1));
        assert!(
            !s.expire(1_000 + Settled::KEEP_MS),
            "forgotten after its time"
        );
        for i in 0..(Settled::MOST as u8 + 5) {
            s.remember(MessageId::from_bytes([i; 16]), 5_000);
        }
        assert_eq!(s.ids.len(), Settled::MOST);
        assert!(
            !s.contains(MessageId::from_bytes([0; 16])),
            "the oldest went first"
        );
        assert!(s.contains(MessageId::from_bytes([Settled::MOST as u8 + 4; 16])));
    }
}
