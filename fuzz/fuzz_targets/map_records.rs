//! Any bytes through every shipped mapping: decoded as the mapping's input format, and (when
//! the bytes are JSON) mapped as a record directly, then rendered. Errors are fine; a panic,
//! a hang or unbounded memory is not. This reaches the engine itself (paths, tables,
//! dates, numbers, text transforms, encoders), not only the decoders. It is also a
//! differential test: the compiled engine must give what the rule interpreter gives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lienthong_mapping::Mapping;
use std::path::PathBuf;
use std::sync::LazyLock;

static MAPPINGS: LazyLock<Vec<Mapping>> = LazyLock::new(|| {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../mappings"));
    // The same files `lienthong mapping test` finds (not schemas, tables, fixtures or a
    // unit's procedure catalogue).
    let files = lienthong_mapping::fixtures::find_mappings(&root).expect("mappings dir");
    let mappings: Vec<Mapping> = files
        .iter()
        .map(|f| Mapping::load(f, &root).unwrap_or_else(|e| panic!("{}: {e:?}", f.display())))
        .collect();
    assert!(!mappings.is_empty(), "no mapping under {}", root.display());
    mappings
});

/// Both engines on one record: the same bytes or the same error.
fn same(mapping: &Mapping, record: &serde_json::Value) {
    let compiled = mapping.render(record).map_err(|e| e.to_string());
    let reference = mapping.render_interpreted(record).map_err(|e| e.to_string());
    assert_eq!(compiled, reference, "{}: {record}", mapping.file.display());
}

fuzz_target!(|data: &[u8]| {
    let record: Option<serde_json::Value> = serde_json::from_slice(data).ok();
    for mapping in MAPPINGS.iter() {
        if let Ok(records) = mapping.decode(data) {
            for r in records.iter().take(8) {
                same(mapping, r);
            }
        }
        let _ = mapping.translate(data);
        if let Some(r) = &record {
            same(mapping, r);
            let from_text = mapping.render_json(data).map_err(|e| e.to_string());
            let reference = mapping.render_interpreted(r).map_err(|e| e.to_string());
            assert_eq!(from_text, reference, "{}", mapping.file.display());
        }
    }
});
