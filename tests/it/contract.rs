//! The API contract: the OpenAPI document a unit team generates its client from says what
//! the bus does. A contract-testing tool nobody here wrote, Schemathesis (installed by
//! `scripts/test`), runs against the shipped configuration with the bundled mocks: every
//! operation of each unit's document with that unit's key, and the admin API with the
//! operator token; fixed seed, 50 examples per operation. Its checks: no undocumented
//! status, no schema-valid request rejected, no schema-violating request accepted, no
//! response that breaks its schema, no 5xx.

use crate::support;

use serde_json::Value;
use std::process::Command;
use support::{SHIPPED_OPERATOR, ShippedBus, client};

const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,positive_data_acceptance,\
                      negative_data_rejection";

/// `st run` on one document; its whole report on failure.
fn schemathesis(document_url: &str, token: &str, extra: &[&str]) {
    let work = tempfile::tempdir().unwrap(); // its example database starts empty each run
    let hooks = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contract");
    let out = Command::new("st")
        .current_dir(work.path())
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", &hooks)
        .env("NO_COLOR", "1")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .arg("--config-file")
        .arg(hooks.join("schemathesis.toml"))
        .args(["run", document_url, "--checks", CHECKS])
        .args(["--max-examples", "50", "--no-color"])
        // The suite's seed; another (`SCHEMATHESIS_SEED=1205`) explores further.
        .args(["--seed", &std::env::var("SCHEMATHESIS_SEED").unwrap_or("20261201".into())])
        // A value two mappings constrain (both patterns must hold) leaves the generator
        // few strings to find at random; fewer examples there, not an error.
        .arg("--suppress-health-check=filter_too_much")
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(extra)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run Schemathesis (`st`): {e}; scripts/test installs it (pip install schemathesis)")
        });
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "Schemathesis found problems with {document_url}:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "Test cases:\n  2190 generated, ...": a count, not a substring ("2190 generated"
    // contains "0 generated").
    let generated: u64 = report
        .lines()
        .find_map(|l| {
            l.trim()
                .split_once(" generated")
                .map(|(n, _)| n.trim().parse().ok())
        })
        .flatten()
        .unwrap_or(0);
    assert!(
        report.contains("passed") && generated > 0,
        "Schemathesis tested nothing at {document_url}:\n{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_of_the_unit_and_admin_documents_passes_schemathesis() {
    let bus = ShippedBus::start().await;
    let keys = bus.keys.clone();
    for (unit, key) in &keys {
        let url = bus.url(&format!("/api/v1/units/{unit}/openapi.json"));
        let key = key.clone();
        tokio::task::spawn_blocking(move || schemathesis(&url, &key, &[]))
            .await
            .unwrap();
    }
    let url = bus.url("/api/v1/openapi.json");
    tokio::task::spawn_blocking(move || {
        schemathesis(&url, SHIPPED_OPERATOR, &["--include-tag", "admin"])
    })
    .await
    .unwrap();
    bus.bus.shutdown().await.unwrap();
}

async fn get_json(url: &str) -> Value {
    let r = client().get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.json().await.unwrap()
}

#[tokio::test]
async fn the_document_describes_each_flow_from_its_mappings() {
    let bus = ShippedBus::start().await;
    let doc = get_json(&bus.url("/api/v1/openapi.json")).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    // Admin and unit-facing together; internal (reply) flows are not offered to units.
    for p in [
        "/api/v1/status",
        "/api/v1/units/nafosted/events/dossier_sync",
        "/api/v1/units/stameq/events/dossier_sync",
        "/api/v1/units/ipo/events/dossier_sync",
        "/api/v1/units/varans/events/result",
        "/api/v1/units/nafosted/lookup/citizen",
        "/api/v1/units/nafosted/messages/{id}",
        "/soap/stameq",
        "/callbacks/payment",
    ] {
        assert!(paths.contains_key(p), "{p} missing");
    }
    assert!(
        !paths.keys().any(|p| p.contains("payment_link")),
        "internal flows listed"
    );
    let schemas = &doc["components"]["schemas"];

    // NAFOSTED's dossier: the ordering key and the mapping's required fields, a code
    // table as an enumeration, a date with its format.
    let event = &schemas["nafosted_dossier_sync_event"];
    let required: Vec<&str> = event["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(required.contains(&"dossierCode"), "{event}");
    assert!(required.contains(&"procedureCode"), "{event}");
    let channel = &event["properties"]["channel"];
    assert_eq!(
        channel["enum"],
        serde_json::json!(["counter", "online", "postal"]),
        "{channel}"
    );
    assert!(
        event["properties"]["dossierCode"]["description"]
            .as_str()
            .unwrap()
            .contains("data[0].MaHoSo"),
        "{event}"
    );
    // STAMEQ's flows also take its SOAP export, with a real example from the fixtures.
    let body = &paths["/api/v1/units/stameq/events/dossier_sync"]["post"]["requestBody"]["content"];
    assert!(body["application/json"].is_object());
    assert!(
        body["text/xml"]["example"]
            .as_str()
            .unwrap()
            .contains("GuiHoSo"),
        "{body}"
    );
    // The IP Office's CSV.
    assert!(
        paths["/api/v1/units/ipo/events/dossier_sync"]["post"]["requestBody"]["content"]["text/csv"]
            .is_object()
    );
    // Every error status carries the one error body; 202 the ids.
    let responses = &paths["/api/v1/units/nafosted/events/dossier_sync"]["post"]["responses"];
    for status in ["400", "401", "403", "408", "413", "415", "429", "503"] {
        assert_eq!(
            responses[status]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Error",
            "{status}"
        );
    }
    assert_eq!(
        responses["202"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Accepted"
    );
    // The lookup's reply: the fields the reply mapping writes.
    let reply = &paths["/api/v1/units/nafosted/lookup/citizen"]["post"]["responses"]["200"];
    assert!(reply["content"]["application/json"]["schema"]["properties"].is_object());
    // Admin ids are UUIDs, and the 400 for one that is not is documented.
    let message = &paths["/api/v1/messages/{id}"]["get"];
    assert_eq!(message["parameters"][0]["schema"]["format"], "uuid");
    assert!(message["responses"]["400"].is_object());

    // One unit's document holds only its own paths.
    let own = get_json(&bus.url("/api/v1/units/ipo/openapi.json")).await;
    assert!(
        own["paths"]
            .as_object()
            .unwrap()
            .keys()
            .all(|p| p.contains("/ipo")),
        "{:?}",
        own["paths"].as_object().unwrap().keys().collect::<Vec<_>>()
    );
    let r = client()
        .get(bus.url("/api/v1/units/nobody/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "unknown_unit");
    bus.bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_path_form_of_a_flow_takes_events_like_the_query_form() {
    let bus = ShippedBus::start().await;
    let key = bus.keys["nafosted"].clone();
    let event = support::nafosted_dossier("NAF-CONTRACT-1", "submitted", "online");
    let r = client()
        .post(bus.url("/api/v1/units/nafosted/events/dossier_sync"))
        .bearer_auth(&key)
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    let id = body["accepted"][0]["id"].as_str().unwrap().to_string();
    let r = client()
        .get(bus.url(&format!("/api/v1/units/nafosted/messages/{id}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let state: Value = r.json().await.unwrap();
    assert_eq!(state["flow"], "dossier_sync");
    // A flow the unit does not have: 400 naming the flow.
    let r = client()
        .post(bus.url("/api/v1/units/nafosted/events/no_such_flow"))
        .bearer_auth(&key)
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["field"], "flow");
    bus.bus.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_api_page_is_served_from_the_bus() {
    let bus = ShippedBus::start().await;
    let r = client().get(bus.url("/api/docs")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    for asset in [
        "/api/docs/swagger-ui-bundle.js",
        "/api/docs/swagger-ui.css",
        "/api/docs/init.js",
    ] {
        assert!(page.contains(asset), "{page}");
        let r = client().get(bus.url(asset)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        let len = r.bytes().await.unwrap().len();
        assert!(len > 100, "{asset}: {len} bytes");
    }
    let init = client()
        .get(bus.url("/api/docs/init.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("/api/v1/openapi.json") && init.contains("/openapi.json"));
    bus.bus.shutdown().await.unwrap();
}

/// Run a Python script of tests/contract with `pythonpath`; its last line, parsed.
fn python(script: &str, pythonpath: &std::path::Path, args: &[&str]) -> Value {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contract");
    let out = Command::new("python3")
        .arg(dir.join(script))
        .args(args)
        .env("PYTHONPATH", pythonpath)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_generated_from_the_document_sends_a_dossier_that_reaches_the_portal() {
    let bus = ShippedBus::start().await;
    let key = bus.keys["nafosted"].clone();
    let work = tempfile::tempdir().unwrap();
    let doc = work.path().join("nafosted.json");
    let text = client()
        .get(bus.url("/api/v1/units/nafosted/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    std::fs::write(&doc, text).unwrap();
    let config = work.path().join("generator.yml");
    std::fs::write(
        &config,
        "package_name_override: lienthong_client\nproject_name_override: lienthong-client\n",
    )
    .unwrap();
    // openapi-python-client (PyPI, installed by scripts/test) writes the client package.
    let out = Command::new("openapi-python-client")
        .current_dir(work.path())
        .args(["generate", "--meta", "none", "--path"])
        .arg(&doc)
        .arg("--config")
        .arg(&config)
        .arg("--output-path")
        .arg(work.path().join("gen/lienthong_client"))
        .output()
        .expect("openapi-python-client runs (scripts/test installs it)");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !report.contains("Warning") && !report.contains("Unable"),
        "the generator could not read all of the document:\n{report}"
    );
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("mappings/nafosted/tests/dossier_sync/01-new-dossier.input.json");
    let base = bus.url("");
    let answer = python(
        "generated_client.py",
        &work.path().join("gen"),
        &[
            base.trim_end_matches('/'),
            &key,
            fixture.to_str().unwrap(),
            "NAF-GENERATED-1",
        ],
    );
    assert_eq!(answer["status"], 202, "{answer}");
    let id = answer["ids"][0].as_str().unwrap();
    let state = bus.delivered_to("nafosted", id, "portal").await;
    assert_eq!(state["key"], "NAF-GENERATED-1");
    bus.bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soap_client_built_from_the_wsdl_sends_a_dossier_that_reaches_the_portal() {
    let bus = ShippedBus::start().await;
    let key = bus.keys["stameq"].clone();
    let r = client()
        .get(bus.url("/soap/stameq?wsdl"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let wsdl = r.text().await.unwrap();
    // Typed from the mappings: the operations, a code table's codes, the unit's namespace.
    for expected in [
        "<wsdl:operation name=\"GuiHoSo\">",
        "<wsdl:operation name=\"CapNhatXuLy\">",
        "<xs:enumeration value=\"TRUC_TUYEN\"/>",
        "targetNamespace=\"http://stameq.gov.vn/motcua/1.0\"",
        &format!("location=\"{}\"", bus.url("/soap/stameq")),
    ] {
        assert!(wsdl.contains(expected), "{expected} not in\n{wsdl}");
    }
    // zeep (PyPI) builds its client from the WSDL and calls GuiHoSo.
    let wsdl_url = bus.url("/soap/stameq?wsdl");
    let answer = python(
        "soap_client.py",
        std::path::Path::new("."),
        &[&wsdl_url, &key, "STAMEQ-ZEEP-1"],
    );
    assert_eq!(answer["KetQua"], "DA_NHAN", "{answer}");
    let id = answer["MaTiepNhan"][0].as_str().unwrap();
    let state = bus.delivered_to("stameq", id, "portal").await;
    assert_eq!(state["flow"], "dossier_sync");
    // A unit without SOAP has no WSDL; a GET without ?wsdl says what to do.
    let r = client()
        .get(bus.url("/soap/nafosted?wsdl"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = client().get(bus.url("/soap/stameq")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    bus.bus.shutdown().await.unwrap();
}

/// Issue 38, bug 6: the IP Office's CSV example was its TCVN3 file read as UTF-8 (22
/// replacement characters). The document now gives the real file decoded to Unicode, and
/// the bus takes that text back as UTF-8 (declared or recognised): the names arrive whole.
#[tokio::test]
async fn the_ip_offices_csv_example_is_real_text_the_bus_takes_as_utf8() {
    let bus = ShippedBus::start().await;
    let doc = get_json(&bus.url("/api/v1/units/ipo/openapi.json")).await;
    let content =
        &doc["paths"]["/api/v1/units/ipo/events/dossier_sync"]["post"]["requestBody"]["content"];
    let example = content["text/csv"]["example"]
        .as_str()
        .unwrap_or_else(|| panic!("{content}"));
    assert!(!example.contains('\u{fffd}'), "{example}");
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(
            "mappings/ipo/tests/dossier_sync/01-patent-by-citizen.expected.json",
        )
        .unwrap(),
    )
    .unwrap();
    let owner = expected["data"][0]["ChuHoSo"].as_str().unwrap();
    assert!(example.contains(owner), "{owner} not in {example}");
    let send = |content_type: &'static str| {
        client()
            .post(bus.url("/api/v1/units/ipo/events?flow=dossier_sync"))
            .bearer_auth(&bus.keys["ipo"])
            .header("content-type", content_type)
            .body(example.to_string())
            .send()
    };
    // Another charset than the mapping's or UTF-8 is refused, naming the header.
    let r = send("text/csv; charset=iso-8859-2").await.unwrap();
    assert_eq!(r.status(), 415);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["field"], "content-type", "{e}");
    // Sent as the document shows it, with no charset: recognised as UTF-8.
    let r = send("text/csv").await.unwrap();
    assert_eq!(r.status(), 202);
    let accepted: Value = r.json().await.unwrap();
    let id = accepted["accepted"][0]["id"].as_str().unwrap().to_string();
    let at_portal = bus.delivered_to("ipo", &id, "portal").await;
    assert!(at_portal.to_string().contains("delivered"), "{at_portal}");
    let dossiers = get_json(&format!("http://{}/_mock/portal/dossiers", bus.mocks)).await;
    let code = expected["data"][0]["MaHoSo"].as_str().unwrap();
    assert_eq!(
        dossiers["dossiers"][code]["fields"]["ChuHoSo"], owner,
        "{}",
        dossiers["dossiers"][code]
    );
    bus.bus.shutdown().await.unwrap();
}
