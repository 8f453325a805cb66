//! Every shipped fixture's personal values stay out of the logs: each input case of every
//! mapping (`mappings/<unit>/tests/<mapping>/*.input.*`) is decoded the way the bus
//! decodes it (its mapping's format and encoding: JSON, XML and SOAP, TCVN3 CSV), written
//! on a debug log line as the bus would log an event, passed through the log mask, and the
//! line is searched for every value of a personal field (names, compound names such as
//! `tenChuDon` or `HoTenNguoiNop`, owners, addresses, contacts, identity numbers, dates of
//! birth, summaries and message texts).
//!
//! The personal field names here are this test's own list, not the mask's, so a field the
//! mask forgets is found.

use lienthong_mapping::Mapping;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Field names (lowercase) whose string values are personal data.
const EXACT: &[&str] = &[
    "name", "ten", "owner", "text", "dob", "title", "summary", "noidung", "tieude",
];
/// Parts that make any field name personal.
const PARTS: &[&str] = &[
    "hoten",
    "hovaten",
    "fullname",
    "chudon",
    "nguoinop",
    "chuhoso",
    "diachi",
    "address",
    "phone",
    "dienthoai",
    "email",
    "ngaysinh",
    "birth",
    "idnumber",
    "cccd",
    "cmnd",
    "dinhdanh",
    "trichyeu",
    "hokhau",
    "chuho",
];

fn is_personal(key: &str) -> bool {
    let k: String = key
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect();
    EXACT.contains(&k.as_str()) || PARTS.iter().any(|p| k.contains(p))
}

/// (field, value) of every personal string in `v`, at any depth.
fn personal_values(v: &Value, key: Option<&str>, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                // An element's text beside its attributes (`{"@a": .., "#text": ..}`)
                // belongs to the element.
                let k = if k.starts_with('#') {
                    key
                } else {
                    Some(k.as_str())
                };
                personal_values(v, k, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                personal_values(item, key, out);
            }
        }
        Value::String(s) => {
            if let Some(k) = key
                && is_personal(k)
                && s.trim().chars().count() >= 5
            {
                out.push((k.to_string(), s.trim().to_string()));
            }
        }
        _ => {}
    }
}

/// Every `*.input.*` fixture with the mapping file it belongs to.
fn fixtures(root: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for unit in std::fs::read_dir(root).unwrap().flatten() {
        let tests = unit.path().join("tests");
        let Ok(mappings) = std::fs::read_dir(&tests) else {
            continue;
        };
        for m in mappings.flatten() {
            let mapping = unit
                .path()
                .join(format!("{}.toml", m.file_name().to_string_lossy()));
            if !mapping.exists() {
                continue;
            }
            for f in std::fs::read_dir(m.path()).unwrap().flatten() {
                if f.file_name().to_string_lossy().contains(".input.") {
                    out.push((mapping.clone(), f.path()));
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn no_personal_value_of_any_shipped_fixture_survives_the_log_mask() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mappings");
    let cases = fixtures(&root);
    assert!(cases.len() > 20, "found only {} fixtures", cases.len());
    let mut checked = 0;
    let mut leaks = Vec::new();
    for (mapping_file, input) in &cases {
        let mapping = Mapping::load(mapping_file, &root).unwrap();
        let Ok(records) = mapping.decode(&std::fs::read(input).unwrap()) else {
            continue; // a case about a body that cannot be read: nothing is logged of it
        };
        for record in records {
            let mut values = Vec::new();
            personal_values(&record, None, &mut values);
            // As the bus logs an event (and a platform's escaped echo of it).
            let line = format!(
                "DEBUG lienthong::relay: delivering payload={record} echo={:?}",
                record.to_string()
            );
            let masked = lienthong::redact::mask(&line);
            for (field, value) in values {
                checked += 1;
                if masked.contains(&value) {
                    leaks.push(format!("{}: {field} = {value}", input.display()));
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} personal values found");
    assert!(leaks.is_empty(), "left unmasked:\n{}", leaks.join("\n"));
}
