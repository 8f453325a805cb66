//! The SOAP endpoint for unit systems: `POST /soap/{unit}` takes an envelope, picks the
//! flow from the operation, stores it like any XML body, and answers in SOAP (faults too).

use crate::support;

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
    // An element after the envelope's end is refused, not read as the operation.
    let mut trailing = envelope.clone();
    trailing.extend_from_slice(b"<XoaHoSo/>");
    let (status, body) = soap(&h, STAMEQ_KEY, trailing).await;
    assert_eq!(status, 500);
    assert!(
        body.contains("<code>malformed_body</code>") && body.contains("after the envelope"),
        "{body}"
    );
    // A 20,000-character operation name is refused without being echoed back.
    let long = String::from_utf8(envelope.clone())
        .unwrap()
        .replace("GuiHoSo", &"G".repeat(20_000));
    let (status, body) = soap(&h, STAMEQ_KEY, long.into_bytes()).await;
    assert_eq!(status, 500);
    assert!(
        body.len() < 4_000 && body.contains("longer than 100"),
        "{}",
        body.len()
    );
    // The wrong key keeps its HTTP status, with a fault body.
    let (status, body) = soap(&h, "not-the-key-0123456789", envelope).await;
    assert_eq!(status, 401);
    assert!(body.contains("soap:Fault"), "{body}");
    assert_eq!(h.bus().outbox.stats().accepted_since_start, 1);
    h.shutdown().await;
}

/// The WSDL's endpoint is `server.public_url` when set; otherwise a `Host` that is a host
/// and port only — a forged one never reaches the document a toolkit builds its client from.
#[tokio::test]
async fn the_wsdl_names_the_configured_address_never_what_a_request_forged() {
    let dir = tempfile::tempdir().unwrap();
    let sink: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    let (mut cfg, keys) = support::parse_config(&support::config_text(dir.path(), sink, &routes()));
    let wsdl = |addr: std::net::SocketAddr, host: &'static str| async move {
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        conn.write_all(
            format!("GET /soap/stameq?wsdl HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        let mut text = String::new();
        conn.read_to_string(&mut text).await.unwrap();
        text
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bus = lienthong::app::Bus::start(cfg.clone(), keys.clone(), listener)
        .await
        .unwrap();
    let text = wsdl(bus.addr, "bus.example:8443").await;
    assert!(
        text.contains(r#"location="http://bus.example:8443/soap/stameq""#),
        "{text}"
    );
    let forged = wsdl(bus.addr, "evil.example/phish?x=").await;
    assert!(!forged.contains("evil.example"), "{forged}");
    bus.shutdown().await.unwrap();

    cfg.server.public_url = Some("https://lienthong.most.gov.vn".into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bus = lienthong::app::Bus::start(cfg, keys, listener)
        .await
        .unwrap();
    let text = wsdl(bus.addr, "evil.example").await;
    assert!(
        text.contains(r#"location="https://lienthong.most.gov.vn/soap/stameq""#)
            && !text.contains("evil.example"),
        "{text}"
    );
    bus.shutdown().await.unwrap();
}
