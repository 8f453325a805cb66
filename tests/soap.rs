//! The SOAP endpoint for unit systems: `POST /soap/{unit}` takes an envelope, picks the
//! flow from the operation, stores it like any XML body, and answers in SOAP (faults too).

mod support;

use lienthong_mocks::Faults;
use std::path::PathBuf;
use std::time::Duration;
use support::{Harness, STAMEQ_KEY, wait_until};

fn routes() -> String {
    let mappings = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mappings");
    format!(
        r#"
[units.stameq.soap_operations]
GuiHoSo = "soap_sync"
[mappings]
dir = "{}"
watch = false
[[routes]]
unit = "stameq"
flow = "soap_sync"
targets = ["a"]
ordering = "per_key"
key = "/GuiHoSo/HoSo/SoHoSo"
on_dead = "skip"
mappings = {{ a = "stameq/dossier_sync.toml" }}
"#,
        mappings.display()
    )
}

async fn soap(h: &Harness, key: &str, body: Vec<u8>) -> (u16, String) {
    let resp = h
        .client
        .post(h.url("/soap/stameq"))
        .bearer_auth(key)
        .header("content-type", "text/xml; charset=utf-8")
        .header("soapaction", "\"GuiHoSo\"")
        .body(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn soap_envelopes_are_taken_and_answered_in_soap() {
    let h = Harness::start(Faults::default(), &routes()).await;
    let envelope = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("mappings/stameq/tests/dossier_sync/01-new-import-inspection.input.xml"),
    )
    .unwrap();
    let (status, body) = soap(&h, STAMEQ_KEY, envelope.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(
            "<GuiHoSoResponse xmlns=\"urn:lienthong:1.0\"><KetQua>DA_NHAN</KetQua><MaTiepNhan>"
        ),
        "{body}"
    );
    assert!(body.contains("<TrungLap>false</TrungLap>"), "{body}");
    wait_until(
        Duration::from_secs(10),
        "the portal body at the sink",
        || h.sink.delivered_count() == 1,
    )
    .await;
    assert_eq!(
        h.sink.delivered()[0].json()["data"][0]["MaHoSo"],
        "STAMEQ-2024-000123"
    );

    // An operation the unit has not configured: a Client fault naming the ones it has.
    let other = String::from_utf8(envelope.clone())
        .unwrap()
        .replace("GuiHoSo", "XoaHoSo");
    let (status, body) = soap(&h, STAMEQ_KEY, other.into_bytes()).await;
    assert_eq!(status, 500);
    assert!(
        body.contains("<faultcode>soap:Client</faultcode>") && body.contains("configured: GuiHoSo"),
        "{body}"
    );
    // Malformed XML: a fault with the line.
    let (status, body) = soap(&h, STAMEQ_KEY, b"<soap:Envelope>\n<a></b>".to_vec()).await;
    assert_eq!(status, 500);
    assert!(
        body.contains("<code>malformed_body</code>") && body.contains("<line>"),
        "{body}"
    );
    // The wrong key keeps its HTTP status, with a fault body.
    let (status, body) = soap(&h, "not-the-key-0123456789", envelope).await;
    assert_eq!(status, 401);
    assert!(body.contains("soap:Fault"), "{body}");
    assert_eq!(h.bus().outbox.stats().accepted_since_start, 1);
    h.shutdown().await;
}
