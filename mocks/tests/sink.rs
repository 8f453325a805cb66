//! The recording sink over real HTTP: records, injects faults per target, lists.

use lienthong_mocks::{Faults, Sink};
use std::time::Duration;

async fn post(addr: std::net::SocketAddr, target: &str, body: &str) -> reqwest::Response {
    lienthong_mocks::http_client()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("http://{addr}/sink/{target}"))
        .header("x-message-id", "m-1")
        .header("x-attempt", "2")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn records_requests_and_applies_faults_per_target() {
    let sink = Sink::new(Faults::default());
    let addr = sink.start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    assert_eq!(post(addr, "a", r#"{"n":1}"#).await.status(), 200);
    sink.set_target_faults(
        "b",
        Faults {
            too_many_ratio: 1.0,
            retry_after_secs: 7,
            ..Faults::default()
        },
    );
    let resp = post(addr, "b", r#"{"n":2}"#).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    sink.set_faults(Faults {
        reject_containing: Some("bad".into()),
        ..Faults::default()
    });
    assert_eq!(post(addr, "a", r#"{"bad":true}"#).await.status(), 400);
    assert_eq!(post(addr, "a", "not json").await.status(), 400);

    let requests = sink.requests();
    assert_eq!(
        requests.len(),
        3,
        "the unparsable body is refused before it is recorded"
    );
    assert_eq!(
        (requests[0].message_id.as_str(), requests[0].attempt),
        ("m-1", 2)
    );
    assert_eq!(requests[0].json()["n"], 1);
    assert_eq!(sink.delivered_count(), 1);

    let client = lienthong_mocks::http_client().no_proxy().build().unwrap();
    let listed: serde_json::Value = client
        .get(format!("http://{addr}/sink/a"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (listed["requests"].as_u64(), listed["delivered"].as_u64()),
        (Some(2), Some(1))
    );
}

#[tokio::test]
async fn down_and_slow_targets() {
    let sink = Sink::new(Faults {
        down: true,
        delay: Duration::from_millis(100),
        ..Faults::default()
    });
    let addr = sink.start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let started = std::time::Instant::now();
    assert_eq!(post(addr, "a", "{}").await.status(), 503);
    assert!(started.elapsed() >= Duration::from_millis(100));
}
