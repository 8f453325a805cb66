//! The mock payment platform over real HTTP: INIT with its signature and field checks,
//! QUERY and GET_BILL, and the signed CONFIRM callback resent until the receiver
//! acknowledges it — in the field orders of current integration code.

use axum::routing::post as route_post;
use axum::{Json, Router};
use lienthong_mocks::payment::{
    CONFIRM_SIGNED, INIT_SIGNED, Payment, PaymentConfig, QUERY_SIGNED, sign,
};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KEY: &str = "test-shared-key";

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `MaXacThuc` of `message` over `fields`.
fn signed(mut message: Value, fields: &[&str], key: &str) -> Value {
    let texts: Vec<String> = fields.iter().map(|f| text(&message[*f])).collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    message["MaXacThuc"] = json!(sign(&texts, key));
    message
}

fn init(reference: &str, amount: u64, key: &str) -> Value {
    signed(
        json!({
            "LoaiBanTin": "INIT", "PhienBan": "1.0.6", "MaDoiTac": "BKHCN", "MaThamChieu": reference,
            "SoTien": amount, "LoaiHinhThanhToan": "PAY", "MaKenhThanhToan": "1", "NgonNgu": "vi",
            "MaTienTe": "VND", "ThongTinGiaoDich": "Nop phi", "ThoiGianGD": "20261128100000",
            "ThongTinBienLai": {"MaDichVu": 2, "MaHoSo": "000.00.01.H22-241128-0001",
                "MaDonVi": "000.00.17.G22", "TenDonVi": "Quỹ Phát triển KH&CN quốc gia",
                "MaDVC": "2.002492.01", "TenDVC": "Cấp giấy", "MaTTHC": "2.002492", "TenTTHC": "Cấp giấy",
                "TKThuHuong": "3511.0.1058286", "MaNHThuHuong": "01201001",
                "TenTKThuHuong": "Quỹ Phát triển KH&CN quốc gia", "NoiDungThanhToan": "Nộp lệ phí",
                "HoTenNguoiNop": "Nguyễn Văn A",
                "DSKhoanNop": [{"NoiDung": "Lệ phí cấp giấy", "SoTien": amount}]},
        }),
        &INIT_SIGNED,
        key,
    )
}

fn query(kind: &str, reference: &str, key: &str) -> Value {
    signed(
        json!({"LoaiBanTin": kind, "PhienBan": "1.0.6", "MaDoiTac": "BKHCN",
               "MaThamChieu": reference, "ThoiGianGD": "20261128101500"}),
        &QUERY_SIGNED,
        key,
    )
}

/// A callback receiver that refuses the first `refuse` callbacks, then acknowledges.
async fn receiver(refuse: usize) -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let log = seen.clone();
    let app = Router::new().route(
        "/callbacks/payment",
        route_post(move |Json(body): Json<Value>| {
            let log = log.clone();
            async move {
                let mut g = log.lock().unwrap();
                g.push(body);
                if g.len() <= refuse {
                    Json(json!({"MaLoi": "99"}))
                } else {
                    Json(json!({"MaLoi": "00", "MoTaLoi": "Thành công"}))
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/callbacks/payment"), seen)
}

async fn start(config: PaymentConfig) -> (Payment, reqwest::Client, String) {
    let payment = Payment::new(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = payment.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (
        payment,
        lienthong_mocks::http_client().no_proxy().build().unwrap(),
        format!("http://{addr}/payment"),
    )
}

async fn post(c: &reqwest::Client, url: &str, body: Value) -> Value {
    c.post(url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn init_checks_signature_fields_and_duplicates() {
    let (_, c, url) = start(PaymentConfig {
        shared_key: KEY.into(),
        callback_url: None,
        ..PaymentConfig::default()
    })
    .await;
    let ok = post(&c, &url, init("REF-0001", 150_000, KEY)).await;
    assert_eq!(ok["MaLoi"], "00", "{ok}");
    assert!(ok["MaGiaoDich"].as_str().unwrap().starts_with("GD"));
    assert!(
        ok["UrlThanhToan"]
            .as_str()
            .unwrap()
            .contains(ok["MaGiaoDich"].as_str().unwrap())
    );
    assert_eq!(
        post(&c, &url, init("REF-0001", 150_000, KEY)).await["MaLoi"],
        "05"
    );
    assert_eq!(
        post(&c, &url, init("REF-0002", 150_000, "forged-key")).await["MaLoi"],
        "07"
    );
    let mut tampered = init("REF-0003", 150_000, KEY);
    tampered["ThongTinGiaoDich"] = json!("Nop phi khac");
    assert_eq!(
        post(&c, &url, tampered).await["MaLoi"],
        "07",
        "an altered signed field breaks the signature"
    );
    let long = post(&c, &url, init("REF-THAT-IS-FAR-TOO-LONG", 1, KEY)).await;
    assert_eq!(long["MaLoi"], "01");
    assert!(long["MoTaLoi"].as_str().unwrap().contains("MaThamChieu"));
    // The receipt information a procedure fee needs: the beneficiary account, the items.
    for (field, why) in [("TKThuHuong", "TKThuHuong"), ("DSKhoanNop", "DSKhoanNop")] {
        let mut lacking = init("REF-0004", 150_000, KEY);
        lacking["ThongTinBienLai"]
            .as_object_mut()
            .unwrap()
            .remove(field);
        let reply = post(&c, &url, lacking).await;
        assert_eq!(reply["MaLoi"], "01", "{reply}");
        assert!(reply["MoTaLoi"].as_str().unwrap().contains(why), "{reply}");
    }
    let mut wrong_total = init("REF-0005", 150_000, KEY);
    wrong_total["ThongTinBienLai"]["DSKhoanNop"][0]["SoTien"] = json!(100);
    let reply = post(&c, &url, wrong_total).await;
    assert!(
        reply["MoTaLoi"].as_str().unwrap().contains("DSKhoanNop"),
        "{reply}"
    );
    // QUERY: pending until settled; GET_BILL: no receipt before it is paid.
    let state = post(&c, &url, query("QUERY", "REF-0001", KEY)).await;
    assert_eq!(
        (state["MaLoi"].as_str(), state["TrangThaiGD"].as_i64()),
        (Some("00"), Some(3)),
        "{state}"
    );
    assert_eq!(
        post(&c, &url, query("GET_BILL", "REF-0001", KEY)).await["MaLoi"],
        "08"
    );
    assert_eq!(
        post(&c, &url, query("QUERY", "NOPE", KEY)).await["MaLoi"],
        "04"
    );
    assert_eq!(
        post(&c, &url, query("QUERY", "REF-0001", "forged-key")).await["MaLoi"],
        "07"
    );
}

#[tokio::test]
async fn confirm_callbacks_are_signed_and_resent_until_acknowledged() {
    let (callback, seen) = receiver(2).await;
    let config = PaymentConfig {
        shared_key: KEY.into(),
        callback_url: Some(callback),
        callback_delay: Duration::from_millis(20),
        retry_every: Duration::from_millis(20),
        ..PaymentConfig::default()
    };
    let (payment, c, url) = start(config).await;
    assert_eq!(
        post(&c, &url, init("REF-0100", 250_000, KEY)).await["MaLoi"],
        "00"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !payment.transactions()[0].acknowledged {
        assert!(std::time::Instant::now() < deadline, "never acknowledged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "two refusals, then acknowledged");
    let cb = &seen[2];
    assert_eq!(cb, &seen[0], "a resend is the same message");
    let code = cb["MaLoi"].as_str().unwrap();
    assert!(["00", "01", "02"].contains(&code));
    let expected = signed(cb.clone(), &CONFIRM_SIGNED, KEY);
    assert_eq!(cb["MaXacThuc"], expected["MaXacThuc"]);
    assert_eq!(cb["LoaiBanTin"], "CONFIRM");
    assert_eq!(cb["SoTien"], "250000");
    // Settled: QUERY says so, and a paid one has its receipt.
    let state = post(&c, &url, query("QUERY", "REF-0100", KEY)).await;
    let bill = post(&c, &url, query("GET_BILL", "REF-0100", KEY)).await;
    if code == "00" {
        assert_eq!(state["TrangThaiGD"], 1);
        assert!(bill["BienLai"]["SoBienLai"].as_str().is_some(), "{bill}");
    } else {
        assert_eq!(state["TrangThaiGD"], 4);
        assert_eq!(bill["MaLoi"], "08");
    }
    assert_eq!(payment.transactions()[0].callbacks_sent, 3);
}

#[tokio::test]
async fn outcomes_follow_the_configured_shares_deterministically() {
    let config = |seed| PaymentConfig {
        shared_key: KEY.into(),
        callback_url: Some("http://127.0.0.1:9/none".into()),
        callback_delay: Duration::from_millis(1),
        retry_every: Duration::from_millis(1),
        max_callbacks: 1,
        seed,
        ..PaymentConfig::default()
    };
    let run = |seed| async move {
        let (payment, c, url) = start(config(seed)).await;
        for i in 0..200 {
            post(&c, &url, init(&format!("REF-{i:04}"), 1000, KEY)).await;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while payment.transactions().iter().any(|t| t.state == "pending") {
            assert!(std::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        payment
            .transactions()
            .into_iter()
            .map(|t| t.state)
            .collect::<Vec<_>>()
    };
    let a = run(1).await;
    assert_eq!(a, run(1).await, "same seed, same outcomes");
    let paid = a.iter().filter(|s| *s == "paid").count();
    assert!((130..=185).contains(&paid), "about 80% paid: {paid}");
    assert!(a.iter().any(|s| s == "failed") && a.iter().any(|s| s == "expired"));
}
