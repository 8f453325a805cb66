//! Mapping throughput: the STAMEQ dossier mapping (SOAP XML in, portal JSON out) and the
//! NAFOSTED one (JSON in, JSON out), each as the bus runs it: decode the bytes, map, check
//! the schema, write the output. One record per iteration, on one thread (= per core).
//!
//! Each is measured on the compiled engine the bus runs (`Mapping::translate`: read the
//! bytes once, map, check, write) and on the rule interpreter it replaced (decode to a
//! `serde_json::Value`, run the rules, check, encode), which stays as the reference.
//!
//! Run: `cargo bench -p lienthong-mapping --bench mapping` (criterion prints `thrpt` in
//! records per second).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lienthong_mapping::Mapping;
use std::hint::black_box;
use std::path::PathBuf;

fn load(unit: &str, name: &str, case: &str) -> (Mapping, Vec<u8>) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mappings");
    let mapping = Mapping::load(&root.join(unit).join(format!("{name}.toml")), &root)
        .unwrap_or_else(|e| panic!("{e}"));
    let input = std::fs::read(root.join(unit).join("tests").join(name).join(case)).unwrap();
    // Sanity: the case maps cleanly, both ways alike, so the benchmark measures the
    // success path.
    let record = mapping.decode(&input).unwrap().remove(0);
    let compiled = mapping.translate(&input).unwrap().remove(0).unwrap();
    assert_eq!(compiled, mapping.render_interpreted(&record).unwrap());
    assert!(mapping.is_compiled());
    (mapping, input)
}

fn compiled(mapping: &Mapping, input: &[u8]) -> Vec<u8> {
    let mut records = mapping.translate(input).expect("decodes");
    records.swap_remove(0).expect("maps")
}

fn interpreted(mapping: &Mapping, input: &[u8]) -> Vec<u8> {
    let mut records = mapping.decode(input).expect("decodes");
    mapping
        .render_interpreted(&records.swap_remove(0))
        .expect("maps")
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("mapping");
    g.throughput(Throughput::Elements(1));

    let (stameq, xml) = load(
        "stameq",
        "dossier_sync",
        "01-new-import-inspection.input.xml",
    );
    g.bench_function("stameq dossier_sync: SOAP XML -> portal JSON", |b| {
        b.iter(|| compiled(&stameq, black_box(&xml)))
    });

    let (nafosted, json) = load("nafosted", "dossier_sync", "01-new-dossier.input.json");
    g.bench_function("nafosted dossier_sync: JSON -> portal JSON", |b| {
        b.iter(|| compiled(&nafosted, black_box(&json)))
    });

    // The same on the interpreter (the engine before the compiled one, kept as reference).
    g.bench_function(
        "stameq dossier_sync: SOAP XML -> portal JSON, interpreter",
        |b| b.iter(|| interpreted(&stameq, black_box(&xml))),
    );
    g.bench_function(
        "nafosted dossier_sync: JSON -> portal JSON, interpreter",
        |b| b.iter(|| interpreted(&nafosted, black_box(&json))),
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
