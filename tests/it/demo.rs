//! The mock unit systems' traffic against the shipped mappings and a running bus: every
//! good event maps for every target of its route, every deliberately bad one is refused by
//! its mapping, and `run --demo`'s driver gets a dossier's whole life delivered.

use crate::support;

use lienthong::cli::demo::{DemoSettings, DemoStats, drive};
use lienthong::config;
use lienthong::mappings::MappingSet;
use lienthong_mapping::codec::decode_records;
use lienthong_mocks::Faults;
use lienthong_mocks::units::{Traffic, UNITS};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use support::{get_json, shipped_config_on, wait_until};

#[test]
fn generated_events_map_cleanly_unless_deliberately_bad() {
    let cfg = config::load_file(Path::new("config/lienthong.toml")).unwrap();
    let set = MappingSet::load(&cfg).unwrap();
    let mut traffic = Traffic::new(7, 0.1);
    let (mut good, mut bad) = (0, 0);
    for round in 0..20 {
        let unit = UNITS[round % UNITS.len()];
        for event in traffic.dossier_life(unit) {
            let route = cfg
                .routes
                .iter()
                .find(|r| r.unit == event.unit && r.flow == event.flow)
                .unwrap_or_else(|| panic!("no route for {}/{}", event.unit, event.flow));
            let records = match set.input_for(event.unit, event.flow) {
                Some(opts) => decode_records(&event.body, &opts).unwrap(),
                None => vec![serde_json::from_slice(&event.body).unwrap()],
            };
            assert_eq!(records.len(), 1);
            let mut failures = Vec::new();
            for target in &route.targets {
                let m = set.for_delivery(event.unit, event.flow, target).unwrap();
                if let Err(e) = m.map(&records[0]) {
                    failures.push(e.to_string());
                }
            }
            if event.bad {
                bad += 1;
                assert!(
                    !failures.is_empty(),
                    "a bad {}/{} event mapped",
                    event.unit,
                    event.flow
                );
            } else {
                good += 1;
                assert!(
                    failures.is_empty(),
                    "{}/{} {}: {failures:?}",
                    event.unit,
                    event.flow,
                    event.dossier
                );
            }
        }
    }
    assert!(good > 200 && bad > 5, "{good} good, {bad} bad");
}

/// The bundled mocks on a port of their own, seeded as the demo's lookups expect.
async fn start_mocks(dir: &std::path::Path) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mocks = listener.local_addr().unwrap();
    tokio::spawn(lienthong_mocks::serve(
        listener,
        lienthong_mocks::MockSettings {
            // The demo's lookups ask about people of the same seeded population.
            seed: 11,
            payment_callback_url: None,
            ipo_drop_dir: Some(support::ipo_drop_dir(dir)),
            ..Default::default()
        },
    ));
    mocks
}

#[tokio::test]
async fn the_demo_driver_gets_whole_dossier_lives_through_and_bad_events_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let mocks = start_mocks(dir.path()).await;
    let sink = lienthong_mocks::Sink::new(Faults::default());
    let sink_addr = sink.start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let (mut cfg, keys) = shipped_config_on(dir.path(), mocks, sink_addr);
    // Checked at delivery, so the bad events become dead letters (on the shipped config
    // the door refuses them: `refused_at_door`).
    support::checked_at_delivery(&mut cfg);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bus = lienthong::app::Bus::start(cfg, keys.clone(), listener)
        .await
        .unwrap();
    let stats = Arc::new(DemoStats::default());
    let settings = DemoSettings {
        seed: 11,
        rate: 2000,
        bad_share: 0.03,
        parallel: 4,
        limit: Some(240),
        max_dossiers: None,
        lookup_every: 10,
    };
    drive(bus.addr, keys, settings, Arc::clone(&stats)).await;
    assert_eq!(stats.refused.load(Ordering::Relaxed), 0);
    assert_eq!(stats.refused_at_door.load(Ordering::Relaxed), 0);
    assert_eq!(stats.accepted.load(Ordering::Relaxed), 240);
    // Lookups in every unit's format, answered: the people exist in the seeded register.
    let lookups = stats.lookups.load(Ordering::Relaxed);
    assert_eq!(lookups, 24);
    assert_eq!(stats.lookups_found.load(Ordering::Relaxed), lookups);
    let bad = stats.bad.load(Ordering::Relaxed);
    assert!(bad > 0, "some events were meant to be bad");
    // Settled: nothing ready, in flight or scheduled; what is left waits behind the dead
    // letter of its dossier (the first bad event of a dossier blocks the rest of it).
    let settled = |s: &lienthong::outbox::OutboxStats| {
        s.dead > 0
            && s.targets.values().all(|q| {
                q.ready == 0 && q.in_flight == 0 && q.retry_scheduled == 0 && q.finishing == 0
            })
    };
    wait_until(Duration::from_secs(30), "the traffic to settle", || {
        settled(&bus.outbox.stats())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats_now = bus.outbox.stats();
    assert!(settled(&stats_now), "{stats_now:?}");
    let dead = bus.outbox.dead_letters(None, 100).unwrap();
    // A bad dossier event dies at each of its targets (the portal, the ministry's system).
    let dead_events: std::collections::BTreeSet<_> = dead.iter().map(|d| d.id).collect();
    assert!(
        dead_events.len() as u64 <= bad,
        "only bad events die: {} dead, {bad} bad: {dead:?}",
        dead_events.len()
    );
    assert!(
        dead.iter()
            .all(|d| d.reason.contains("mapping") && d.reason.contains("field `")),
        "{dead:?}"
    );

    // The national platform mocks hold the results: dossiers with no regression, documents,
    // notifications; fee requests reached the payment target.
    let portal = get_json(format!("http://{mocks}/_mock/portal/dossiers")).await;
    assert!(
        portal["dossiers"].as_object().unwrap().len() >= 10,
        "{portal}"
    );
    assert_eq!(portal["regressions"], serde_json::json!([]));
    // The ministry's TTHC system got the same dossiers, in order too.
    let ministry = get_json(format!("http://{mocks}/_mock/bo-tthc/dossiers")).await;
    let codes = |v: &serde_json::Value| {
        v["dossiers"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(codes(&ministry), codes(&portal));
    assert_eq!(ministry["regressions"], serde_json::json!([]));
    // Results went to the data store first; the portal holds the ids it gave.
    assert!(
        portal["dossiers"].as_object().unwrap().values().any(|d| {
            d["fields"]["DanhSachGiayToKetQua"][0]["GiayToId"]
                .as_str()
                .is_some_and(|id| id.starts_with("KDL-"))
        }),
        "a result document synced with its data store id"
    );
    // Fee requests gave the units their payment links: NAFOSTED over HTTP, the IP
    // Office as TCVN3 files its import job read.
    assert!(
        sink.delivered()
            .iter()
            .any(|r| r.target == "nafosted_inbox"),
        "a payment link at NAFOSTED"
    );
    let mut ipo = serde_json::Value::Null;
    for _ in 0..50 {
        ipo = get_json(format!("http://{mocks}/_mock/units/ipo/received")).await;
        if ipo["received"].as_array().is_some_and(|r| !r.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let file = &ipo["received"][0];
    assert!(
        file["channel"]
            .as_str()
            .unwrap()
            .starts_with("file:payment_link-"),
        "{ipo}"
    );
    assert!(
        file["body"]
            .as_str()
            .unwrap()
            .contains("duong_dan_thanh_toan"),
        "{ipo}"
    );
    let docs = get_json(format!("http://{mocks}/_mock/datastore/documents")).await;
    assert!(!docs["documents"].as_array().unwrap().is_empty());
    let sms = get_json(format!("http://{mocks}/_mock/notify/messages")).await;
    let sent = sms["messages"].as_array().unwrap();
    assert!(!sent.is_empty());
    // Citizens heard when a unit asked for documents and when a fee was due (with its
    // link), by SMS or by a Zalo template.
    let about = |template: &str, words: &str| {
        sent.iter().any(|m| {
            m["template_id"] == template || m["text"].as_str().is_some_and(|t| t.contains(words))
        })
    };
    assert!(about("YC_BO_SUNG", "bo sung"), "a supplement notice: {sms}");
    assert!(about("NOP_PHI", "Thanh toan tai"), "a fee notice: {sms}");
    let payments = get_json(format!("http://{mocks}/_mock/payment/transactions")).await;
    assert!(
        !payments["transactions"].as_array().unwrap().is_empty(),
        "signed Init accepted by the payment mock"
    );
    bus.shutdown().await.unwrap();
}
