//! The payment flow against the payment mock as a real server: a unit's fee request goes
//! out as a signed `INIT` and its reply (the payment link) goes back to the unit; the
//! platform's signed `CONFIRM` comes back to `/callbacks/payment` and reaches the unit in
//! its own format, then the receipt (`GET_BILL`); a lost callback is made up for by
//! `QUERY`; forged callbacks get 401, repeated ones are stored once.

use crate::support;

use lienthong_mocks::MockSettings;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;
use support::{NAFOSTED_KEY, wait_until};

struct Setup {
    bus: lienthong::app::Bus,
    mocks: std::net::SocketAddr,
    sink: lienthong_mocks::Sink,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    setup_with(Duration::from_secs(3600)).await
}

/// With open payments asked about (`QUERY`) this long after their `INIT`.
async fn setup_with(query_after: Duration) -> Setup {
    // The bus's address first: the payment mock sends its callbacks there.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bus_addr = listener.local_addr().unwrap();
    let mocks_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mocks = mocks_listener.local_addr().unwrap();
    tokio::spawn(lienthong_mocks::serve(
        mocks_listener,
        MockSettings {
            payment_callback_url: Some(format!("http://{bus_addr}/callbacks/payment")),
            payment_callback_delay: Duration::from_millis(50),
            ..MockSettings::default()
        },
    ));
    let sink = lienthong_mocks::Sink::new(lienthong_mocks::Faults::default());
    let sink_addr = sink.start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mappings = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mappings");
    let extra = format!(
        r#"
[inbox]
poll_interval = "30ms"
settle = "100ms"
[mappings]
dir = "{mappings}"
watch = false
[targets.payment]
kind = "payment"
url = "http://{mocks}/payment"
retry = {{ max_attempts = 20, max_age = "1h", base_delay = "10ms", max_delay = "100ms" }}
payment = {{ partner_code = "BKHCN", shared_key_env = "TEST_UNSET_PAYMENT_KEY", dev_shared_key = "mock-payment-shared-key", reconcile_every = "100ms", query_after = "{query_after}ms" }}
[targets.inbox]
kind = "http"
url = "http://{sink_addr}/sink/nafosted"
[[routes]]
unit = "nafosted"
flow = "fee_request"
targets = ["payment"]
ordering = "none"
on_dead = "skip"
mappings = {{ payment = "nafosted/fee_request.toml" }}
replies = {{ payment = "payment_link" }}
[[routes]]
unit = "nafosted"
flow = "payment_link"
targets = ["inbox"]
ordering = "none"
on_dead = "skip"
mappings = {{ inbox = "nafosted/payment_link.toml" }}
[[routes]]
unit = "nafosted"
flow = "payment_receipt"
targets = ["inbox"]
ordering = "none"
on_dead = "skip"
mappings = {{ inbox = "nafosted/payment_receipt.toml" }}
[[routes]]
unit = "stameq"
flow = "fee_request"
targets = ["payment"]
ordering = "none"
on_dead = "skip"
mappings = {{ payment = "nafosted/fee_request.toml" }}
[[routes]]
unit = "nafosted"
flow = "payment_confirm"
targets = ["inbox"]
ordering = "none"
on_dead = "skip"
mappings = {{ inbox = "nafosted/payment_confirm.toml" }}
"#,
        mappings = mappings.display(),
        query_after = query_after.as_millis(),
    );
    let (cfg, keys) = support::parse_config(&support::config_text(dir.path(), sink_addr, &extra));
    let bus = lienthong::app::Bus::start(cfg, keys, listener)
        .await
        .unwrap();
    Setup {
        bus,
        mocks,
        sink,
        _dir: dir,
    }
}

#[tokio::test]
async fn a_payment_reference_belongs_to_the_unit_that_first_used_it() {
    use lienthong::outbox::Notes;
    let s = setup().await;
    let c = support::client();
    let post = |unit: &'static str, key: &'static str| {
        c.post(format!(
            "http://{}/api/v1/units/{unit}/events?flow=fee_request",
            s.bus.addr
        ))
        .bearer_auth(key)
        .json(&fee_request("NAF-PAY-0100"))
        .send()
    };
    assert_eq!(post("nafosted", NAFOSTED_KEY).await.unwrap().status(), 202);
    let outbox = s.bus.outbox.clone();
    let owner = move || {
        outbox
            .get_note("payment-ref/NAF-PAY-0100")
            .unwrap()
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    };
    wait_until(Duration::from_secs(10), "the reference noted", || {
        owner().as_deref() == Some("nafosted")
    })
    .await;
    // Another unit's fee request with the same reference: a dead letter saying whose it
    // is; the reference (and the confirmation to come) stays NAFOSTED's.
    assert_eq!(
        post("stameq", support::STAMEQ_KEY).await.unwrap().status(),
        202
    );
    let outbox = s.bus.outbox.clone();
    wait_until(Duration::from_secs(10), "the dead letter", || {
        outbox.stats().dead == 1
    })
    .await;
    let dead = s.bus.outbox.dead_letters(Some("payment"), 10).unwrap();
    assert_eq!(dead[0].unit, "stameq");
    assert!(
        dead[0].reason.contains("belongs to unit `nafosted`"),
        "{}",
        dead[0].reason
    );
    assert_eq!(owner().as_deref(), Some("nafosted"));
    s.bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_unit_cannot_send_a_payment_confirmation_by_any_entry() {
    let s = setup().await;
    let c = support::client();
    let forged = json!({"LoaiBanTin": "CONFIRM", "MaDoiTac": "BKHCN", "MaThamChieu": "NAF-SELF-0001",
        "MaGiaoDich": "GD-1", "MaLoi": "00", "SoTien": "500000"});
    let resp = c
        .post(format!(
            "http://{}/api/v1/units/nafosted/events?flow=payment_confirm",
            s.bus.addr
        ))
        .bearer_auth(NAFOSTED_KEY)
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "internal_flow", "{body}");
    assert_eq!(body["error"]["field"], "flow", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/callbacks/payment"),
        "{body}"
    );
    // Nor the flows made of the platform's answers: the payment link, the receipt.
    for flow in ["payment_link", "payment_receipt"] {
        let resp = c
            .post(format!(
                "http://{}/api/v1/units/nafosted/events?flow={flow}",
                s.bus.addr
            ))
            .bearer_auth(NAFOSTED_KEY)
            .json(&forged)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{flow}");
    }
    // The drop folder refuses it too, saying why in the file's report.
    let folder = s._dir.path().join("inbox/nafosted/payment_confirm");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("paid.json"), forged.to_string()).unwrap();
    let report = folder.join("rejected/paid.json.report.txt");
    wait_until(Duration::from_secs(15), "the file rejected", || {
        report.exists()
    })
    .await;
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(text.contains("payment platform"), "{text}");
    // Nothing was stored, nothing reached the unit as paid.
    assert_eq!(s.bus.outbox.stats().accepted_since_start, 0);
    assert!(s.sink.delivered().is_empty());
    s.bus.shutdown().await.unwrap();
}

/// POST `body` to the bus's payment callback endpoint, as the platform does.
async fn callback(s: &Setup, body: &Value) -> reqwest::Response {
    support::client()
        .post(format!("http://{}/callbacks/payment", s.bus.addr))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// A `CONFIRM` as the platform signs it (field order of current integration code).
fn signed_confirm(reference: &str, transaction: &str, code: &str, amount: &str) -> Value {
    let mut confirm = json!({"LoaiBanTin": "CONFIRM", "MaLoi": code, "MaDoiTac": "BKHCN",
        "MaThamChieu": reference, "SoTien": amount, "MaTienTe": "VND",
        "MaGiaoDich": transaction, "MaNganHang": "970436", "ThoiGianGD": "20240308091500",
        "ThongTinGiaoDich": "Nop phi"});
    let fields: Vec<String> = lienthong_mocks::payment::CONFIRM_SIGNED
        .iter()
        .map(|f| confirm[*f].as_str().unwrap_or_default().to_string())
        .collect();
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    confirm["MaXacThuc"] = json!(lienthong_mocks::payment::sign(
        &fields,
        "mock-payment-shared-key"
    ));
    confirm
}

/// What reached the unit's inbox with `event` = `kind`.
fn at_unit(s: &Setup, kind: &str) -> Vec<Value> {
    s.sink
        .delivered()
        .into_iter()
        .filter(|r| r.target == "nafosted")
        .map(|r| r.json())
        .filter(|v| v["event"] == kind)
        .collect()
}

async fn transactions(s: &Setup) -> Vec<Value> {
    let v: Value = support::client()
        .get(format!("http://{}/_mock/payment/transactions", s.mocks))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["transactions"].as_array().unwrap().clone()
}

fn fee_request(reference: &str) -> Value {
    json!({"dossierCode": "NAFOSTED-2024-00043", "procedureCode": "1.008433", "paymentRef": reference,
        "amount": 500000, "requestedAt": "2024-03-08T09:12:45+07:00",
        "payer": {"fullName": "Nguyễn Thị Minh Anh", "idNumber": "001203004567"},
        "fees": [{"code": "LP-NAF-01", "name": "Lệ phí thẩm định hồ sơ", "amount": 500000, "kind": "charge"}]})
}

#[tokio::test]
async fn a_fee_request_is_paid_and_the_outcome_reaches_the_unit_once() {
    let s = setup().await;
    let c = support::client();
    let resp = c
        .post(format!(
            "http://{}/api/v1/units/nafosted/events?flow=fee_request",
            s.bus.addr
        ))
        .bearer_auth(NAFOSTED_KEY)
        .json(&fee_request("NAF-PAY-0001"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    wait_until(
        Duration::from_secs(15),
        "the confirmation at the unit",
        || !at_unit(&s, "payment.confirmed").is_empty(),
    )
    .await;
    let got = at_unit(&s, "payment.confirmed").remove(0);
    assert_eq!(got["event"], "payment.confirmed");
    assert_eq!(got["paymentRef"], "NAF-PAY-0001");
    assert!(
        ["paid", "failed", "expired"].contains(&got["status"].as_str().unwrap()),
        "{got}"
    );
    // The mock saw a correctly signed Init and an acknowledged callback.
    let tx: Value = c
        .get(format!("http://{}/_mock/payment/transactions", s.mocks))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tx = &tx["transactions"][0];
    assert_eq!(tx["ma_tham_chieu"], "NAF-PAY-0001");
    // The INIT was a span of the fee request's trace (W3C traceparent).
    let tp = tx["traceparent"]
        .as_str()
        .expect("a traceparent on the INIT");
    assert!(lienthong::tracecontext::trace_id_of(tp).is_some(), "{tp}");

    // The platform sends the same callback again: answered 00, not relayed twice.
    let transaction = tx["ma_giao_dich"].as_str().unwrap();
    let signed = signed_confirm("NAF-PAY-0001", transaction, "00", "500000");
    let again: Value = callback(&s, &signed).await.json().await.unwrap();
    assert_eq!(again["MaLoi"], "00");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(at_unit(&s, "payment.confirmed").len(), 1);

    // A forged (or altered) callback: 401, nothing relayed.
    let mut forged = signed.clone();
    forged["MaLoi"] = json!("01");
    let resp = callback(&s, &forged).await;
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["MaLoi"], "99");
    // An unknown reference: the platform is told, nothing stored.
    let unknown = signed_confirm("NOT-OURS", transaction, "00", "500000");
    let resp = callback(&s, &unknown).await;
    assert_eq!(resp.status(), 404);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(at_unit(&s, "payment.confirmed").len(), 1);
    assert_eq!(s.bus.outbox.stats().dead, 0);
    s.bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn forged_callbacks_store_nothing_are_counted_and_a_source_that_keeps_forging_is_held_off() {
    let s = setup().await;
    let c = support::client();
    let disk_before = s.bus.outbox.stats().disk_bytes;
    // Each with a 60 KiB reference (the test bus takes 64 KiB bodies): before, each was
    // noted and flushed.
    let forged = json!({"LoaiBanTin": "CONFIRM", "MaDoiTac": "BKHCN",
        "MaThamChieu": "R".repeat(60 * 1024), "MaGiaoDich": "GD", "MaLoi": "00",
        "SoTien": "1", "MaXacThuc": "00"});
    for _ in 0..20 {
        let resp = callback(&s, &forged).await;
        assert_eq!(resp.status(), 401);
    }
    assert!(
        s.bus
            .outbox
            .notes_with_prefix("payment-forged/", 10)
            .unwrap()
            .is_empty(),
        "a forged callback left a note"
    );
    assert!(
        s.bus.outbox.stats().disk_bytes < disk_before + 1024 * 1024,
        "forged callbacks grew the outbox"
    );
    // The 21st from the same address is held off before its body is read.
    let resp = callback(&s, &forged).await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    let metrics = c
        .get(format!("http://{}/metrics", s.bus.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("lienthong_payment_callbacks_forged_total 20"),
        "{metrics}"
    );
    s.bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_reference_too_long_for_the_platform_is_refused_at_the_door_naming_it() {
    let s = setup().await;
    let c = support::client();
    let resp = c
        .post(format!(
            "http://{}/api/v1/units/nafosted/events?flow=fee_request",
            s.bus.addr
        ))
        .bearer_auth(NAFOSTED_KEY)
        .json(&fee_request("NAFOSTED-2024-00043-PAYMENT-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_event", "{body}");
    // The published schema carries the platform's limit back to the unit's field.
    let problem = &body["error"]["problems"][0];
    assert_eq!(problem["field"], "/paymentRef", "{body}");
    assert!(
        problem["problem"].as_str().unwrap().contains("at most 20"),
        "{body}"
    );
    // Nothing stored, so nothing to die later.
    assert_eq!(s.bus.outbox.stats().accepted_since_start, 0);
    s.bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_unit_gets_the_payment_link_then_the_outcome_then_the_receipt() {
    let s = setup().await;
    let resp = support::client()
        .post(format!(
            "http://{}/api/v1/units/nafosted/events?flow=fee_request",
            s.bus.addr
        ))
        .bearer_auth(NAFOSTED_KEY)
        .json(&fee_request("NAF-LINK-0001"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    wait_until(
        Duration::from_secs(15),
        "the payment link at the unit",
        || !at_unit(&s, "payment.link").is_empty(),
    )
    .await;
    let link = &at_unit(&s, "payment.link")[0];
    let tx = transactions(&s).await;
    assert_eq!(link["paymentRef"], "NAF-LINK-0001");
    assert_eq!(link["dossierCode"], "NAFOSTED-2024-00043");
    assert_eq!(link["transactionId"], tx[0]["ma_giao_dich"]);
    assert_eq!(
        link["paymentUrl"],
        format!(
            "https://thanhtoan.mock/pay/{}",
            tx[0]["ma_giao_dich"].as_str().unwrap()
        )
    );
    wait_until(Duration::from_secs(15), "the outcome at the unit", || {
        !at_unit(&s, "payment.confirmed").is_empty()
    })
    .await;
    let outcome = &at_unit(&s, "payment.confirmed")[0];
    if outcome["status"] == "paid" {
        wait_until(Duration::from_secs(15), "the receipt at the unit", || {
            !at_unit(&s, "payment.receipt").is_empty()
        })
        .await;
        let receipt = &at_unit(&s, "payment.receipt")[0];
        assert_eq!(receipt["paymentRef"], "NAF-LINK-0001");
        assert_eq!(receipt["amount"], 500000);
        assert!(
            receipt["receipt"]["number"]
                .as_str()
                .unwrap()
                .starts_with("BL")
        );
    }
    // Settled: no open payment left to reconcile, and the link went once.
    let outbox = s.bus.outbox.clone();
    wait_until(Duration::from_secs(5), "the open payment settled", || {
        outbox
            .notes_with_prefix("payment-open/", 10)
            .unwrap()
            .is_empty()
    })
    .await;
    assert_eq!(at_unit(&s, "payment.link").len(), 1);
    s.bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_lost_callback_is_made_up_for_by_query_and_a_late_one_changes_nothing() {
    let s = setup_with(Duration::from_millis(300)).await;
    let c = support::client();
    let lose = c
        .post(format!("http://{}/_mock/payment/callbacks", s.mocks))
        .json(&json!({"lose": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(lose.status(), 200);
    // References the mock settles as paid and as failed (deterministic from the seed).
    let mut refs = Vec::new();
    for i in 0..6 {
        let reference = format!("NAF-LOST-{i:04}");
        let resp = c
            .post(format!(
                "http://{}/api/v1/units/nafosted/events?flow=fee_request",
                s.bus.addr
            ))
            .bearer_auth(NAFOSTED_KEY)
            .json(&fee_request(&reference))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
        refs.push(reference);
    }
    wait_until(
        Duration::from_secs(20),
        "every outcome at the unit, found by QUERY",
        || at_unit(&s, "payment.confirmed").len() == refs.len(),
    )
    .await;
    let tx = transactions(&s).await;
    assert!(
        tx.iter().all(|t| t["callbacks_sent"] == 0),
        "the mock lost every callback: {tx:?}"
    );
    assert!(tx.iter().all(|t| t["queries"].as_u64().unwrap() >= 1));
    for t in &tx {
        let reference = t["ma_tham_chieu"].as_str().unwrap();
        let outcome = at_unit(&s, "payment.confirmed")
            .into_iter()
            .find(|v| v["paymentRef"] == reference)
            .unwrap();
        let expected = match t["state"].as_str().unwrap() {
            "paid" => "paid",
            _ => "failed",
        };
        assert_eq!(outcome["status"], expected, "{reference}: {outcome}");
    }
    // Paid ones get their receipt (GET_BILL); the others none.
    let paid = tx.iter().filter(|t| t["state"] == "paid").count();
    assert!(paid > 0, "the seed pays some of them: {tx:?}");
    wait_until(Duration::from_secs(15), "the receipts", || {
        at_unit(&s, "payment.receipt").len() == paid
    })
    .await;
    // The callback comes after all: taken (00) and not relayed a second time.
    let first = &tx[0];
    let late = signed_confirm(
        first["ma_tham_chieu"].as_str().unwrap(),
        first["ma_giao_dich"].as_str().unwrap(),
        "00",
        "500000",
    );
    let answer: Value = callback(&s, &late).await.json().await.unwrap();
    assert_eq!(answer["MaLoi"], "00");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(at_unit(&s, "payment.confirmed").len(), refs.len());
    assert_eq!(at_unit(&s, "payment.receipt").len(), paid);
    s.bus.shutdown().await.unwrap();
}
