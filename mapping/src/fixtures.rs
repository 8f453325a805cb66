//! Fixture cases: example inputs with the output (or the error) a mapping must give, kept
//! beside each mapping so a unit IT team can check a change before it goes live.
//!
//! Layout: for a mapping `mappings/<unit>/<name>.toml` the cases are in
//! `mappings/<unit>/tests/<name>/`: `<case>.input.<json|xml|csv>` with either
//! `<case>.expected.<json|xml|csv>` (the exact output) or `<case>.error.txt` (each non-blank
//! line must appear in the error message). JSON is compared as data (key order and spacing
//! do not matter); XML and CSV as text with blank space between tags and at line ends ignored.

use crate::{Format, Mapping};
use serde_json::Value;
use similar::{ChangeTag, TextDiff};
use std::path::{Path, PathBuf};

/// One fixture case.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub input: PathBuf,
    pub expect: Expect,
}

#[derive(Debug, Clone)]
pub enum Expect {
    Output(PathBuf),
    Error(PathBuf),
    /// Neither file exists next to the input.
    Nothing,
}

/// The outcome of a case.
#[derive(Debug)]
pub enum Outcome {
    Pass,
    /// A readable explanation: a diff, or the unexpected error.
    Fail(String),
}

/// The fixture directory of a mapping file.
pub fn cases_dir(mapping_file: &Path) -> PathBuf {
    let stem = mapping_file.file_stem().unwrap_or_default();
    mapping_file
        .parent()
        .unwrap_or(Path::new("."))
        .join("tests")
        .join(stem)
}

/// The cases of a mapping, sorted by name.
pub fn discover(mapping_file: &Path) -> std::io::Result<Vec<Case>> {
    let dir = cases_dir(mapping_file);
    let mut cases = Vec::new();
    if !dir.is_dir() {
        return Ok(cases);
    }
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let fname = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let Some((name, ext)) = fname.rsplit_once('.') else {
            continue;
        };
        let Some(name) = name.strip_suffix(".input") else {
            continue;
        };
        let _ = ext;
        let expected = ["json", "xml", "csv"]
            .iter()
            .map(|e| dir.join(format!("{name}.expected.{e}")))
            .find(|p| p.exists());
        let error = dir.join(format!("{name}.error.txt"));
        let expect = match expected {
            Some(p) => Expect::Output(p),
            None if error.exists() => Expect::Error(error),
            None => Expect::Nothing,
        };
        cases.push(Case {
            name: name.to_string(),
            input: path,
            expect,
        });
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(cases)
}

/// Run one case through a compiled mapping.
pub fn run_case(mapping: &Mapping, case: &Case) -> Outcome {
    let input = match std::fs::read(&case.input) {
        Ok(b) => b,
        Err(e) => return Outcome::Fail(format!("cannot read {}: {e}", case.input.display())),
    };
    let result = produce(mapping, &input);
    // The door gives the same verdict as the case: what maps is accepted, what is
    // refused is refused before it is stored.
    let door = crate::door::verdict(mapping, &input);
    match (&case.expect, &result) {
        (Expect::Output(_), Ok(_)) if !door.is_empty() => {
            return Outcome::Fail(format!(
                "the mapping maps this input, but the bus would refuse it at the door (its \
                 published schema forbids it):\n  {}",
                door.join("\n  ")
            ));
        }
        (Expect::Error(_), Err(_)) if door.is_empty() => {
            return Outcome::Fail(
                "the mapping refuses this input, but the door would accept it".into(),
            );
        }
        _ => {}
    }
    match (&case.expect, result) {
        (Expect::Nothing, _) => Outcome::Fail(format!(
            "no expected output: add {0}.expected.{1} or {0}.error.txt beside the input",
            case.name,
            mapping.output_format().extension()
        )),
        (Expect::Output(_), Err(e)) => {
            Outcome::Fail(format!("expected output, got an error:\n  {e}"))
        }
        (Expect::Output(path), Ok(actual)) => {
            let expected = match std::fs::read_to_string(path) {
                Ok(s) => s,
                Err(e) => return Outcome::Fail(format!("cannot read {}: {e}", path.display())),
            };
            compare(mapping.output_format(), &expected, &actual)
        }
        (Expect::Error(path), Ok(actual)) => Outcome::Fail(format!(
            "expected an error ({}), but the mapping produced:\n{}",
            path.display(),
            indent(&actual)
        )),
        (Expect::Error(path), Err(e)) => {
            let wanted = match std::fs::read_to_string(path) {
                Ok(s) => s,
                Err(err) => return Outcome::Fail(format!("cannot read {}: {err}", path.display())),
            };
            let missing: Vec<&str> = wanted
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#') && !e.contains(l))
                .collect();
            if missing.is_empty() {
                Outcome::Pass
            } else {
                Outcome::Fail(format!(
                    "the error does not say what the case expects.\n  error:    {e}\n  missing:  {}",
                    missing.join(" | ")
                ))
            }
        }
    }
}

/// Decode, map and encode an input: the output text, or the error text. Several records
/// give a JSON array (or the outputs one after another for XML and CSV).
pub fn produce(mapping: &Mapping, input: &[u8]) -> Result<String, String> {
    let records = mapping.decode(input).map_err(|e| format!("input: {e}"))?;
    if records.is_empty() {
        return Err("input: no records".into());
    }
    let mut outs = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let v = mapping.map(r).map_err(|e| {
            if records.len() > 1 {
                format!("record {}: {e}", i + 1)
            } else {
                e.to_string()
            }
        })?;
        outs.push(v);
    }
    match mapping.output_format() {
        Format::Json => {
            let v = if outs.len() == 1 {
                outs.pop().unwrap()
            } else {
                Value::Array(outs)
            };
            Ok(serde_json::to_string_pretty(&v).expect("values serialise"))
        }
        _ => {
            let mut text = String::new();
            for v in &outs {
                let bytes = mapping.encode_value(v).map_err(|e| e.to_string())?;
                text.push_str(&String::from_utf8_lossy(&bytes));
                text.push('\n');
            }
            Ok(text)
        }
    }
}

fn compare(format: Format, expected: &str, actual: &str) -> Outcome {
    let (exp, act) = match format {
        Format::Json => {
            let exp: Value = match serde_json::from_str(expected) {
                Ok(v) => v,
                Err(e) => {
                    return Outcome::Fail(format!("the expected file is not valid JSON: {e}"));
                }
            };
            let act: Value = serde_json::from_str(actual).expect("we wrote it");
            if exp == act {
                return Outcome::Pass;
            }
            (
                serde_json::to_string_pretty(&exp).unwrap(),
                serde_json::to_string_pretty(&act).unwrap(),
            )
        }
        Format::Xml => {
            let (e, a) = (normalize_xml(expected), normalize_xml(actual));
            if e == a {
                return Outcome::Pass;
            }
            (pretty_xml(&e), pretty_xml(&a))
        }
        Format::Csv => {
            let norm = |s: &str| {
                s.lines()
                    .map(str::trim_end)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            let (e, a) = (norm(expected), norm(actual));
            if e == a {
                return Outcome::Pass;
            }
            (e, a)
        }
    };
    Outcome::Fail(diff(&exp, &act))
}

/// A unified-style diff: `-` lines are expected, `+` lines are what the mapping produced.
pub fn diff(expected: &str, actual: &str) -> String {
    let mut out = String::from("--- expected\n+++ actual\n");
    let d = TextDiff::from_lines(expected, actual);
    for group in d.grouped_ops(2) {
        for op in group {
            for change in d.iter_changes(&op) {
                let sign = match change.tag() {
                    ChangeTag::Delete => '-',
                    ChangeTag::Insert => '+',
                    ChangeTag::Equal => ' ',
                };
                out.push(sign);
                out.push(' ');
                out.push_str(change.value().trim_end_matches('\n'));
                out.push('\n');
            }
        }
        out.push_str("  ...\n");
    }
    out
}

fn normalize_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_ws = String::new();
    let mut prev_gt = true;
    for c in s.trim().chars() {
        if c.is_whitespace() {
            pending_ws.push(c);
            continue;
        }
        if !(prev_gt && c == '<') {
            out.push_str(&pending_ws);
        }
        pending_ws.clear();
        prev_gt = c == '>';
        out.push(c);
    }
    out
}

fn pretty_xml(s: &str) -> String {
    s.replace("><", ">\n<")
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

/// Directories under a mappings tree that hold no mappings.
const NOT_MAPPINGS: [&str; 5] = ["_schemas", "_studio", "_tables", "tables", "tests"];

/// Files beside the mappings that are not mappings (a unit's procedure catalogue).
const NOT_MAPPING_FILES: [&str; 1] = ["procedures.toml"];

/// The mapping files at `path`: the file itself, or every `*.toml` under the directory
/// (skipping schemas, shared tables and fixture folders), sorted.
pub fn find_mappings(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut dirs = vec![path.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let p = entry?.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if p.is_dir() {
                if !NOT_MAPPINGS.contains(&name) && !name.starts_with('.') {
                    dirs.push(p);
                }
            } else if name.ends_with(".toml") && !NOT_MAPPING_FILES.contains(&name) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The mappings root (the directory holding `_schemas`) for a file or directory: the
/// nearest ancestor that has one, else the path's own directory.
pub fn mappings_root(path: &Path) -> PathBuf {
    let start = if path.is_file() {
        path.parent().unwrap_or(Path::new("."))
    } else {
        path
    };
    let mut cur = Some(start);
    while let Some(dir) = cur {
        if dir.join(crate::compile::SCHEMA_DIR).is_dir() {
            return dir.to_path_buf();
        }
        cur = dir.parent();
    }
    start.to_path_buf()
}

/// What happened to one mapping's fixtures.
#[derive(Debug)]
pub struct MappingReport {
    pub file: PathBuf,
    /// The mapping did not compile: no case ran.
    pub compile_error: Option<String>,
    pub cases: Vec<(Case, Outcome)>,
    /// Expected files written by `bless` for cases that had none.
    pub blessed: Vec<PathBuf>,
}

impl MappingReport {
    pub fn ok(&self) -> bool {
        self.compile_error.is_none()
            && !self.cases.is_empty()
            && self.cases.iter().all(|(_, o)| matches!(o, Outcome::Pass))
    }
}

/// Run the fixtures of one mapping. With `bless`, a case with no expectation gets one
/// written from what the mapping produces now (review it before committing).
pub fn test_mapping(file: &Path, root: &Path, bless: bool) -> MappingReport {
    let mut report = MappingReport {
        file: file.to_path_buf(),
        compile_error: None,
        cases: Vec::new(),
        blessed: Vec::new(),
    };
    let mapping = match Mapping::load(file, root) {
        Ok(m) => m,
        Err(e) => {
            report.compile_error = Some(e.to_string());
            return report;
        }
    };
    let cases = match discover(file) {
        Ok(c) => c,
        Err(e) => {
            report.compile_error = Some(format!("cannot list {}: {e}", cases_dir(file).display()));
            return report;
        }
    };
    for mut case in cases {
        if bless && matches!(case.expect, Expect::Nothing) {
            let input = std::fs::read(&case.input).unwrap_or_default();
            match produce(&mapping, &input) {
                Ok(out) => {
                    let path = case.input.with_file_name(format!(
                        "{}.expected.{}",
                        case.name,
                        mapping.output_format().extension()
                    ));
                    let newline = if mapping.output_format() == Format::Json {
                        "\n"
                    } else {
                        ""
                    };
                    if std::fs::write(&path, out + newline).is_ok() {
                        report.blessed.push(path.clone());
                        case.expect = Expect::Output(path);
                    }
                }
                // A failure is never blessed into an expected error: the mapping (a new
                // one with its TODOs, say) fails on its sample, and that is what to fix.
                // A case meant to be refused gets its .error.txt written by hand.
                Err(e) => {
                    let error_file = case
                        .input
                        .with_file_name(format!("{}.error.txt", case.name));
                    let why = format!(
                        "the mapping fails on this input, so nothing was blessed:\n{e}\n\
                         Fix the mapping; or, if this input is meant to be refused, write the \
                         message above into {}",
                        error_file.display()
                    );
                    report.cases.push((case, Outcome::Fail(why)));
                    continue;
                }
            }
        }
        let outcome = run_case(&mapping, &case);
        report.cases.push((case, outcome));
    }
    report
}

/// Inputs for the readers' agreement tests: every shipped case input with this extension,
/// and pseudo-random mutations of them.
#[cfg(test)]
pub(crate) mod corpus {
    use std::path::Path;

    /// Every `*.input.<ext>` file under the shipped mappings.
    pub fn case_inputs(ext: &str) -> Vec<Vec<u8>> {
        let suffix = format!(".input.{ext}");
        let mut inputs = Vec::new();
        let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("../mappings")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).expect("mappings directory") {
                let p = entry.expect("directory entry").path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.to_string_lossy().ends_with(&suffix) {
                    inputs.push(std::fs::read(p).expect("case input"));
                }
            }
        }
        assert!(inputs.len() > 10, "few {ext} case inputs");
        inputs
    }

    /// `count` copies of `input`, each with one byte of `alphabet` put in place of one of
    /// its bytes, inserted, or one byte removed (xorshift from `seed`, so a failure repeats).
    pub fn mutations(input: &[u8], alphabet: &[u8], count: usize, seed: u64) -> Vec<Vec<u8>> {
        let mut seed = seed | 1;
        (0..count)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let mut m = input.to_vec();
                let at = (seed as usize) % m.len();
                let b = alphabet[(seed >> 32) as usize % alphabet.len()];
                match (seed >> 40) % 3 {
                    0 => m[at] = b,
                    1 => {
                        m.remove(at);
                    }
                    _ => m.insert(at, b),
                }
                m
            })
            .collect()
    }
}
