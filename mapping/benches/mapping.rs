//! Mapping throughput: the STAMEQ dossier mapping (SOAP XML in, portal JSON out) and the
//! NAFOSTED one (JSON in, JSON out), each as the bus runs it: decode the bytes, map, check
//! the schema, write the output. One record per iteration, on one thread (= per core).
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
    // Sanity: the case maps cleanly, so the benchmark measures the success path.
    let record = mapping.decode(&input).unwrap().remove(0);
    mapping.render(&record).unwrap();
    (mapping, input)
}

fn one_record(mapping: &Mapping, input: &[u8]) -> Vec<u8> {
    let mut records = mapping.decode(input).expect("decodes");
    mapping.render(&records.swap_remove(0)).expect("maps")
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
        b.iter(|| one_record(&stameq, black_box(&xml)))
    });

    let (nafosted, json) = load("nafosted", "dossier_sync", "01-new-dossier.input.json");
    g.bench_function("nafosted dossier_sync: JSON -> portal JSON", |b| {
        b.iter(|| one_record(&nafosted, black_box(&json)))
    });

    // The rules and schema check alone, on a record already decoded (what remains when
    // parsing and writing are taken out).
    let stameq_record = stameq.decode(&xml).unwrap().remove(0);
    g.bench_function("stameq dossier_sync: map only", |b| {
        b.iter(|| stameq.map(black_box(&stameq_record)).unwrap())
    });
    let nafosted_record = nafosted.decode(&json).unwrap().remove(0);
    g.bench_function("nafosted dossier_sync: map only", |b| {
        b.iter(|| nafosted.map(black_box(&nafosted_record)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
