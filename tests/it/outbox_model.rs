//! Model test of the outbox: random sequences of enqueue, claim (ack, retry, dead,
//! release), replay, drop, sync and crash/reopen run against the real outbox over the
//! in-memory store (whose crash loses everything not flushed) and against a simple model.
//! Some requests go to one target only (a route's `deliver_when` left the other out).
//! Checked after every step: per-key order, no claim of a finished or blocked delivery,
//! no eligible delivery left unclaimable, and no acknowledged message ever lost.
//! Failing cases are kept in `proptest-regressions/outbox_model.txt` and replayed first.

use lienthong::envelope::MessageId;
use lienthong::outbox::{
    AttemptError, DeliveryState, EnqueueRequest, MemStore, NewEvent, Outbox, OutboxSettings, Store,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const TARGETS: [&str; 2] = ["t0", "t1"];

#[derive(Clone, Debug)]
enum Action {
    Ack,
    Retry,
    Dead,
    Release,
}

#[derive(Clone, Debug)]
enum Op {
    /// `only`: the events go to that target alone (per-event targets).
    Enqueue {
        key: Option<u8>,
        n: usize,
        only: Option<usize>,
    },
    Claim {
        target: usize,
        action: Action,
    },
    Replay {
        target: usize,
        pick: usize,
    },
    Drop {
        target: usize,
        pick: usize,
    },
    Sync,
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    let action = prop_oneof![3 => Just(Action::Ack), 1 => Just(Action::Retry), 1 => Just(Action::Dead), 1 => Just(Action::Release)];
    prop_oneof![
        4 => (proptest::option::weighted(0.8, 0u8..4), 1usize..4, proptest::option::weighted(0.25, 0usize..2)).prop_map(|(key, n, only)| Op::Enqueue { key, n, only }),
        8 => (0usize..2, action).prop_map(|(target, action)| Op::Claim { target, action }),
        1 => (0usize..2, 0usize..4).prop_map(|(target, pick)| Op::Replay { target, pick }),
        1 => (0usize..2, 0usize..4).prop_map(|(target, pick)| Op::Drop { target, pick }),
        1 => Just(Op::Sync),
        1 => Just(Op::Crash),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    Pending,
    Delivered,
    Dead,
    Dropped,
}

struct Model {
    block: bool,
    /// Messages in acceptance order with their key.
    msgs: Vec<(MessageId, Option<u8>)>,
    state: HashMap<(usize, MessageId), St>,
    /// Outcomes sent but not known to be durable: (before, after).
    uncertain: HashMap<(usize, MessageId), St>,
}

impl Model {
    fn key_of(&self, id: MessageId) -> Option<u8> {
        self.msgs.iter().find(|(m, _)| *m == id).unwrap().1
    }

    /// Whether (t, id) may be attempted now: pending and, for a keyed message, every
    /// earlier message of its key finished (delivered, dropped, or dead with `skip`).
    fn eligible(&self, t: usize, id: MessageId) -> bool {
        if self.state.get(&(t, id)) != Some(&St::Pending) {
            return false;
        }
        let Some(k) = self.key_of(id) else {
            return true;
        };
        self.msgs
            .iter()
            .take_while(|(m, _)| *m != id)
            .filter(|(_, key)| *key == Some(k))
            .all(|(m, _)| match self.state.get(&(t, *m)) {
                // Not sent to this target at all: holds nothing back there.
                None | Some(St::Delivered | St::Dropped) => true,
                Some(St::Dead) => !self.block,
                Some(St::Pending) => false,
            })
    }

    fn explain(&self, t: usize, id: MessageId) -> String {
        let k = self.key_of(id);
        let earlier: Vec<String> = self
            .msgs
            .iter()
            .take_while(|(m, _)| *m != id)
            .filter(|(_, key)| k.is_some() && *key == k)
            .map(|(m, _)| format!("{m}:{:?}", self.state.get(&(t, *m))))
            .collect();
        format!(
            "state {:?}, key {k:?}, earlier of the key: {earlier:?}",
            self.state.get(&(t, id))
        )
    }

    fn set(&mut self, t: usize, id: MessageId, st: St, durable: bool) {
        let before = self.state.insert((t, id), st).unwrap();
        if !durable {
            self.uncertain.entry((t, id)).or_insert(before);
        }
    }

    fn dead_on(&self, t: usize) -> Vec<MessageId> {
        self.msgs
            .iter()
            .map(|(m, _)| *m)
            .filter(|m| self.state.get(&(t, *m)) == Some(&St::Dead))
            .collect()
    }
}

fn actual(outbox: &Outbox, t: usize, id: MessageId) -> St {
    let states = outbox.delivery_states(id).unwrap();
    match &states
        .iter()
        .find(|(name, _)| name == TARGETS[t])
        .expect("target state")
        .1
    {
        DeliveryState::Pending { .. } => St::Pending,
        DeliveryState::Delivered { .. } => St::Delivered,
        DeliveryState::Dead { .. } => St::Dead,
        DeliveryState::Dropped { .. } => St::Dropped,
        DeliveryState::Forgotten => panic!("{id} on {} has no record: lost", TARGETS[t]),
        DeliveryState::Forwarded { .. } => panic!("{id}: forwarded without a broker"),
    }
}

fn open(store: &Arc<MemStore>, window: usize) -> Outbox {
    let settings = OutboxSettings {
        max_pending: 1_000_000,
        max_pending_bytes: 1 << 30,
        retention: Duration::from_secs(3600),
        idempotency_ttl: Duration::from_secs(7 * 86400),
        note_retention: Duration::from_secs(90 * 86400),
        window,
    };
    let targets: Vec<String> = TARGETS.iter().map(|s| s.to_string()).collect();
    Outbox::open(store.clone() as Arc<dyn Store>, settings, &targets).unwrap()
}

async fn run(ops: Vec<Op>, block: bool, window: usize) {
    let store = Arc::new(MemStore::default());
    let mut outbox = open(&store, window);
    let mut model = Model {
        block,
        msgs: Vec::new(),
        state: HashMap::new(),
        uncertain: HashMap::new(),
    };
    let mut seq = 0u32;
    for op in ops {
        match op {
            Op::Enqueue { key, n, only } => {
                let only_target = only.map(|t| vec![TARGETS[t].to_string()]);
                let events = (0..n)
                    .map(|_| {
                        seq += 1;
                        NewEvent {
                            key: key.map(|k| format!("K{k}")),
                            payload: serde_json::value::to_raw_value(
                                &serde_json::json!({ "seq": seq }),
                            )
                            .unwrap(),
                            targets: only_target.clone(),
                        }
                    })
                    .collect();
                let accepted = outbox
                    .enqueue(EnqueueRequest {
                        from_reply: false,
                        unit: "u".into(),
                        flow: "f".into(),
                        trace_id: "t".into(),
                        idempotency_key: None,
                        targets: TARGETS.iter().map(|s| s.to_string()).collect(),
                        ordered: true,
                        block_on_dead: block,
                        events,
                    })
                    .await
                    .unwrap();
                model.uncertain.clear(); // the writer is FIFO: everything before is durable
                for a in accepted {
                    model.msgs.push((a.id, key));
                    for t in 0..TARGETS.len() {
                        if only.is_none_or(|o| o == t) {
                            model.state.insert((t, a.id), St::Pending);
                        }
                    }
                }
            }
            Op::Claim { target: t, action } => {
                let eligible: Vec<MessageId> = model
                    .msgs
                    .iter()
                    .map(|(m, _)| *m)
                    .filter(|m| model.eligible(t, *m))
                    .collect();
                match outbox.try_claim(TARGETS[t]) {
                    None => assert!(
                        eligible.is_empty(),
                        "nothing claimable on {} but {eligible:?} eligible",
                        TARGETS[t]
                    ),
                    Some(lease) => {
                        let id = lease.info.id;
                        assert!(
                            eligible.contains(&id),
                            "claimed {id} on {} out of turn ({:?})",
                            TARGETS[t],
                            model.state.get(&(t, id))
                        );
                        let err = || AttemptError {
                            at_ms: 0,
                            error: "boom".into(),
                            status: Some(500),
                        };
                        match action {
                            Action::Ack => {
                                outbox.delivered(lease);
                                model.set(t, id, St::Delivered, false);
                            }
                            Action::Retry => outbox.retry(lease, err(), 0),
                            Action::Dead => {
                                outbox.dead(lease, Some(err()), "permanent".into());
                                model.set(t, id, St::Dead, false);
                            }
                            Action::Release => drop(lease),
                        }
                    }
                }
            }
            Op::Replay { target: t, pick } => {
                let dead = model.dead_on(t);
                if let Some(&id) = dead.get(pick % dead.len().max(1)) {
                    outbox.replay(TARGETS[t], id).await.unwrap();
                    model.uncertain.clear();
                    model.set(t, id, St::Pending, true);
                }
            }
            Op::Drop { target: t, pick } => {
                let dead = model.dead_on(t);
                if let Some(&id) = dead.get(pick % dead.len().max(1)) {
                    outbox.drop_dead(TARGETS[t], id).await.unwrap();
                    model.uncertain.clear();
                    model.set(t, id, St::Dropped, true);
                }
            }
            Op::Sync => {
                outbox.sync().await.unwrap();
                model.uncertain.clear();
            }
            Op::Crash => {
                // The process dies: writes still queued are lost, leases vanish.
                store.set_frozen(true);
                outbox.shutdown().await.unwrap();
                store.crash();
                store.set_frozen(false);
                outbox = open(&store, window);
                // Outcomes not known durable may or may not have survived: either is fine.
                for ((t, id), before) in std::mem::take(&mut model.uncertain) {
                    let now = actual(&outbox, t, id);
                    let after = model.state[&(t, id)];
                    assert!(
                        now == before || now == after,
                        "{id}: {now:?} is neither {before:?} nor {after:?}"
                    );
                    model.state.insert((t, id), now);
                }
            }
        }
    }
    // Nothing acknowledged is lost, and the counters agree with the records.
    outbox.sync().await.unwrap();
    for (&(t, id), &st) in &model.state {
        assert_eq!(actual(&outbox, t, id), st, "{id} on {}", TARGETS[t]);
    }
    let stats = outbox.stats();
    for (target, counts) in &stats.targets {
        assert_eq!(
            counts.finishing, 0,
            "{target}: finished deliveries never forgotten"
        );
    }
    assert_eq!(
        stats.pending,
        model.state.values().filter(|s| **s == St::Pending).count() as u64
    );
    assert_eq!(
        stats.dead,
        model.state.values().filter(|s| **s == St::Dead).count() as u64
    );
    // Liveness: everything not held back by a dead letter can still be delivered.
    for (t, target) in TARGETS.iter().enumerate() {
        while let Some(lease) = outbox.try_claim(target) {
            let id = lease.info.id;
            assert!(
                model.eligible(t, id),
                "final drain claimed {id} out of turn: {}",
                model.explain(t, id)
            );
            outbox.delivered(lease);
            model.state.insert((t, id), St::Delivered);
        }
        let stuck: Vec<_> = model
            .msgs
            .iter()
            .map(|(m, _)| *m)
            .filter(|m| model.eligible(t, *m))
            .collect();
        assert!(
            stuck.is_empty(),
            "eligible but never claimed on {}: {:?}; queue: {:?}",
            TARGETS[t],
            stuck
                .iter()
                .map(|m| model.explain(t, *m))
                .collect::<Vec<_>>(),
            outbox.queue(TARGETS[t]).unwrap().debug_state()
        );
    }
    outbox.shutdown().await.unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/outbox_model.txt"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn outbox_matches_the_model(ops in proptest::collection::vec(op(), 1..80), block in any::<bool>(), small_window in any::<bool>()) {
        // A window of 16 makes the on-disk backlog and its loader part of the test.
        let window = if small_window { 16 } else { 10_000 };
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run(ops, block, window));
    }
}
