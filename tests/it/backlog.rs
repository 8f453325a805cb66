//! The backlog of a long portal outage, on the real binary with the shipped configuration
//! (sealed outbox, the real portal connector and NAFOSTED's mapping): memory stays
//! bounded while hundreds of thousands of deliveries wait, and SIGTERM ends the bus
//! quickly whatever it holds, losing nothing it acknowledged.
//!
//! Memory is measured on the `lienthong` child process (its peak resident set, from
//! /proc), not on this test process. Resident memory is not noisy the way time is, so
//! the bound is a test; the figures for the README come from `lienthong bench
//! --scenario outage`.

use lienthong::cli::bench::outage::{OutageOptions, fill, shipped_on};
use lienthong::cli::bench::{BusProcess, free_port};
use std::time::Duration;

const MEMORY_BOUND_MIB: f64 = 200.0;

/// The bus binary under test; `LIENTHONG_BACKLOG_EXE` points the memory test at another
/// build (to check that the bound catches an older one).
fn exe() -> std::path::PathBuf {
    std::env::var_os("LIENTHONG_BACKLOG_EXE")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_lienthong").into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_under_200_mb_with_300000_pending_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let report = lienthong::cli::bench::outage::run(&OutageOptions {
        dir: dir.path().to_path_buf(),
        exe: exe(),
        events: 300_000,
        dossiers: 30_000,
        drain: false,
    })
    .await
    .unwrap();
    report.print();
    assert!(
        report.fill_rss_peak_mib > 1.0,
        "the bus's memory was not measured"
    );
    assert!(
        report.fill_rss_peak_mib < MEMORY_BOUND_MIB,
        "the bus's resident memory peaked at {:.0} MiB with {} pending (bound {MEMORY_BOUND_MIB} MiB)",
        report.fill_rss_peak_mib,
        report.events
    );
    // Every status request during the fill was answered (no scan behind it).
    assert!(report.status_polls > 0);
    assert!(
        report.status_slowest_ms < 5_000.0,
        "/api/v1/status did not answer"
    );
}

/// An HTTP server that accepts connections and never answers: a national platform that
/// is up but stuck.
async fn stuck_platform() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    (addr, task)
}

async fn status(port: u16) -> serde_json::Value {
    lienthong::tls_provider::http_client()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{port}/api/v1/status"))
        .bearer_auth("dev-only-viewer-token-change-me")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_a_bus_with_a_large_backlog_and_a_stuck_target_within_10_s() {
    let dir = tempfile::tempdir().unwrap();
    let (platform, _held) = stuck_platform().await;
    let port = free_port();
    let config = shipped_on(dir.path(), port, platform).unwrap();
    let (bus, _) = BusProcess::spawn(&exe(), &config, port, "all").unwrap();
    let events = 60_000;
    fill(port, events, 6_000).await.unwrap();
    // The portal's deliveries are in flight against a platform that never answers.
    let s = status(port).await;
    // Each event is two deliveries: to the portal and to the ministry's system.
    assert_eq!(s["pending"], 2 * events as u64, "{s}");
    let (took, clean) = bus.terminate();
    assert!(clean, "the bus did not exit cleanly on SIGTERM");
    assert!(
        took < Duration::from_secs(10),
        "SIGTERM took {took:?} to end the bus"
    );

    // Nothing acknowledged was lost: every event is pending again after the restart.
    let (bus, _) = BusProcess::spawn(&exe(), &config, port, "all").unwrap();
    let s = status(port).await;
    assert_eq!(s["pending"], 2 * events as u64, "{s}");
    let naf = s["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == "nafosted")
        .cloned()
        .unwrap();
    assert_eq!(naf["pending"], 2 * events as u64, "{naf}");
    // Each platform's own pending is its whole backlog, not the scheduler's window of it.
    for target in ["portal", "ministry"] {
        let t = s["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["target"] == target)
            .cloned()
            .unwrap();
        assert_eq!(t["pending"], events as u64, "{t}");
    }
    bus.kill();
}
