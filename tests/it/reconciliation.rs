//! The daily reconciliation per unit adds up against the outbox's own counts, with faults
//! injected (retries, refusals that make dead letters, a drop, a target down), survives a
//! restart, and comes out of `lienthong report --reconciliation` as CSV.

use crate::support;

use lienthong_mocks::Faults;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;
use support::dead_letters::{OPERATOR, VIEWER, admin_tokens};
use support::*;

async fn admin(h: &Harness, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let token = if method == "GET" { VIEWER } else { OPERATOR };
    let mut r = h
        .client
        .request(method.parse().unwrap(), h.url(path))
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// The counts of `unit`'s deliveries to `target` today (and the unit's events).
fn today<'a>(doc: &'a Value, unit: &str) -> &'a Value {
    doc["days"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["unit"] == unit)
        .unwrap_or_else(|| panic!("no {unit} in {doc}"))
}

fn target<'a>(day: &'a Value, name: &str) -> &'a Value {
    day["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == name)
        .unwrap_or_else(|| panic!("no {name} in {day}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_reconciliation_adds_up_against_the_outbox() {
    let mut h = Harness::start(Faults::default(), &admin_tokens()).await;
    // `a` fails a third of its calls (retries); `b` refuses the events marked REJECT.
    h.sink.set_target_faults(
        "a",
        Faults {
            error_ratio: 0.3,
            ..Faults::default()
        },
    );
    h.sink.set_target_faults(
        "b",
        Faults {
            reject_containing: Some("REJECT".into()),
            ..Faults::default()
        },
    );
    let events: Vec<Value> = (0..20)
        .map(|i| {
            let note = if i % 5 == 0 { "REJECT" } else { "ok" };
            json!({"dossierCode": format!("R-{i}"), "note": note})
        })
        .collect();
    let r = h
        .post("nafosted", Some("fanout"), &Value::Array(events))
        .await;
    assert_eq!(r.status(), 202);
    let outbox = h.bus().outbox.clone();
    wait_until(Duration::from_secs(30), "a has all, b all but 4", || {
        outbox.stats().pending == 0
    })
    .await;
    assert_eq!(outbox.stats().dead, 4);
    drop(outbox); // The restart below opens the data directory again.
    // An operator drops one dead letter.
    let (_, dead) = admin(&h, "GET", "/api/v1/dead-letters?target=b", None).await;
    let id = dead["dead_letters"][0]["id"].as_str().unwrap().to_string();
    let (status, _) = admin(
        &h,
        "POST",
        &format!("/api/v1/dead-letters/b/{id}/drop"),
        Some(json!({"reason": "the unit sends it again corrected"})),
    )
    .await;
    assert_eq!(status, 200);
    // `a` goes down: STAMEQ's five events wait.
    h.sink.set_target_faults(
        "a",
        Faults {
            down: true,
            ..Faults::default()
        },
    );
    let stameq: Vec<Value> = (0..5)
        .map(|i| json!({"SoHoSo": format!("S-{i}")}))
        .collect();
    let r = h
        .post("stameq", Some("dossier_sync"), &Value::Array(stameq))
        .await;
    assert_eq!(r.status(), 202);

    for round in ["running", "after a restart"] {
        let (status, doc) = admin(&h, "GET", "/api/v1/reconciliation", None).await;
        assert_eq!(status, 200, "{doc}");
        let nafosted = today(&doc, "nafosted");
        assert_eq!(nafosted["events"], 20, "{round}: {doc}");
        let a = target(nafosted, "a");
        assert_eq!(
            (&a["deliveries"], &a["delivered"], &a["dead"], &a["pending"]),
            (&json!(20), &json!(20), &json!(0), &json!(0)),
            "{round}: {doc}"
        );
        let b = target(nafosted, "b");
        assert_eq!(
            (
                &b["deliveries"],
                &b["delivered"],
                &b["dead"],
                &b["dropped"],
                &b["pending"]
            ),
            (&json!(20), &json!(16), &json!(3), &json!(1), &json!(0)),
            "{round}: {doc}"
        );
        let st = today(&doc, "stameq");
        assert_eq!(st["events"], 5, "{round}: {doc}");
        assert_eq!(target(st, "a")["pending"], 5, "{round}: {doc}");
        // The outbox's own counts say the same.
        let stats = h.bus().outbox.stats();
        assert_eq!(stats.dead, 3, "{round}");
        assert_eq!(stats.pending, 5, "{round}");
        let (_, dead) = admin(
            &h,
            "GET",
            "/api/v1/dead-letters?target=b&unit=nafosted",
            None,
        )
        .await;
        assert_eq!(dead["dead_letters"].as_array().unwrap().len(), 3, "{round}");
        let delivered_b: HashSet<String> = h
            .sink
            .delivered()
            .iter()
            .filter(|r| r.target == "b")
            .map(|r| r.message_id.clone())
            .collect();
        assert_eq!(delivered_b.len(), 16, "{round}");
        // The day's chain head is a line of the message log's day file (the log keeps
        // growing: `a` is down and its attempts go on).
        let day = lienthong::evidence::day_name(lienthong::time::now_ms());
        let file = h.dir.path().join("evidence").join(format!("{day}.jsonl"));
        let head = nafosted["evidence_head"].as_str().unwrap().to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{head} "))),
            "{round}: {head} is not a line of {}",
            file.display()
        );
        if round == "running" {
            h.restart().await;
        }
    }

    the_command_line_writes_the_same_figures(&h);
    // The dashboard's page shows the table and offers it as CSV and Excel.
    let page = support::dead_letters::dashboard_page(&h, "/doi-soat", VIEWER).await;
    assert!(page.contains("id=\"doi-soat-bang\""), "{page}");
    assert!(page.contains("<td>nafosted</td>"), "{page}");
    assert!(page.contains("doi-soat-xlsx"), "{page}");
    // A range the API refuses, with the field named.
    let (status, e) = admin(
        &h,
        "GET",
        "/api/v1/reconciliation?from=2026-01-10&to=2026-02-30",
        None,
    )
    .await;
    assert_eq!(
        (status, e["error"]["field"].as_str()),
        (400, Some("to")),
        "{e}"
    );
    h.shutdown().await;
}

/// The same figures as a CSV file, from `lienthong report --reconciliation`.
fn the_command_line_writes_the_same_figures(h: &Harness) {
    let out_file = h.dir.path().join("doi-soat.csv");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .args(["report", "--reconciliation", "--url"])
        .arg(h.url(""))
        .args(["--token", VIEWER, "--output"])
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = std::fs::read_to_string(&out_file).unwrap();
    assert!(
        text.starts_with("\u{feff}Ngày,Đơn vị,Sự kiện nhận"),
        "{text}"
    );
    let b_line = text
        .lines()
        .find(|l| l.contains(",nafosted,20,b,"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(b_line.contains(",b,20,16,0,3,1,0,"), "{b_line}");
}
