//! Compiling a mapping file: parse the TOML strictly, resolve tables, sub-mappings, date
//! formats, paths and the output schema, and report every problem at once with the file,
//! the line and the field it is in.

use crate::Mapping;
use crate::codec::csv::CsvOptions;
use crate::codec::xml::{XmlLimits, XmlWriteOptions};
use crate::codec::{DecodeOptions, EncodeOptions, Format, line_column};
use crate::datetime::{DateFormat, Zone};
use crate::engine::{Condition, Op, Rule, Source, Table, TemplatePart, Test, ValueType};
use crate::error::{CompileError, CompileErrors};
use crate::path::{OutputPath, SourcePath};
use crate::schema::Schema;
use crate::spec::{self, FieldSpec, MappingFile, TableFile, TableSpec, toml_to_json};
use crate::text::Legacy;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml::Spanned;

/// Where schemas live, relative to the mappings directory.
pub const SCHEMA_DIR: &str = "_schemas";

struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
    errors: Vec<CompileError>,
}

impl Ctx<'_> {
    fn line_of(&self, span: std::ops::Range<usize>) -> usize {
        line_column(self.text, span.start).0
    }

    fn err(&mut self, line: usize, field: Option<&str>, message: impl Into<String>) {
        self.errors.push(CompileError {
            file: self.file.to_path_buf(),
            line,
            field: field.map(str::to_string),
            message: message.into(),
        });
    }
}

/// Compile the mapping at `file`. `mappings_root` is the directory that holds `_schemas`.
pub fn compile_file(file: &Path, mappings_root: &Path) -> Result<Mapping, CompileErrors> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        CompileErrors(vec![CompileError {
            file: file.to_path_buf(),
            line: 0,
            field: None,
            message: format!("cannot read: {e}"),
        }])
    })?;
    compile_str(&text, file, mappings_root)
}

/// Compile mapping text; `file` names it in errors and anchors relative table files.
pub fn compile_str(
    text: &str,
    file: &Path,
    mappings_root: &Path,
) -> Result<Mapping, CompileErrors> {
    let mut ctx = Ctx {
        file,
        text,
        errors: Vec::new(),
    };
    let spec: MappingFile = match toml::from_str(text) {
        Ok(s) => s,
        Err(e) => {
            let line = e.span().map_or(0, |s| ctx.line_of(s));
            ctx.err(line, None, e.message().trim().to_string());
            return Err(CompileErrors(ctx.errors));
        }
    };
    let zone = match spec
        .mapping
        .timezone
        .as_deref()
        .map(Zone::parse)
        .transpose()
    {
        Ok(z) => z.unwrap_or(Zone::VIETNAM),
        Err(e) => {
            ctx.err(0, None, format!("[mapping] timezone: {e}"));
            Zone::VIETNAM
        }
    };
    let base_dir = file.parent().unwrap_or(Path::new("."));
    let tables = compile_tables(&mut ctx, spec.tables, base_dir);

    // Sub-mappings may use each other, in any order; compile the used ones depth-first and
    // refuse cycles.
    let mut subs: HashMap<String, Arc<Vec<Rule>>> = HashMap::new();
    let sub_specs = spec.sub;
    let mut visiting = HashSet::new();
    let names: Vec<String> = sub_specs.keys().cloned().collect();
    for name in &names {
        compile_sub(
            &mut ctx,
            name,
            &sub_specs,
            &tables,
            zone,
            &mut subs,
            &mut visiting,
            0,
        );
    }
    let rules = compile_rules(
        &mut ctx,
        &spec.field,
        &sub_specs,
        &tables,
        zone,
        &mut subs,
        &mut visiting,
    );
    if spec.field.is_empty() {
        ctx.err(0, None, "the mapping has no [[field]] rules");
    }

    let schema = spec.mapping.schema.as_deref().and_then(|name| {
        let path = mappings_root.join(SCHEMA_DIR).join(format!("{name}.toml"));
        match std::fs::read_to_string(&path) {
            Err(e) => {
                ctx.err(
                    0,
                    None,
                    format!("schema `{name}`: cannot read {}: {e}", path.display()),
                );
                None
            }
            Ok(t) => match Schema::compile(name, &t) {
                Ok(s) => Some(Arc::new(s)),
                Err(problems) => {
                    for p in problems {
                        ctx.err(0, None, format!("schema {}: {p}", path.display()));
                    }
                    None
                }
            },
        }
    });

    let decode = DecodeOptions {
        format: spec.input.format,
        xml_limits: XmlLimits::default(),
        csv: CsvOptions {
            delimiter: delimiter(&mut ctx, spec.input.delimiter, "input"),
            encoding: spec.input.encoding,
            ..CsvOptions::default()
        },
        records: spec
            .input
            .records
            .map(|r| r.split('.').map(str::to_string).collect()),
    };
    let xml = spec.output.xml.unwrap_or_default();
    if spec.output.format != Format::Xml
        && (xml.soap || xml.root.is_some() || xml.namespace.is_some())
    {
        ctx.err(
            0,
            None,
            "[output.xml] is set but the output format is not xml",
        );
    }
    let mut key_order = crate::codec::KeyOrder::default();
    collect_key_order(&rules, &mut key_order);
    let encode = EncodeOptions {
        format: spec.output.format,
        xml: XmlWriteOptions {
            root: xml.root,
            soap: xml.soap,
            namespace: xml.namespace,
            namespaces: xml.namespaces.into_iter().collect(),
        },
        csv_delimiter: delimiter(&mut ctx, spec.output.delimiter, "output"),
        key_order: Arc::new(key_order),
    };
    if !ctx.errors.is_empty() {
        return Err(CompileErrors(ctx.errors));
    }
    Ok(Mapping {
        file: file.to_path_buf(),
        description: spec.mapping.description,
        decode,
        encode,
        rules,
        schema,
    })
}

fn delimiter(ctx: &mut Ctx<'_>, d: Option<char>, which: &str) -> u8 {
    match d {
        None => b',',
        Some(c) if c.is_ascii() && c != '"' && c != '\n' => c as u8,
        Some(c) => {
            ctx.err(0, None, format!("[{which}] delimiter `{c}` must be one ASCII character other than a quote or newline"));
            b','
        }
    }
}

fn compile_tables(
    ctx: &mut Ctx<'_>,
    specs: BTreeMap<String, Spanned<TableSpec>>,
    base_dir: &Path,
) -> HashMap<String, Arc<Table>> {
    let mut out = HashMap::new();
    for (name, spanned) in specs {
        let line = ctx.line_of(spanned.span());
        let t = spanned.into_inner();
        let (values, default, ignore_case) = match (t.file, t.values) {
            (Some(_), Some(_)) => {
                ctx.err(
                    line,
                    None,
                    format!("table `{name}`: give `file` or `values`, not both"),
                );
                continue;
            }
            (None, None) => {
                ctx.err(
                    line,
                    None,
                    format!("table `{name}`: needs `values` or `file`"),
                );
                continue;
            }
            (None, Some(v)) => (v, t.default, t.ignore_case),
            (Some(f), None) => {
                let path: PathBuf = base_dir.join(&f);
                let loaded = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))
                    .and_then(|s| {
                        toml::from_str::<TableFile>(&s)
                            .map_err(|e| format!("{}: {}", path.display(), e.message().trim()))
                    });
                match loaded {
                    Ok(tf) => (
                        tf.values,
                        t.default.or(tf.default),
                        t.ignore_case || tf.ignore_case,
                    ),
                    Err(e) => {
                        ctx.err(line, None, format!("table `{name}`: {e}"));
                        continue;
                    }
                }
            }
        };
        let values = values
            .iter()
            .map(|(k, v)| {
                let k = if ignore_case {
                    k.to_lowercase()
                } else {
                    k.clone()
                };
                (k, toml_to_json(v))
            })
            .collect();
        out.insert(
            name.clone(),
            Arc::new(Table {
                name,
                values,
                default: default.as_ref().map(toml_to_json),
                ignore_case,
            }),
        );
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn compile_sub(
    ctx: &mut Ctx<'_>,
    name: &str,
    specs: &BTreeMap<String, Vec<Spanned<FieldSpec>>>,
    tables: &HashMap<String, Arc<Table>>,
    zone: Zone,
    done: &mut HashMap<String, Arc<Vec<Rule>>>,
    visiting: &mut HashSet<String>,
    line: usize,
) -> Option<Arc<Vec<Rule>>> {
    if let Some(r) = done.get(name) {
        return Some(Arc::clone(r));
    }
    let Some(fields) = specs.get(name) else {
        let known: Vec<&str> = specs.keys().map(String::as_str).collect();
        ctx.err(
            line,
            None,
            format!(
                "no sub-mapping `{name}` (defined: {})",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ),
        );
        return None;
    };
    if !visiting.insert(name.to_string()) {
        ctx.err(line, None, format!("sub-mapping `{name}` uses itself"));
        return None;
    }
    let rules = Arc::new(compile_rules(
        ctx, fields, specs, tables, zone, done, visiting,
    ));
    visiting.remove(name);
    done.insert(name.to_string(), Arc::clone(&rules));
    Some(rules)
}

fn compile_rules(
    ctx: &mut Ctx<'_>,
    fields: &[Spanned<FieldSpec>],
    subs: &BTreeMap<String, Vec<Spanned<FieldSpec>>>,
    tables: &HashMap<String, Arc<Table>>,
    zone: Zone,
    done: &mut HashMap<String, Arc<Vec<Rule>>>,
    visiting: &mut HashSet<String>,
) -> Vec<Rule> {
    let mut rules = Vec::new();
    for spanned in fields {
        let line = ctx.line_of(spanned.span());
        let f = spanned.get_ref();
        let field = Some(f.to.as_str());
        let before = ctx.errors.len();
        let to = OutputPath::parse(&f.to)
            .map_err(|e| ctx.err(line, field, e))
            .ok();
        let path = |ctx: &mut Ctx<'_>, p: &str| {
            SourcePath::parse(p)
                .map_err(|e| ctx.err(line, field, e))
                .ok()
        };

        let sources = [
            f.from.is_some(),
            f.constant.is_some(),
            f.template.is_some(),
            f.each.is_some(),
            f.fail.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if sources != 1 {
            ctx.err(
                line,
                field,
                "needs exactly one of `from`, `const`, `template`, `each` or `fail`",
            );
        }
        if f.with.is_some() != f.each.is_some() {
            ctx.err(line, field, "`each` and `with` go together: `each` names the input list, `with` the sub-mapping");
        }
        let source = if let Some(from) = &f.from {
            let paths: Vec<SourcePath> = from
                .clone()
                .into_vec()
                .iter()
                .filter_map(|p| path(ctx, p))
                .collect();
            if paths.is_empty() {
                ctx.err(line, field, "`from` is empty");
            }
            Some(Source::Paths(paths))
        } else if let Some(c) = &f.constant {
            Some(Source::Const(toml_to_json(c)))
        } else if let Some(t) = &f.template {
            match parse_template(t) {
                Ok(parts) => Some(Source::Template(parts)),
                Err(e) => {
                    ctx.err(line, field, e);
                    None
                }
            }
        } else if let Some(t) = &f.fail {
            match parse_template(t) {
                Ok(parts) => Some(Source::Fail(parts)),
                Err(e) => {
                    ctx.err(line, field, e);
                    None
                }
            }
        } else if let (Some(each), Some(with)) = (&f.each, &f.with) {
            let p = path(ctx, each);
            let sub = compile_sub(ctx, with, subs, tables, zone, done, visiting, line);
            p.zip(sub).map(|(path, rules)| Source::Each { path, rules })
        } else {
            None
        };

        let when = f
            .when
            .as_ref()
            .and_then(|w| compile_when(ctx, w, line, field));
        let mut ops = Vec::new();
        if !f.transform.is_empty()
            && matches!(
                source,
                Some(Source::Const(_) | Source::Each { .. } | Source::Fail(_))
            )
        {
            ctx.err(
                line,
                field,
                "`transform` applies to `from` and `template` values only",
            );
        }
        for t in &f.transform {
            match transform_op(t) {
                Ok(op) => ops.push(op),
                Err(e) => ctx.err(line, field, e),
            }
        }
        if let Some(name) = &f.table {
            match tables.get(name) {
                Some(t) => ops.push(Op::Table(Arc::clone(t))),
                None => {
                    let mut known: Vec<&str> = tables.keys().map(String::as_str).collect();
                    known.sort();
                    ctx.err(
                        line,
                        field,
                        format!(
                            "unknown table `{name}` (defined: {})",
                            if known.is_empty() {
                                "none".into()
                            } else {
                                known.join(", ")
                            }
                        ),
                    );
                }
            }
        }
        if let Some(d) = &f.date {
            let from: Vec<DateFormat> = d
                .from
                .clone()
                .into_vec()
                .iter()
                .filter_map(|s| {
                    DateFormat::parse(s)
                        .map_err(|e| ctx.err(line, field, e))
                        .ok()
                })
                .collect();
            let to = DateFormat::parse(&d.to)
                .map_err(|e| ctx.err(line, field, e))
                .ok();
            let z = |ctx: &mut Ctx<'_>, s: &Option<String>| match s {
                None => zone,
                Some(s) => Zone::parse(s).unwrap_or_else(|e| {
                    ctx.err(line, field, e);
                    zone
                }),
            };
            let (zone, to_zone) = (z(ctx, &d.zone), z(ctx, &d.to_zone));
            if let Some(to) = to {
                ops.push(Op::Date {
                    from,
                    to,
                    zone,
                    to_zone,
                });
            }
        }
        if let Some(t) = &f.value_type {
            let ty = match t.as_str() {
                "string" => Some(ValueType::String),
                "integer" => Some(ValueType::Integer),
                "decimal" | "number" => Some(ValueType::Decimal),
                "boolean" => Some(ValueType::Boolean),
                other => {
                    ctx.err(
                        line,
                        field,
                        format!("unknown type `{other}` (string, integer, decimal, boolean)"),
                    );
                    None
                }
            };
            ops.extend(ty.map(Op::Type));
        }
        if ctx.errors.len() > before {
            continue;
        }
        if let (Some(to), Some(source)) = (to, source) {
            rules.push(Rule {
                to,
                source,
                when,
                ops,
                default: f.default.as_ref().map(toml_to_json),
                required: f.required,
            });
        }
    }
    rules
}

fn compile_when(
    ctx: &mut Ctx<'_>,
    w: &spec::WhenSpec,
    line: usize,
    field: Option<&str>,
) -> Option<Condition> {
    let p = |ctx: &mut Ctx<'_>, s: &str| {
        SourcePath::parse(s)
            .map_err(|e| ctx.err(line, field, format!("when: {e}")))
            .ok()
    };
    let tests = [
        w.exists.is_some(),
        w.missing.is_some(),
        w.equals.is_some(),
        w.not_equals.is_some(),
        w.one_of.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if tests != 1 {
        ctx.err(
            line,
            field,
            "`when` needs exactly one of `exists`, `missing`, `equals`, `not_equals` or `in`",
        );
        return None;
    }
    let test = if let Some(e) = &w.exists {
        Test::Exists(p(ctx, e)?)
    } else if let Some(m) = &w.missing {
        Test::Missing(p(ctx, m)?)
    } else {
        let Some(path) = &w.path else {
            ctx.err(
                line,
                field,
                "`when` with `equals`, `not_equals` or `in` needs `path`",
            );
            return None;
        };
        let path = p(ctx, path)?;
        if let Some(v) = &w.equals {
            Test::Equals(path, toml_to_json(v))
        } else if let Some(v) = &w.not_equals {
            Test::NotEquals(path, toml_to_json(v))
        } else {
            let vs = w.one_of.as_ref().expect("counted above");
            Test::In(path, vs.iter().map(toml_to_json).collect())
        }
    };
    Some(Condition {
        test,
        ignore_case: w.ignore_case,
    })
}

fn transform_op(name: &str) -> Result<Op, String> {
    Ok(match name {
        "trim" => Op::Trim,
        "upper" => Op::Upper,
        "lower" => Op::Lower,
        "nfc" => Op::Nfc,
        "collapse_spaces" => Op::CollapseSpaces,
        "digits" => Op::Digits,
        "strip_spaces" => Op::StripSpaces,
        "phone_vn" => Op::PhoneVn,
        "tcvn3" => Op::Legacy(Legacy::Tcvn3),
        "vni" => Op::Legacy(Legacy::Vni),
        other => {
            return Err(format!(
                "unknown transform `{other}` (trim, upper, lower, nfc, collapse_spaces, strip_spaces, digits, phone_vn, tcvn3, vni)"
            ));
        }
    })
}

/// `"{a.b} / {c}"` → text and fields; `{{` and `}}` are literal braces.
fn parse_template(t: &str) -> Result<Vec<TemplatePart>, String> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => return Err(format!("unclosed `{{` in template `{t}`")),
                    }
                }
                if !text.is_empty() {
                    parts.push(TemplatePart::Text(std::mem::take(&mut text)));
                }
                parts.push(TemplatePart::Field(
                    SourcePath::parse(&name).map_err(|e| format!("template `{t}`: {e}"))?,
                ));
            }
            '}' => {
                return Err(format!(
                    "lone `}}` in template `{t}` (write `}}}}` for a brace)"
                ));
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        parts.push(TemplatePart::Text(text));
    }
    Ok(parts)
}

/// Field names in the order the rules first write them (sub-mappings where they are used).
fn collect_key_order(rules: &[Rule], order: &mut crate::codec::KeyOrder) {
    for rule in rules {
        for step in &rule.to.steps {
            if let crate::path::Step::Key(k) = step {
                order.push(k);
            }
        }
        if let Source::Each { rules, .. } = &rule.source {
            collect_key_order(rules, order);
        }
    }
}
