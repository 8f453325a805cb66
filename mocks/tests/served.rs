//! All the mocks as `lienthong mocks` serves them: connection resets and business errors
//! per service, `POST /_mock/reset` clearing every service's state, the unit receivers,
//! and the settings (portal success code) taking effect.

use lienthong_mocks::faults::FaultRule;
use lienthong_mocks::{MockSettings, serve};
use serde_json::{Value, json};
use std::time::Duration;

async fn start(settings: MockSettings) -> (reqwest::Client, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, settings));
    let client = lienthong_mocks::http_client()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    (client, format!("http://{addr}"))
}

fn always(service: &str, f: impl FnOnce(&mut FaultRule)) -> FaultRule {
    let mut r = FaultRule {
        service: service.into(),
        ..FaultRule::default()
    };
    f(&mut r);
    r
}

#[tokio::test]
async fn a_connection_reset_is_an_error_without_any_answer() {
    let (c, base) = start(MockSettings {
        faults: vec![always("sink", |r| r.reset_rate = 1.0)],
        ..MockSettings::default()
    })
    .await;
    let err = c
        .post(format!("{base}/sink/portal"))
        .json(&json!({"a": 1}))
        .send()
        .await
        .expect_err("no answer at all");
    assert!(!err.is_timeout(), "{err:?}");
    // The mocks keep serving other requests.
    let ok = c.get(format!("{base}/_mock/faults")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let recorded: Value = c
        .get(format!("{base}/_mock/sink/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(recorded["requests"][0]["fault"], "reset");
}

#[tokio::test]
async fn business_errors_look_like_each_service_reports_them() {
    let (c, base) = start(MockSettings::default()).await;
    let rules = json!([
        {"service": "portal", "business_error_rate": 1.0, "business_code": 3},
        {"service": "payment", "business_error_rate": 1.0},
        {"service": "business", "business_error_rate": 1.0},
        {"service": "population", "business_error_rate": 1.0},
        {"service": "datastore", "business_error_rate": 1.0, "business_code": "QUOTA"}
    ]);
    let r = c
        .post(format!("{base}/_mock/faults"))
        .json(&rules)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let portal: Value = c
        .post(format!("{base}/portal/api"))
        .json(&json!({"service": "TraCuuHoSo"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(portal["error_code"], 3);
    let payment: Value = c
        .post(format!("{base}/payment"))
        .json(&json!({"LoaiBanTin": "Init"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(payment["MaLoi"], "99");
    let business: Value = c
        .get(format!(
            "{base}/business/TraCuuThongTinDoanhNghiep?MaSoDoanhNghiep=0100308695"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(business["Status"], "ERROR");
    assert_eq!(business["ThrowException"], true);
    let population = c
        .post(format!("{base}/population"))
        .body("<x/>")
        .send()
        .await
        .unwrap();
    assert_eq!(population.status(), 500);
    assert!(population.text().await.unwrap().contains("<soap:Fault>"));
    let datastore = c
        .post(format!("{base}/datastore/documents"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(datastore.status(), 422);
    let body: Value = datastore.json().await.unwrap();
    assert_eq!(body["error"]["code"], "QUOTA");
}

#[tokio::test]
async fn reset_clears_every_service_and_settings_take_effect() {
    let (c, base) = start(MockSettings {
        portal_success_code: json!("00"),
        payment_callback_url: None,
        ..MockSettings::default()
    })
    .await;
    // A portal dossier, a stored document, a notification, a unit reply.
    let login: Value = c
        .post(format!("{base}/portal/login"))
        .json(&json!({"username": "lienthong", "password": "mock-portal-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(login["error_code"], "00", "the configured success code");
    let session = login["session"].as_str().unwrap();
    let dossier = json!({"service": "DongBoHoSoMC", "session": session, "madonvi": "000.00.01.H22", "isUpdating": "False",
        "data": [{"MaHoSo": "HS-RESET-1", "MaTTHC": "1.000412", "ChuHoSo": "A", "NgayTiepNhan": "20240305083000", "TrangThaiHoSo": 1}]});
    let r: Value = c
        .post(format!("{base}/portal/api"))
        .header("dstcode", lienthong_mocks::portal::DSTCODE)
        .json(&dossier)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["error_code"], "00", "{r}");
    let doc = json!({"owner": "001040144502", "fileName": "a.pdf", "content": "JVBERi0xLjQK"});
    assert_eq!(
        c.post(format!("{base}/datastore/documents"))
            .json(&doc)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let sms = json!({"channel": "sms", "phone": "0912345678", "text": "xin chào"});
    assert_eq!(
        c.post(format!("{base}/notify/messages"))
            .json(&sms)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let reply = c
        .post(format!("{base}/units/nafosted/payments"))
        .header("content-type", "application/json")
        .body(r#"{"paymentRef":"X"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);

    let count = |path: &'static str, field: &'static str| {
        let c = c.clone();
        let url = format!("{base}{path}");
        async move {
            let v: Value = c.get(url).send().await.unwrap().json().await.unwrap();
            // Lists are arrays; the portal's dossiers are an object keyed by MaHoSo.
            v[field]
                .as_array()
                .map(Vec::len)
                .or_else(|| v[field].as_object().map(|o| o.len()))
                .unwrap_or(0)
        }
    };
    assert_eq!(count("/_mock/portal/dossiers", "dossiers").await, 1);
    assert_eq!(count("/_mock/datastore/documents", "documents").await, 1);
    assert_eq!(count("/_mock/notify/messages", "messages").await, 1);
    let received: Value = c
        .get(format!("{base}/_mock/units/nafosted/received"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(received["received"][0]["channel"], "payments");
    assert_eq!(received["received"][0]["body"], r#"{"paymentRef":"X"}"#);

    let r: Value = c
        .post(format!("{base}/_mock/reset"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["reset"], true);
    assert_eq!(count("/_mock/portal/dossiers", "dossiers").await, 0);
    assert_eq!(count("/_mock/datastore/documents", "documents").await, 0);
    assert_eq!(count("/_mock/notify/messages", "messages").await, 0);
    let received: Value = c
        .get(format!("{base}/_mock/units/nafosted/received"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(received["received"].as_array().unwrap().len(), 0);
}

/// Issue 38, bug 6: a typo in a fault rule (`"portl"`, `error_rate: 2`) is refused with
/// every problem named, and the rules in force stay as they were.
#[tokio::test]
async fn fault_rules_with_typos_are_refused_and_the_old_rules_stay() {
    let (c, base) = start(MockSettings::default()).await;
    let good = json!([{"service": "portal", "error_rate": 0.5}]);
    let r = c
        .post(format!("{base}/_mock/faults"))
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let bad = json!([
        {"service": "portl", "error_rate": 0.1},
        {"service": "payment", "error_rate": 2}
    ]);
    let r = c
        .post(format!("{base}/_mock/faults"))
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    let problems = body["error"]["problems"].as_array().unwrap();
    let fields: Vec<&str> = problems
        .iter()
        .filter_map(|p| p["field"].as_str())
        .collect();
    assert!(fields.contains(&"[0].service"), "{body}");
    assert!(fields.contains(&"[1].error_rate"), "{body}");
    assert!(body.to_string().contains("unknown mock `portl`"), "{body}");
    let now: Value = c
        .get(format!("{base}/_mock/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(now["rules"][0]["service"], "portal", "{now}");
    assert_eq!(now["rules"].as_array().unwrap().len(), 1, "{now}");
}
