//! Compiling a mapping's fields into rules: each field's source, condition and
//! operations (transforms, table, date, type), and the sub-mappings they use, every
//! problem reported with its line and field.

use super::Ctx;
use crate::datetime::{DateFormat, Zone};
use crate::engine::{Condition, Op, Rule, Source, Table, TemplatePart, Test, ValueType};
use crate::path::{OutputPath, SourcePath};
use crate::spec::{self, FieldSpec, toml_to_json};
use crate::text::Legacy;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use toml::Spanned;

/// A sub-mapping (`with`), compiled once however many fields use it.
pub(super) fn compile_sub(
    ctx: &mut Ctx<'_>,
    name: &str,
    scope: &mut Scope<'_>,
    line: usize,
) -> Option<Arc<Vec<Rule>>> {
    if let Some(r) = scope.done.get(name) {
        return Some(Arc::clone(r));
    }
    let subs = scope.subs;
    let Some(fields) = subs.get(name) else {
        let known: Vec<&str> = subs.keys().map(String::as_str).collect();
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
    if !scope.visiting.insert(name.to_string()) {
        ctx.err(line, None, format!("sub-mapping `{name}` uses itself"));
        return None;
    }
    let rules = Arc::new(compile_rules(ctx, fields, scope));
    scope.visiting.remove(name);
    scope.done.insert(name.to_string(), Arc::clone(&rules));
    Some(rules)
}

/// Which definitions a field can use: the sub-mappings, the tables and the default zone,
/// and the sub-mappings already compiled (or being compiled, to find cycles).
pub(super) struct Scope<'s> {
    pub subs: &'s BTreeMap<String, Vec<Spanned<FieldSpec>>>,
    pub tables: &'s HashMap<String, Arc<Table>>,
    pub zone: Zone,
    pub done: HashMap<String, Arc<Vec<Rule>>>,
    pub visiting: HashSet<String>,
}

/// The rules of a list of fields, every problem reported (a field with one is left out).
pub(super) fn compile_rules(
    ctx: &mut Ctx<'_>,
    fields: &[Spanned<FieldSpec>],
    scope: &mut Scope<'_>,
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
        let source = compile_source(ctx, f, line, scope);
        let when = f
            .when
            .as_ref()
            .and_then(|w| compile_when(ctx, w, line, field));
        let ops = compile_ops(ctx, f, line, source.as_ref(), scope);
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

/// Where a field's value comes from: exactly one of `from`, `const`, `template`, `each`
/// (with `with`) or `fail`.
fn compile_source(
    ctx: &mut Ctx<'_>,
    f: &FieldSpec,
    line: usize,
    scope: &mut Scope<'_>,
) -> Option<Source> {
    let field = Some(f.to.as_str());
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
        ctx.err(
            line,
            field,
            "`each` and `with` go together: `each` names the input list, `with` the sub-mapping",
        );
    }
    let template =
        |ctx: &mut Ctx<'_>, t: &str| parse_template(t).map_err(|e| ctx.err(line, field, e)).ok();
    if let Some(from) = &f.from {
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
        template(ctx, t).map(Source::Template)
    } else if let Some(t) = &f.fail {
        template(ctx, t).map(Source::Fail)
    } else if let (Some(each), Some(with)) = (&f.each, &f.with) {
        let p = path(ctx, each);
        let sub = compile_sub(ctx, with, scope, line);
        p.zip(sub).map(|(path, rules)| Source::Each { path, rules })
    } else {
        None
    }
}

/// What is done to a field's value, in order: `transform`s, then its `table`, `date` and
/// `type`.
fn compile_ops(
    ctx: &mut Ctx<'_>,
    f: &FieldSpec,
    line: usize,
    source: Option<&Source>,
    scope: &Scope<'_>,
) -> Vec<Op> {
    let field = Some(f.to.as_str());
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
        ops.extend(table_op(ctx, name, line, field, scope.tables));
    }
    if let Some(d) = &f.date {
        ops.extend(date_op(ctx, d, line, field, scope.zone));
    }
    if let Some(t) = &f.value_type {
        ops.extend(type_op(ctx, t, line, field));
    }
    ops
}

fn table_op(
    ctx: &mut Ctx<'_>,
    name: &str,
    line: usize,
    field: Option<&str>,
    tables: &HashMap<String, Arc<Table>>,
) -> Option<Op> {
    if let Some(t) = tables.get(name) {
        return Some(Op::Table(Arc::clone(t)));
    }
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
    None
}

fn date_op(
    ctx: &mut Ctx<'_>,
    d: &spec::DateSpec,
    line: usize,
    field: Option<&str>,
    zone: Zone,
) -> Option<Op> {
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
    to.map(|to| Op::Date {
        from,
        to,
        zone,
        to_zone,
    })
}

fn type_op(ctx: &mut Ctx<'_>, t: &str, line: usize, field: Option<&str>) -> Option<Op> {
    let ty = match t {
        "string" => ValueType::String,
        "integer" => ValueType::Integer,
        "decimal" | "number" => ValueType::Decimal,
        "boolean" => ValueType::Boolean,
        other => {
            ctx.err(
                line,
                field,
                format!("unknown type `{other}` (string, integer, decimal, boolean)"),
            );
            return None;
        }
    };
    Some(Op::Type(ty))
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
