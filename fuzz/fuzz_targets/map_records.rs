//! Any bytes through every shipped mapping: decoded as the mapping's input format, and (when
//! the bytes are JSON) mapped as a record directly, then rendered. Errors are fine; a panic,
//! a hang or unbounded memory is not. This reaches the engine itself (paths, tables,
//! dates, numbers, text transforms, encoders), not only the decoders.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lienthong_mapping::Mapping;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

static MAPPINGS: LazyLock<Vec<Mapping>> = LazyLock::new(|| {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../mappings"));
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();
    let mappings: Vec<Mapping> = files
        .iter()
        .map(|f| Mapping::load(f, &root).unwrap_or_else(|e| panic!("{}: {e:?}", f.display())))
        .collect();
    assert!(!mappings.is_empty(), "no mapping under {}", root.display());
    mappings
});

/// Mapping files: `*.toml` outside `_schemas/`, `tables/` and the `tests/` fixtures.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("mappings dir").flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "_schemas" && name != "tests" && name != "tables" {
                collect(&path, out);
            }
        } else if name.ends_with(".toml") {
            out.push(path);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let record: Option<serde_json::Value> = serde_json::from_slice(data).ok();
    for mapping in MAPPINGS.iter() {
        if let Ok(records) = mapping.decode(data) {
            for r in records.iter().take(8) {
                let _ = mapping.render(r);
            }
        }
        if let Some(r) = &record {
            let _ = mapping.render(r);
        }
    }
});
