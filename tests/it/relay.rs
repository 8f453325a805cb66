//! The relay against the recording sink over real HTTP: retries with Retry-After, per-key
//! order under failures, dead letters with block and skip, and target isolation.

use crate::support;

use lienthong::envelope::MessageId;
use lienthong::outbox::DeliveryState;
use lienthong_mocks::Faults;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::*;

fn ids_of(body: &Value) -> Vec<MessageId> {
    body["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_honour_retry_after_and_count_attempts() {
    let faults = Faults {
        error_ratio: 0.5,
        too_many_ratio: 0.1,
        retry_after_secs: 1,
        ..Faults::default()
    };
    let h = Harness::start(faults, "").await;
    let mut ids = Vec::new();
    for chunk in 0..4 {
        let events: Vec<Value> = (0..50).map(|i| json!({"n": chunk * 50 + i})).collect();
        let resp = h.post("stameq", None, &Value::Array(events)).await;
        assert_eq!(resp.status(), 202);
        ids.extend(ids_of(&resp.json().await.unwrap()));
    }
    wait_until(Duration::from_secs(60), "all 200 delivered", || {
        h.sink.delivered_count() >= 200
    })
    .await;

    let requests = h.sink.requests();
    let mut by_id: HashMap<&str, Vec<&lienthong_mocks::Received>> = HashMap::new();
    for r in &requests {
        by_id.entry(r.message_id.as_str()).or_default().push(r);
    }
    assert_eq!(by_id.len(), 200);
    let (mut failures, mut honoured) = (0, 0);
    for (id, reqs) in &by_id {
        assert_eq!(
            reqs.iter().filter(|r| r.status == 200).count(),
            1,
            "{id} delivered exactly once"
        );
        assert_eq!(
            reqs.last().unwrap().status,
            200,
            "{id}: nothing after the success"
        );
        for (i, r) in reqs.iter().enumerate() {
            assert_eq!(r.attempt as usize, i + 1, "{id}: X-Attempt counts attempts");
        }
        for pair in reqs.windows(2) {
            if pair[0].status == 429 {
                let gap = pair[1].at.duration_since(pair[0].at);
                // Retry-After: 1 is honoured up to the target's retry.max_delay (100 ms in
                // the test config): never sooner than that.
                assert!(
                    gap >= Duration::from_millis(95),
                    "{id}: retried {gap:?} after a 429 with Retry-After: 1 (max_delay 100 ms)"
                );
                honoured += 1;
            }
        }
        failures += reqs.len() - 1;
    }
    assert!(
        failures > 100,
        "the sink failed about half the attempts ({failures})"
    );
    assert!(honoured > 5, "some 429s were seen ({honoured})");
    // The outbox counts attempts too, and they agree with what the sink saw.
    wait_until(Duration::from_secs(5), "delivered states", || {
        ids.iter().all(|id| {
            matches!(
                h.bus().outbox.delivery_states(*id).unwrap()[0].1,
                DeliveryState::Delivered { .. }
            )
        })
    })
    .await;
    for id in &ids {
        let seen = by_id[id.to_string().as_str()].len() as u32;
        match &h.bus().outbox.delivery_states(*id).unwrap()[0].1 {
            DeliveryState::Delivered { attempts, .. } => assert_eq!(*attempts, seen, "{id}"),
            other => panic!("{id}: {other:?}"),
        }
    }
    h.shutdown().await;
}

/// Send `rounds` events to each of `keys` keys in batches of 100 — round after round, or
/// with `key_major` all of one key's events together — then apply `then` faults to the
/// sink, and check that every key's events arrive complete and in order despite the
/// injected failures.
async fn check_per_key_order(
    h: &Harness,
    keys: usize,
    rounds: usize,
    key_major: bool,
    then: Faults,
) {
    let mut events: Vec<Value> = Vec::with_capacity(keys * rounds);
    if key_major {
        for k in 0..keys {
            for n in 0..rounds {
                events.push(json!({"dossierCode": format!("HS-{k:04}"), "seq": n}));
            }
        }
    } else {
        for n in 0..rounds {
            for k in 0..keys {
                events.push(json!({"dossierCode": format!("HS-{k:04}"), "seq": n}));
            }
        }
    }
    for batch in events.chunks(100) {
        let resp = h
            .post(
                "nafosted",
                Some("dossier_sync"),
                &Value::Array(batch.to_vec()),
            )
            .await;
        assert_eq!(resp.status(), 202);
    }
    h.sink.set_faults(then);
    let total = keys * rounds;
    wait_until(Duration::from_secs(180), "every delivery", || {
        h.sink.delivered_count() >= total
    })
    .await;
    let mut per_key: HashMap<String, Vec<i64>> = HashMap::new();
    for r in h.sink.delivered() {
        per_key
            .entry(r.key.clone().unwrap())
            .or_default()
            .push(r.json()["seq"].as_i64().unwrap());
    }
    assert_eq!(per_key.len(), keys);
    for (key, seqs) in per_key {
        assert_eq!(
            seqs,
            (0..rounds as i64).collect::<Vec<_>>(),
            "key {key} out of order"
        );
    }
    let failed = h.sink.requests().iter().filter(|r| r.status != 200).count();
    assert!(failed > total / 20, "failures were injected ({failed})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_order_holds_for_1000_keys_under_random_failures() {
    let faults = Faults {
        error_ratio: 0.2,
        ..Faults::default()
    };
    let h = Harness::start(faults.clone(), "").await;
    check_per_key_order(&h, 1000, 20, false, faults).await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_order_holds_when_most_of_the_backlog_waits_on_disk() {
    // A window of 64 (16 per key) against 30 keys x 100 events, each key's events sent
    // together while the target is down: the backlog piles up on disk, most of every key
    // is deferred, and once the target is back the queue keeps loading and re-reading
    // deferred keys from disk while retries come and go.
    let down = Faults {
        down: true,
        ..Faults::default()
    };
    let h = Harness::start_with(down, "window = 64", "").await;
    let flaky = Faults {
        error_ratio: 0.2,
        ..Faults::default()
    };
    check_per_key_order(&h, 30, 100, true, flaky).await;
    assert!(
        !h.bus().outbox.queue("a").unwrap().counts().backlog_on_disk,
        "the backlog was drained"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_goes_to_dead_letters_and_blocks_only_its_key_on_its_target() {
    // Target a rejects POISON with 400; target b takes everything.
    let mut h = Harness::start(Faults::default(), "").await;
    h.sink.set_target_faults(
        "a",
        Faults {
            reject_containing: Some("POISON".into()),
            ..Faults::default()
        },
    );
    let events = json!([
        {"dossierCode": "K1", "seq": 1},
        {"dossierCode": "K1", "seq": 2, "poison": "POISON"},
        {"dossierCode": "K1", "seq": 3},
        {"dossierCode": "K2", "seq": 1},
        {"dossierCode": "K2", "seq": 2},
    ]);
    let resp = h.post("nafosted", Some("fanout"), &events).await;
    let ids = ids_of(&resp.json().await.unwrap());
    wait_until(Duration::from_secs(10), "b gets all 5, a gets 3", || {
        let d = h.sink.delivered();
        d.iter().filter(|r| r.target == "b").count() == 5
            && d.iter().filter(|r| r.target == "a").count() == 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let a: Vec<(String, i64)> = h
        .sink
        .delivered()
        .into_iter()
        .filter(|r| r.target == "a")
        .map(|r| (r.key.clone().unwrap(), r.json()["seq"].as_i64().unwrap()))
        .collect();
    assert!(
        a.contains(&("K1".into(), 1))
            && a.contains(&("K2".into(), 1))
            && a.contains(&("K2".into(), 2))
    );
    assert!(
        !a.contains(&("K1".into(), 3)),
        "K1 seq 3 waits behind the dead letter"
    );

    let dead = h.bus().outbox.dead_letters(None, 10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].id, dead[0].target.as_str()), (ids[1], "a"));
    assert!(dead[0].reason.contains("HTTP 400"), "{}", dead[0].reason);
    assert!(
        dead[0]
            .reason
            .starts_with("refused by the platform after passing every check"),
        "the dead letter says the fault is not the bus's checks: {}",
        dead[0].reason
    );
    assert_eq!(dead[0].errors.len(), 1);
    assert!(dead[0].blocks_key);
    assert_eq!(h.bus().outbox.stats().dead, 1);

    // The block survives a restart.
    h.restart().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h.sink
            .delivered()
            .iter()
            .filter(|r| r.target == "a")
            .count(),
        3
    );

    // Replayed while still poisonous: dead again, with both attempts' errors kept.
    h.bus().outbox.replay("a", ids[1]).await.unwrap();
    wait_until(Duration::from_secs(10), "dead again", || {
        h.bus()
            .outbox
            .dead_letters(None, 10)
            .unwrap()
            .first()
            .is_some_and(|d| d.errors.len() == 2)
    })
    .await;
    // Fixed on the target side, replayed: seq 2 then seq 3 go through, in order.
    h.sink.set_target_faults("a", Faults::default());
    h.bus().outbox.replay("a", ids[1]).await.unwrap();
    wait_until(Duration::from_secs(10), "K1 completes on a", || {
        h.sink
            .delivered()
            .iter()
            .filter(|r| r.target == "a")
            .count()
            == 5
    })
    .await;
    let k1: Vec<i64> = h
        .sink
        .delivered()
        .into_iter()
        .filter(|r| r.target == "a" && r.key.as_deref() == Some("K1"))
        .map(|r| r.json()["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(k1, vec![1, 2, 3]);
    assert!(h.bus().outbox.dead_letters(None, 10).unwrap().is_empty());
    assert_eq!(
        h.bus().outbox.replay("a", ids[1]).await,
        Err(lienthong::outbox::OpError::NotFound)
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_skip_later_messages_go_on_and_a_dropped_letter_unblocks() {
    let extra = r#"
[[routes]]
unit = "stameq"
flow = "skippy"
targets = ["a"]
ordering = "per_key"
key = "/k"
on_dead = "skip"
"#;
    let h = Harness::start(
        Faults {
            reject_containing: Some("POISON".into()),
            ..Faults::default()
        },
        extra,
    )
    .await;
    let resp = h
        .post(
            "stameq",
            Some("skippy"),
            &json!([{"k": "A", "s": 1, "p": "POISON"}, {"k": "A", "s": 2}]),
        )
        .await;
    assert_eq!(resp.status(), 202);
    wait_until(Duration::from_secs(10), "seq 2 delivered", || {
        h.sink.delivered_count() == 1
    })
    .await;
    // Outcomes are written by the next group commit: the dead letter shows up right after.
    wait_until(Duration::from_secs(5), "the dead letter", || {
        h.bus().outbox.dead_letters(None, 10).unwrap().len() == 1
    })
    .await;

    // Block policy: dropping the dead letter lets the key go on.
    let resp = h
        .post(
            "nafosted",
            Some("dossier_sync"),
            &json!([{"dossierCode": "B", "s": 1, "p": "POISON"}, {"dossierCode": "B", "s": 2}]),
        )
        .await;
    let ids = ids_of(&resp.json().await.unwrap());
    wait_until(Duration::from_secs(10), "second dead letter", || {
        h.bus().outbox.stats().dead == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.sink.delivered_count(), 1, "B/2 is held back");
    h.bus().outbox.drop_dead("a", ids[0]).await.unwrap();
    wait_until(Duration::from_secs(10), "B/2 after the drop", || {
        h.sink.delivered_count() == 2
    })
    .await;
    assert!(matches!(
        h.bus().outbox.delivery_states(ids[0]).unwrap()[0].1,
        DeliveryState::Dropped { .. }
    ));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_target_down_does_not_slow_another() {
    // Target b answers 503 after 200 ms to everything; target a is healthy.
    let h = Harness::start(Faults::default(), "").await;
    h.sink.set_target_faults(
        "b",
        Faults {
            down: true,
            delay: Duration::from_millis(200),
            ..Faults::default()
        },
    );
    let (bus, client, up) = (h.bus(), &h.client, &h.sink);
    let started = Instant::now();
    for batch in 0..5 {
        let events: Vec<Value> = (0..100)
            .map(|i| json!({"dossierCode": format!("K{batch}-{i}")}))
            .collect();
        let resp = client
            .post(format!(
                "http://{}/api/v1/units/nafosted/events?flow=fanout",
                bus.addr
            ))
            .bearer_auth(NAFOSTED_KEY)
            .json(&events)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
    }
    wait_until(Duration::from_secs(20), "500 deliveries to a", || {
        up.delivered().iter().filter(|r| r.target == "a").count() == 500
    })
    .await;
    let took = started.elapsed();
    wait_until(Duration::from_secs(5), "attempts on b", || {
        up.requests().iter().any(|r| r.target == "b")
    })
    .await;
    let to_b: Vec<_> = up
        .requests()
        .into_iter()
        .filter(|r| r.target == "b")
        .collect();
    assert!(to_b.iter().all(|r| r.status == 503));
    let b = bus.outbox.queue("b").unwrap().counts();
    assert!(
        b.retry_scheduled + b.in_flight + b.ready > 0,
        "b's deliveries are still pending: {b:?}"
    );
    // With b's 200 ms failures on 8 workers, a serial relay would need > 12 s for 500.
    assert!(took < Duration::from_secs(10), "a took {took:?}");
    h.shutdown().await;
}

/// The first attempt sends the body the door rendered, and every retry the same body: an
/// event's mapping runs once however often the platform fails (the status counts the
/// mapping runs at delivery: none).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_reuse_the_rendered_body_instead_of_mapping_again() {
    let bus = support::ShippedBus::start_with(|cfg| {
        for t in cfg.targets.values_mut() {
            t.retry.base_delay = Duration::from_millis(20);
            t.retry.max_delay = Duration::from_millis(50);
        }
    })
    .await;
    bus.set_faults(serde_json::json!([
        {"service": "portal", "operation": "DongBoHoSoMC", "error_rate": 1.0}
    ]))
    .await;
    let id = bus
        .send(
            "nafosted",
            "dossier_sync",
            &support::nafosted_dossier("NAF-RENDER-1", "submitted", "online"),
        )
        .await;
    // Wait for several failed attempts at the portal.
    let attempts_at_portal = || async {
        let (_, m) = bus
            .admin(&format!("/api/v1/messages/{id}"), support::SHIPPED_VIEWER)
            .await;
        m["deliveries"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["target"] == "portal")
            .map(|d| {
                (
                    d["delivery"]["attempts"].as_u64().unwrap_or(0),
                    d["delivery"]["state"].clone(),
                )
            })
            .unwrap_or((0, serde_json::Value::Null))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while attempts_at_portal().await.0 < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "the portal was not retried"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let portal = |status: &serde_json::Value| {
        status["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["target"] == "portal")
            .cloned()
            .unwrap()
    };
    let (_, status) = bus.admin("/api/v1/status", support::SHIPPED_VIEWER).await;
    assert_eq!(
        portal(&status)["renders_since_start"],
        0,
        "the door's body went out: {}",
        portal(&status)
    );
    assert_eq!(portal(&status)["bodies_kept_for_retry"], 1);
    assert_eq!(
        portal(&status)["bodies_from_door"],
        0,
        "taken by the first attempt"
    );
    // The platform is back: delivered with the kept body, which is then let go.
    bus.set_faults(serde_json::json!([])).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while attempts_at_portal().await.1 != "delivered" {
        assert!(std::time::Instant::now() < deadline, "not delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, status) = bus.admin("/api/v1/status", support::SHIPPED_VIEWER).await;
    assert_eq!(
        portal(&status)["renders_since_start"],
        0,
        "{}",
        portal(&status)
    );
    assert_eq!(portal(&status)["bodies_kept_for_retry"], 0);
    bus.bus.shutdown().await.unwrap();
}
