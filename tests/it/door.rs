//! The door: an event its route's mappings can never deliver is refused before it is
//! stored, on every way in (JSON, SOAP, CSV, the drop folder), with each problem named in
//! the unit's own terms; `validate = "deliver"` keeps the old way (stored, then a dead
//! letter). Driven against the shipped configuration and mappings, with the bundled mocks.

use crate::support;

use serde_json::{Value, json};
use std::time::Duration;
use support::{ShippedBus, client, wait_until};

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("mappings")
            .join(path),
    )
    .unwrap()
}

fn fixture_json(path: &str) -> Value {
    serde_json::from_slice(&fixture(path)).unwrap()
}

/// POST `body` as `content_type` to `path` with `unit`'s key: (status, body text).
async fn post(
    bus: &ShippedBus,
    unit: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, String) {
    let r = client()
        .post(bus.url(path))
        .bearer_auth(&bus.keys[unit])
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// What the bus knows of `unit`'s dossier `code`, asked as the unit: its status code.
async fn dossier_known(bus: &ShippedBus, unit: &str, code: &str) -> u16 {
    client()
        .get(bus.url(&format!("/api/v1/units/{unit}/dossiers/{code}")))
        .bearer_auth(&bus.keys[unit])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn problems(body: &str) -> Vec<(String, String)> {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(v["error"]["code"], "invalid_event", "{body}");
    v["error"]["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("no problems listed: {body}"))
        .iter()
        .map(|p| {
            (
                p["field"].as_str().unwrap().to_string(),
                p["problem"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_batch_with_undeliverable_events_is_refused_whole_naming_each_field() {
    let bus = ShippedBus::start().await;
    let good = fixture_json("nafosted/tests/dossier_sync/01-new-dossier.input.json");
    let mut bad_id = fixture_json("nafosted/tests/dossier_sync/05-bad-id-number.input.json");
    bad_id["dossierCode"] = json!("NAFOSTED-2024-DOOR-1");
    // Two things missing at once, and an object where text belongs.
    let mut hollow = good.clone();
    hollow["dossierCode"] = json!("NAFOSTED-2024-DOOR-2");
    hollow.as_object_mut().unwrap().remove("procedureCode");
    hollow.as_object_mut().unwrap().remove("submittedAt");
    hollow["applicant"]["fullName"] = json!({"ho": "Nguyễn"});
    let batch = serde_json::to_vec(&json!([good, bad_id, hollow])).unwrap();
    let path = "/api/v1/units/nafosted/events/dossier_sync";
    let (status, body) = post(&bus, "nafosted", path, "application/json", batch).await;
    assert_eq!(status, 400, "{body}");
    let found = problems(&body);
    let fields: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
    assert!(fields.contains(&"[1]/applicant/idNumber"), "{body}");
    for f in [
        "[2]/procedureCode",
        "[2]/submittedAt",
        "[2]/applicant/fullName",
    ] {
        assert!(fields.contains(&f), "{f} not named: {body}");
    }
    assert!(
        !fields.iter().any(|f| f.starts_with("[0]")),
        "the good event is fine: {body}"
    );
    let id_problem = &found
        .iter()
        .find(|(f, _)| f == "[1]/applicant/idNumber")
        .unwrap()
        .1;
    assert!(id_problem.contains("12-digit"), "{id_problem}");
    // All or nothing: the good event of the refused batch was not stored either.
    assert_eq!(
        dossier_known(&bus, "nafosted", "NAFOSTED-2024-00042").await,
        404
    );

    // Sent alone, corrected, it is taken and delivered.
    let id = bus.send("nafosted", "dossier_sync", &good).await;
    bus.delivered_to("nafosted", &id, "portal").await;
    bus.bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soap_message_with_an_undeliverable_event_is_a_client_fault_with_a_problem_per_field() {
    let bus = ShippedBus::start().await;
    let xml = String::from_utf8(fixture(
        "stameq/tests/dossier_sync/03-unknown-applicant-kind.input.xml",
    ))
    .unwrap();
    let inner = match xml.find("?>") {
        Some(i) => &xml[i + 2..],
        None => &xml[..],
    };
    let envelope = format!(
        r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>{inner}</soap:Body></soap:Envelope>"#
    );
    let (status, body) = post(&bus, "stameq", "/soap/stameq", "text/xml", envelope.into()).await;
    // SOAP 1.1 (WS-I BP R1126): a fault is a 500; its faultcode says it is the sender's.
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("<faultcode>soap:Client</faultcode>"),
        "{body}"
    );
    assert!(body.contains("<code>invalid_event</code>"), "{body}");
    assert!(
        body.contains("<problem><field>[0]/GuiHoSo/HoSo/NguoiNop/@loai</field>"),
        "{body}"
    );
    assert!(body.contains("hokinhdoanh"), "{body}");
    bus.bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_record_that_cannot_be_delivered_is_named_by_its_line_and_column() {
    let bus = ShippedBus::start().await;
    let csv = fixture("ipo/tests/dossier_sync/04-unknown-state.input.csv");
    let path = "/api/v1/units/ipo/events/dossier_sync";
    let (status, body) = post(&bus, "ipo", path, "text/csv", csv).await;
    assert_eq!(status, 400, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let p = &v["error"]["problems"][0];
    assert_eq!(p["field"], "trang_thai", "{body}");
    assert_eq!(p["line"], 2, "{body}");
    assert!(
        p["problem"].as_str().unwrap().contains("CHO_DUYET"),
        "{body}"
    );
    assert_eq!(dossier_known(&bus, "ipo", "4-2024-05681").await, 404);
    bus.bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_file_with_an_undeliverable_record_is_moved_aside_with_its_report() {
    let bus = ShippedBus::start_with(|c| {
        c.inbox.poll_interval = Duration::from_millis(50);
        c.inbox.settle = Duration::from_millis(100);
    })
    .await;
    let folder = bus.dir.path().join("inbox/ipo/dossier_sync");
    std::fs::create_dir_all(&folder).unwrap();
    let csv = fixture("ipo/tests/dossier_sync/04-unknown-state.input.csv");
    std::fs::write(folder.join(".don.csv.part"), &csv).unwrap();
    std::fs::rename(folder.join(".don.csv.part"), folder.join("don.csv")).unwrap();
    let report = folder.join("rejected/don.csv.report.txt");
    wait_until(Duration::from_secs(20), "the file is rejected", || {
        report.exists()
    })
    .await;
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(
        text.contains("REJECTED, nothing from this file was stored"),
        "{text}"
    );
    assert!(
        text.contains("trang_thai") && text.contains("CHO_DUYET"),
        "{text}"
    );
    assert!(text.contains("invalid_event"), "{text}");
    assert!(folder.join("rejected/don.csv").exists());
    assert_eq!(dossier_known(&bus, "ipo", "4-2024-05681").await, 404);
    bus.bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_that_validates_at_delivery_stores_the_event_and_dead_letters_it() {
    let bus = ShippedBus::start_with(|c| {
        for r in c.routes.iter_mut() {
            if r.unit == "nafosted" && r.flow == "dossier_sync" {
                r.validate = lienthong::config::Validate::Deliver;
            }
        }
    })
    .await;
    let bad = fixture_json("nafosted/tests/dossier_sync/05-bad-id-number.input.json");
    let id = bus.send("nafosted", "dossier_sync", &bad).await;
    // Stored, then refused by its mapping at delivery: a dead letter naming the field.
    let mut last = Value::Null;
    for _ in 0..200 {
        let (_, state) = {
            let r = client()
                .get(bus.url(&format!("/api/v1/units/nafosted/messages/{id}")))
                .bearer_auth(&bus.keys["nafosted"])
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        };
        last = state;
        if last.to_string().contains("\"dead\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(last.to_string().contains("\"dead\""), "{last}");
    assert!(last.to_string().contains("MaDoiTuong"), "{last}");
    bus.bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_event_is_held_to_its_published_schema_which_takes_every_spelling_the_mapping_reads()
{
    let bus = ShippedBus::start().await;
    let path = "/api/v1/units/nafosted/events/dossier_sync";
    // The unit's own spellings: a status in capitals, a landline with spaces, amounts as
    // text; and the 30th of April.
    let mut ok =
        fixture_json("nafosted/tests/dossier_sync/02-awaiting-payment-with-fees.input.json");
    ok["dossierCode"] = json!("NAFOSTED-2024-DOOR-30");
    ok["submittedAt"] = json!("2024-04-30T08:30:00+07:00");
    let (status, body) = post(
        &bus,
        "nafosted",
        path,
        "application/json",
        serde_json::to_vec(&ok).unwrap(),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    // What the document forbids is refused, every field at once: a code not in the list,
    // a day April does not have, a list where text belongs.
    let mut bad = ok.clone();
    bad["dossierCode"] = json!("NAFOSTED-2024-DOOR-31");
    bad["status"] = json!("archived");
    bad["submittedAt"] = json!("2024-04-31T08:30:00+07:00");
    bad["procedureName"] = json!(["a", "list"]);
    let (status, body) = post(
        &bus,
        "nafosted",
        path,
        "application/json",
        serde_json::to_vec(&bad).unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let found = problems(&body);
    for field in ["/status", "/submittedAt", "/procedureName"] {
        assert!(
            found.iter().any(|(f, _)| f == field),
            "{field} not named: {body}"
        );
    }
    assert_eq!(
        dossier_known(&bus, "nafosted", "NAFOSTED-2024-DOOR-31").await,
        404
    );
    bus.bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xml_event_is_held_to_the_body_its_document_describes_read_as_text() {
    let bus = ShippedBus::start().await;
    let path = "/api/v1/units/stameq/events/dossier_sync";
    let doc = |hinh_thuc: &str, ngay_nhan: &str, linh_vuc: &str| {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><GuiHoSo xmlns="http://stameq.gov.vn/motcua/1.0"><HoSo loai="moi"><SoHoSo>STAMEQ-2024-DOOR-XML</SoHoSo><MaThuTuc>1.000412</MaThuTuc>{linh_vuc}<NguoiNop loai="congdan"><HoTen>Nguyễn Văn An</HoTen><MaSo>001040621374</MaSo></NguoiNop><NgayNhan>{ngay_nhan}</NgayNhan><TinhTrang>DA_TIEP_NHAN</TinhTrang><HinhThucNop>{hinh_thuc}</HinhThucNop><NgayHenTra></NgayHenTra></HoSo></GuiHoSo>"#
        )
        .into_bytes()
    };
    // The document's code list and date form, each named at once; nothing stored.
    let bad = doc("QUA_FAX", "2024-03-05 nine o'clock", "");
    let (status, body) = post(&bus, "stameq", path, "text/xml", bad).await;
    assert_eq!(status, 400, "{body}");
    let found = problems(&body);
    let fields: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        ["[0]/GuiHoSo/HoSo/HinhThucNop", "[0]/GuiHoSo/HoSo/NgayNhan"],
        "{body}"
    );
    assert!(found[0].1.contains("QUA_FAX"), "{body}");
    assert_eq!(
        dossier_known(&bus, "stameq", "STAMEQ-2024-DOOR-XML").await,
        404
    );
    // Read as text: an empty element is a field not given, and an element written with
    // its text alone (no `ma` attribute) is its `#text`.
    let good = doc(
        "TRUC_TUYEN",
        "05/03/2024 08:30",
        "<LinhVuc>Tiêu chuẩn đo lường chất lượng</LinhVuc>",
    );
    let (status, body) = post(&bus, "stameq", path, "text/xml", good).await;
    assert_eq!(status, 202, "{body}");
    bus.bus.shutdown().await.unwrap();
}
