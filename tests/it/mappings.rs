//! Mappings in the running bus: XML and CSV bodies decoded at ingress, each target's copy
//! mapped at delivery, mapping failures as dead letters naming the field, reload on file
//! change (a broken edit refused, the previous version kept), and the shipped lookup
//! mappings spoken to the population mock over real SOAP.

use crate::support;

use lienthong_mapping::Mapping;
use lienthong_mocks::Faults;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{Harness, NAFOSTED_KEY, STAMEQ_KEY, wait_until};

fn shipped_mappings() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mappings")
}

/// Routes through the shipped mappings (in `dir`), on targets `a` and `b` of the sink.
fn mapped_routes(dir: &Path, poll: &str) -> String {
    format!(
        r#"
[mappings]
dir = "{dir}"
watch = true
poll_interval = "{poll}"
[[routes]]
unit = "stameq"
flow = "xml_sync"
targets = ["a"]
ordering = "per_key"
key = "/GuiHoSo/HoSo/SoHoSo"
on_dead = "skip"
mappings = {{ a = "stameq/dossier_sync.toml" }}
[[routes]]
unit = "nafosted"
flow = "progress"
targets = ["a", "b"]
ordering = "per_key"
key = "/dossierCode"
on_dead = "skip"
mappings = {{ a = "nafosted/dossier_progress.toml" }}
[[routes]]
unit = "stameq"
flow = "csv_batch"
targets = ["b"]
ordering = "none"
mappings = {{ b = "ipo/dossier_sync.toml" }}
"#,
        dir = dir.display()
    )
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(shipped_mappings().join(path)).unwrap()
}

async fn post_raw(
    h: &Harness,
    unit: &str,
    flow: &str,
    ct: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    let key = if unit == "stameq" {
        STAMEQ_KEY
    } else {
        NAFOSTED_KEY
    };
    h.client
        .post(h.url(&format!("/api/v1/units/{unit}/events?flow={flow}")))
        .bearer_auth(key)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn soap_xml_in_portal_json_out_and_untouched_copies_for_unmapped_targets() {
    let h = Harness::start(Faults::default(), &mapped_routes(&shipped_mappings(), "1h")).await;
    let xml = fixture("stameq/tests/dossier_sync/01-new-import-inspection.input.xml");
    let resp = post_raw(&h, "stameq", "xml_sync", "text/xml; charset=utf-8", xml).await;
    assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());

    // The JSON event of the progress route goes mapped to `a` and as sent to `b`.
    let step = serde_json::json!({"dossierCode": "NAFOSTED-2024-00042", "step": {"officer": "Đỗ Văn Nam", "at": "2024-03-08T14:05:00+07:00", "note": "Chuyển hội đồng"}});
    let resp = h.post("nafosted", Some("progress"), &step).await;
    assert_eq!(resp.status(), 202);

    wait_until(Duration::from_secs(10), "three deliveries", || {
        h.sink.delivered_count() >= 3
    })
    .await;
    let got = h.sink.delivered();
    let expected: serde_json::Value = serde_json::from_slice(&fixture(
        "stameq/tests/dossier_sync/01-new-import-inspection.expected.json",
    ))
    .unwrap();
    let portal = got
        .iter()
        .find(|r| r.key.as_deref() == Some("STAMEQ-2024-000123"))
        .unwrap();
    assert_eq!(portal.target, "a");
    assert_eq!(
        portal.json(),
        expected,
        "the bus sends what the fixture says"
    );

    let mapped = got
        .iter()
        .find(|r| r.target == "a" && r.key.as_deref() == Some("NAFOSTED-2024-00042"))
        .unwrap();
    assert_eq!(mapped.json()["service"], "CapNhatTienDoHoSoMC");
    assert_eq!(mapped.json()["data"][0]["ThoiDiemXuLy"], "20240308140500");
    let raw = got.iter().find(|r| r.target == "b").unwrap();
    assert_eq!(
        raw.json(),
        step,
        "a target without a mapping gets the event as sent"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_csv_file_is_one_event_per_row_and_bad_bodies_are_refused_whole() {
    let h = Harness::start(Faults::default(), &mapped_routes(&shipped_mappings(), "1h")).await;
    let csv = fixture("ipo/tests/dossier_sync/02-two-trademarks.input.csv");
    let resp = post_raw(&h, "stameq", "csv_batch", "text/csv", csv).await;
    assert_eq!(resp.status(), 202);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["accepted"].as_array().unwrap().len(), 2);
    wait_until(Duration::from_secs(10), "two rows delivered", || {
        h.sink.delivered_count() >= 2
    })
    .await;
    let names: Vec<String> = h
        .sink
        .delivered()
        .iter()
        .map(|r| r.json()["data"][0]["ChuHoSo"].as_str().unwrap().to_string())
        .collect();
    assert!(
        names.contains(&"Công ty cổ phần thực phẩm Sen Vàng".to_string()),
        "{names:?}"
    );

    // A ragged row: 400 naming the line, nothing stored.
    let ragged = fixture("ipo/tests/dossier_sync/03-ragged-row.input.csv");
    let resp = post_raw(&h, "stameq", "csv_batch", "text/csv", ragged).await;
    assert_eq!(resp.status(), 400);
    let err: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "malformed_body");
    assert_eq!(err["error"]["line"], 2, "{err}");

    // Malformed XML names its line; XML on a JSON-only flow is 415.
    let resp = post_raw(
        &h,
        "stameq",
        "xml_sync",
        "text/xml",
        b"<a>\n<b></a>".to_vec(),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let err: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["line"], 2, "{err}");
    let resp = post_raw(&h, "nafosted", "progress", "text/xml", b"<a/>".to_vec()).await;
    assert_eq!(resp.status(), 415);
    let err: serde_json::Value = resp.json().await.unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("application/json"),
        "{err}"
    );
    // A DOCTYPE is refused before anything is stored.
    let bomb = br#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>"#.to_vec();
    let resp = post_raw(&h, "stameq", "xml_sync", "application/xml", bomb).await;
    assert_eq!(resp.status(), 400);
    // Only the two good events were ever stored (counted when stored, whatever has been
    // delivered meanwhile).
    assert_eq!(h.bus().outbox.stats().accepted_since_start, 2);
    h.shutdown().await;
}

#[tokio::test]
async fn a_mapping_failure_is_a_dead_letter_naming_the_field_and_others_go_on() {
    // Checked at delivery (`validate = "deliver"`): the door would refuse the bad one.
    let routes = mapped_routes(&shipped_mappings(), "1h")
        .replace("[[routes]]", "[[routes]]\nvalidate = \"deliver\"");
    let h = Harness::start(Faults::default(), &routes).await;
    let bad = serde_json::json!({"dossierCode": "NAFOSTED-2024-00099", "step": {"officer": "A", "at": "hôm qua", "note": "x"}});
    let good = serde_json::json!({"dossierCode": "NAFOSTED-2024-00100", "step": {"officer": "A", "at": 1710000000, "note": "x"}});
    assert_eq!(
        h.post("nafosted", Some("progress"), &bad).await.status(),
        202
    );
    assert_eq!(
        h.post("nafosted", Some("progress"), &good).await.status(),
        202
    );
    wait_until(
        Duration::from_secs(10),
        "the dead letter and three deliveries",
        || h.bus().outbox.stats().dead == 1 && h.sink.delivered_count() == 3,
    )
    .await;
    let dead = h.bus().outbox.dead_letters(Some("a"), 10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].key.as_deref(), Some("NAFOSTED-2024-00099"));
    assert!(
        dead[0].reason.contains("data[0].ThoiDiemXuLy"),
        "{}",
        dead[0].reason
    );
    assert!(dead[0].reason.contains("step.at"), "{}", dead[0].reason);
    assert!(dead[0].reason.contains("hôm qua"), "{}", dead[0].reason);
    // The unmapped target `b` got both, the mapped one only the good event.
    assert_eq!(
        h.sink
            .delivered()
            .iter()
            .filter(|r| r.target == "b")
            .count(),
        2
    );
    h.shutdown().await;
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[tokio::test]
async fn changed_mapping_files_are_picked_up_and_a_broken_edit_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mappings");
    copy_dir(&shipped_mappings(), &dir);
    let h = Harness::start(Faults::default(), &mapped_routes(&dir, "50ms")).await;
    let file = dir.join("nafosted/dossier_progress.toml");
    let original = std::fs::read_to_string(&file).unwrap();
    let step = |n: u32| serde_json::json!({"dossierCode": format!("NAFOSTED-R-{n}"), "step": {"officer": "A", "at": 1710000000, "note": "x"}});

    assert_eq!(
        h.post("nafosted", Some("progress"), &step(1))
            .await
            .status(),
        202
    );
    wait_until(Duration::from_secs(10), "first delivery", || {
        h.sink.delivered().iter().any(|r| r.target == "a")
    })
    .await;

    // An edit that compiles, with its cases brought up to date (a reload runs them, and
    // refuses an edit that breaks one): new deliveries use it.
    let cases = dir.join("nafosted/tests/dossier_progress");
    for entry in std::fs::read_dir(&cases).unwrap().flatten() {
        let path = entry.path();
        if !path.to_string_lossy().ends_with(".expected.json") {
            continue;
        }
        let mut expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let record = expected["data"][0].as_object_mut().unwrap();
        if let Some(title) = record.remove("ChucDanh") {
            record.insert("ChucVu".into(), title);
        }
        record.insert("Nguon".into(), "lienthong".into());
        std::fs::write(&path, serde_json::to_string_pretty(&expected).unwrap()).unwrap();
    }
    std::fs::write(&file, original.replace(r#"to = "data[0].ChucDanh""#, r#"to = "data[0].ChucVu""#).replace(
        "[[field]]\nto = \"data[0].NguoiXuLy\"",
        "[[field]]\nto = \"data[0].Nguon\"\nconst = \"lienthong\"\n\n[[field]]\nto = \"data[0].NguoiXuLy\"",
    ))
    .unwrap();
    let set = std::sync::Arc::clone(&h.bus().mappings);
    wait_until(Duration::from_secs(10), "the reload", || {
        !set.changed_on_disk()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        h.post("nafosted", Some("progress"), &step(2))
            .await
            .status(),
        202
    );
    wait_until(Duration::from_secs(10), "second delivery", || {
        h.sink
            .delivered()
            .iter()
            .filter(|r| r.target == "a")
            .count()
            == 2
    })
    .await;
    let second = h
        .sink
        .delivered()
        .into_iter()
        .find(|r| r.key.as_deref() == Some("NAFOSTED-R-2") && r.target == "a")
        .unwrap();
    assert_eq!(
        second.json()["data"][0]["Nguon"],
        "lienthong",
        "the edited mapping is in use"
    );

    // A broken edit: refused, the previous (edited) version stays.
    std::fs::write(&file, "[mapping]\ndescription = \"broken\"\n[[field]]\nto = \"x\"\nfrom = \"a\"\ntable = \"nope\"\n").unwrap();
    wait_until(Duration::from_secs(10), "the refused reload", || {
        !set.changed_on_disk()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        h.post("nafosted", Some("progress"), &step(3))
            .await
            .status(),
        202
    );
    wait_until(Duration::from_secs(10), "third delivery", || {
        h.sink
            .delivered()
            .iter()
            .filter(|r| r.target == "a")
            .count()
            == 3
    })
    .await;
    let third = h
        .sink
        .delivered()
        .into_iter()
        .find(|r| r.key.as_deref() == Some("NAFOSTED-R-3") && r.target == "a")
        .unwrap();
    assert_eq!(third.json()["data"][0]["Nguon"], "lienthong");
    assert_eq!(h.bus().outbox.stats().dead, 0);
    assert!(set.reload().unwrap_err()[0].contains("unknown table `nope`"));
    h.shutdown().await;
}

#[tokio::test]
async fn a_broken_mapping_stops_the_start_with_file_line_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mappings");
    copy_dir(&shipped_mappings(), &dir);
    std::fs::write(
        dir.join("stameq/dossier_sync.toml"),
        "[mapping]\ndescription = \"x\"\n\n[[field]]\nto = \"a\"\nfrom = \"b\"\ndate = { from = \"DD/MM\", to = \"yyyyMMdd\" }\n",
    )
    .unwrap();
    let sink = lienthong_mocks::Sink::new(Faults::default());
    let sink_addr = sink.start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let (cfg, keys) = support::parse_config(&support::config_text(
        data.path(),
        sink_addr,
        &mapped_routes(&dir, "1h"),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = match lienthong::app::Bus::start(cfg, keys, listener).await {
        Ok(_) => panic!("a broken mapping must stop the start"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("stameq/dossier_sync.toml:4: field `a`"),
        "{err}"
    );
    assert!(err.contains("DD"), "{err}");
}

#[tokio::test]
async fn shipped_lookup_mappings_speak_soap_with_the_population_mock() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(lienthong_mocks::serve(
        listener,
        lienthong_mocks::MockSettings::default(),
    ));
    let root = shipped_mappings();
    let client = support::client();
    for unit in ["stameq", "nafosted", "ipo", "varans"] {
        let request =
            Mapping::load(&root.join(unit).join("citizen_lookup_request.toml"), &root).unwrap();
        let reply =
            Mapping::load(&root.join(unit).join("citizen_lookup_reply.toml"), &root).unwrap();
        let case = lienthong_mapping::fixtures::discover(&request.file)
            .unwrap()
            .remove(0);
        let input = std::fs::read(&case.input).unwrap();
        let record = request.decode(&input).unwrap().remove(0);
        let soap = request.render(&record).unwrap();
        let resp = client
            .post(format!("http://{addr}/population"))
            .header("content-type", request.content_type())
            .body(soap)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{unit}");
        let answer = resp.bytes().await.unwrap();
        let records = reply.decode(&answer).unwrap();
        let out = reply
            .map(&records[0])
            .unwrap_or_else(|e| panic!("{unit}: {e}"));
        let text = String::from_utf8(reply.encode_value(&out).unwrap()).unwrap();
        // The seeded citizen in each unit's first fixture exists, so each answer says found.
        assert!(
            text.contains("true") || text.contains("tim_thay=\"1\""),
            "{unit}: {text}"
        );
    }
}
