//! The client examples in `examples/` (curl, Python requests, C# HttpClient: the languages
//! the unit systems are written in) run against a live bus with the shipped configuration
//! and the bundled mocks: for each unit, its own export (JSON, STAMEQ's SOAP envelope, the
//! IP Office's TCVN3 CSV) is accepted and reaches the national portal.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::ShippedBus;

/// (unit, flow, file): each unit's first dossier fixture, in its own format.
const SAMPLES: &[(&str, &str, &str)] = &[
    (
        "nafosted",
        "dossier_sync",
        "mappings/nafosted/tests/dossier_sync/01-new-dossier.input.json",
    ),
    (
        "stameq",
        "soap",
        "mappings/stameq/tests/dossier_sync/01-new-import-inspection.input.xml",
    ),
    (
        "ipo",
        "dossier_sync",
        "mappings/ipo/tests/dossier_sync/01-patent-by-citizen.input.csv",
    ),
    (
        "varans",
        "dossier_sync",
        "mappings/varans/tests/dossier_sync/01-new-xray-licence.input.json",
    ),
];

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Run an example for every unit; the ids it printed as accepted, per unit.
fn run_for_each_unit(
    bus: &ShippedBus,
    command: &dyn Fn() -> Command,
) -> Vec<(String, Vec<String>)> {
    SAMPLES
        .iter()
        .map(|(unit, flow, file)| {
            let out = command()
                .args([unit, flow])
                .arg(repo(file))
                .env("LIENTHONG_URL", bus.url(""))
                .env("LIENTHONG_KEY", &bus.keys[*unit])
                .env_remove("HTTP_PROXY")
                .env_remove("http_proxy")
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{unit}: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let ids: Vec<String> = stdout
                .lines()
                .find_map(|l| l.strip_prefix("accepted "))
                .unwrap_or_else(|| panic!("{unit}: no `accepted` line in {stdout}"))
                .split_whitespace()
                .map(str::to_string)
                .collect();
            assert!(!ids.is_empty(), "{unit}: {stdout}");
            (unit.to_string(), ids)
        })
        .collect()
}

/// Every message reached the portal (asked with each unit's own key).
async fn all_delivered_to_portal(bus: &ShippedBus, sent: &[(String, Vec<String>)]) {
    for (unit, ids) in sent {
        for id in ids {
            bus.delivered_to(unit, id, "portal").await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_curl_example_sends_each_units_export() {
    let bus = ShippedBus::start().await;
    let script = repo("examples/curl/send.sh");
    let sent = tokio::task::block_in_place(|| run_for_each_unit(&bus, &|| Command::new(&script)));
    all_delivered_to_portal(&bus, &sent).await;
    bus.bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_example_sends_each_units_export_and_sees_it_delivered() {
    let bus = ShippedBus::start().await;
    let script = repo("examples/python/send.py");
    let sent = tokio::task::block_in_place(|| {
        run_for_each_unit(&bus, &|| {
            let mut c = Command::new("python3");
            c.arg(&script);
            c
        })
    });
    all_delivered_to_portal(&bus, &sent).await;
    bus.bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csharp_example_builds_and_sends_each_units_export() {
    let work = tempfile::tempdir().unwrap();
    let exe = work.path().join("SendToBus.exe");
    // Mono's C# compiler (Debian's mono-mcs, installed by scripts/test).
    let built = Command::new("mcs")
        .arg("-r:System.Net.Http")
        .arg(format!("-out:{}", exe.display()))
        .arg(repo("examples/csharp/SendToBus.cs"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run mcs ({e}): scripts/test installs mono-mcs"));
    assert!(
        built.status.success(),
        "{}{}",
        String::from_utf8_lossy(&built.stdout),
        String::from_utf8_lossy(&built.stderr)
    );
    let bus = ShippedBus::start().await;
    let sent = tokio::task::block_in_place(|| {
        run_for_each_unit(&bus, &|| {
            let mut c = Command::new("mono");
            c.arg(&exe);
            c
        })
    });
    all_delivered_to_portal(&bus, &sent).await;
    bus.bus.shutdown().await.unwrap();
}
