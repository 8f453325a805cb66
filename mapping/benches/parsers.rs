//! Which JSON parser the compiled mapping engine (issue 19) should read with: serde_json
//! (the tree the engine builds today, and borrowed), sonic-rs and simd-json, on the inputs
//! the mappings read (the NAFOSTED dossier fixture, and the JSON a STAMEQ SOAP record
//! decodes to). Each case parses one record and reads the fields a mapping would.
//!
//! Run: `cargo bench -p lienthong-mapping --bench parsers` (`thrpt` in records per second).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::collections::HashMap;
use std::hint::black_box;
use std::path::PathBuf;

/// The fields the NAFOSTED dossier mapping reads first (top level, a nested object).
const FIELDS: [&str; 4] = ["dossierCode", "procedureCode", "status", "submittedAt"];

fn input(unit: &str, name: &str, case: &str) -> Vec<u8> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mappings");
    std::fs::read(root.join(unit).join("tests").join(name).join(case)).unwrap()
}

fn bench(c: &mut Criterion) {
    let nafosted = input("nafosted", "dossier_sync", "01-new-dossier.input.json");
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));

    g.bench_function("serde_json Value (today)", |b| {
        b.iter(|| {
            let v: serde_json::Value = serde_json::from_slice(black_box(&nafosted)).unwrap();
            FIELDS.iter().filter(|f| v.get(**f).is_some()).count()
        })
    });
    g.bench_function("serde_json borrowed top level", |b| {
        b.iter(|| {
            let m: HashMap<&str, &serde_json::value::RawValue> =
                serde_json::from_slice(black_box(&nafosted)).unwrap();
            FIELDS.iter().filter(|f| m.contains_key(**f)).count()
        })
    });
    g.bench_function("sonic-rs Value", |b| {
        b.iter(|| {
            let v: sonic_rs::Value = sonic_rs::from_slice(black_box(&nafosted)).unwrap();
            use sonic_rs::JsonValueTrait;
            FIELDS.iter().filter(|f| v.get(**f).is_some()).count()
        })
    });
    g.bench_function("sonic-rs lazy get of the fields", |b| {
        b.iter(|| {
            let data: &[u8] = black_box(&nafosted);
            FIELDS
                .iter()
                .filter(|f| sonic_rs::get(data, [**f]).is_ok())
                .count()
        })
    });
    g.bench_function("simd-json borrowed", |b| {
        let mut buf = nafosted.clone();
        b.iter(|| {
            buf.copy_from_slice(&nafosted);
            let v = simd_json::to_borrowed_value(black_box(&mut buf)).unwrap();
            use simd_json::prelude::ValueObjectAccess;
            FIELDS.iter().filter(|f| v.get(**f).is_some()).count()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
