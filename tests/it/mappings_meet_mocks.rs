//! Every shipped mapping's expected output passes the check of the mock it is delivered
//! to (issue 38, bug 3): a case that passes `mapping test` but that the portal, the
//! payment platform or the notification service would refuse is a dead letter waiting to
//! happen, and the mapping's own cases cannot see it. The checks are the mocks' own
//! (`lienthong_mocks::portal::check_request`, `payment::check_init`,
//! `datastore::check_notification`), the same code their HTTP handlers run.

use lienthong::config::TargetKind;
use lienthong_mapping::fixtures::{Expect, discover};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// A mock's check of a request body: what is wrong, if anything.
type MockCheck = fn(&Value) -> Result<(), String>;

/// The mock check for a target, by what the target is.
fn check_for(kind: TargetKind, url: &str) -> Option<MockCheck> {
    match kind {
        TargetKind::Portal | TargetKind::Ministry => Some(lienthong_mocks::portal::check_request),
        TargetKind::Payment => Some(|body| lienthong_mocks::payment::check_init(body).map(|_| ())),
        _ if url.ends_with("/notify/messages") => Some(|body| {
            lienthong_mocks::datastore::check_notification(body)
                .map(|_| ())
                .map_err(|(field, why)| format!("{field}: {why}"))
        }),
        _ => None,
    }
}

/// A body as its connector sends it: a portal row that is only a part (a result's
/// documents) is laid over the dossier's last whole row, as the portal connector does
/// ([`lienthong::connector::portal::rows`]); here over a minimal whole row.
fn as_sent(call: &Value) -> Value {
    let mut call = call.clone();
    if call["service"] != "DongBoHoSoMC" {
        return call;
    }
    for item in call["data"].as_array_mut().into_iter().flatten() {
        let base = serde_json::json!({"MaHoSo": item["MaHoSo"], "MaTTHC": "1.000001",
            "ChuHoSo": "A", "NgayTiepNhan": "20240305083000", "TrangThaiHoSo": 9});
        *item = lienthong::connector::portal::rows::lay_over(Some(&base), item);
    }
    call
}

#[test]
fn every_mapping_case_output_passes_the_check_of_the_mock_it_goes_to() {
    let cfg = lienthong::config::load_file(Path::new("config/lienthong.toml")).unwrap();
    let mut seen = BTreeSet::new();
    let mut checked = 0;
    let mut problems = Vec::new();
    for route in &cfg.routes {
        for (target, file) in &route.mappings {
            let t = &cfg.targets[target];
            let Some(check) = check_for(t.kind, &t.url) else {
                continue;
            };
            if !seen.insert((target.clone(), file.clone())) {
                continue;
            }
            let path = cfg.mappings.dir.join(file);
            for case in discover(&path).unwrap() {
                let Expect::Output(expected) = &case.expect else {
                    continue;
                };
                let text = std::fs::read_to_string(expected).unwrap();
                let body: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", expected.display()));
                // A file of several records (CSV, XML lists) maps to one call each.
                let calls = match body {
                    Value::Array(calls) => calls,
                    one => vec![one],
                };
                for (i, call) in calls.iter().enumerate() {
                    checked += 1;
                    let call = as_sent(call);
                    if let Err(why) = check(&call) {
                        problems.push(format!(
                            "{target} refuses {} [{i}]: {why}",
                            expected.display()
                        ));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Portal, ministry, payment and notify cases of all four units.
    assert!(checked >= 60, "only {checked} cases checked");
}

#[test]
fn the_notify_check_names_a_zalo_parameter_sent_as_a_number() {
    let body = serde_json::json!({"channel": "zalo", "phone": "0912345678", "templateId": "NOP_PHI",
        "params": {"ma_ho_so": "VARANS-2024-0298", "so_tien": 2500000, "duong_dan": "https://x"}});
    let (field, why) = lienthong_mocks::datastore::check_notification(&body)
        .err()
        .expect("refused");
    assert_eq!(field, "params.so_tien");
    assert!(why.contains("must be text"), "{why}");
    assert!(why.contains("not a number"), "{why}");
}
