//! The procedure catalogue's part in the KPIs, on the shipped config and mappings with the
//! bundled mock platforms as real servers: a dossier whose `MaTTHC` is not in its unit's
//! catalogue is counted apart (the default) or, with `[procedures] unknown = "reject"`,
//! becomes a dead letter naming the field; the others are delivered either way. The
//! totals survive a SIGKILL of the bus process.

use crate::support;

use lienthong::procedures::UnknownProcedure;
use std::time::Duration;
use support::{SHIPPED_VIEWER, ShippedBus, nafosted_dossier, wait_until};

fn unit<'a>(kpis: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    kpis["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == name)
        .unwrap()
}

#[tokio::test]
async fn an_unknown_procedure_is_counted_by_default_and_refused_when_asked() {
    for mode in [UnknownProcedure::Warn, UnknownProcedure::Reject] {
        let s = ShippedBus::start_with(|c| c.procedures.unknown = mode).await;
        s.send(
            "nafosted",
            "dossier_sync",
            &nafosted_dossier("HS-CAT-1", "submitted", "online"),
        )
        .await;
        let mut stray = nafosted_dossier("HS-CAT-2", "submitted", "online");
        stray["procedureCode"] = serde_json::json!("9.999999");
        s.send("nafosted", "dossier_sync", &stray).await;
        let outbox = s.bus.outbox.clone();
        let want_dead = u64::from(mode == UnknownProcedure::Reject);
        wait_until(Duration::from_secs(20), "both dossiers settled", || {
            let st = outbox.stats();
            st.pending == 0 && st.dead == want_dead
        })
        .await;
        let (_, k) = s.admin("/api/v1/kpis?refresh=true", SHIPPED_VIEWER).await;
        let naf = unit(&k, "nafosted");
        assert_eq!(naf["dossiers"], 2, "{naf}");
        assert_eq!(naf["unknown_procedure"], 1, "{mode:?}: {naf}");
        let (_, dead) = s.admin("/api/v1/dead-letters", SHIPPED_VIEWER).await;
        let dead = dead["dead_letters"].as_array().cloned().unwrap_or_default();
        match mode {
            UnknownProcedure::Warn => {
                assert!(dead.is_empty(), "{dead:?}");
                assert_eq!(naf["kpis"]["dong_bo"]["numerator"], 2, "{naf}");
            }
            UnknownProcedure::Reject => {
                assert_eq!(dead.len(), 1, "{dead:?}");
                let reason = dead[0]["reason"].as_str().unwrap();
                assert!(
                    reason.contains("field MaTTHC") && reason.contains("9.999999"),
                    "{reason}"
                );
                assert_eq!(dead[0]["key"], "HS-CAT-2");
                assert_eq!(naf["kpis"]["dong_bo"]["numerator"], 1, "{naf}");
            }
        }
        s.bus.shutdown().await.unwrap();
    }
}

/// A port no one listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `lienthong run` on the shipped config with its own data directory and port, the mock
/// platforms off (nothing is delivered: the KPIs count what was accepted).
async fn spawn_bus(dir: &std::path::Path, port: u16) -> tokio::process::Child {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .args(["run", "--config", "config/lienthong.toml", "--data-dir"])
        .arg(dir)
        .env("LIENTHONG_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("LIENTHONG_MOCKS__ENABLED", "false")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the bus did not come up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child
}

async fn kpis_of(port: u16) -> serde_json::Value {
    let doc: serde_json::Value = support::client()
        .get(format!("http://127.0.0.1:{port}/api/v1/kpis?refresh=true"))
        .bearer_auth(SHIPPED_VIEWER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    unit(&doc, "nafosted").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kpis_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut bus = spawn_bus(dir.path(), port).await;
    // 30 dossiers: 20 online, 10 at the counter; 5 of them past their due date.
    let events: Vec<serde_json::Value> = (0..30)
        .map(|i| {
            let channel = if i % 3 == 0 { "counter" } else { "online" };
            let mut e = nafosted_dossier(&format!("HS-K9-{i:02}"), "submitted", channel);
            if i < 5 {
                e["dueAt"] = serde_json::json!("2024-04-04T17:00:00+07:00");
            }
            e
        })
        .collect();
    let accepted = support::client()
        .post(format!(
            "http://127.0.0.1:{port}/api/v1/units/nafosted/events?flow=dossier_sync"
        ))
        .bearer_auth("dev-only-nafosted-key-change-me")
        .json(&events)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
    let before = kpis_of(port).await;
    assert_eq!(before["dossiers"], 30, "{before}");
    assert_eq!(before["kpis"]["truc_tuyen"]["numerator"], 20, "{before}");
    assert_eq!(before["kpis"]["truc_tuyen"]["denominator"], 30, "{before}");
    assert_eq!(before["overdue"], 5, "{before}");
    // No shutdown: SIGKILL, then the same data directory again.
    bus.start_kill().unwrap();
    bus.wait().await.unwrap();
    let mut bus = spawn_bus(dir.path(), port).await;
    let after = kpis_of(port).await;
    for field in ["dossiers", "overdue", "channel_unknown"] {
        assert_eq!(after[field], before[field], "{field}: {after}");
    }
    // Every KPI keeps its dossiers; the synced ones (dong_bo*) may only have grown, since
    // deliveries to the portal go on while the figures are read and after the restart.
    for (kpi, b) in before["kpis"].as_object().unwrap() {
        let a = &after["kpis"][kpi];
        assert_eq!(a["denominator"], b["denominator"], "{kpi}: {after}");
        if kpi.starts_with("dong_bo") {
            assert!(
                a["numerator"].as_u64() >= b["numerator"].as_u64(),
                "{kpi} went back: {before} then {after}"
            );
        } else {
            assert_eq!(a["numerator"], b["numerator"], "{kpi}: {after}");
        }
    }
    bus.start_kill().unwrap();
    bus.wait().await.unwrap();
}
