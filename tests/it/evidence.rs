//! The message log on a real bus: every accepted event and every attempt the sink saw has
//! a record whose digests match the bodies on the wire; the archive checks offline with
//! the CLI, a changed byte is found, and a bus killed with SIGKILL leaves an archive that
//! checks once it has started again.

use crate::support;

use lienthong_mocks::{Faults, Sink};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};
use support::*;

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every record line of an archive (its JSON), checked by the library on the way.
fn records(dir: &Path) -> Vec<Value> {
    let files = lienthong::evidence::archive::day_files(dir).unwrap();
    let mut out = Vec::new();
    lienthong::evidence::archive::verify_files(
        &files,
        None,
        &mut |line, _, _| {
            let v: Value = serde_json::from_str(line).unwrap();
            out.extend(lienthong::evidence::archive::records_of(&v));
        },
        &mut |_, _| {},
    )
    .unwrap_or_else(|e| panic!("the archive does not check: {e}"));
    out
}

fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_exchange_is_logged_with_the_digests_of_what_went_on_the_wire() {
    // Every third request to `a` fails: attempts with retries and their answers.
    let mut h = Harness::start(Faults::default(), &support::dead_letters::admin_tokens()).await;
    h.sink.set_target_faults(
        "a",
        Faults {
            error_ratio: 0.3,
            ..Faults::default()
        },
    );
    let mut sent = HashMap::new();
    for i in 0..30 {
        let body = json!({"dossierCode": format!("HS-{}", i % 5), "status": i});
        let r = h.post("nafosted", Some("fanout"), &body).await;
        assert_eq!(r.status(), 202);
        let id = r.json::<Value>().await.unwrap()["accepted"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        sent.insert(id, body);
    }
    wait_until(Duration::from_secs(30), "all delivered to a and b", || {
        h.sink.delivered_count() >= 60
    })
    .await;
    let dir = h.dir.path().join("evidence");
    dashboard_links_to_the_evidence(&h).await;
    let seen = h.sink.requests();
    h.bus.take().unwrap().shutdown().await.unwrap();

    let records = records(&dir);
    let accepted: Vec<&Value> = records.iter().filter(|r| r["t"] == "accepted").collect();
    assert_eq!(accepted.len(), 30, "one record per accepted event");
    for r in &accepted {
        let id = r["id"].as_str().unwrap();
        let body = &sent[id];
        assert_eq!(r["unit"], "nafosted");
        assert_eq!(r["flow"], "fanout");
        assert_eq!(r["dossier"], body["dossierCode"]);
        assert_eq!(r["targets"], json!(["a", "b"]));
        assert_eq!(
            r["body_sha256"].as_str().unwrap(),
            sha256(serde_json::to_string(body).unwrap().as_bytes())
        );
    }
    // Each request the sink answered is one attempt record, with the same digest and status.
    let attempts: Vec<&Value> = records.iter().filter(|r| r["t"] == "attempt").collect();
    assert_eq!(
        attempts.len(),
        seen.len(),
        "one record per attempt on the wire"
    );
    assert!(
        seen.iter().any(|r| r.status >= 500),
        "the faults made retries"
    );
    for wire in &seen {
        let r = attempts
            .iter()
            .find(|r| {
                r["id"] == wire.message_id.as_str()
                    && r["target"] == wire.target.as_str()
                    && r["attempt"] == wire.attempt
            })
            .unwrap_or_else(|| panic!("no record of {wire:?}"));
        assert_eq!(r["request_sha256"].as_str().unwrap(), sha256(&wire.body));
        assert_eq!(r["answer_status"], wire.status);
        let outcome = if wire.status == 200 || wire.status == 202 {
            "delivered"
        } else {
            "retry"
        };
        assert_eq!(r["outcome"], outcome, "{r}");
    }
    assert!(
        !std::fs::read_to_string(lienthong::evidence::archive::day_files(&dir).unwrap()[0].clone())
            .unwrap()
            .contains("dossierCode"),
        "metadata mode keeps no body"
    );

    // The CLI checks the archive, shows a dossier with its proof, and finds a changed byte.
    let d = dir.to_str().unwrap();
    let ok = cli(&["evidence", "verify", d]);
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(out.contains("30 accepted events"), "{out}");
    let shown = cli(&["evidence", "show", "--dossier", "HS-1", d]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success(), "{text}");
    assert_eq!(text.matches("Z accepted ").count(), 6, "{text}");
    assert!(text.contains("signature valid"), "{text}");
    let file = lienthong::evidence::archive::day_files(&dir).unwrap()[0].clone();
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&file, bytes).unwrap();
    let broken = cli(&["evidence", "verify", d]);
    let out = String::from_utf8_lossy(&broken.stdout);
    assert_eq!(broken.status.code(), Some(1), "{out}");
    assert!(out.contains("BROKEN"), "{out}");
}

/// The dossier view links to each day's evidence; the evidence page shows the dossier's
/// records, checked.
async fn dashboard_links_to_the_evidence(h: &Harness) {
    let set_cookie = dashboard_sign_in(&h.url(""), support::dead_letters::VIEWER).await;
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let page = |path: String, status: u16| {
        let cookie = cookie.clone();
        async move {
            let r = browser()
                .get(path)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), status);
            r.text().await.unwrap()
        }
    };
    let day = lienthong::evidence::day_name(lienthong::time::now_ms());
    let dossier = page(h.url("/?ma_ho_so=HS-1"), 200).await;
    let link = format!("/bang-chung?ma_ho_so=HS-1&amp;ngay={day}");
    assert!(dossier.contains(&link), "{dossier}");
    let evidence = page(h.url(&format!("/bang-chung?ma_ho_so=HS-1&ngay={day}")), 200).await;
    assert!(evidence.contains("hợp lệ"), "{evidence}");
    assert_eq!(evidence.matches("nhận từ").count(), 6, "{evidence}");
    assert!(evidence.contains("tới <b>b</b>"), "{evidence}");
    let missing = page(h.url("/bang-chung?ma_ho_so=HS-1&ngay=1999-01-01"), 404).await;
    assert!(missing.contains("không có ngày"), "{missing}");
    let bad = page(h.url("/bang-chung?ma_ho_so=HS-1&ngay=../../etc"), 400).await;
    assert!(bad.contains("dạng 2026-12-07"), "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bus_killed_with_sigkill_leaves_an_archive_that_checks_after_the_restart() {
    let sink = Sink::new(Faults::default());
    let sink_addr = sink.start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = config_text(&dir.path().join("data"), sink_addr, "").replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    let config_path = dir.path().join("bus.toml");
    std::fs::write(&config_path, config).unwrap();
    let client = client();
    let url = format!("http://127.0.0.1:{port}/api/v1/units/nafosted/events?flow=dossier_sync");
    let evidence = dir.path().join("data").join("evidence");
    let mut acknowledged = 0;
    for round in 0..3 {
        let mut bus = spawn(&config_path, port).await;
        for i in 0..40 {
            let r = client
                .post(&url)
                .bearer_auth(NAFOSTED_KEY)
                .json(&json!({"dossierCode": format!("K-{round}-{i}"), "status": 1}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
            acknowledged += 1;
        }
        // Written (not necessarily sealed) before the kill.
        tokio::time::sleep(Duration::from_millis(300)).await;
        bus.start_kill().unwrap();
        bus.wait().await.unwrap();
    }
    let mut bus = spawn(&config_path, port).await;
    // The restart sealed what the last kill left; the chain runs through all three lives.
    let records = records(&evidence);
    let accepted = records.iter().filter(|r| r["t"] == "accepted").count();
    assert_eq!(accepted, acknowledged);
    let ok = cli(&["evidence", "verify", evidence.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{out}");
    assert!(!out.contains("not signed yet"), "{out}");
    bus.start_kill().unwrap();
    bus.wait().await.unwrap();
}

async fn spawn(config: &Path, port: u16) -> tokio::process::Child {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = client();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            && r.status() == 200
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("lienthong did not come up on port {port}");
}
