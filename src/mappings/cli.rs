//! `lienthong mapping test` and `lienthong mapping run`: check mappings offline against
//! their fixture cases, or try one on a file, before anything goes live.

use lienthong_mapping::Mapping;
use lienthong_mapping::fixtures::{self, Outcome};
use std::io::Write;
use std::path::Path;

/// Run the fixtures of every mapping at `path` (a file or a directory). Prints one line per
/// mapping as it goes, a diff for each failing case, and a summary. `true` if all passed.
pub fn test(path: &Path, bless: bool, out: &mut dyn Write) -> std::io::Result<bool> {
    if !path.exists() {
        writeln!(
            out,
            "error: {} does not exist (give a mapping file or a directory of mappings)",
            path.display()
        )?;
        return Ok(false);
    }
    let root = fixtures::mappings_root(path);
    let files = fixtures::find_mappings(path)?;
    if files.is_empty() {
        writeln!(
            out,
            "error: no mapping files (*.toml) under {}",
            path.display()
        )?;
        return Ok(false);
    }
    let (mut passed, mut failed, mut broken) = (0usize, 0usize, 0usize);
    let total = files.len();
    for (i, file) in files.iter().enumerate() {
        let report = fixtures::test_mapping(file, &root, bless);
        let name = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        let progress = format!("[{}/{total}]", i + 1);
        if let Some(e) = &report.compile_error {
            broken += 1;
            writeln!(
                out,
                "{progress} FAIL {name}: does not compile\n{}",
                indent(e)
            )?;
            continue;
        }
        for p in &report.blessed {
            let what = if p.to_string_lossy().ends_with(".error.txt") {
                "an ERROR expectation: the mapping failed on this input"
            } else {
                "review it, then commit"
            };
            writeln!(out, "{progress} wrote {} ({what})", p.display())?;
        }
        let ok = report
            .cases
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Pass))
            .count();
        let bad = report.cases.len() - ok;
        passed += ok;
        failed += bad;
        if report.cases.is_empty() {
            broken += 1;
            writeln!(
                out,
                "{progress} FAIL {name}: no fixture cases in {} (add <case>.input.<ext> files)",
                fixtures::cases_dir(file).display()
            )?;
        } else if bad == 0 {
            writeln!(out, "{progress} ok   {name} ({ok} cases)")?;
        } else {
            writeln!(out, "{progress} FAIL {name} ({ok} passed, {bad} failed)")?;
            for (case, outcome) in &report.cases {
                if let Outcome::Fail(why) = outcome {
                    writeln!(
                        out,
                        "  case {} ({}):\n{}",
                        case.name,
                        case.input.display(),
                        indent(why)
                    )?;
                }
            }
        }
    }
    writeln!(
        out,
        "\n{passed} cases passed, {failed} failed; {} of {total} mappings {}",
        total - broken,
        if broken == 0 {
            "compiled with cases"
        } else {
            "compiled with cases (the others need fixing)"
        }
    )?;
    Ok(failed == 0 && broken == 0)
}

/// Map an input file with one mapping and print the result (or the error), then what
/// the bus's door would say of it (the same check, every problem listed).
pub fn run(mapping: &Path, input: &Path, out: &mut dyn Write) -> std::io::Result<bool> {
    let Some((m, bytes)) = load_with_input(mapping, input, out)? else {
        return Ok(false);
    };
    let mapped = match fixtures::produce(&m, &bytes) {
        Ok(text) => {
            writeln!(out, "{}", text.trim_end())?;
            true
        }
        Err(e) => {
            writeln!(out, "error: {e}")?;
            false
        }
    };
    let door = lienthong_mapping::door::verdict(&m, &bytes);
    if door.is_empty() {
        writeln!(out, "door: accepted (the bus would store it)")?;
    } else {
        writeln!(
            out,
            "door: refused with 400 invalid_event, nothing stored ({} problem{}); correct the export:",
            door.len(),
            if door.len() == 1 { "" } else { "s" }
        )?;
        for p in &door {
            writeln!(out, "  {p}")?;
        }
    }
    Ok(mapped && door.is_empty())
}

/// The mapping at `mapping` and the bytes of `input`, or `None` with the error written.
fn load_with_input(
    mapping: &Path,
    input: &Path,
    out: &mut dyn Write,
) -> std::io::Result<Option<(Mapping, Vec<u8>)>> {
    let root = fixtures::mappings_root(mapping);
    let m = match Mapping::load(mapping, &root) {
        Ok(m) => m,
        Err(e) => {
            writeln!(
                out,
                "error: the mapping does not compile:\n{}",
                indent(&e.to_string())
            )?;
            return Ok(None);
        }
    };
    match std::fs::read(input) {
        Ok(b) => Ok(Some((m, b))),
        Err(e) => {
            writeln!(out, "error: cannot read {}: {e}", input.display())?;
            Ok(None)
        }
    }
}

/// `lienthong mapping explain MAPPING INPUT`: every record's field-by-field trace.
pub fn explain(mapping: &Path, input: &Path, out: &mut dyn Write) -> std::io::Result<bool> {
    let Some((m, bytes)) = load_with_input(mapping, input, out)? else {
        return Ok(false);
    };
    let records = match m.decode(&bytes) {
        Ok(r) => r,
        Err(e) => {
            writeln!(out, "error: input: {e}")?;
            return Ok(false);
        }
    };
    let mut ok = true;
    for (i, record) in records.iter().enumerate() {
        if records.len() > 1 {
            writeln!(out, "── record {} of {}", i + 1, records.len())?;
        }
        let e = m.explain(record);
        ok &= e.result.is_ok();
        writeln!(out, "{e}")?;
    }
    Ok(ok)
}

/// What `lienthong mapping new` is asked for.
pub struct NewMapping<'a> {
    pub unit: &'a str,
    pub flow: &'a str,
    pub schema: &'a str,
    pub sample: &'a Path,
    pub dir: &'a Path,
    pub force: bool,
}

/// `lienthong mapping new`: a first mapping from a sample, and the sample as its first case.
pub fn new_mapping(req: &NewMapping<'_>, out: &mut dyn Write) -> std::io::Result<bool> {
    let safe = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if !safe(req.unit) || !safe(req.flow) {
        writeln!(
            out,
            "error: --unit and --flow are names (letters, digits, _ and -), got `{}` and `{}`",
            req.unit, req.flow
        )?;
        return Ok(false);
    }
    let sample = match std::fs::read(req.sample) {
        Ok(b) => b,
        Err(e) => {
            writeln!(out, "error: cannot read {}: {e}", req.sample.display())?;
            return Ok(false);
        }
    };
    let sample_name = req
        .sample
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let made = lienthong_mapping::scaffold::scaffold(
        &lienthong_mapping::scaffold::Request {
            unit: req.unit,
            flow: req.flow,
            schema: req.schema,
            sample: &sample,
            sample_name: &sample_name,
        },
        req.dir,
    );
    let made = match made {
        Ok(m) => m,
        Err(e) => {
            writeln!(out, "error: {e}")?;
            return Ok(false);
        }
    };
    let file = req.dir.join(req.unit).join(format!("{}.toml", req.flow));
    if file.exists() && !req.force {
        writeln!(
            out,
            "error: {} exists; pick another --flow, or --force to replace it",
            file.display()
        )?;
        return Ok(false);
    }
    let cases = req.dir.join(req.unit).join("tests").join(req.flow);
    let case = cases.join(format!("01-sample.input.{}", made.format.extension()));
    std::fs::create_dir_all(&cases)?;
    std::fs::write(&file, &made.toml)?;
    std::fs::write(&case, &sample)?;
    writeln!(out, "wrote {}", file.display())?;
    writeln!(out, "wrote {} (the first case)", case.display())?;
    if let Some(d) = &made.encoding {
        writeln!(out, "sample encoding: {}", d.encoding.name())?;
    }
    writeln!(out, "matched {} field(s):", made.matched.len())?;
    for (to, from) in &made.matched {
        writeln!(out, "  {to} ← {from}")?;
    }
    if !made.todo.is_empty() {
        writeln!(out, "to do ({}), marked TODO in the file:", made.todo.len())?;
        for t in &made.todo {
            writeln!(out, "  {t}")?;
        }
    }
    writeln!(
        out,
        "next: fill in the TODOs, then `lienthong mapping test --bless {}` writes the sample's \
         expected output (read it), and `lienthong mapping test {}` checks it",
        file.display(),
        file.display()
    )?;
    Ok(true)
}

/// `lienthong mapping detect FILE`: the file's encoding, the evidence, the option to use.
pub fn detect(file: &Path, out: &mut dyn Write) -> std::io::Result<bool> {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            writeln!(out, "error: cannot read {}: {e}", file.display())?;
            return Ok(false);
        }
    };
    let found = lienthong_mapping::detect::detect(&bytes);
    writeln!(out, "{}: {found}", file.display())?;
    let text = lienthong_mapping::detect::decode(&bytes, found.encoding);
    if let Some(line) = text.lines().find(|l| !l.is_ascii()) {
        let line: String = line.chars().take(120).collect();
        writeln!(out, "first line with accents, read so: {line}")?;
    }
    Ok(true)
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
