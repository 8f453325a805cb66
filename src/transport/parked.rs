//! The parked dossiers of a partition: a dossier whose head event waits in a delay queue
//! holds its later events behind it. Saved, confirmed, to the partition's `.parked` queue
//! (a snapshot) before the delivery that changed it is acknowledged, and taken over with
//! the partition by the next worker (see `worker.rs`).

use crate::outbox::KeyHash;
use std::collections::HashMap;

/// A key whose head event waits in a delay queue: its later events follow it there, and
/// only the head is attempted. When the head is delivered (or dies), the first follower
/// becomes the head; the key is free again once no follower is left in the delay queues.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Parked {
    pub head: Option<crate::envelope::MessageId>,
    pub delay_ms: u64,
    /// Later events of the key, in order, waiting in the delay queues.
    pub followers: std::collections::VecDeque<crate::envelope::MessageId>,
}

impl Parked {
    /// The head is done: the next event in line takes its place. `false` when none is
    /// left (the key is free).
    pub fn advance(&mut self) -> bool {
        self.head = self.followers.pop_front();
        self.head.is_some()
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
}

impl ParkedSnapshot {
    pub const VERSION: u32 = 2;

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
    use crate::envelope::MessageId;
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
        };
        let again = ParkedSnapshot::read(&serde_json::to_vec(&now).unwrap()).unwrap();
        assert_eq!(again.parked[0].0, h);
        assert!(ParkedSnapshot::read(b"{\"nonsense\":1}").is_err());
    }
}
