//! One memory, for the whole cluster, of the `Idempotency-Key`s units sent: a request
//! resent with the same key to another ingress node is that node's duplicate too.
//!
//! # Design
//!
//! A key goes through two decisions of the cluster's guard ([`super::guard`]):
//!
//! ```text
//!  claim(key, hold) ─► new?              → "first"; the node stores the events, then
//!                                           commit(key, ids) ─► "stored"
//!                      stored already?   → "duplicate" with the ids (any node answers it)
//!                      claimed, in hold? → "in progress" (the unit retries shortly)
//!                      claim expired?    → "first" (its node died before storing)
//! ```
//!
//! A node that cannot store (busy, refused) releases its claim. A node killed between its
//! claim and its commit leaves the claim to expire after its hold (30 s), after which the
//! key may be taken again: if the node had stored the events, its own outbox still
//! refuses the key when it comes back, and only a resend to another node within that
//! crash can store it twice (at least once, never lost).
//!
//! In the `replicated` acknowledge mode a commit says whether the events are replicated
//! yet; a duplicate of events not replicated is answered as the first request was (503
//! `not_replicated`) until its node commits again once the broker confirmed them.
//!
//! The memory is bounded: keys (a 16-byte digest of unit and key) are forgotten after the
//! outbox's `idempotency_ttl` (at most [`LONGEST_WINDOW`]) and, beyond [`MAX_KEYS`], the
//! oldest first (counted and logged: the cluster's window is then shorter than asked).

use super::broker::{Broker, BrokerError};
use super::guard::{GuardClient, GuardSpec, Memory};
use crate::envelope::MessageId;
use lapin::Channel;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// The longest the cluster remembers a key (the stream's age limit too).
pub const LONGEST_WINDOW: Duration = Duration::from_secs(31 * 24 * 3600);
/// The most keys the guard holds (about 100 bytes each).
pub const MAX_KEYS: usize = 500_000;
/// The longest a claim may be held before its key is free again.
const LONGEST_HOLD_MS: u64 = 10 * 60 * 1000;

/// A key as the guard knows it: a digest of the unit and the unit's key.
type KeyDigest = [u8; 16];

/// The digest the guard keys on (units may use the same key; the unit is part of it).
pub fn digest(unit: &str, key: &str) -> String {
    let mut h = sha2::Sha256::new();
    h.update(unit.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    crate::hex::encode(&h.finalize()[..16])
}

fn parse(key: &str) -> Option<KeyDigest> {
    crate::hex::decode(key)?.try_into().ok()
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "snake_case", tag = "ask")]
pub enum Ask {
    /// May this node store the request? `claim` names the attempt (random).
    Claim {
        key: String,
        claim: String,
        hold_ms: u64,
        forget_at_ms: u64,
    },
    /// The request is stored: its events are `first` and the `count - 1` ids after it.
    Commit {
        key: String,
        first: MessageId,
        count: u32,
        replicated: bool,
        forget_at_ms: u64,
    },
    /// Nothing was stored: the key is free again.
    Release { key: String, claim: String },
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "answer")]
pub enum Answer {
    First,
    Duplicate {
        first: MessageId,
        count: u32,
        replicated: bool,
    },
    InProgress {
        retry_after_ms: u64,
    },
    Noted,
    Refused,
}

/// What the stream keeps.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Record {
    Claimed {
        key: String,
        claim: String,
        until_ms: u64,
        forget_at_ms: u64,
    },
    Stored {
        key: String,
        first: MessageId,
        count: u32,
        replicated: bool,
        forget_at_ms: u64,
    },
    Released {
        key: String,
        claim: String,
    },
}

#[derive(Debug, Clone)]
enum Held {
    Claimed {
        claim: String,
        until_ms: u64,
    },
    Stored {
        first: MessageId,
        count: u32,
        replicated: bool,
    },
}

/// The keys the cluster has seen within their window.
#[derive(Default)]
pub struct Keys {
    held: HashMap<KeyDigest, (Held, u64)>,
    by_time: BTreeSet<(u64, KeyDigest)>,
    /// Keys forgotten before their time because [`MAX_KEYS`] were held.
    pub forgotten_early: u64,
}

impl Keys {
    fn expire(&mut self, now_ms: u64) {
        while let Some(&(at, key)) = self.by_time.first() {
            if at > now_ms && self.held.len() <= MAX_KEYS {
                break;
            }
            self.by_time.pop_first();
            if self.held.get(&key).is_some_and(|(_, f)| *f == at) {
                self.held.remove(&key);
                if at > now_ms {
                    self.forgotten_early += 1;
                    if self.forgotten_early.is_power_of_two() {
                        tracing::warn!(
                            forgotten = self.forgotten_early,
                            max = MAX_KEYS,
                            "the cluster's idempotency memory is full: the oldest keys are \
                             forgotten before their window ends"
                        );
                    }
                }
            }
        }
    }

    fn hold(&mut self, key: KeyDigest, held: Held, forget_at_ms: u64) {
        if let Some((_, old)) = self.held.insert(key, (held, forget_at_ms))
            && old != forget_at_ms
        {
            self.by_time.remove(&(old, key));
        }
        self.by_time.insert((forget_at_ms, key));
    }

    fn apply(&mut self, record: Record) {
        match record {
            Record::Claimed {
                key,
                claim,
                until_ms,
                forget_at_ms,
            } => {
                if let Some(k) = parse(&key) {
                    self.hold(k, Held::Claimed { claim, until_ms }, forget_at_ms);
                }
            }
            Record::Stored {
                key,
                first,
                count,
                replicated,
                forget_at_ms,
            } => {
                if let Some(k) = parse(&key) {
                    let held = Held::Stored {
                        first,
                        count,
                        replicated,
                    };
                    self.hold(k, held, forget_at_ms);
                }
            }
            Record::Released { key, claim } => {
                let Some(k) = parse(&key) else { return };
                if let Some((Held::Claimed { claim: c, .. }, at)) = self.held.get(&k)
                    && *c == claim
                {
                    let at = *at;
                    self.held.remove(&k);
                    self.by_time.remove(&(at, k));
                }
            }
        }
    }
}

impl Memory for Keys {
    type Ask = Ask;
    type Answer = Answer;
    type Record = Record;

    fn decide(&mut self, ask: Ask, now_ms: u64) -> (Answer, Option<Record>) {
        self.expire(now_ms);
        let longest = now_ms + LONGEST_WINDOW.as_millis() as u64;
        let record = match ask {
            Ask::Claim {
                key,
                claim,
                hold_ms,
                forget_at_ms,
            } => {
                let Some(k) = parse(&key) else {
                    return (Answer::Refused, None);
                };
                match self.held.get(&k) {
                    Some((
                        Held::Stored {
                            first,
                            count,
                            replicated,
                        },
                        _,
                    )) => {
                        let answer = Answer::Duplicate {
                            first: *first,
                            count: *count,
                            replicated: *replicated,
                        };
                        return (answer, None);
                    }
                    Some((Held::Claimed { claim: c, until_ms }, _))
                        if *until_ms > now_ms && *c != claim =>
                    {
                        let answer = Answer::InProgress {
                            retry_after_ms: until_ms - now_ms,
                        };
                        return (answer, None);
                    }
                    _ => Record::Claimed {
                        key,
                        claim,
                        until_ms: now_ms + hold_ms.min(LONGEST_HOLD_MS),
                        forget_at_ms: forget_at_ms.min(longest),
                    },
                }
            }
            Ask::Commit {
                key,
                first,
                count,
                replicated,
                forget_at_ms,
            } => {
                if parse(&key).is_none() {
                    return (Answer::Refused, None);
                }
                Record::Stored {
                    key,
                    first,
                    count,
                    replicated,
                    forget_at_ms: forget_at_ms.min(longest),
                }
            }
            Ask::Release { key, claim } => Record::Released { key, claim },
        };
        let answer = match record {
            Record::Claimed { .. } => Answer::First,
            _ => Answer::Noted,
        };
        // Applied here as the next guard will replay it.
        self.apply(record.clone());
        (answer, Some(record))
    }

    fn unreadable() -> Answer {
        Answer::Refused
    }

    fn replay(&mut self, record: Record, now_ms: u64) {
        self.apply(record);
        self.expire(now_ms);
    }

    fn remembered(&self) -> usize {
        self.held.len()
    }
}

/// The idempotency guard's queue and stream; a new guard reads back `window`.
pub fn spec(topology: &super::Topology, window: Duration) -> GuardSpec {
    GuardSpec {
        name: "idempotency",
        queue: topology.idempotency_guard_queue(),
        stream: topology.idempotency_stream(),
        stream_max_age: format!("{}D", LONGEST_WINDOW.as_secs() / 86_400),
        read_back: window.min(LONGEST_WINDOW) + Duration::from_secs(LONGEST_HOLD_MS / 1000),
    }
}

/// Declare the guard's queue and stream (part of [`Broker::declare`]).
pub async fn declare(broker: &Broker, ch: &mut Channel) -> Result<(), BrokerError> {
    super::guard::declare(broker, ch, &spec(&broker.topology, LONGEST_WINDOW)).await
}

/// The guard consumer every ingress node runs.
pub async fn serve(broker: Arc<Broker>, node: String, window: Duration) {
    let spec = spec(&broker.topology, window);
    super::guard::serve::<Keys>(broker, node, spec).await
}

/// What a claim was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Store it; `ticket` names this claim for its commit or release.
    First { ticket: Ticket },
    /// Stored already (on this node or another): these ids. `ticket` commits it again
    /// (once replicated).
    Duplicate {
        ids: Vec<MessageId>,
        replicated: bool,
        ticket: Ticket,
    },
    /// Another node is storing it now.
    InProgress { retry_after: Duration },
}

/// A claim this node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    key: String,
    claim: String,
}

/// The client side: claims, commits and releases keys.
pub struct IdempotencyGuard {
    client: GuardClient<Keys>,
    window: Duration,
}

impl IdempotencyGuard {
    pub fn new(broker: Arc<Broker>, window: Duration) -> IdempotencyGuard {
        let spec = spec(&broker.topology, window);
        IdempotencyGuard {
            client: GuardClient::new(broker, spec),
            window: window.min(LONGEST_WINDOW),
        }
    }

    /// Claim `key` of `unit` for `hold` (the longest this node may take to store it).
    pub async fn claim(&self, unit: &str, key: &str, hold: Duration) -> Result<Claim, BrokerError> {
        let ticket = Ticket {
            key: digest(unit, key),
            claim: uuid::Uuid::now_v7().simple().to_string(),
        };
        let ask = Ask::Claim {
            key: ticket.key.clone(),
            claim: ticket.claim.clone(),
            hold_ms: hold.as_millis() as u64,
            forget_at_ms: self.forget_at_ms(),
        };
        Ok(match self.client.ask(&ask).await? {
            Answer::First => Claim::First { ticket },
            Answer::Duplicate {
                first,
                count,
                replicated,
            } => {
                let mut ids = Vec::with_capacity(count.min(100_000) as usize);
                let mut id = first;
                for i in 0..count {
                    if i > 0 {
                        id = id.successor();
                    }
                    ids.push(id);
                }
                Claim::Duplicate {
                    ids,
                    replicated,
                    ticket,
                }
            }
            Answer::InProgress { retry_after_ms } => Claim::InProgress {
                retry_after: Duration::from_millis(retry_after_ms),
            },
            Answer::Noted | Answer::Refused => {
                return Err(BrokerError::Refused(
                    "the idempotency guard refused the claim".into(),
                ));
            }
        })
    }

    /// The claim's request is stored as `ids` (consecutive, as one request's are).
    pub async fn commit(
        &self,
        ticket: &Ticket,
        ids: &[MessageId],
        replicated: bool,
    ) -> Result<(), BrokerError> {
        let Some(&first) = ids.first() else {
            return self.release(ticket).await;
        };
        let ask = Ask::Commit {
            key: ticket.key.clone(),
            first,
            count: ids.len() as u32,
            replicated,
            forget_at_ms: self.forget_at_ms(),
        };
        self.client.ask(&ask).await.map(|_| ())
    }

    /// Nothing was stored: the key is free for the unit's retry.
    pub async fn release(&self, ticket: &Ticket) -> Result<(), BrokerError> {
        let ask = Ask::Release {
            key: ticket.key.clone(),
            claim: ticket.claim.clone(),
        };
        self.client.ask(&ask).await.map(|_| ())
    }

    fn forget_at_ms(&self) -> u64 {
        crate::time::now_ms() + self.window.as_millis() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> MessageId {
        MessageId(uuid::Uuid::from_u128(n))
    }

    fn claim(keys: &mut Keys, key: &str, claim: &str, now: u64) -> Answer {
        let ask = Ask::Claim {
            key: digest("u", key),
            claim: claim.into(),
            hold_ms: 30_000,
            forget_at_ms: now + 86_400_000,
        };
        keys.decide(ask, now).0
    }

    fn commit(keys: &mut Keys, key: &str, first: u128, count: u32, now: u64) {
        let ask = Ask::Commit {
            key: digest("u", key),
            first: id(first),
            count,
            replicated: true,
            forget_at_ms: now + 86_400_000,
        };
        keys.decide(ask, now);
    }

    #[test]
    fn a_key_is_first_once_then_in_progress_then_a_duplicate_with_its_ids() {
        let mut keys = Keys::default();
        assert_eq!(claim(&mut keys, "k", "a", 1_000), Answer::First);
        assert_eq!(
            claim(&mut keys, "k", "b", 2_000),
            Answer::InProgress {
                retry_after_ms: 29_000
            }
        );
        commit(&mut keys, "k", 7, 3, 3_000);
        assert_eq!(
            claim(&mut keys, "k", "c", 4_000),
            Answer::Duplicate {
                first: id(7),
                count: 3,
                replicated: true
            }
        );
    }

    #[test]
    fn an_expired_or_released_claim_frees_the_key_and_a_window_forgets_it() {
        let mut keys = Keys::default();
        assert_eq!(claim(&mut keys, "k", "a", 0), Answer::First);
        // The claiming node died: after its hold another node may store it.
        assert_eq!(claim(&mut keys, "k", "b", 30_001), Answer::First);
        let (answer, _) = keys.decide(
            Ask::Release {
                key: digest("u", "k"),
                claim: "b".into(),
            },
            30_002,
        );
        assert_eq!(answer, Answer::Noted);
        assert_eq!(claim(&mut keys, "k", "c", 30_003), Answer::First);
        commit(&mut keys, "k", 1, 1, 30_004);
        // A day later the key is forgotten.
        assert_eq!(
            claim(&mut keys, "k", "d", 86_400_000 + 30_005),
            Answer::First
        );
    }

    #[test]
    fn a_new_guard_replaying_the_stream_answers_as_the_old_one_did() {
        let mut old = Keys::default();
        let mut stream = Vec::new();
        for (n, key) in ["k1", "k2", "k3"].iter().enumerate() {
            let ask = Ask::Claim {
                key: digest("u", key),
                claim: "a".into(),
                hold_ms: 30_000,
                forget_at_ms: 86_400_000,
            };
            stream.extend(old.decide(ask, 1_000).1);
            if n < 2 {
                let ask = Ask::Commit {
                    key: digest("u", key),
                    first: id(n as u128),
                    count: 1,
                    replicated: false,
                    forget_at_ms: 86_400_000,
                };
                stream.extend(old.decide(ask, 1_000).1);
            }
        }
        let mut new = Keys::default();
        for r in stream {
            let json = serde_json::to_vec(&r).unwrap();
            new.replay(serde_json::from_slice(&json).unwrap(), 2_000);
        }
        assert_eq!(new.remembered(), 3);
        for key in ["k1", "k2", "k3"] {
            assert_eq!(
                claim(&mut new, key, "z", 2_000),
                claim(&mut old, key, "z", 2_000)
            );
        }
    }

    #[test]
    fn the_memory_is_bounded_and_forgets_the_oldest_first() {
        let mut keys = Keys::default();
        for n in 0..(MAX_KEYS + 10) {
            keys.apply(Record::Stored {
                key: crate::hex::encode(&(n as u128).to_be_bytes()),
                first: id(n as u128),
                count: 1,
                replicated: true,
                forget_at_ms: 1_000_000 + n as u64,
            });
        }
        keys.expire(0);
        assert_eq!(keys.remembered(), MAX_KEYS);
        assert_eq!(keys.forgotten_early, 10);
        assert!(!keys.held.contains_key(&0u128.to_be_bytes()));
    }
}
