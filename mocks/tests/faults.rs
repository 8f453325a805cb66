//! Fault injection in front of the mocks, observed from a real HTTP client: each fault
//! type, rules per operation, request records, reset, and seeded determinism.

use lienthong_mocks::faults::{Chaos, FaultRule};
use lienthong_mocks::portal::{Portal, PortalConfig};
use lienthong_mocks::{Faults, Sink};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn start(seed: u64) -> (Chaos, reqwest::Client, String) {
    let chaos = Chaos::new(seed);
    let mocks = Sink::new(Faults::default())
        .router()
        .merge(Portal::new(PortalConfig::default()).router());
    let router = chaos.wrap(mocks);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client = lienthong_mocks::http_client()
        .no_proxy()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    (chaos, client, format!("http://{addr}"))
}

fn rule(service: &str, operation: Option<&str>) -> FaultRule {
    FaultRule {
        service: service.into(),
        operation: operation.map(str::to_string),
        ..FaultRule::default()
    }
}

#[tokio::test]
async fn each_fault_type_per_service_and_operation() {
    let (_chaos, c, base) = start(1).await;
    let set = |rules: Vec<FaultRule>| {
        let c = c.clone();
        let url = format!("{base}/_mock/faults");
        async move { assert_eq!(c.post(url).json(&rules).send().await.unwrap().status(), 200) }
    };
    let portal_call = |service: &str| {
        c.post(format!("{base}/portal/api"))
            .json(&json!({"service": service, "session": "x"}))
            .send()
    };

    set(vec![FaultRule {
        error_rate: 1.0,
        ..rule("portal", Some("DongBoHoSoMC"))
    }])
    .await;
    assert_eq!(portal_call("DongBoHoSoMC").await.unwrap().status(), 503);
    assert_eq!(
        portal_call("TraCuuHoSo").await.unwrap().status(),
        200,
        "another operation is untouched"
    );
    assert_eq!(
        c.post(format!("{base}/sink/a"))
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "another service too"
    );

    set(vec![FaultRule {
        too_many_rate: 1.0,
        retry_after_secs: 3,
        ..rule("portal", None)
    }])
    .await;
    let r = portal_call("TraCuuHoSo").await.unwrap();
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["retry-after"].to_str().unwrap()
        ),
        (429, "3")
    );

    set(vec![FaultRule {
        malformed_rate: 1.0,
        ..rule("portal", None)
    }])
    .await;
    let r = portal_call("TraCuuHoSo").await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.json::<Value>().await.is_err(), "the body does not parse");

    set(vec![FaultRule {
        hang_rate: 1.0,
        ..rule("portal", None)
    }])
    .await;
    let err = portal_call("TraCuuHoSo").await.unwrap_err();
    assert!(err.is_timeout(), "{err}");

    set(vec![FaultRule {
        latency_ms: Some((200, 250)),
        ..rule("sink", None)
    }])
    .await;
    let started = Instant::now();
    assert_eq!(
        c.post(format!("{base}/sink/a"))
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn requests_are_recorded_and_reset_clears_rules_and_records() {
    let (chaos, c, base) = start(1).await;
    c.post(format!("{base}/sink/a"))
        .header("x-message-id", "m-7")
        .json(&json!({"n": 1}))
        .send()
        .await
        .unwrap();
    let listed: Value = c
        .get(format!("{base}/_mock/sink/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first = &listed["requests"][0];
    assert_eq!(
        (
            first["path"].as_str(),
            first["headers"]["x-message-id"].as_str()
        ),
        (Some("/sink/a"), Some("m-7"))
    );
    assert_eq!(first["body"], "{\"n\":1}");
    chaos.set_rules(vec![FaultRule {
        error_rate: 1.0,
        ..rule("sink", None)
    }]);
    assert_eq!(
        c.post(format!("{base}/sink/a"))
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    assert_eq!(chaos.requests("sink")[1].fault.as_deref(), Some("error"));
    c.post(format!("{base}/_mock/reset")).send().await.unwrap();
    assert!(chaos.requests("sink").is_empty());
    assert_eq!(
        c.post(format!("{base}/sink/a"))
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn the_same_seed_replays_the_same_faults() {
    async fn pattern(seed: u64) -> Vec<u16> {
        let (chaos, c, base) = start(seed).await;
        chaos.set_rules(vec![FaultRule {
            error_rate: 0.5,
            ..rule("sink", None)
        }]);
        let mut out = Vec::new();
        for _ in 0..40 {
            out.push(
                c.post(format!("{base}/sink/a"))
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
            );
        }
        out
    }
    let a = pattern(9).await;
    assert_eq!(a, pattern(9).await);
    assert!(a.contains(&503) && a.contains(&200));
    assert_ne!(a, pattern(10).await);
}
