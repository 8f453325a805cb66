//! Ingress over real HTTP on loopback: authentication, every bad-input case, idempotency,
//! backpressure, a full disk, and the all-or-nothing batch.

use crate::support;

use lienthong::app::Bus;
use lienthong::outbox::{MemStore, Store};
use lienthong_mocks::{Faults, Sink};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use support::*;

async fn error_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("errors are JSON");
    (status, body["error"].clone())
}

#[tokio::test]
async fn accepted_events_are_answered_202_with_ids_and_delivered() {
    let h = Harness::start(Faults::default(), "").await;
    let resp = h
        .post(
            "nafosted",
            Some("dossier_sync"),
            &json!([{"dossierCode": "K1", "n": 1}, {"dossierCode": "K1", "n": 2}]),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let body: Value = resp.json().await.unwrap();
    let accepted = body["accepted"].as_array().unwrap();
    assert_eq!(accepted.len(), 2);
    assert_eq!(accepted[0]["duplicate"], false);
    let ids: Vec<String> = accepted
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    wait_until(Duration::from_secs(10), "delivery", || {
        h.sink.delivered_count() == 2
    })
    .await;
    let got: Vec<String> = h
        .sink
        .delivered()
        .into_iter()
        .map(|r| r.message_id)
        .collect();
    assert_eq!(got, ids, "delivered in order with X-Message-Id");
    h.shutdown().await;
}

#[tokio::test]
async fn authentication_and_unit_errors() {
    let h = Harness::start(Faults::default(), "").await;
    let url = h.url("/api/v1/units/nafosted/events");
    let body = json!({"dossierCode": "K"});

    let (s, e) = error_of(h.client.post(&url).json(&body).send().await.unwrap()).await;
    assert_eq!((s, e["code"].as_str()), (401, Some("unauthorized")));

    let (s, e) = error_of(
        h.client
            .post(&url)
            .bearer_auth("wrong-key-wrong-key")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, e["field"].as_str()), (401, Some("authorization")));

    // A valid key of stameq cannot post as nafosted.
    let (s, e) = error_of(
        h.client
            .post(&url)
            .bearer_auth(STAMEQ_KEY)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, e["code"].as_str()), (403, Some("forbidden")));

    let (s, e) = error_of(
        h.client
            .post(h.url("/api/v1/units/nobody/events"))
            .bearer_auth(NAFOSTED_KEY)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, e["field"].as_str()), (404, Some("unit")));
    assert_eq!(h.bus().outbox.stats().pending, 0, "nothing stored");
    h.shutdown().await;
}

#[tokio::test]
async fn every_bad_input_gets_a_clear_error_and_stores_nothing() {
    let h = Harness::start(Faults::default(), "").await;
    let url = h.url("/api/v1/units/nafosted/events?flow=dossier_sync");
    let post_raw = |body: Vec<u8>, ct: &'static str| {
        let req = h
            .client
            .post(&url)
            .bearer_auth(NAFOSTED_KEY)
            .header("content-type", ct)
            .body(body);
        async move { error_of(req.send().await.unwrap()).await }
    };

    let (s, e) = post_raw(
        b"{\"dossierCode\": \"K\",\n \"x\": }".to_vec(),
        "application/json",
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(e["code"], "malformed_json");
    assert_eq!(
        (e["line"].as_u64(), e["column"].as_u64()),
        (Some(2), Some(7)),
        "{e}"
    );

    let (s, e) = post_raw(b"{}".to_vec(), "text/plain").await;
    assert_eq!(
        (s, e["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );

    let big = format!(
        "{{\"dossierCode\":\"K\",\"pad\":\"{}\"}}",
        "x".repeat(70_000)
    );
    let (s, e) = post_raw(big.into_bytes(), "application/json").await;
    assert_eq!((s, e["code"].as_str()), (413, Some("body_too_large")));

    let many: Vec<Value> = (0..101)
        .map(|i| json!({"dossierCode": format!("K{i}")}))
        .collect();
    let (s, e) = post_raw(serde_json::to_vec(&many).unwrap(), "application/json").await;
    assert_eq!((s, e["code"].as_str()), (413, Some("batch_too_large")));

    // One bad event in a batch: the whole batch is refused, naming the element and field.
    let batch = json!([{"dossierCode": "K1"}, {"status": "no key"}, {"dossierCode": "K3"}]);
    let (s, e) = post_raw(serde_json::to_vec(&batch).unwrap(), "application/json").await;
    assert_eq!(
        (s, e["code"].as_str(), e["field"].as_str()),
        (400, Some("missing_key"), Some("[1]/dossierCode"))
    );

    let (s, e) = post_raw(b"[1, 2]".to_vec(), "application/json").await;
    assert_eq!(
        (s, e["code"].as_str(), e["field"].as_str()),
        (400, Some("not_an_event"), Some("[0]"))
    );

    let (s, e) = post_raw(b"[]".to_vec(), "application/json").await;
    assert_eq!((s, e["code"].as_str()), (400, Some("empty_batch")));

    let (s, e) = post_raw(vec![b'{', 0xff, b'}'], "application/json").await;
    assert_eq!((s, e["code"].as_str()), (400, Some("invalid_utf8")));

    let (s, e) = error_of(
        h.client
            .post(h.url("/api/v1/units/nafosted/events?flow=nope"))
            .bearer_auth(NAFOSTED_KEY)
            .json(&json!({"dossierCode": "K"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, e["field"].as_str()), (400, Some("flow")));

    // nafosted routes two flows: naming none is an error that lists them.
    let (s, e) = error_of(h.post("nafosted", None, &json!({"dossierCode": "K"})).await).await;
    assert_eq!(s, 400);
    assert!(
        e["message"].as_str().unwrap().contains("dossier_sync"),
        "{e}"
    );

    assert_eq!(h.bus().outbox.stats().pending, 0, "nothing half-stored");
    // The process is still serving.
    assert_eq!(
        h.post(
            "nafosted",
            Some("dossier_sync"),
            &json!({"dossierCode": "K"})
        )
        .await
        .status(),
        202
    );
    h.shutdown().await;
}

#[tokio::test]
async fn idempotency_key_makes_a_resend_a_no_op_and_survives_restart() {
    let mut h = Harness::start(Faults::default(), "").await;
    let send = |h: &Harness, key: &'static str| {
        h.client
            .post(h.url("/api/v1/units/nafosted/events?flow=dossier_sync"))
            .bearer_auth(NAFOSTED_KEY)
            .header("idempotency-key", key)
            .json(&json!([{"dossierCode": "K1"}, {"dossierCode": "K2"}]))
            .send()
    };
    let first: Value = send(&h, "batch-0001").await.unwrap().json().await.unwrap();
    h.restart().await;
    let second: Value = send(&h, "batch-0001").await.unwrap().json().await.unwrap();
    let ids = |v: &Value| {
        v["accepted"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&first),
        ids(&second),
        "the resend returns the original ids"
    );
    assert!(
        second["accepted"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["duplicate"] == true)
    );
    // The key is per unit: stameq may use the same key for its own messages.
    let other = h
        .client
        .post(h.url("/api/v1/units/stameq/events"))
        .bearer_auth(STAMEQ_KEY)
        .header("idempotency-key", "batch-0001")
        .json(&json!({"x": 1}))
        .send()
        .await
        .unwrap();
    let other: Value = other.json().await.unwrap();
    assert_eq!(other["accepted"][0]["duplicate"], false);
    // And per flow: the same key on another flow of the unit is a request of its own,
    // stored (not answered with the batch's ids and silently dropped).
    let fanout = h
        .client
        .post(h.url("/api/v1/units/nafosted/events?flow=fanout"))
        .bearer_auth(NAFOSTED_KEY)
        .header("idempotency-key", "batch-0001")
        .json(&json!({"dossierCode": "K3"}))
        .send()
        .await
        .unwrap();
    let fanout: Value = fanout.json().await.unwrap();
    assert_eq!(fanout["accepted"][0]["duplicate"], false, "{fanout}");
    assert!(!ids(&first).contains(&fanout["accepted"][0]["id"]));
    // Deliveries: the batch's two, STAMEQ's one, the fan-out's two (targets a and b).
    wait_until(Duration::from_secs(10), "5 deliveries", || {
        h.sink.delivered_count() >= 5
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.sink.delivered_count(), 5, "no second copy of the batch");
    h.shutdown().await;
}

#[tokio::test]
async fn backpressure_answers_503_with_retry_after_over_the_cap() {
    // A target that is down keeps everything pending; the cap is 5 deliveries.
    let sink = Sink::new(Faults {
        down: true,
        ..Faults::default()
    });
    let sink_addr = sink.start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text =
        config_text(dir.path(), sink_addr, "").replace("[outbox]\n", "[outbox]\nmax_pending = 5\n");
    let (cfg, keys) = parse_config(&text);
    let bus = Bus::start(
        cfg,
        keys,
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap();
    let client = client();
    let url = format!(
        "http://{}/api/v1/units/nafosted/events?flow=dossier_sync",
        bus.addr
    );
    let post = |body: Value| {
        client
            .post(&url)
            .bearer_auth(NAFOSTED_KEY)
            .json(&body)
            .send()
    };
    assert_eq!(
        post(json!([{"dossierCode": "A"}, {"dossierCode": "B"}, {"dossierCode": "C"}]))
            .await
            .unwrap()
            .status(),
        202
    );
    // 3 pending + 3 more > 5: refused as a whole.
    let resp = post(json!([{"dossierCode": "D"}, {"dossierCode": "E"}, {"dossierCode": "F"}]))
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "5");
    assert_eq!(
        bus.outbox.stats().pending,
        3,
        "the refused batch stored nothing"
    );
    assert_eq!(
        post(json!([{"dossierCode": "D"}, {"dossierCode": "E"}]))
            .await
            .unwrap()
            .status(),
        202
    );
    let resp = post(json!({"dossierCode": "G"})).await.unwrap();
    assert_eq!(resp.status(), 503);
    let ready = client
        .get(format!("http://{}/readyz", bus.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503, "readiness reflects the cap");
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_full_disk_answers_503_and_leaves_nothing_half_written() {
    let sink = Sink::new(Faults::default());
    let sink_addr = sink.start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cfg, keys) = parse_config(&config_text(dir.path(), sink_addr, ""));
    let store = Arc::new(MemStore::default());
    let bus = Bus::start_with_store(
        cfg,
        keys,
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        store.clone(),
    )
    .await
    .unwrap();
    let client = client();
    let url = format!(
        "http://{}/api/v1/units/nafosted/events?flow=fanout",
        bus.addr
    );
    store.set_disk_full(true);
    let resp = client
        .post(&url)
        .bearer_auth(NAFOSTED_KEY)
        .json(&json!([{"dossierCode": "A"}, {"dossierCode": "B"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    store.set_disk_full(false);
    // Let any later flush happen: what the failed batch wrote must not come back.
    bus.outbox.sync().await.unwrap();
    assert_eq!(store.durable_count(b"m"), 0, "no message record");
    assert_eq!(store.durable_count(b"q"), 0, "no delivery record");
    assert_eq!(bus.outbox.stats().pending, 0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.requests().len(), 0, "nothing was delivered");
    // The bus keeps serving once space is back.
    let resp = client
        .post(&url)
        .bearer_auth(NAFOSTED_KEY)
        .json(&json!({"dossierCode": "A"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert!(store.size_on_disk() > 0);
    bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn graceful_shutdown_lets_in_flight_deliveries_finish_and_keeps_the_rest() {
    // Each delivery takes 300 ms: at shutdown some are in flight, most still pending.
    let mut h = Harness::start(
        Faults {
            delay: Duration::from_millis(300),
            ..Faults::default()
        },
        "",
    )
    .await;
    let events: Vec<Value> = (0..40).map(|i| json!({"x": i})).collect();
    assert_eq!(
        h.post("stameq", None, &Value::Array(events)).await.status(),
        202
    );
    wait_until(Duration::from_secs(5), "first attempts", || {
        !h.sink.requests().is_empty()
    })
    .await;
    h.bus.take().unwrap().shutdown().await.unwrap();
    let answered = h.sink.requests().len();
    assert!(
        answered < 40,
        "shutdown stopped claiming new work ({answered})"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        h.sink.requests().len(),
        answered,
        "no attempt was left running after shutdown returned"
    );
    h.sink.set_faults(Faults::default());
    h.restart().await;
    wait_until(Duration::from_secs(10), "all 40 after restart", || {
        let mut ids: Vec<String> = h
            .sink
            .delivered()
            .into_iter()
            .map(|r| r.message_id)
            .collect();
        ids.sort();
        ids.dedup();
        ids.len() == 40
    })
    .await;
    h.shutdown().await;
}

#[tokio::test]
async fn health_and_readiness() {
    let h = Harness::start(Faults::default(), "").await;
    let r = h.client.get(h.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r: Value = h
        .client
        .get(h.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["ready"], true);
    h.shutdown().await;
}

#[tokio::test]
async fn a_units_trace_goes_on_to_the_target_as_a_span_per_attempt() {
    // The first attempt fails: each attempt is a new span of the same trace.
    let h = Harness::start(
        Faults {
            error_ratio: 0.0,
            ..Faults::default()
        },
        "",
    )
    .await;
    h.sink.set_target_faults(
        "a",
        Faults {
            error_ratio: 1.0,
            ..Faults::default()
        },
    );
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let resp = h
        .client
        .post(h.url("/api/v1/units/nafosted/events?flow=dossier_sync"))
        .bearer_auth(NAFOSTED_KEY)
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&json!({"dossierCode": "K-TRACE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    wait_until(Duration::from_secs(10), "a failed attempt", || {
        !h.sink.requests().is_empty()
    })
    .await;
    h.sink.set_target_faults("a", Faults::default());
    wait_until(Duration::from_secs(15), "delivery", || {
        h.sink.delivered_count() >= 1
    })
    .await;
    let spans: Vec<String> = h
        .sink
        .requests()
        .iter()
        .filter(|r| r.target == "a")
        .map(|r| {
            r.traceparent
                .clone()
                .expect("a traceparent on every attempt")
        })
        .collect();
    assert!(spans.len() >= 2, "{spans:?}");
    for tp in &spans {
        assert!(tp.starts_with(&format!("00-{trace}-")), "{tp}");
        assert_ne!(
            tp,
            &format!("00-{trace}-00f067aa0ba902b7-01"),
            "a span of its own"
        );
    }
    assert_ne!(spans[0], spans[1], "each attempt its own span");
}
