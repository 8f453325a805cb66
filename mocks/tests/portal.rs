//! The mock national portal over real HTTP: login and session expiry, dossier sync with
//! its validations, progress steps, lookups, status regressions, the success-code variants.

use lienthong_mocks::portal::{self, Portal, PortalConfig};
use serde_json::{Value, json};
use std::time::Duration;

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn start(config: PortalConfig) -> (Portal, Client) {
        let portal = Portal::new(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = portal.router();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        let http = lienthong_mocks::http_client().no_proxy().build().unwrap();
        (
            portal,
            Client {
                http,
                base: format!("http://{addr}"),
            },
        )
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("dstcode", portal::DSTCODE)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    async fn login(&self) -> String {
        let r = self
            .post(
                "/portal/login",
                json!({"username": "lienthong", "password": "mock-portal-password"}),
            )
            .await;
        r["session"].as_str().expect("a session").to_string()
    }

    async fn call(&self, session: &str, mut body: Value) -> Value {
        body["session"] = json!(session);
        body["madonvi"] = json!("000.00.01.H22");
        self.post("/portal/api", body).await
    }
}

fn dossier(code: &str, status: i64) -> Value {
    json!({
        "MaHoSo": code, "MaTTHC": "2.002492", "TenTTHC": "Cấp giấy chứng nhận",
        "ChuHoSo": "Nguyễn Văn A", "LoaiDoiTuong": 1, "NgayTiepNhan": "20261128083000",
        "NgayHenTra": "20261205170000", "TrangThaiHoSo": status,
    })
}

#[tokio::test]
async fn login_and_expired_sessions() {
    let (_, c) = Client::start(PortalConfig {
        session_ttl: Duration::from_millis(200),
        ..PortalConfig::default()
    })
    .await;
    let bad = c
        .post(
            "/portal/login",
            json!({"username": "lienthong", "password": "wrong"}),
        )
        .await;
    assert_eq!(bad["error_code"], portal::WRONG_CREDENTIALS);
    let session = c.login().await;
    let r = c
        .call(&session, json!({"service": "TraCuuHoSo", "mahoso": "X"}))
        .await;
    assert_eq!(
        (r["error_code"].clone(), r["result"].clone()),
        (json!(0), json!([])),
        "a valid session reaches the service: {r}"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    let r = c
        .call(&session, json!({"service": "TraCuuHoSo", "MaHoSo": "X"}))
        .await;
    assert_eq!(r["error_code"], portal::SESSION_EXPIRED);
    let r = c
        .call("made-up", json!({"service": "TraCuuHoSo", "MaHoSo": "X"}))
        .await;
    assert_eq!(r["error_code"], portal::SESSION_EXPIRED);
}

#[tokio::test]
async fn dossier_sync_upserts_and_checks_is_updating() {
    let (portal, c) = Client::start(PortalConfig::default()).await;
    let s = c.login().await;
    let create = json!({"service": "DongBoHoSoMC", "isUpdating": "False", "data": [dossier("HS-1", 1), dossier("HS-2", 2)]});
    assert_eq!(c.call(&s, create.clone()).await["error_code"], 0);
    let again = c.call(&s, create).await;
    assert_eq!(again["error_code"], portal::ALREADY_EXISTS, "{again}");
    assert!(again["message"].as_str().unwrap().contains("đã tồn tại"));
    let update =
        json!({"service": "DongBoHoSoMC", "isUpdating": "True", "data": [dossier("HS-1", 4)]});
    assert_eq!(c.call(&s, update).await["error_code"], 0);
    let missing =
        json!({"service": "DongBoHoSoMC", "isUpdating": "True", "data": [dossier("HS-9", 4)]});
    assert_eq!(
        c.call(&s, missing).await["error_code"],
        portal::UPDATE_MISMATCH
    );

    let found = c
        .call(&s, json!({"service": "TraCuuHoSo", "mahoso": "HS-1"}))
        .await;
    assert_eq!(
        (
            found["error_code"].clone(),
            found["result"][0]["TrangThaiHoSo"].clone()
        ),
        (json!(0), json!(4))
    );
    assert_eq!(portal.dossiers()["HS-1"].madonvi, "000.00.01.H22");
    let history: Vec<i64> = portal.dossiers()["HS-1"]
        .history
        .iter()
        .map(|h| h.status)
        .collect();
    assert_eq!(history, vec![1, 4]);
}

#[tokio::test]
async fn invalid_fields_are_named_and_nothing_is_half_stored() {
    let (portal, c) = Client::start(PortalConfig::default()).await;
    let s = c.login().await;
    let mut bad_date = dossier("HS-2", 2);
    bad_date["NgayTiepNhan"] = json!("28/11/2026 08:30");
    let r = c.call(&s, json!({"service": "DongBoHoSoMC", "isUpdating": "False", "data": [dossier("HS-1", 1), bad_date]})).await;
    assert_eq!(r["error_code"], portal::INVALID_FIELD);
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("data[1].NgayTiepNhan"),
        "{r}"
    );
    assert!(
        portal.dossiers().is_empty(),
        "the valid first item was not stored either"
    );

    let r = c.call(&s, json!({"service": "DongBoHoSoMC", "isUpdating": "False", "data": [dossier("HS-1", 11)]})).await;
    assert!(
        r["message"].as_str().unwrap().contains("TrangThaiHoSo"),
        "{r}"
    );
    let mut no_owner = dossier("HS-1", 1);
    no_owner["ChuHoSo"] = json!("");
    let r = c
        .call(
            &s,
            json!({"service": "DongBoHoSoMC", "isUpdating": "False", "data": [no_owner]}),
        )
        .await;
    assert!(
        r["message"].as_str().unwrap().contains("data[0].ChuHoSo"),
        "{r}"
    );
    // LoaiDoiTuong: 1 citizen, 2 enterprise, 3 state agency, 4 other organisation.
    let kind = |code: &str, kind: i64| {
        let mut d = dossier(code, 1);
        d["LoaiDoiTuong"] = json!(kind);
        json!({"service": "DongBoHoSoMC", "isUpdating": "False", "data": [d]})
    };
    let r = c.call(&s, kind("HS-5", 5)).await;
    assert_eq!(r["error_code"], portal::INVALID_FIELD, "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("data[0].LoaiDoiTuong"),
        "{r}"
    );
    for (code, k) in [("HS-3", 3), ("HS-4", 4)] {
        let r = c.call(&s, kind(code, k)).await;
        assert_eq!(r["error_code"], 0, "LoaiDoiTuong {k}: {r}");
    }
    let r = c.call(&s, json!({"service": "Khac"})).await;
    assert_eq!(r["error_code"], portal::UNKNOWN_SERVICE);
}

#[tokio::test]
async fn progress_steps_need_the_dossier_and_regressions_are_flagged() {
    let (portal, c) = Client::start(PortalConfig::default()).await;
    let s = c.login().await;
    let step = |code: &str, status: i64| {
        json!({"service": "CapNhatTienDoHoSoMC", "data": [{
            "MaHoSo": code, "NguoiXuLy": "Trần B", "ChucDanh": "Chuyên viên",
            "ThoiDiemXuLy": "20261128090000", "NoiDungXuLy": "Thẩm định", "TrangThai": status,
        }]})
    };
    assert_eq!(
        c.call(&s, step("HS-1", 4)).await["error_code"],
        portal::NOT_FOUND
    );
    let create =
        json!({"service": "DongBoHoSoMC", "isUpdating": "False", "data": [dossier("HS-1", 2)]});
    assert_eq!(c.call(&s, create).await["error_code"], 0);
    for status in [4, 5, 4, 9] {
        assert_eq!(c.call(&s, step("HS-1", status)).await["error_code"], 0);
    }
    assert!(portal.regressions().is_empty(), "4 → 5 → 4 is normal work");
    assert_eq!(c.call(&s, step("HS-1", 4)).await["error_code"], 0);
    assert_eq!(
        portal.regressions(),
        vec!["HS-1".to_string()],
        "4 after 9 goes backwards"
    );
    let view: Value = c
        .http
        .get(format!("{}/_mock/portal/dossiers", c.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["regressions"], json!(["HS-1"]));
    assert_eq!(
        view["dossiers"]["HS-1"]["steps"].as_array().unwrap().len(),
        5
    );
}

#[tokio::test]
async fn the_success_code_can_be_a_string() {
    for code in [json!("0"), json!("00")] {
        let (_, c) = Client::start(PortalConfig {
            success_code: code.clone(),
            ..PortalConfig::default()
        })
        .await;
        let r = c
            .post(
                "/portal/login",
                json!({"username": "lienthong", "password": "mock-portal-password"}),
            )
            .await;
        assert_eq!(r["error_code"], code);
    }
}

#[tokio::test]
async fn every_call_names_its_unit_and_the_gateway_destination() {
    let (_, c) = Client::start(PortalConfig::default()).await;
    let s = c.login().await;
    let mut no_unit = json!({"service": "TraCuuHoSo", "mahoso": "X", "session": s});
    no_unit["madonvi"] = json!("BKHCN");
    let r = c.post("/portal/api", no_unit).await;
    assert_eq!(r["error_code"], portal::BAD_UNIT, "{r}");
    assert!(r["message"].as_str().unwrap().contains("madonvi"));
    let wrong_destination = c
        .http
        .post(format!("{}/portal/api", c.base))
        .header("dstcode", "000.00.01.H22")
        .json(&json!({"service": "TraCuuHoSo", "mahoso": "X", "session": s, "madonvi": "000.00.17.G22"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(wrong_destination["error_code"], portal::BAD_UNIT);
    assert!(
        wrong_destination["message"]
            .as_str()
            .unwrap()
            .contains("dstcode")
    );
}
