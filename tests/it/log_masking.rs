//! Personal data never reaches the logs unmasked (issue 8): the shipped configuration runs
//! with every log line captured at debug level while traffic carrying known personal
//! values goes through every kind of flow — JSON dossiers to the portal, a fee through the
//! payment platform and its confirmation back to the unit, SOAP from STAMEQ, TCVN3 CSV
//! from the IP Office, results to the data store and the notification channel, a citizen
//! lookup, events the mappings refuse (dead letters quoting values in their errors) and a
//! request the ingress refuses. Then the log is searched for every value.
//!
//! Its own test binary: it installs the process-wide log subscriber.

use crate::support;

use lienthong::telemetry::{LogFormat, init_with};
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{ShippedBus, client, send_kpi_traffic, wait_until};
use tracing_subscriber::EnvFilter;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("mappings/{path}")).unwrap()
}

/// A fixture that must hold `values` (so the search below means something).
fn fixture_with(path: &str, values: &[&str]) -> Vec<u8> {
    let bytes = fixture(path);
    let text = String::from_utf8_lossy(&bytes);
    for v in values {
        assert!(text.contains(v), "{path} holds {v}");
    }
    bytes
}

async fn post(s: &ShippedBus, path: &str, unit: &str, content_type: &str, body: Vec<u8>) -> u16 {
    client()
        .post(s.url(path))
        .bearer_auth(&s.keys[unit])
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_personal_value_reaches_the_logs_at_debug_level() {
    let log = Captured::default();
    let sink = log.clone();
    // The bundled mocks stand for the national platforms, not the bus: their logs are not
    // the bus's.
    init_with(
        LogFormat::Text,
        EnvFilter::new("debug,lienthong_mocks=off"),
        move || sink.clone(),
    );
    let s = ShippedBus::start_with(support::checked_at_delivery).await;

    // NAFOSTED (JSON): dossiers, a fee paid online and its confirmation, a dead letter.
    send_kpi_traffic(&s).await;
    let mut with_email = support::nafosted_dossier("HS-LOG-1", "submitted", "online");
    with_email["applicant"]["email"] = json!("minh.anh.nguyen@example.vn");
    with_email["applicant"]["address"] = json!("Số 7 Ngõ Văn Chương, Đống Đa");
    s.send("nafosted", "dossier_sync", &with_email).await;
    // A refused request quoting personal data (no dossier code).
    let refused =
        json!({"applicant": {"fullName": "Nguyễn Thị Minh Anh", "idNumber": "001203004567"}});
    let status = client()
        .post(s.url("/api/v1/units/nafosted/events?flow=dossier_sync"))
        .bearer_auth(&s.keys["nafosted"])
        .json(&refused)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_client_error(), "{status}");

    // STAMEQ (SOAP): a dossier.
    let soap = fixture_with(
        "stameq/tests/dossier_sync/01-new-import-inspection.input.xml",
        &["XNK@SaoMai.vn"],
    );
    assert_eq!(
        post(&s, "/soap/stameq", "stameq", "text/xml", soap).await,
        200
    );

    // IP Office (CSV in TCVN3): a patent application by a citizen.
    let csv = fixture("ipo/tests/dossier_sync/01-patent-by-citizen.input.csv");
    let status = post(
        &s,
        "/api/v1/units/ipo/events?flow=dossier_sync",
        "ipo",
        "text/csv",
        csv,
    )
    .await;
    assert_eq!(status, 202);

    // VARANS: results to the data store and the notification channel, and one the
    // notification mapping refuses (a hotline is not a phone).
    for (path, values) in [
        (
            "varans/tests/result_notify/01-sms.input.json",
            &["001040621374", "+84983456789"][..],
        ),
        (
            "varans/tests/result_notify/03-hotline-not-a-phone.input.json",
            &["1900 1234"][..],
        ),
    ] {
        let status = post(
            &s,
            "/api/v1/units/varans/events?flow=result",
            "varans",
            "application/json",
            fixture_with(path, values),
        )
        .await;
        assert_eq!(status, 202, "{path}");
    }

    // A citizen lookup (population database), for a dossier naming the person.
    let dossier = lienthong_mocks::units::Traffic::new(1, 0.0).dossier_naming(
        "stameq",
        "Nguyễn Đức Cường",
        "001040621374",
    );
    let status = post(
        &s,
        "/api/v1/units/stameq/events?flow=dossier_sync",
        "stameq",
        dossier.content_type,
        dossier.body,
    )
    .await;
    assert_eq!(status, 202);
    let lookup = fixture_with(
        "stameq/tests/citizen_lookup_request/01-lookup.input.xml",
        &["001040621374", "Nguyễn Đức Cường"],
    );
    let status = post(
        &s,
        &format!(
            "/api/v1/units/stameq/lookup/citizen?dossier={}&purpose=xac-minh-nguoi-nop",
            dossier.dossier
        ),
        "stameq",
        "text/xml",
        lookup,
    )
    .await;
    assert_eq!(status, 200);

    // Everything settled: delivered, or dead.
    let outbox = s.bus.outbox.clone();
    wait_until(Duration::from_secs(30), "the traffic to settle", || {
        outbox.stats().pending == 0
    })
    .await;
    assert!(outbox.stats().dead >= 2, "dead letters quoting values");

    let text = String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned();
    assert!(text.contains("DEBUG"), "debug lines are logged");
    // The mappings' errors quote the values they refuse: those lines are where masking
    // has work to do.
    assert!(
        text.contains("mapping failed: dead letter") && text.contains("`1***4` is not"),
        "dead letters are logged with their masked reasons"
    );
    for secret in [
        "Nguyễn Thị Minh Anh",
        "Minh Anh",
        "001203004567",
        "0912345678",
        "minh.anh.nguyen@example.vn",
        "Ngõ Văn Chương",
        "XNK@SaoMai.vn",
        "001085012345",
        "thanh.nv@gmail.com",
        "001040621374",
        "84983456789",
        "Nguyễn Đức Cường",
        "1900 1234",
        "19001234",
    ] {
        if let Some(at) = text.find(secret) {
            let from = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let to = text[at..].find('\n').map_or(text.len(), |i| at + i);
            panic!("`{secret}` is in the log: {}", &text[from..to]);
        }
    }
}
