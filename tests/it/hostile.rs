//! Hostile input (issue 8), one test per threat: XML bombs and external entities, deep and
//! oversized bodies, invalid and mixed encodings, slow-loris clients (headers and bodies),
//! a unit over its request rate, forged payment callbacks. Each is answered with a clear
//! error, stores nothing, and the bus keeps serving others.

use crate::support;

use lienthong_mocks::Faults;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::{Harness, NAFOSTED_KEY, STAMEQ_KEY};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The test config with 1-second header and body read timeouts.
async fn bus() -> Harness {
    let mut h = Harness::start(Faults::default(), "").await;
    h.bus.take().unwrap().shutdown().await.unwrap();
    let text = support::config_text(h.dir.path(), h.sink_addr, "").replace(
        "max_batch = 100\n",
        "max_batch = 100\nheader_read_timeout = \"1s\"\nbody_read_timeout = \"1s\"\n",
    );
    let (cfg, keys) = support::parse_config(&text);
    assert_eq!(cfg.server.body_read_timeout, Duration::from_secs(1));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    h.bus = Some(
        lienthong::app::Bus::start(cfg, keys, listener)
            .await
            .unwrap(),
    );
    h
}

async fn bus_with(extra: &str) -> Harness {
    Harness::start(Faults::default(), extra).await
}

async fn post(h: &Harness, path: &str, key: &str, ct: &str, body: Vec<u8>) -> (u16, Value) {
    let resp = h
        .client
        .post(h.url(path))
        .bearer_auth(key)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Nothing was stored, and a normal request is still served.
async fn still_serving_and_nothing_stored(h: &Harness) {
    assert_eq!(
        h.bus().outbox.stats().accepted_since_start,
        0,
        "nothing stored"
    );
    let resp = h
        .post(
            "nafosted",
            Some("dossier_sync"),
            &json!({"dossierCode": "OK-1"}),
        )
        .await;
    assert_eq!(resp.status(), 202, "the bus still serves");
}

fn soap(inner: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>{inner}</soap:Body></soap:Envelope>"#
    )
    .into_bytes()
}

const SOAP_ROUTES: &str = r#"
[units.stameq.soap_operations]
GuiHoSo = "dossier_sync"
"#;

#[tokio::test]
async fn xml_bombs_and_external_entities_are_refused() {
    let h = bus_with(SOAP_ROUTES).await;
    let laughs = br#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><GuiHoSo><SoHoSo>&lol3;</SoHoSo></GuiHoSo></soap:Body></soap:Envelope>"#;
    let xxe = br#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><GuiHoSo><SoHoSo>&xxe;</SoHoSo></GuiHoSo></soap:Body></soap:Envelope>"#;
    for (what, body) in [
        ("billion laughs", &laughs[..]),
        ("external entity", &xxe[..]),
    ] {
        let (status, body) = post(&h, "/soap/stameq", STAMEQ_KEY, "text/xml", body.to_vec()).await;
        // SOAP 1.1 answers a fault with HTTP 500; the fault code says whose fault it is.
        assert_eq!(status, 500, "{what}: {body}");
        let text = body.to_string();
        assert!(
            text.contains("<faultcode>soap:Client</faultcode>"),
            "{what}: {text}"
        );
        assert!(text.contains("DOCTYPE"), "{what}: {text}");
        assert!(!text.contains("root:"), "{what}: no file read");
    }
    still_serving_and_nothing_stored(&h).await;
    h.shutdown().await;
}

#[tokio::test]
async fn deep_and_oversized_bodies_are_refused() {
    let h = bus_with(SOAP_ROUTES).await;
    // JSON nested far deeper than any event.
    let deep_json = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let (status, body) = post(
        &h,
        "/api/v1/units/nafosted/events?flow=dossier_sync",
        NAFOSTED_KEY,
        "application/json",
        deep_json.into_bytes(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "too_deep", "{body}");
    // XML nested deeper than the decoder's limit.
    let deep_xml = soap(&format!(
        "<GuiHoSo>{}{}</GuiHoSo>",
        "<a>".repeat(2_000),
        "</a>".repeat(2_000)
    ));
    let (status, body) = post(&h, "/soap/stameq", STAMEQ_KEY, "text/xml", deep_xml).await;
    assert_eq!(status, 500, "{body}");
    assert!(body.to_string().contains("soap:Client"), "{body}");
    assert!(body.to_string().contains("deep"), "{body}");
    // Over server.max_body_bytes (64 KiB in the test config), on every ingress.
    let big = vec![b' '; 70 * 1024];
    for path in [
        "/api/v1/units/nafosted/events?flow=dossier_sync",
        "/soap/stameq",
        "/callbacks/payment",
        "/api/v1/units/nafosted/lookup/citizen",
    ] {
        // Each with its unit's own key: a request without it is refused before its size.
        let key = if path.contains("stameq") {
            STAMEQ_KEY
        } else {
            NAFOSTED_KEY
        };
        let (status, body) = post(&h, path, key, "application/json", big.clone()).await;
        assert_eq!(status, 413, "{path}: {body}");
        assert_eq!(body["error"]["code"], "body_too_large", "{path}: {body}");
    }
    still_serving_and_nothing_stored(&h).await;
    h.shutdown().await;
}

#[tokio::test]
async fn invalid_and_mixed_encodings_get_a_clear_error() {
    let h = bus_with(SOAP_ROUTES).await;
    // Latin-1 bytes in a body that says nothing (so UTF-8): refused, naming the problem.
    let (status, body) = post(
        &h,
        "/api/v1/units/nafosted/events?flow=dossier_sync",
        NAFOSTED_KEY,
        "application/json",
        b"{\"dossierCode\": \"HS-\xe9\"}".to_vec(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_utf8", "{body}");
    // XML declaring UTF-8 with a Windows-1252 byte inside.
    let mixed = soap("<GuiHoSo><SoHoSo>HS-\u{0}</SoHoSo></GuiHoSo>")
        .into_iter()
        .map(|b| if b == 0 { 0xe9 } else { b })
        .collect();
    let (status, body) = post(&h, "/soap/stameq", STAMEQ_KEY, "text/xml", mixed).await;
    assert_eq!(status, 500, "{body}");
    assert!(body.to_string().contains("soap:Client"), "{body}");
    assert!(body.to_string().to_lowercase().contains("utf-8"), "{body}");
    still_serving_and_nothing_stored(&h).await;
    h.shutdown().await;
}

#[tokio::test]
async fn slow_loris_clients_are_cut_off_and_others_are_served() {
    let h = bus().await;
    let addr = h.bus().addr;
    // Headers trickled: the connection is closed after server.header_read_timeout.
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"POST /api/v1/units/nafosted/events?flow=dossier_sync HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Meanwhile an ordinary client is served.
    still_serving_and_nothing_stored(&h).await;
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection was closed");
    assert!(started.elapsed() < Duration::from_secs(5));
    // A body trickled: 408 with a JSON error after server.body_read_timeout.
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(
        format!(
            "POST /api/v1/units/nafosted/events?flow=dossier_sync HTTP/1.1\r\nHost: x\r\n\
             Authorization: Bearer {NAFOSTED_KEY}\r\nContent-Type: application/json\r\n\
             Content-Length: 100\r\n\r\n{{\"dossierCode\""
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), slow.read(&mut buf))
        .await
        .expect("answered")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    assert_eq!(
        h.bus().outbox.stats().accepted_since_start,
        1,
        "only the ordinary event"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_unit_over_its_request_rate_gets_429_and_others_go_on() {
    let h = bus_with("[units.nafosted.rate_limit]\nper_second = 2\nburst = 3\n").await;
    let mut statuses = Vec::new();
    for n in 0..6 {
        let resp = h
            .post(
                "nafosted",
                Some("dossier_sync"),
                &json!({"dossierCode": format!("R-{n}")}),
            )
            .await;
        let retry_after = resp.headers().get("retry-after").cloned();
        let status = resp.status().as_u16();
        if status == 429 {
            assert!(retry_after.is_some(), "Retry-After is given");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("nafosted")
            );
        }
        statuses.push(status);
    }
    assert_eq!(&statuses[..3], [202, 202, 202], "{statuses:?}");
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    // A wrong key does not spend NAFOSTED's allowance, and STAMEQ is not limited by it.
    let resp = h
        .post(
            "stameq",
            Some("dossier_sync"),
            &json!({"dossierCode": "S-1"}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    assert_eq!(
        h.bus().outbox.stats().accepted_since_start as usize,
        statuses.iter().filter(|s| **s == 202).count() + 1,
        "refused requests stored nothing"
    );
    h.shutdown().await;
}
