//! One memory, for the whole cluster, of the signed requests already accepted: a captured
//! signed request is accepted once by the cluster, not once per ingress node.
//!
//! # Design
//!
//! ```text
//!  ingress node ── ask {mac, forget_at} ──► <p>.replay-guard (single active consumer)
//!        ▲                                        │ the active node's guard:
//!        └──── answer {first} ◄── reply queue ◄───┤  seen before? → "replayed"
//!                                                 └─ new → append to <p>.replay-seen
//!                                                          (a stream, 15 min), then "first"
//! ```
//!
//! Every ingress node runs a guard consumer on `<p>.replay-guard`; the queue has a single
//! active consumer, so one guard at a time decides, in the order the asks arrive, and two
//! nodes asked for the same signature at the same moment get one "first" between them.
//! The guard answers "first" only after the signature is appended (confirmed) to the
//! stream `<p>.replay-seen`. A guard that becomes active (at start, or when the previous
//! one died) first appends a marker of its own to the stream and reads the stream from
//! `MAX_SKEW × 2` ago up to that marker: everything the previous guard ever answered
//! "first" for is in its memory before it answers anything. The stream keeps 15 minutes
//! (more than the window a signature can be replayed in), in small segments.
//!
//! When the broker cannot be reached, signed requests are refused with 503 and
//! `Retry-After` (fail closed): the guarantee holds or nothing is accepted. Units without
//! a signing secret are not affected. A single node (embedded transport) keeps the same
//! memory in process ([`SeenSignatures`]). The machinery (queue, stream, read-back) is
//! [`super::guard`], shared with the cluster's idempotency keys.

use super::broker::{Broker, BrokerError};
use super::guard::{GuardClient, GuardSpec, Memory};
use lapin::Channel;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// How far a request's timestamp may be from the bus's clock (and how long signatures are
/// remembered to refuse replays).
pub const MAX_SKEW: std::time::Duration = std::time::Duration::from_secs(300);

/// The signatures seen within their window: each is remembered until its `forget_at`
/// (unix seconds), and forgetting costs nothing in proportion to how many are kept.
#[derive(Default)]
pub struct SeenSignatures {
    until: HashMap<[u8; 32], u64>,
    by_time: BTreeSet<(u64, [u8; 32])>,
}

impl SeenSignatures {
    /// Remember `mac` until `forget_at`; `false` if it is remembered already (a replay).
    pub fn first_time(&mut self, mac: [u8; 32], forget_at: u64, now_secs: u64) -> bool {
        while let Some(&(at, old)) = self.by_time.first() {
            if at > now_secs {
                break;
            }
            self.by_time.pop_first();
            if self.until.get(&old) == Some(&at) {
                self.until.remove(&old);
            }
        }
        if self.until.contains_key(&mac) {
            return false;
        }
        self.until.insert(mac, forget_at);
        self.by_time.insert((forget_at, mac));
        true
    }

    pub fn len(&self) -> usize {
        self.until.len()
    }

    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }
}

/// What an ingress node asks the guard: is this signature new? Kept until `forget_at`
/// (unix seconds).
#[derive(Serialize, Deserialize)]
pub struct Ask {
    /// The request's HMAC, hex.
    mac: String,
    forget_at: u64,
}

#[derive(Serialize, Deserialize)]
pub struct Answer {
    first: bool,
}

/// What the stream keeps: an accepted signature.
#[derive(Serialize, Deserialize)]
pub struct Seen {
    mac: String,
    forget_at: u64,
}

/// The longest a signature may ask to be remembered beyond now (its timestamp may be
/// `MAX_SKEW` ahead, and it is kept for twice that); anything longer is refused, so no
/// one who can publish to the broker can fill the guard's memory for good.
fn longest_memory() -> u64 {
    3 * MAX_SKEW.as_secs() + 60
}

impl Memory for SeenSignatures {
    type Ask = Ask;
    type Answer = Answer;
    type Record = Seen;

    fn decide(&mut self, ask: Ask, now_ms: u64) -> (Answer, Option<Seen>) {
        let now = now_ms / 1000;
        let Some(mac) = parse_mac(&ask.mac) else {
            return (Answer { first: false }, None);
        };
        // Refused outright: no valid signature asks to be kept that long.
        if ask.forget_at > now + longest_memory() {
            return (Answer { first: false }, None);
        }
        let first = self.first_time(mac, ask.forget_at, now);
        let record = first.then_some(Seen {
            mac: ask.mac,
            forget_at: ask.forget_at,
        });
        (Answer { first }, record)
    }

    fn unreadable() -> Answer {
        Answer { first: false }
    }

    fn replay(&mut self, record: Seen, now_ms: u64) {
        if let Some(mac) = parse_mac(&record.mac) {
            self.first_time(mac, record.forget_at, now_ms / 1000);
        }
    }

    fn remembered(&self) -> usize {
        self.until.len()
    }
}

/// The replay guard's queue and stream: the stream keeps 15 minutes (more than the window
/// a signature can be replayed in), and a new guard reads back the whole window.
pub fn spec(topology: &super::Topology) -> GuardSpec {
    GuardSpec {
        name: "replay",
        queue: topology.replay_guard_queue(),
        stream: topology.replay_stream(),
        stream_max_age: "15m".into(),
        read_back: Duration::from_secs(2 * MAX_SKEW.as_secs() + 60),
    }
}

/// Declare the guard's queue and stream (part of [`Broker::declare`]).
pub async fn declare(broker: &Broker, ch: &mut Channel) -> Result<(), BrokerError> {
    super::guard::declare(broker, ch, &spec(&broker.topology)).await
}

/// The client side: asks the cluster's guard whether a signature is new.
pub struct ReplayGuard {
    client: GuardClient<SeenSignatures>,
}

impl ReplayGuard {
    pub fn new(broker: Arc<Broker>) -> ReplayGuard {
        let spec = spec(&broker.topology);
        ReplayGuard {
            client: GuardClient::new(broker, spec),
        }
    }

    /// `Ok(true)`: the cluster had not seen `mac` and now remembers it until `forget_at`.
    pub async fn first_time(&self, mac: [u8; 32], forget_at: u64) -> Result<bool, BrokerError> {
        let ask = Ask {
            mac: crate::hex::encode(&mac),
            forget_at,
        };
        Ok(self.client.ask(&ask).await?.first)
    }
}

/// The guard consumer every ingress node with signing units runs.
pub async fn serve(broker: Arc<Broker>, node: String) {
    let spec = spec(&broker.topology);
    super::guard::serve::<SeenSignatures>(broker, node, spec).await
}

fn parse_mac(hex: &str) -> Option<[u8; 32]> {
    crate::hex::decode(hex)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_seen_once_within_its_window_and_forgotten_after() {
        let mut s = SeenSignatures::default();
        assert!(s.first_time([1; 32], 1_000, 400));
        assert!(!s.first_time([1; 32], 1_000, 500));
        assert!(s.first_time([2; 32], 900, 500));
        assert_eq!(s.len(), 2);
        // At 950 the second is forgotten, the first still held.
        assert!(!s.first_time([1; 32], 1_000, 950));
        assert_eq!(s.len(), 1);
        assert!(s.first_time([2; 32], 1_500, 950));
        // Past its window the first may come again (its timestamp is then refused as
        // stale by the signature check before it gets here).
        assert!(s.first_time([1; 32], 2_000, 1_001));
    }
}
