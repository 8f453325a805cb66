//! The compiled engine (`plan`) against the rule interpreter (`engine`), which stays as the
//! reference: over every fixture input of every shipped mapping, and over records generated
//! from them (fields removed, replaced by text, numbers, dates, lists, objects, values seen
//! elsewhere in the fixtures), both must give the same bytes or the same error.

use lienthong_mapping::Mapping;
use lienthong_mapping::fixtures;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mappings")
}

/// Every shipped mapping with the input files of its fixture cases.
fn shipped() -> Vec<(Mapping, Vec<PathBuf>)> {
    let files = fixtures::find_mappings(&root()).unwrap();
    assert!(files.len() >= 32, "only {} mappings found", files.len());
    files
        .iter()
        .map(|f| {
            let mapping = Mapping::load(f, &root()).unwrap_or_else(|e| panic!("{e}"));
            let mut inputs: Vec<PathBuf> = std::fs::read_dir(fixtures::cases_dir(f))
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            inputs.retain(|p| p.to_string_lossy().contains(".input."));
            inputs.sort();
            (mapping, inputs)
        })
        .collect()
}

fn name(m: &Mapping) -> String {
    m.file.display().to_string()
}

type Rendered = Result<Vec<Result<Vec<u8>, String>>, String>;

fn interpreted(m: &Mapping, input: &[u8]) -> Rendered {
    let records = m.decode(input).map_err(|e| e.to_string())?;
    Ok(records
        .iter()
        .map(|r| m.render_interpreted(r).map_err(|e| e.to_string()))
        .collect())
}

fn compiled(m: &Mapping, input: &[u8]) -> Rendered {
    let records = m.translate(input).map_err(|e| e.to_string())?;
    Ok(records
        .into_iter()
        .map(|r| r.map_err(|e| e.to_string()))
        .collect())
}

fn show(r: &Rendered) -> String {
    match r {
        Err(e) => format!("decode error: {e}"),
        Ok(records) => records
            .iter()
            .map(|r| match r {
                Ok(b) => String::from_utf8_lossy(b).into_owned(),
                Err(e) => format!("error: {e}"),
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// One record both ways: as a value, rendered, and (JSON) read from its text.
fn compare_record(m: &Mapping, record: &Value) -> Result<(), String> {
    let reference = m.render_interpreted(record).map_err(|e| e.to_string());
    let by_value = m.render(record).map_err(|e| e.to_string());
    let text = serde_json::to_vec(record).unwrap();
    let by_text = m.render_json(&text).map_err(|e| e.to_string());
    let mapped = m.map(record).map_err(|e| e.to_string());
    let mapped_reference = m.map_interpreted(record).map_err(|e| e.to_string());
    let show = |r: &Result<Vec<u8>, String>| match r {
        Ok(b) => String::from_utf8_lossy(b).into_owned(),
        Err(e) => format!("error: {e}"),
    };
    if by_value != reference || by_text != reference || mapped != mapped_reference {
        return Err(format!(
            "{}\n  record:      {record}\n  interpreter: {}\n  compiled:    {}\n  from text:   {}\n  map:         {mapped:?}\n  reference:   {mapped_reference:?}",
            name(m),
            show(&reference),
            show(&by_value),
            show(&by_text),
        ));
    }
    Ok(())
}

#[test]
fn every_fixture_input_gives_the_same_bytes_or_error() {
    let mut differences = Vec::new();
    let mut cases = 0;
    for (m, inputs) in shipped() {
        assert!(m.is_compiled(), "{} is not compiled", name(&m));
        for input in inputs {
            let bytes = std::fs::read(&input).unwrap();
            let (a, b) = (interpreted(&m, &bytes), compiled(&m, &bytes));
            if a != b {
                differences.push(format!(
                    "{}:\n  interpreter: {}\n  compiled:    {}",
                    input.display(),
                    show(&a),
                    show(&b)
                ));
            }
            if let Ok(records) = m.decode(&bytes) {
                for r in &records {
                    if let Err(d) = compare_record(&m, r) {
                        differences.push(d);
                    }
                }
            }
            cases += 1;
        }
    }
    assert!(cases >= 150, "only {cases} fixture inputs");
    assert!(differences.is_empty(), "{}", differences.join("\n\n"));
}

/// A small deterministic generator (xorshift): the corpus is the same on every run, so a
/// difference found once is found again.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Every place in a value: its path as a list of keys and indexes.
fn places(v: &Value, at: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                at.push(json!(k));
                places(c, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, c) in items.iter().enumerate() {
                at.push(json!(i));
                places(c, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn at_mut<'v>(v: &'v mut Value, path: &[Value]) -> Option<&'v mut Value> {
    let mut cur = v;
    for step in path {
        cur = match (step, cur) {
            (Value::String(k), Value::Object(m)) => m.get_mut(k)?,
            (Value::Number(i), Value::Array(a)) => a.get_mut(i.as_u64()? as usize)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Text values found anywhere in `v` (codes, dates, names: what tables and formats read).
fn texts(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => out.push(v.clone()),
        Value::Array(items) => items.iter().for_each(|c| texts(c, out)),
        Value::Object(m) => m.values().for_each(|c| texts(c, out)),
        Value::Null => {}
    }
}

fn mutate(record: &Value, seen: &[Value], rng: &mut Rng) -> Value {
    let pool = [
        json!(""),
        json!("   "),
        json!("  Nguyễn   Văn  An "),
        json!("ĐẶNG thị HOA"),
        json!("Nguye\u{0302}\u{0303}n"),
        json!("2024-03-05T08:30:00+07:00"),
        json!("2024-02-30"),
        json!("05/03/2024"),
        json!("20240305083000"),
        json!("+84 912 345 678"),
        json!("001203004567"),
        json!("0100107123-001"),
        json!("abc@x.vn"),
        json!("1"),
        json!("0"),
        json!("1,5"),
        json!("true"),
        json!("không"),
        json!(1),
        json!(0),
        json!(2.5),
        json!(-7),
        json!(12345678901234u64),
        json!(true),
        json!(false),
        json!(null),
        json!([]),
        json!({}),
        json!(["a", "b"]),
        json!([{"id": "x", "name": "y"}]),
        json!({"a": 1, "#text": "t"}),
    ];
    let mut v = record.clone();
    for _ in 0..1 + rng.below(3) {
        let mut all = Vec::new();
        places(&v, &mut Vec::new(), &mut all);
        let path = all[rng.below(all.len())].clone();
        if path.is_empty() {
            continue;
        }
        let choice = rng.below(10);
        if choice == 0 {
            // Remove the field or element.
            let (last, parent) = path.split_last().unwrap();
            match (at_mut(&mut v, parent), last) {
                (Some(Value::Object(m)), Value::String(k)) => {
                    m.remove(k);
                }
                (Some(Value::Array(a)), Value::Number(i)) => {
                    let i = i.as_u64().unwrap() as usize;
                    if i < a.len() {
                        a.remove(i);
                    }
                }
                _ => {}
            }
            continue;
        }
        let new = if choice < 5 && !seen.is_empty() {
            seen[rng.below(seen.len())].clone()
        } else if choice == 5 {
            // A one-element list where a single value was, as XML gives repeated elements.
            let old = at_mut(&mut v, &path)
                .map(|x| x.clone())
                .unwrap_or(Value::Null);
            json!([old])
        } else {
            pool[rng.below(pool.len())].clone()
        };
        if let Some(slot) = at_mut(&mut v, &path) {
            *slot = new;
        }
    }
    v
}

#[test]
fn generated_records_give_the_same_results() {
    let per_record = std::env::var("DIFFERENTIAL_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(60);
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut differences = Vec::new();
    let mut checked = 0usize;
    for (m, inputs) in shipped() {
        let records: Vec<Value> = inputs
            .iter()
            .filter_map(|p| m.decode(&std::fs::read(p).unwrap()).ok())
            .flatten()
            .collect();
        let mut seen = Vec::new();
        for r in &records {
            texts(r, &mut seen);
        }
        for r in &records {
            for _ in 0..per_record {
                let mutant = mutate(r, &seen, &mut rng);
                if let Err(d) = compare_record(&m, &mutant) {
                    differences.push(d);
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 5_000, "only {checked} generated records");
    differences.truncate(5);
    assert!(differences.is_empty(), "{}", differences.join("\n\n"));
}

#[test]
fn a_mapping_whose_output_paths_overlap_is_left_to_the_interpreter() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.toml");
    std::fs::write(
        &file,
        r#"
[mapping]
description = "overlap"
[[field]]
to = "a"
from = "x"
[[field]]
to = "a.b"
from = "y"
"#,
    )
    .unwrap();
    let m = Mapping::load(&file, Path::new(dir.path())).unwrap();
    assert!(!m.is_compiled());
    let r = json!({"y": 1});
    assert_eq!(m.render(&r).unwrap(), br#"{"a":{"b":1}}"#);
    let e = m.render(&json!({"x": 1, "y": 2})).unwrap_err();
    assert!(e.reason.contains("conflicts"), "{e}");
}
