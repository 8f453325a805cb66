//! The portal connector against the portal mock as a real server: session login and
//! renewal, `TraCuuHoSo` deciding `isUpdating`, a dossier's whole life arriving in order
//! with no regression and no duplicate, also with 5xx, 429 and expiring sessions.

use crate::support;

use lienthong::connector::portal::rows::KeptRows;
use lienthong_mocks::faults::FaultRule;
use lienthong_mocks::units::Traffic;
use lienthong_mocks::{Faults, MockSettings};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use support::{Harness, MemNotes, wait_until};

pub(crate) async fn start_mocks(settings: MockSettings) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(lienthong_mocks::serve(listener, settings));
    addr
}

fn portal_routes(mocks: std::net::SocketAddr) -> String {
    portal_routes_with(mocks, "concurrency = 4")
}

fn portal_routes_with(mocks: std::net::SocketAddr, target_extra: &str) -> String {
    let mappings = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mappings");
    format!(
        r#"
[mappings]
dir = "{mappings}"
watch = false
[targets.portal]
kind = "portal"
url = "http://{mocks}/portal"
timeout = "2s"
{target_extra}
retry = {{ max_attempts = 100, max_age = "1h", base_delay = "10ms", max_delay = "100ms" }}
circuit_breaker = {{ failure_threshold = 1000, cooldown = "50ms" }}
portal = {{ username = "lienthong", password_env = "TEST_UNSET_PORTAL_PASSWORD", dev_password = "mock-portal-password", madonvi = "000.00.01.H22" }}
[[routes]]
unit = "nafosted"
flow = "portal_sync"
targets = ["portal"]
ordering = "per_key"
key = "/dossierCode"
on_dead = "block"
mappings = {{ portal = "nafosted/dossier_sync.toml" }}
[[routes]]
unit = "nafosted"
flow = "portal_progress"
targets = ["portal"]
ordering = "per_key"
key = "/dossierCode"
on_dead = "block"
mappings = {{ portal = "nafosted/dossier_progress.toml" }}
"#,
        mappings = mappings.display()
    )
}

/// Post whole NAFOSTED dossier lives (sync and progress events, in order); returns each
/// dossier's expected portal status history.
async fn post_lives(h: &Harness, dossiers: usize) -> Vec<(String, Vec<i64>)> {
    let mut traffic = Traffic::new(99, 0.0);
    let status_of = |word: &str| -> i64 {
        let words = [
            "submitted",
            "accepted",
            "rejected",
            "under_review",
            "needs_supplement",
            "awaiting_payment",
            "withdrawn",
            "suspended",
            "approved",
            "result_delivered",
        ];
        words.iter().position(|w| *w == word).unwrap() as i64 + 1
    };
    let mut expected = Vec::new();
    for _ in 0..dossiers {
        let mut history = Vec::new();
        let mut code = String::new();
        for event in traffic.dossier_life("nafosted") {
            let body: Value = serde_json::from_slice(&event.body).unwrap();
            let flow = match event.flow {
                "dossier_sync" => {
                    history.push(status_of(body["status"].as_str().unwrap()));
                    "portal_sync"
                }
                "dossier_progress" => {
                    history.push(status_of(body["step"]["status"].as_str().unwrap()));
                    "portal_progress"
                }
                _ => continue,
            };
            code = event.dossier.clone();
            let resp = h.post("nafosted", Some(flow), &body).await;
            assert_eq!(resp.status(), 202);
        }
        expected.push((code, history));
    }
    expected
}

pub(crate) async fn portal_view(mocks: std::net::SocketAddr) -> Value {
    support::client()
        .get(format!("http://{mocks}/_mock/portal/dossiers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn check_histories(mocks: std::net::SocketAddr, expected: &[(String, Vec<i64>)]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let view = portal_view(mocks).await;
        let done = expected.iter().all(|(code, history)| {
            view["dossiers"][code]["history"]
                .as_array()
                .map_or(0, Vec::len)
                >= history.len()
        });
        if done {
            for (code, history) in expected {
                let got: Vec<i64> = view["dossiers"][code]["history"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h["status"].as_i64().unwrap())
                    .collect();
                assert_eq!(
                    &got, history,
                    "{code}: the portal's history, in order, nothing twice"
                );
            }
            assert_eq!(view["regressions"], serde_json::json!([]));
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "histories incomplete: {view}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn dossier_lives_reach_the_portal_in_order_with_is_updating_decided() {
    let mocks = start_mocks(MockSettings::default()).await;
    let h = Harness::start(Faults::default(), &portal_routes(mocks)).await;
    let expected = post_lives(&h, 3).await;
    check_histories(mocks, &expected).await;
    // One login, then one TraCuuHoSo per dossier (the answer is remembered).
    let requests: Value = support::client()
        .get(format!("http://{mocks}/_mock/portal/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bodies: Vec<Value> = requests["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(r["body"].as_str().unwrap()).unwrap())
        .collect();
    let logins = bodies.iter().filter(|b| b["username"].is_string()).count();
    let lookups = bodies
        .iter()
        .filter(|b| b["service"] == "TraCuuHoSo")
        .count();
    assert_eq!(logins, 1);
    assert_eq!(lookups, 3);
    assert!(
        bodies
            .iter()
            .filter(|b| b["service"] == "DongBoHoSoMC")
            .all(|b| b["madonvi"] == "000.00.01.H22")
    );
    let headers = &requests["requests"][1]["headers"];
    assert_eq!(headers["dstcode"], lienthong_mocks::portal::DSTCODE);
    // Every call made for a message is a span of its trace (W3C traceparent); the login
    // belongs to no message.
    for (r, body) in requests["requests"].as_array().unwrap().iter().zip(&bodies) {
        let tp = r["headers"]["traceparent"].as_str();
        if body["username"].is_string() {
            assert_eq!(tp, None, "the login carries no trace");
        } else {
            let tp = tp.unwrap_or_else(|| panic!("no traceparent on {body}"));
            assert!(
                lienthong::tracecontext::trace_id_of(tp).is_some(),
                "not a traceparent: {tp}"
            );
        }
    }
    assert_eq!(h.bus().outbox.stats().dead, 0);
    h.shutdown().await;
}

#[tokio::test]
async fn with_5xx_429_and_expiring_sessions_everything_still_arrives_once() {
    let mocks = start_mocks(MockSettings {
        seed: 5,
        portal_session_ttl: Duration::from_millis(150),
        faults: vec![FaultRule {
            service: "portal".into(),
            error_rate: 0.3,
            too_many_rate: 0.1,
            retry_after_secs: 0,
            ..FaultRule::default()
        }],
        ..MockSettings::default()
    })
    .await;
    let h = Harness::start(Faults::default(), &portal_routes(mocks)).await;
    let expected = post_lives(&h, 4).await;
    check_histories(mocks, &expected).await;
    let requests: Value = support::client()
        .get(format!("http://{mocks}/_mock/portal/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let faults: Vec<&str> = requests["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["fault"].as_str())
        .collect();
    assert!(
        faults.contains(&"error") && faults.contains(&"too_many"),
        "faults were injected: {faults:?}"
    );
    let logins = requests["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] == "/portal/login" && r["fault"].is_null())
        .count();
    assert!(
        logins > 1,
        "the expired session was renewed ({logins} logins)"
    );
    wait_until(Duration::from_secs(5), "nothing left pending", || {
        h.bus().outbox.stats().pending == 0
    })
    .await;
    assert_eq!(h.bus().outbox.stats().dead, 0);
    h.shutdown().await;
}

#[tokio::test]
async fn dossiers_share_portal_calls_when_batched_and_keep_their_order() {
    // A slow portal: while one call is out, the next dossiers' events wait and go together.
    let mocks = start_mocks(MockSettings {
        faults: vec![FaultRule {
            service: "portal".into(),
            operation: Some("CapNhatTienDoHoSoMC".into()),
            latency_ms: Some((30, 30)),
            ..FaultRule::default()
        }],
        ..MockSettings::default()
    })
    .await;
    let h = Harness::start(
        Faults::default(),
        &portal_routes_with(mocks, "concurrency = 1\nbatch = 10"),
    )
    .await;
    let expected = post_lives(&h, 6).await;
    check_histories(mocks, &expected).await;
    let requests: Value = support::client()
        .get(format!("http://{mocks}/_mock/portal/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sizes: Vec<usize> = requests["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| serde_json::from_str::<Value>(r["body"].as_str()?).ok())
        .filter_map(|b| b["data"].as_array().map(Vec::len))
        .collect();
    assert!(
        sizes.iter().any(|n| *n > 1),
        "some calls carried several dossiers: {sizes:?}"
    );
    assert!(sizes.iter().all(|n| *n <= 10));
    assert_eq!(h.bus().outbox.stats().dead, 0);
    h.shutdown().await;
}

/// A portal that says nothing of a dossier when asked (`TraCuuHoSo`: empty `result[]`),
/// then refuses it as new because it "đã tồn tại" (code -3), and takes it as an update.
#[tokio::test]
async fn a_dossier_the_portal_says_already_exists_is_sent_again_as_an_update() {
    use axum::{Json, Router, routing::post};
    use lienthong::connector::{Connector, PortalConnector, PortalCredentials, Verdict};
    use serde_json::json;
    use std::sync::{Arc, Mutex};
    let calls: Arc<Mutex<Vec<Value>>> = Arc::default();
    let log = calls.clone();
    let app = Router::new()
        .route(
            "/portal/login",
            post(|| async { Json(json!({"error_code": 0, "session": "s-1"})) }),
        )
        .route(
            "/portal/api",
            post(move |Json(body): Json<Value>| {
                let log = log.clone();
                async move {
                    log.lock().unwrap().push(body.clone());
                    match (body["service"].as_str(), body["isUpdating"].as_str()) {
                        (Some("TraCuuHoSo"), _) => Json(json!({"error_code": 0, "result": []})),
                        (Some("DongBoHoSoMC"), Some("False")) => Json(
                            json!({"error_code": -3, "message": "Hồ sơ HS-EXISTS-1 đã tồn tại"}),
                        ),
                        _ => Json(json!({"error_code": "0", "message": "Thành công"})),
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let connector = PortalConnector::new(
        &format!("http://{addr}/portal"),
        Duration::from_secs(5),
        PortalCredentials {
            username: "u".into(),
            password: "p".into(),
            madonvi: "000.00.01.H22".into(),
            unit_codes: [("varans".to_string(), "000.00.19.G22".to_string())].into(),
            dstcode: "VN:GOV:000.00.00.G22:vpcpdvcprovider".into(),
        },
        None,
        KeptRows::new(Arc::new(MemNotes::default()), "portal"),
    )
    .unwrap();
    let envelope = lienthong::envelope::Envelope {
        id: lienthong::envelope::MessageId(uuid::Uuid::now_v7()),
        unit: "varans".into(),
        flow: "dossier_sync".into(),
        key: Some("HS-EXISTS-1".into()),
        payload: serde_json::value::RawValue::from_string("{}".into()).unwrap(),
        received_ms: 0,
        trace_id: "t".into(),
        attempts: 1,
        idempotency_key: None,
        targets: vec!["portal".into()],
    };
    let body = lienthong::mappings::Outbound {
        content_type: "application/json",
        body: serde_json::to_vec(&json!({"service": "DongBoHoSoMC", "isUpdating": "False",
            "data": [{"MaHoSo": "HS-EXISTS-1", "MaTTHC": "1.012345", "ChuHoSo": "A",
                "NgayTiepNhan": "20240305083000", "TrangThaiHoSo": 4}]}))
        .unwrap()
        .into(),
    };
    assert_eq!(
        connector.deliver(&envelope, &body).await,
        Verdict::Delivered
    );
    let calls = calls.lock().unwrap().clone();
    let syncs: Vec<&Value> = calls
        .iter()
        .filter(|c| c["service"] == "DongBoHoSoMC")
        .collect();
    assert_eq!(syncs.len(), 2, "{calls:?}");
    assert_eq!(syncs[0]["isUpdating"], "False");
    assert_eq!(syncs[1]["isUpdating"], "True", "sent again as an update");
    assert!(
        calls.iter().all(|c| c["madonvi"] == "000.00.19.G22"),
        "{calls:?}"
    );
    assert_eq!(
        calls[0]["mahoso"], "HS-EXISTS-1",
        "TraCuuHoSo asks by mahoso"
    );
}

/// Issue 38, bug 4: the portal's "dossier not found" (error 4) is an answer about one
/// dossier from a portal that works. It used to count toward the portal's circuit
/// breaker: after the portal lost its state, a few such answers opened the circuit and
/// every dossier stalled for the cooldown while the portal was answering.
#[tokio::test]
async fn dossier_not_found_answers_do_not_open_the_portals_circuit() {
    let mocks = start_mocks(MockSettings::default()).await;
    // Three failures would open the circuit for an hour: long enough to fail the test.
    let routes = portal_routes(mocks).replace(
        "failure_threshold = 1000, cooldown = \"50ms\"",
        "failure_threshold = 3, cooldown = \"1h\"",
    );
    let h = Harness::start(Faults::default(), &routes).await;
    let step: Value = serde_json::from_str(
        &std::fs::read_to_string(
            "mappings/nafosted/tests/dossier_progress/01-review-step.input.json",
        )
        .unwrap(),
    )
    .unwrap();
    // Progress of five dossiers the portal does not know: each answered error 4, again
    // and again.
    for i in 0..5 {
        let mut step = step.clone();
        step["dossierCode"] = Value::from(format!("NAFOSTED-2024-9000{i}"));
        let resp = h.post("nafosted", Some("portal_progress"), &step).await;
        assert_eq!(resp.status(), 202);
    }
    let not_found = || async {
        let seen = support::get_json(format!("http://{mocks}/_mock/portal/requests")).await;
        seen["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["body"]
                    .as_str()
                    .unwrap_or("")
                    .contains("CapNhatTienDoHoSoMC")
            })
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while not_found().await < 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "the progress was not tried"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A whole dossier life still goes through at once: the circuit stayed closed.
    let expected = post_lives(&h, 1).await;
    check_histories(mocks, &expected).await;
    h.shutdown().await;
}
