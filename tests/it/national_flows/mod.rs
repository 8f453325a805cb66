//! The national flows of Decision 1205 through the shipped configuration, against the
//! bundled mocks as real servers: every dossier event reaches both the portal and the
//! ministry's TTHC system in order, and a result's document is uploaded to the data store
//! first, then synced with the portal and the ministry under the file id the store gave —
//! through the store's failures and retries. Fees and notices are in [`payments`].

mod payments;
use crate::support;

use serde_json::{Value, json};
use std::time::Duration;
use support::{ShippedBus, get_json, wait_until};

fn varans_dossier(code: &str, state: u32) -> Value {
    json!({"dossierId": code, "procedure": {"code": "1.012345", "name": "Cấp giấy phép tiến hành công việc bức xạ"},
        "licenceType": "Sử dụng thiết bị X-quang chẩn đoán y tế", "facility": {"name": "Phòng khám Đa khoa Hồng Ngọc"},
        "applicant": {"kind": "ORG", "name": "Công ty cổ phần Bệnh viện Hồng Ngọc", "taxCode": "0100631043", "phone": "024 3927 5568"},
        "submissionChannel": "ONLINE", "receivedAt": 1709602200, "dueDate": "2024-04-04", "state": state})
}

fn varans_result(code: &str) -> Value {
    // "%PDF-1.4\n% ...": a PDF's magic, as the data store checks.
    json!({"dossierId": code, "licence": {"number": "GP-2001/ATBXHN", "validUntil": "2029-03-10",
        "holder": {"taxCode": "0100631043", "phone": "+84983456789"},
        "pdf": {"fileName": "GP-2001-ATBXHN.pdf", "base64": "JVBERi0xLjQKJSBHaWF5IHBoZXAgVkFSQU5TCjEgMCBvYmo8PC9UeXBlL0NhdGFsb2c+PmVuZG9iagp0cmFpbGVyPDwvUm9vdCAxIDAgUj4+CiUlRU9GCg=="}}})
}

/// The dossier `code` as the mock at `/_mock/{service}/dossiers` holds it.
async fn dossier(s: &ShippedBus, service: &str, code: &str) -> Value {
    let all = get_json(format!("http://{}/_mock/{service}/dossiers", s.mocks)).await;
    all["dossiers"][code].clone()
}

#[tokio::test]
async fn every_dossier_event_reaches_the_portal_and_the_ministry_in_order() {
    let s = ShippedBus::start().await;
    // The ministry's system is slow to answer for a while: order must hold on each.
    s.set_faults(json!([{"service": "bo-tthc", "error_rate": 0.3, "latency_ms": [5, 30]}]))
        .await;
    let code = "VARANS-2026-7001";
    for state in [10, 20, 30, 60] {
        s.send("varans", "dossier_sync", &varans_dossier(code, state))
            .await;
    }
    let mut both = Vec::new();
    for service in ["portal", "bo-tthc"] {
        let mut last = Value::Null;
        for _ in 0..300 {
            last = dossier(&s, service, code).await;
            if last["history"].as_array().is_some_and(|h| h.len() == 4) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let history: Vec<i64> = last["history"]
            .as_array()
            .unwrap_or_else(|| panic!("{service} never got {code}: {last}"))
            .iter()
            .map(|h| h["status"].as_i64().unwrap())
            .collect();
        both.push(history);
    }
    assert_eq!(
        both[0], both[1],
        "the portal and the ministry saw the same: {both:?}"
    );
    let mut sorted = both[0].clone();
    sorted.sort();
    assert_eq!(both[0], sorted, "statuses arrived in order: {:?}", both[0]);
    assert_eq!(both[0].len(), 4, "{both:?}");
    // Synced under VARANS's own unit code on both.
    for service in ["portal", "bo-tthc"] {
        assert_eq!(dossier(&s, service, code).await["madonvi"], "000.00.19.G22");
    }
    s.bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_result_reaches_the_data_store_first_and_its_file_id_the_portal_and_the_ministry() {
    let s = ShippedBus::start().await;
    let code = "VARANS-2026-7002";
    // The licence is issued (status 9): the unit says so before it sends the document.
    s.send("varans", "dossier_sync", &varans_dossier(code, 60))
        .await;
    wait_until(Duration::from_secs(15), "the dossier on both", || {
        // Checked below through the mocks' HTTP views; here, the deliveries.
        s.bus.outbox.stats().pending == 0
    })
    .await;
    // The data store refuses the first uploads: the result waits, retried, and the
    // portal hears nothing of it meanwhile.
    s.set_faults(json!([{"service": "datastore", "error_rate": 1.0}]))
        .await;
    s.send("varans", "result", &varans_result(code)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = dossier(&s, "portal", code).await;
    assert!(
        before["fields"]["DanhSachGiayToKetQua"].is_null(),
        "synced before the upload: {before}"
    );
    // The portal mock reports the dossier as lacking its result documents meanwhile.
    let incomplete = |v: Value| v["incomplete"][code].as_str().map(str::to_string);
    let all = get_json(format!("http://{}/_mock/portal/dossiers", s.mocks)).await;
    assert_eq!(
        incomplete(all).as_deref(),
        Some("status 9 without DanhSachGiayToKetQua")
    );
    s.set_faults(json!([])).await;
    let mut portal = Value::Null;
    for _ in 0..200 {
        portal = dossier(&s, "portal", code).await;
        if !portal["fields"]["DanhSachGiayToKetQua"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stored = get_json(format!("http://{}/_mock/datastore/documents", s.mocks)).await;
    let stored = &stored["documents"].as_array().unwrap()[0];
    let file_id = stored["file_id"].as_str().unwrap();
    let doc = &portal["fields"]["DanhSachGiayToKetQua"][0];
    assert_eq!(doc["GiayToId"], file_id, "{portal}");
    // The result-type code, and the licence's own number beside it (issue 34).
    assert_eq!(doc["MaGiayToKetQua"], "KQ-ATBXHN-GP");
    assert_eq!(doc["SoKyHieu"], "GP-2001/ATBXHN");
    let url = doc["DuongDanTepTinKetQua"].as_str().unwrap();
    assert!(
        url.ends_with(&format!("/datastore/files/{file_id}")),
        "{url}"
    );
    // The address serves the document the unit sent.
    let pdf = support::client()
        .get(url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    // The result sync is an update: the dossier keeps what it had, gains the document,
    // and is complete.
    assert_eq!(portal["fields"]["MaTTHC"], "1.012345");
    let all = get_json(format!("http://{}/_mock/portal/dossiers", s.mocks)).await;
    assert_eq!(incomplete(all), None);
    assert!(portal["regressions"].is_null() || portal["regressions"] == json!([]));
    let mut ministry = Value::Null;
    for _ in 0..100 {
        ministry = dossier(&s, "bo-tthc", code).await;
        if !ministry["fields"]["DanhSachGiayToKetQua"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        ministry["fields"]["DanhSachGiayToKetQua"][0]["GiayToId"],
        file_id
    );
    // Uploaded once, though tried several times.
    let all = get_json(format!("http://{}/_mock/datastore/documents", s.mocks)).await;
    assert_eq!(all["documents"].as_array().unwrap().len(), 1);
    // The licence handed over (status 10): the unit's row names no document, the portal
    // replaces the row it holds with the one it is sent, and still has the licence: the
    // bus sent the dossier's whole row, its result included.
    s.send("varans", "dossier_sync", &varans_dossier(code, 70))
        .await;
    let mut last = Value::Null;
    for _ in 0..150 {
        last = dossier(&s, "portal", code).await;
        if last["fields"]["TrangThaiHoSo"] == 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last["fields"]["TrangThaiHoSo"], 10, "{last}");
    assert_eq!(
        last["fields"]["DanhSachGiayToKetQua"][0]["GiayToId"], file_id,
        "{last}"
    );
    s.bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_result_that_is_not_the_pdf_it_claims_is_refused_and_nothing_reaches_the_portal() {
    let s = ShippedBus::start().await;
    let code = "VARANS-2026-7003";
    s.send("varans", "dossier_sync", &varans_dossier(code, 20))
        .await;
    let mut bad = varans_result(code);
    // "<html>..." in base64: not a PDF.
    bad["licence"]["pdf"]["base64"] = json!("PGh0bWw+PC9odG1sPg==");
    // Refused at the door, the field named as VARANS wrote it: nothing is stored.
    let r = support::client()
        .post(s.url("/api/v1/units/varans/events/result"))
        .bearer_auth(&s.keys["varans"])
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    let problem = &body["error"]["problems"][0];
    assert_eq!(problem["field"], "/licence/pdf/base64", "{body}");
    assert!(
        problem["problem"].as_str().unwrap().contains("PDF"),
        "{body}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let portal = dossier(&s, "portal", code).await;
    assert!(portal["fields"]["DanhSachGiayToKetQua"].is_null());
    s.bus.shutdown().await.unwrap();
}

/// The bodies the sink took for `target`, as text.
fn at_sink(s: &ShippedBus, target: &str) -> Vec<String> {
    s.sink
        .delivered()
        .into_iter()
        .filter(|r| r.target == target)
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect()
}

#[tokio::test]
async fn an_ip_office_grant_reaches_the_data_store_and_its_id_the_portal() {
    let s = ShippedBus::start().await;
    let post = |flow: &str, body: Vec<u8>, ct: &'static str| {
        support::client()
            .post(s.url(&format!("/api/v1/units/ipo/events?flow={flow}")))
            .bearer_auth(&s.keys["ipo"])
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let csv =
        std::fs::read("mappings/ipo/tests/dossier_sync/01-patent-by-citizen.input.csv").unwrap();
    assert_eq!(
        post("dossier_sync", csv, "text/csv")
            .await
            .unwrap()
            .status(),
        202
    );
    let grant = std::fs::read("mappings/ipo/tests/result_datastore/01-patent.input.xml").unwrap();
    assert_eq!(
        post("result", grant, "text/xml").await.unwrap().status(),
        202
    );
    let mut portal = Value::Null;
    for _ in 0..150 {
        portal = dossier(&s, "portal", "4-2024-01234").await;
        if !portal["fields"]["DanhSachGiayToKetQua"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let doc = &portal["fields"]["DanhSachGiayToKetQua"][0];
    assert!(
        doc["GiayToId"]
            .as_str()
            .is_some_and(|id| id.starts_with("KDL-")),
        "{portal}"
    );
    assert_eq!(doc["TenGiayTo"], "Bằng độc quyền sáng chế số 1-0045678");
    assert_eq!(portal["madonvi"], "000.00.18.G22");
    let stored = get_json(format!("http://{}/_mock/datastore/documents", s.mocks)).await;
    assert_eq!(stored["documents"][0]["owner"], "001085012345", "{stored}");
    s.bus.shutdown().await.unwrap();
}

/// What the notification mock sent to `phone`.
async fn sent_to(s: &ShippedBus, phone: &str) -> Vec<Value> {
    let all = get_json(format!("http://{}/_mock/notify/messages", s.mocks)).await;
    all["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["phone"] == phone)
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_scanned_result_larger_than_the_server_limit_goes_through_its_route_only_with_the_key() {
    use base64::Engine;
    let s = ShippedBus::start().await;
    let code = "VARANS-2026-7010";
    // A 13 MB scan: 17.4 MB in base64, four times `server.max_body_bytes` (4 MiB) and over
    // the mapping decoders' own 16 MiB; the result route takes up to 32 MiB.
    let mut pdf = b"%PDF-1.4\n%scan\n".to_vec();
    pdf.extend(std::iter::repeat_n(b'x', 13_000_000));
    pdf.extend(b"\n%%EOF\n");
    let mut event = varans_result(code);
    event["licence"]["pdf"]["base64"] =
        json!(base64::engine::general_purpose::STANDARD.encode(&pdf));
    let body = serde_json::to_vec(&event).unwrap();
    assert!(body.len() > 16 * 1024 * 1024, "{}", body.len());
    let post = |flow: &str, key: Option<&str>| {
        let mut req = support::client()
            .post(s.url(&format!("/api/v1/units/varans/events?flow={flow}")))
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        req.send()
    };
    // Without the unit's key: refused before a byte of it is read.
    let r = post("result", None).await.unwrap();
    assert_eq!(r.status(), 401, "{}", r.text().await.unwrap());
    // Another flow of the unit keeps the server's limit.
    let r = post("dossier_sync", Some(&s.keys["varans"])).await.unwrap();
    assert_eq!(r.status(), 413, "{}", r.text().await.unwrap());
    // The result route with the key: taken, uploaded whole, its id at the portal.
    let r = post("result", Some(&s.keys["varans"])).await.unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let mut docs = Value::Null;
    for _ in 0..300 {
        docs = get_json(format!("http://{}/_mock/datastore/documents", s.mocks)).await;
        if !docs["documents"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let doc = &docs["documents"][0];
    assert_eq!(doc["size"], pdf.len(), "{docs}");
    let digest = {
        use sha2::Digest;
        lienthong::hex::encode(&sha2::Sha256::digest(&pdf))
    };
    assert_eq!(doc["sha256"], digest.as_str());
    s.bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_unit_reads_where_its_own_messages_and_dossiers_stand_and_no_one_elses() {
    let s = ShippedBus::start().await;
    let code = "VARANS-2026-7020";
    let id = s
        .send("varans", "dossier_sync", &varans_dossier(code, 20))
        .await;
    wait_until(Duration::from_secs(15), "delivered", || {
        s.bus.outbox.stats().pending == 0
    })
    .await;
    let get = |unit: &str, path: String, key: Option<String>| {
        let mut req = support::client().get(s.url(&format!("/api/v1/units/{unit}/{path}")));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let key = |unit: &str| Some(s.keys[unit].clone());
    // Its message: delivered to the portal and the ministry.
    let (status, m) = get("varans", format!("messages/{id}"), key("varans")).await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["flow"], "dossier_sync");
    let states: Vec<(&str, &str)> = m["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["target"].as_str().unwrap(),
                d["delivery"]["state"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(states.len(), 2, "{m}");
    assert!(states.iter().all(|(_, st)| *st == "delivered"), "{m}");
    // Its dossier: synced with the portal.
    let (status, d) = get("varans", format!("dossiers/{code}"), key("varans")).await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["portal_synced"], true, "{d}");
    // Another unit, with its own key, sees neither; without a key, nothing at all.
    let (status, e) = get("nafosted", format!("messages/{id}"), key("nafosted")).await;
    assert_eq!(status, 404, "{e}");
    let (status, e) = get("nafosted", format!("dossiers/{code}"), key("nafosted")).await;
    assert_eq!(status, 404, "{e}");
    let (status, e) = get("nafosted", format!("messages/{id}"), key("varans")).await;
    assert_eq!(status, 403, "another unit's key: {e}");
    let (status, _) = get("varans", format!("messages/{id}"), None).await;
    assert_eq!(status, 401);
    let (status, e) = get("varans", "messages/not-an-id".into(), key("varans")).await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"]["field"], "id", "{e}");
    s.bus.shutdown().await.unwrap();
}
