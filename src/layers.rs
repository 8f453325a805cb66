//! The layers of the bus, written down once, top to bottom, and the check that keeps
//! every import pointing down them.
//!
//! A module may use the modules of the layers below its own, never those above, and never
//! a sibling of its own layer (siblings share what they need through a lower layer, as
//! Vector's sources and sinks do through `vector-core`):
//!
//! ```text
//! assembly and tools    app, cli
//! the listener          server
//! HTTP faces            ingress, admin, contract, lookup
//! intake and routing    route
//! moving deliveries     relay (one node), transport (the cluster)
//! the delivery core     delivery
//! platforms             connector
//! translation           mappings (which mapping a route's target uses, loaded and reloaded)
//! the durable outbox    outbox
//! cross-cutting         procedures, audit, evidence, otlp, telemetry, web (what the faces share)
//! foundations           envelope, config, tracecontext
//! base                  time, hex, redact
//! ```
//!
//! The test below reads every `crate::` path in `src/` (comments aside) and fails on an
//! import that runs up or sideways, naming the file and line. The imports that ran against
//! the order when the check was written are listed in `KNOWN_BACK_IMPORTS` (issue 32's
//! circles): the list may only shrink — the test also fails when one of them is gone, so
//! that it is struck off.
//!
//! The same tests keep the code's shape: no source file over [`MOST_LINES_A_FILE`] lines and
//! no function over [`MOST_LINES_A_FUNCTION`] ([`oversized`]), in the bus, the mapping
//! crate and the mocks.

/// The layers, top first.
pub const LAYERS: &[&[&str]] = &[
    &["app", "cli"],
    &["server"],
    &["ingress", "admin", "contract", "lookup"],
    &["route"],
    &["relay", "transport"],
    &["delivery"],
    &["connector"],
    &["mappings"],
    &["outbox"],
    &[
        "procedures",
        "audit",
        "evidence",
        "otlp",
        "telemetry",
        "web",
    ],
    &["envelope", "config", "tracecontext"],
    &["time", "hex", "redact", "tls_provider"],
];

/// The mapping crate's layers, top first: the tools (scaffolding, explaining, the fixture
/// runner) over compiling a mapping, over the codecs, which decode into the compiled
/// engine's values (`plan`) and the door's checks, over the schemas and mapping files,
/// over the interpreter's rules, over the base every part names (dates, errors, paths,
/// text, the wire's formats and decode errors). Its unit tests may read the fixture corpus,
/// which sits above what they test, so the check reads each file up to its tests.
pub const MAPPING_LAYERS: &[&[&str]] = &[
    &["scaffold", "explain", "fixtures"],
    &["compile", "detect"],
    &["codec"],
    &["plan", "door"],
    &["input_schema"],
    &["schema"],
    &["spec"],
    &["engine"],
    &["datetime", "error"],
    &["path", "text", "wire"],
];

/// The layer of a top-level module (0 is the top), `None` for one not listed.
pub fn layer_of(module: &str) -> Option<usize> {
    layer_in(LAYERS, module)
}

fn layer_in(layers: &[&[&str]], module: &str) -> Option<usize> {
    layers.iter().position(|l| l.contains(&module))
}

/// An import against the order: `from` (a file's module) uses `to`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BackImport {
    pub from: String,
    pub to: String,
    /// Where: `path:line`.
    pub at: String,
}

/// The back-imports of a set of source files (path relative to `src/`, text).
pub fn back_imports<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<BackImport> {
    back_imports_in(LAYERS, files)
}

/// The back-imports of a set of a crate's source files against its `layers`.
pub fn back_imports_in<'a>(
    layers: &[&[&str]],
    files: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<BackImport> {
    let layer_of = |module: &str| layer_in(layers, module);
    let mut out = Vec::new();
    for (path, text) in files {
        let from = path
            .split('/')
            .next()
            .unwrap_or(path)
            .trim_end_matches(".rs");
        let Some(from_layer) = layer_of(from) else {
            continue;
        };
        // Comments out, line breaks kept (a `use` group may span lines).
        let code: String = text
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        for (offset, to) in crate_paths(&code) {
            if to == from {
                continue;
            }
            let Some(to_layer) = layer_of(to) else {
                continue;
            };
            if to_layer <= from_layer {
                let line = code[..offset].matches('\n').count() + 1;
                out.push(BackImport {
                    from: from.to_string(),
                    to: to.to_string(),
                    at: format!("{path}:{line}"),
                });
            }
        }
    }
    out
}

/// The top-level modules the code names as `crate::<module>`, also inside a
/// `use crate::{a, b::{c, d}}` group (only the group's first level names modules), each
/// with its offset in the text.
fn crate_paths(code: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(found) = code[from..].find("crate::") {
        let at = from + found;
        from = at + "crate::".len();
        let before = code[..at].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `lienthong_crate::`, not ours
        }
        let rest = &code[from..];
        if rest.starts_with('{') {
            // Names at the group's first level: after `{` or a `,` at depth 1.
            let mut depth = 0;
            let mut expect_name = false;
            for (i, c) in rest.char_indices() {
                match c {
                    '{' => {
                        depth += 1;
                        expect_name = depth == 1;
                    }
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => expect_name = true,
                    c if expect_name && (c.is_alphanumeric() || c == '_') => {
                        let end = rest[i..]
                            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                            .map_or(rest.len(), |e| i + e);
                        out.push((from + i, &rest[i..end]));
                        expect_name = false;
                    }
                    _ => {}
                }
            }
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end > 0 {
            out.push((at, &rest[..end]));
        }
    }
    out
}

/// Module pairs that import against the order today, to be undone (issue 32): the test
/// fails on any other, and on one of these once it is gone.
#[cfg(test)]
const KNOWN_BACK_IMPORTS: &[(&str, &str)] = &[];

/// Longest source file, in lines: a longer one holds more than one concept.
pub const MOST_LINES_A_FILE: usize = 600;
/// Longest function, in lines (its signature to its closing brace).
pub const MOST_LINES_A_FUNCTION: usize = 150;

/// Functions over [`MOST_LINES_A_FUNCTION`] when the check was written (issue 32): the list
/// may only shrink, and the test fails when one of them is back under the limit, so that it
/// is struck off.
pub const KNOWN_LONG_FUNCTIONS: &[(&str, &str)] = &[
    ("mapping/src/input_schema/mod.rs", "constrain"),
    ("mapping/src/scaffold.rs", "scaffold"),
    // Test functions over the limit when the check was extended to the tests: each is one
    // long story told against real servers, to be cut into scenes.
    (
        "tests/it/admin.rs",
        "roles_status_journeys_and_dead_letter_operations",
    ),
    (
        "tests/it/cluster/broker_loss.rs",
        "a_broker_connection_cut_mid_run_loses_nothing",
    ),
    (
        "tests/it/crash.rs",
        "kill_9_under_load_loses_no_acknowledged_event",
    ),
    (
        "tests/it/dashboard.rs",
        "the_dashboard_agrees_with_the_api_and_replays_a_dead_letter",
    ),
    (
        "tests/it/end_to_end.rs",
        "all_flows_arrive_once_and_in_order_through_faults",
    ),
    (
        "tests/it/monitoring.rs",
        "per_unit_status_dossiers_journeys_and_kpis",
    ),
    ("tests/it/outbox_model.rs", "run"),
];

/// What is over the limits in a set of source files (path, text), each as
/// `path: N lines` or `path:line: fn name is N lines`. Functions are found as rustfmt
/// writes them: a line starting with `fn` (after `pub`, `async`, `const`, `unsafe`) whose
/// body closes with `}` at the same indentation.
pub fn oversized<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    let mut found = Vec::new();
    for (path, text) in files {
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() > MOST_LINES_A_FILE {
            found.push(format!("{path}: {} lines", lines.len()));
        }
        for (i, line) in lines.iter().enumerate() {
            let code = line.trim_start();
            let indent = line.len() - code.len();
            let mut rest = code;
            for prefix in [
                "pub(crate) ",
                "pub(super) ",
                "pub ",
                "const ",
                "async ",
                "unsafe ",
            ] {
                rest = rest.strip_prefix(prefix).unwrap_or(rest);
            }
            let Some(signature) = rest.strip_prefix("fn ") else {
                continue;
            };
            if code.ends_with(';') || code.ends_with('}') {
                continue; // a declaration, or a function on one line
            }
            let close = format!("{}}}", " ".repeat(indent));
            if let Some(len) = lines[i + 1..].iter().position(|l| *l == close) {
                let len = len + 2;
                if len > MOST_LINES_A_FUNCTION {
                    let name: String = signature
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    found.push(format!("{path}:{}: fn {name} is {len} lines", i + 1));
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    fn sources() -> Vec<(String, String)> {
        sources_in("src")
    }

    /// Every `.rs` file under `dir` (relative to the crate), by path relative to `dir`.
    fn sources_in(dir: &str) -> Vec<(String, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut out = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let rel = p.strip_prefix(&root).unwrap().to_string_lossy().to_string();
                    out.push((rel, std::fs::read_to_string(&p).unwrap()));
                }
            }
        }
        out
    }

    #[test]
    fn every_module_of_the_crate_is_on_a_layer() {
        let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
            .unwrap();
        for line in lib.lines() {
            if let Some(m) = line
                .strip_prefix("pub mod ")
                .and_then(|l| l.strip_suffix(';'))
                && m != "layers"
            {
                assert!(
                    layer_of(m).is_some(),
                    "module `{m}` is on no layer of src/layers.rs"
                );
            }
        }
    }

    #[test]
    fn imports_point_down_the_layers() {
        let files = sources();
        let found = back_imports(files.iter().map(|(p, t)| (p.as_str(), t.as_str())));
        let known: BTreeSet<(&str, &str)> = KNOWN_BACK_IMPORTS.iter().copied().collect();
        let new: Vec<&BackImport> = found
            .iter()
            .filter(|b| !known.contains(&(b.from.as_str(), b.to.as_str())))
            .collect();
        assert!(
            new.is_empty(),
            "imports against the layers of src/layers.rs (a module may use only the layers below its own):\n{}",
            new.iter()
                .map(|b| format!("  {}: {} uses {}", b.at, b.from, b.to))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let still: BTreeSet<(&str, &str)> = found
            .iter()
            .map(|b| (b.from.as_str(), b.to.as_str()))
            .collect();
        let gone: Vec<&(&str, &str)> = known.iter().filter(|k| !still.contains(k)).collect();
        assert!(
            gone.is_empty(),
            "these back-imports are gone: strike them off KNOWN_BACK_IMPORTS: {gone:?}"
        );
    }

    #[test]
    fn the_mapping_crates_imports_point_down_its_layers() {
        let files = sources_in("mapping/src");
        // Each file up to its unit tests (see MAPPING_LAYERS).
        let code: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, t)| (p.as_str(), t.split("#[cfg(test)]").next().unwrap_or(t)))
            .collect();
        for (path, _) in &code {
            let module = path.split('/').next().unwrap().trim_end_matches(".rs");
            assert!(
                module == "lib" || layer_in(MAPPING_LAYERS, module).is_some(),
                "mapping/src/{path}: module `{module}` is on no layer of MAPPING_LAYERS"
            );
        }
        let found = back_imports_in(MAPPING_LAYERS, code);
        assert!(
            found.is_empty(),
            "imports against the mapping crate's layers (MAPPING_LAYERS):\n{}",
            found
                .iter()
                .map(|b| format!("  {}: {} uses {}", b.at, b.from, b.to))
                .collect::<Vec<_>>()
                .join("\n")
        );
        // And a planted one is caught: the wire's formats reaching up into the codecs.
        let planted = back_imports_in(MAPPING_LAYERS, [("wire.rs", "use crate::codec::csv;\n")]);
        assert_eq!(planted.len(), 1, "{planted:?}");
    }

    /// The check catches a planted back-import: the outbox using the delivery core.
    #[test]
    fn a_planted_back_import_is_caught() {
        let planted = "//! outbox\nuse crate::envelope::Envelope; // down: fine\nuse crate::delivery::Outcome;\n";
        let found = back_imports([("outbox/planted.rs", planted)]);
        assert_eq!(
            found,
            vec![BackImport {
                from: "outbox".into(),
                to: "delivery".into(),
                at: "outbox/planted.rs:3".into()
            }]
        );
        // Groups over several lines (a nested name is not a module), sideways imports,
        // comments.
        let text = "use crate::{\n    outbox::{X, app},\n    admin::Y,\n};\n// crate::app::Z is a comment\n";
        let found = back_imports([("ingress/mod.rs", text)]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].to.as_str(), found[0].at.as_str()),
            ("admin", "ingress/mod.rs:3")
        );
    }

    #[test]
    fn no_file_and_no_function_is_over_its_length() {
        let mut found = Vec::new();
        for dir in [
            "src",
            "mapping/src",
            "mocks/src",
            "tests",
            "mapping/tests",
            "mocks/tests",
        ] {
            let files = sources_in(dir);
            let named: Vec<(String, &str)> = files
                .iter()
                .map(|(p, t)| (format!("{dir}/{p}"), t.as_str()))
                .collect();
            found.extend(oversized(named.iter().map(|(p, t)| (p.as_str(), *t))));
        }
        let known = |f: &String| {
            KNOWN_LONG_FUNCTIONS.iter().find(|(path, name)| {
                f.starts_with(&format!("{path}:")) && f.contains(&format!(": fn {name} is "))
            })
        };
        let new: Vec<&String> = found.iter().filter(|f| known(f).is_none()).collect();
        assert!(new.is_empty(), "over the limits: {new:#?}");
        for (path, name) in KNOWN_LONG_FUNCTIONS {
            assert!(
                found.iter().any(|f| known(f) == Some(&(*path, *name))),
                "{path}: fn {name} is no longer over {MOST_LINES_A_FUNCTION} lines: strike it off KNOWN_LONG_FUNCTIONS"
            );
        }
    }

    #[test]
    fn a_long_function_and_a_long_file_are_caught() {
        let body = "    let x = 1;\n".repeat(MOST_LINES_A_FUNCTION);
        let text = format!("//! planted\npub async fn long_one() {{\n{body}}}\nfn short() {{}}\n");
        let found = oversized([("planted.rs", text.as_str())]);
        assert_eq!(
            found,
            vec![format!(
                "planted.rs:2: fn long_one is {} lines",
                MOST_LINES_A_FUNCTION + 2
            )]
        );
        let file = "// x\n".repeat(MOST_LINES_A_FILE + 1);
        assert_eq!(
            oversized([("big.rs", file.as_str())]),
            vec![format!("big.rs: {} lines", MOST_LINES_A_FILE + 1)]
        );
    }
}
