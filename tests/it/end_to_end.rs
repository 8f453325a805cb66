//! Every flow end to end against the bundled mocks as real servers, with the shipped
//! configuration, routes and mappings, under faults: 30 % 5xx, 10 % timeouts, 429s and a portal
//! session that keeps expiring. Each unit's dossiers end with their full status history at
//! the portal, in order and without regression; fees are paid and the outcome relayed to
//! the unit; results are in the data store once each; citizens are notified.

use crate::support;

use support::get_json;

use lienthong::cli::demo::{DemoSettings, DemoStats, drive};
use lienthong::config;
use lienthong::mappings::MappingSet;
use lienthong_mapping::codec::decode_records;
use lienthong_mocks::MockSettings;
use lienthong_mocks::faults::FaultRule;
use lienthong_mocks::units::{Traffic, UNITS};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn rule(service: &str, f: impl FnOnce(&mut FaultRule)) -> FaultRule {
    let mut r = FaultRule {
        service: service.into(),
        ..FaultRule::default()
    };
    f(&mut r);
    r
}

#[tokio::test]
async fn all_flows_arrive_once_and_in_order_through_faults() {
    let bus_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bus_addr = bus_listener.local_addr().unwrap();
    let mocks_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mocks = mocks_listener.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The IP Office takes files: its import folder, read by the mock IP Office.
    let ipo_drop = dir.path().join("drop").join("ipo");
    tokio::spawn(lienthong_mocks::serve(
        mocks_listener,
        MockSettings {
            seed: 3,
            ipo_drop_dir: Some(ipo_drop.clone()),
            portal_session_ttl: Duration::from_millis(300),
            payment_callback_url: Some(format!("http://{bus_addr}/callbacks/payment")),
            payment_callback_delay: Duration::from_millis(20),
            faults: vec![
                rule("portal", |r| {
                    r.error_rate = 0.3;
                    r.too_many_rate = 0.05;
                    r.hang_rate = 0.10;
                }),
                rule("datastore", |r| {
                    r.error_rate = 0.3;
                    r.hang_rate = 0.10;
                }),
                rule("notify", |r| r.error_rate = 0.3),
                rule("payment", |r| r.error_rate = 0.3),
            ],
            ..MockSettings::default()
        },
    ));

    let fast =
        r#"{ max_attempts = 1000, max_age = "1h", base_delay = "10ms", max_delay = "100ms" }"#;
    let mut vars: Vec<(String, String)> = vec![
        (
            "LIENTHONG_OUTBOX__DATA_DIR".into(),
            dir.path().display().to_string(),
        ),
        ("LIENTHONG_MOCKS__ENABLED".into(), "false".into()),
        ("LIENTHONG_INBOX__ENABLED".into(), "false".into()),
        ("LIENTHONG_MAPPINGS__WATCH".into(), "false".into()),
        (
            "LIENTHONG_TARGETS__PORTAL__URL".into(),
            format!("http://{mocks}/portal"),
        ),
        (
            "LIENTHONG_TARGETS__MINISTRY__URL".into(),
            format!("http://{mocks}/bo-tthc"),
        ),
        (
            "LIENTHONG_TARGETS__DATASTORE__URL".into(),
            format!("http://{mocks}/datastore/documents"),
        ),
        (
            "LIENTHONG_TARGETS__NOTIFY__URL".into(),
            format!("http://{mocks}/notify/messages"),
        ),
        (
            "LIENTHONG_TARGETS__PAYMENT__URL".into(),
            format!("http://{mocks}/payment"),
        ),
        (
            "LIENTHONG_TARGETS__NAFOSTED_INBOX__URL".into(),
            format!("http://{mocks}/units/nafosted/payments"),
        ),
        (
            "LIENTHONG_TARGETS__IPO_INBOX__URL".into(),
            ipo_drop.display().to_string(),
        ),
        (
            "LIENTHONG_TARGETS__STAMEQ_INBOX__URL".into(),
            format!("http://{mocks}/units/stameq/payments"),
        ),
        (
            "LIENTHONG_TARGETS__VARANS_INBOX__URL".into(),
            format!("http://{mocks}/units/varans/payments"),
        ),
    ];
    for t in [
        "portal",
        "ministry",
        "datastore",
        "notify",
        "payment",
        "nafosted_inbox",
        "ipo_inbox",
        "stameq_inbox",
        "varans_inbox",
    ] {
        let up = t.to_uppercase();
        vars.push((format!("LIENTHONG_TARGETS__{up}__TIMEOUT"), "300ms".into()));
        vars.push((format!("LIENTHONG_TARGETS__{up}__RETRY"), fast.into()));
        vars.push((
            format!("LIENTHONG_TARGETS__{up}__RATE_LIMIT"),
            "{ per_second = 10000 }".into(),
        ));
        vars.push((
            format!("LIENTHONG_TARGETS__{up}__CIRCUIT_BREAKER"),
            r#"{ failure_threshold = 100000, cooldown = "10ms" }"#.into(),
        ));
    }
    let text = std::fs::read_to_string("config/lienthong.toml").unwrap();
    let cfg = config::load_str(&text, Path::new("config/lienthong.toml"), vars).unwrap();
    let keys = config::validate(&cfg, |_| None).unwrap();

    // What the portal must end up with, per dossier: the statuses the shipped mappings make
    // of the same generated events, in order.
    let set = MappingSet::load(&cfg).unwrap();
    let mut expected: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let (mut results, mut fees) = (0usize, BTreeMap::<&str, usize>::new());
    // Requests for documents: each one an SMS or Zalo message to the applicant.
    let mut supplements = 0usize;
    let mut traffic = Traffic::new(21, 0.0);
    let mut total = 0u64;
    for i in 0..8 {
        for event in traffic.dossier_life(UNITS[i % 4]) {
            total += 1;
            match event.flow {
                "result" => results += 1,
                "fee_request" => *fees.entry(event.unit).or_default() += 1,
                _ => {}
            }
            if !matches!(event.flow, "dossier_sync" | "dossier_progress") {
                continue;
            }
            let record = match set.input_for(event.unit, event.flow) {
                Some(o) => decode_records(&event.body, &o).unwrap().remove(0),
                None => serde_json::from_slice(&event.body).unwrap(),
            };
            let out = set
                .for_delivery(event.unit, event.flow, "portal")
                .unwrap()
                .map(&record)
                .unwrap();
            let item = &out["data"][0];
            let status = item["TrangThaiHoSo"]
                .as_i64()
                .or(item["TrangThai"].as_i64())
                .unwrap();
            if event.flow == "dossier_progress" && status == 5 {
                supplements += 1;
            }
            expected
                .entry(item["MaHoSo"].as_str().unwrap().to_string())
                .or_default()
                .push(status);
        }
    }

    let bus = lienthong::app::Bus::start(cfg, keys.clone(), bus_listener)
        .await
        .unwrap();
    let stats = Arc::new(DemoStats::default());
    let settings = DemoSettings {
        seed: 21,
        rate: 5000,
        bad_share: 0.0,
        parallel: 4,
        limit: Some(total),
        max_dossiers: Some(8),
        lookup_every: 0,
    };
    drive(bus.addr, keys, settings, Arc::clone(&stats)).await;
    assert_eq!(
        stats.accepted.load(std::sync::atomic::Ordering::Relaxed),
        total
    );

    // Everything delivered, callbacks relayed.
    let nafosted_fees = fees.get("nafosted").copied().unwrap_or(0);
    let ipo_fees = fees.get("ipo").copied().unwrap_or(0);
    let all_fees: usize = fees.values().sum();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let mut relayed = 0;
        for unit in ["nafosted", "ipo", "stameq", "varans"] {
            let got = get_json(format!("http://{mocks}/_mock/units/{unit}/received")).await;
            relayed += got["received"].as_array().unwrap().len();
        }
        if bus.outbox.stats().pending == 0 && relayed >= all_fees {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not everything arrived: {:?}, relayed {relayed}",
            bus.outbox.stats()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        bus.outbox.stats().dead,
        0,
        "{:?}",
        bus.outbox.dead_letters(None, 5)
    );

    let portal = get_json(format!("http://{mocks}/_mock/portal/dossiers")).await;
    assert_eq!(portal["regressions"], serde_json::json!([]));
    assert_eq!(
        portal["dossiers"].as_object().unwrap().len(),
        expected.len(),
        "no duplicate dossier"
    );
    for (code, statuses) in &expected {
        let got: Vec<i64> = portal["dossiers"][code]["history"]
            .as_array()
            .unwrap_or_else(|| panic!("{code} missing at the portal"))
            .iter()
            .map(|h| h["status"].as_i64().unwrap())
            .collect();
        assert_eq!(&got, statuses, "{code}");
    }
    // The ministry's TTHC system saw each dossier's statuses in the same order.
    let ministry = get_json(format!("http://{mocks}/_mock/bo-tthc/dossiers")).await;
    assert_eq!(ministry["regressions"], serde_json::json!([]));
    for (code, statuses) in &expected {
        let got: Vec<i64> = ministry["dossiers"][code]["history"]
            .as_array()
            .unwrap_or_else(|| panic!("{code} missing at the ministry"))
            .iter()
            .map(|h| h["status"].as_i64().unwrap())
            .collect();
        assert_eq!(&got, statuses, "{code} at the ministry");
    }
    let docs = get_json(format!("http://{mocks}/_mock/datastore/documents")).await;
    assert_eq!(
        docs["documents"].as_array().unwrap().len(),
        results,
        "one file per result, none twice"
    );
    // One message per result, per request for documents and per fee due (with its link).
    let sms = get_json(format!("http://{mocks}/_mock/notify/messages")).await;
    assert!(supplements > 0, "the seed asks for documents at least once");
    assert_eq!(
        sms["messages"].as_array().unwrap().len(),
        results + supplements + all_fees,
        "{sms}"
    );
    let tx = get_json(format!("http://{mocks}/_mock/payment/transactions")).await;
    let tx = tx["transactions"].as_array().unwrap();
    assert_eq!(tx.len(), all_fees);
    assert!(
        tx.iter().all(|t| t["acknowledged"] == true),
        "every callback acknowledged"
    );
    // Each fee's link (the INIT reply) and outcome reached NAFOSTED once.
    let naf = get_json(format!("http://{mocks}/_mock/units/nafosted/received")).await;
    let bodies: Vec<&str> = naf["received"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    let count = |what: &str| bodies.iter().filter(|b| b.contains(what)).count();
    assert_eq!(
        count("payment.confirmed"),
        nafosted_fees,
        "each outcome relayed once"
    );
    assert_eq!(
        count("payment.link"),
        nafosted_fees,
        "each link relayed once"
    );
    // The IP Office's as files in its folder, read by its import job.
    let ipo = get_json(format!("http://{mocks}/_mock/units/ipo/received")).await;
    let files = ipo["received"].as_array().unwrap();
    let confirms: Vec<&serde_json::Value> = files
        .iter()
        .filter(|m| {
            m["channel"]
                .as_str()
                .unwrap()
                .starts_with("file:payment_confirm-")
        })
        .collect();
    assert_eq!(confirms.len(), ipo_fees, "{ipo}");
    assert!(confirms.iter().all(|m| {
        m["body"]
            .as_str()
            .unwrap()
            .starts_with("ma_thong_bao,ma_giao_dich,ket_qua,so_tien")
    }));
    // The faults were real: errors, hangs and expired sessions happened on the way.
    let seen = get_json(format!("http://{mocks}/_mock/portal/requests")).await;
    let seen = seen["requests"].as_array().unwrap();
    let faults: Vec<&str> = seen.iter().filter_map(|r| r["fault"].as_str()).collect();
    assert!(
        faults.contains(&"error") && faults.contains(&"hang"),
        "{faults:?}"
    );
    let logins = seen
        .iter()
        .filter(|r| r["path"] == "/portal/login" && r["fault"].is_null())
        .count();
    assert!(
        logins > 1,
        "sessions expired and were renewed ({logins} logins)"
    );
    bus.shutdown().await.unwrap();
}

/// The bundled mocks started by the bus stop with it: its shutdown stops every task it
/// started (the mocks used to keep serving, holding their port, after the bus stopped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundled_mocks_stop_with_the_bus() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let s = support::ShippedBus::start_with(move |cfg| {
        cfg.mocks.enabled = true;
        cfg.mocks.listen = port;
    })
    .await;
    let mocks = s.bus.mocks_addr.expect("the mocks listen");
    assert!(
        tokio::net::TcpStream::connect(mocks).await.is_ok(),
        "the mocks answer while the bus runs"
    );
    s.bus.shutdown().await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(mocks).await.is_err(),
        "the mocks stopped with the bus"
    );
}

/// Issue 38, bug 2: the bundled payment mock confirms to the bus wherever the bus
/// listens (it used to send every `CONFIRM` to 127.0.0.1:8080, so on any other port no
/// payment was ever confirmed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundled_payment_mock_confirms_to_the_bus_on_its_own_port() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let s = support::ShippedBus::start_with(move |cfg| {
        cfg.mocks.enabled = true;
        cfg.mocks.listen = port;
        cfg.mocks.payment_callback_delay = Duration::from_millis(50);
        cfg.mocks.payment_paid = 1.0;
        cfg.mocks.payment_failed = 0.0;
        cfg.targets.get_mut("payment").unwrap().url = format!("http://{port}/payment");
    })
    .await;
    assert_ne!(s.bus.addr.port(), 8080);
    let fee =
        std::fs::read("mappings/nafosted/tests/fee_request/01-review-fee.input.json").unwrap();
    let resp = support::client()
        .post(format!(
            "http://{}/api/v1/units/nafosted/events?flow=fee_request",
            s.bus.addr
        ))
        .bearer_auth(&s.keys["nafosted"])
        .header("content-type", "application/json")
        .body(fee)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let url = format!("http://{port}/_mock/payment/transactions");
    let mut last = serde_json::Value::Null;
    for _ in 0..300 {
        last = get_json(url.clone()).await;
        if last["transactions"][0]["acknowledged"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        last["transactions"][0]["acknowledged"], true,
        "the bus never acknowledged the mock's CONFIRM: {last}"
    );
    assert_eq!(last["transactions"][0]["state"], "paid", "{last}");
    s.bus.shutdown().await.unwrap();
}
