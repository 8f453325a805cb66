//! The mappings shipped in `mappings/` against their fixture cases (the same cases
//! `lienthong mapping test` runs), and random JSON through every one of them.

use lienthong_mapping::Mapping;
use lienthong_mapping::fixtures::{self, Outcome};
use proptest::prelude::*;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::OnceLock;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mappings")
}

fn shipped() -> &'static Vec<Mapping> {
    static ALL: OnceLock<Vec<Mapping>> = OnceLock::new();
    ALL.get_or_init(|| {
        fixtures::find_mappings(&root())
            .unwrap()
            .iter()
            .map(|f| Mapping::load(f, &root()).unwrap_or_else(|e| panic!("{e}")))
            .collect()
    })
}

#[test]
fn every_shipped_mapping_passes_its_fixture_cases() {
    let files = fixtures::find_mappings(&root()).unwrap();
    // Four units, eight mappings each: dossier sync and progress, results or payments,
    // citizen and business lookups both ways.
    assert!(files.len() >= 32, "only {} mappings found", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let report = fixtures::test_mapping(file, &root(), false);
        if let Some(e) = &report.compile_error {
            failures.push(format!("{}: {e}", file.display()));
            continue;
        }
        let errors = report
            .cases
            .iter()
            .filter(|(c, _)| {
                c.name.contains("bad") || matches!(c.expect, fixtures::Expect::Error(_))
            })
            .count();
        if report.cases.len() < 3 || errors == 0 {
            failures.push(format!(
                "{}: needs at least three cases including a bad-input one (has {}, {errors} expecting errors)",
                file.display(),
                report.cases.len()
            ));
        }
        for (case, outcome) in &report.cases {
            if let Outcome::Fail(why) = outcome {
                failures.push(format!("{} / {}:\n{why}", file.display(), case.name));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// JSON documents of any shape, with field names the mappings use now and then so rules
/// meet strings, numbers, arrays and objects where they expect something else.
/// A value that feeds a message template first and then a field of limited length is
/// held to that length by the published schema: every use of a value must hold, so the
/// door refuses by the schema what the mapping would refuse.
#[test]
fn a_value_read_by_a_template_first_still_carries_its_fields_length() {
    let m = Mapping::load(&root().join("stameq/fee_request.toml"), &root()).unwrap();
    let schema = m.input_schema();
    let so_ho_so = &schema["properties"]["ThongBaoPhi"]["properties"]["SoHoSo"];
    assert_eq!(so_ho_so["maxLength"], 50, "{so_ho_so}");
    // The published schema names it as the mapping would (the door's first step).
    let long = serde_json::json!({"ThongBaoPhi": {"SoHoSo": "A".repeat(60)}});
    let found = m.check_against_schema(&long);
    assert!(
        found
            .iter()
            .any(|p| p.pointer() == "/ThongBaoPhi/SoHoSo" && p.reason.contains("at most 50")),
        "{found:?}"
    );
}

fn arb_json() -> impl Strategy<Value = Value> {
    let names = prop::sample::select(vec![
        "dossierCode",
        "status",
        "applicant",
        "fees",
        "attachments",
        "submittedAt",
        "GuiHoSo",
        "HoSo",
        "NguoiNop",
        "@loai",
        "so_don",
        "state",
        "licence",
        "pdf",
        "Status",
        "ResultObject",
        "TraCuuThongTinCongDanResponse",
        "CongdanCollection",
        "CongDan",
        "Fault",
        "step",
        "citizen",
        "idNumber",
        "MaLoi",
        "x",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "SUCCESS",
            "00",
            "60",
            "submitted",
            "capnhat",
            "2024-03-05",
            "05/03/2024 08:30",
            "001040144502"
        ])
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((names.clone(), inner), 0..6).prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Whatever a unit sends, a mapping answers with an output or an error, never a panic;
    /// and an output can always be written in the target's format.
    #[test]
    fn random_json_through_every_mapping_never_panics(doc in arb_json()) {
        for m in shipped() {
            if let Ok(out) = m.map(&doc) {
                // Output written as XML or CSV may still refuse odd shapes, with an error.
                let _ = m.encode_value(&out);
            }
        }
    }
}
