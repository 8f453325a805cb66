//! Why a mapping wrote what it wrote: for each output field, the rule's condition, the input
//! path and the value read there, each transform with its result, and the final value — or
//! where it stopped. `lienthong mapping explain` prints it; the dashboard's mapping studio
//! shows the same trace.
//!
//! The trace follows the rule interpreter step by step (the reference the compiled engine
//! is tested against), so it explains exactly what the bus does.

use crate::Mapping;
use crate::datetime::DateFormat;
use crate::engine::{self, Condition, Op, Rule, Source, Test, ValueType};
use crate::error::MappingError;
use crate::path::SourcePath;
use serde_json::Value;
use std::fmt;

/// One output field's story.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldTrace {
    /// The output field, with concrete indexes inside `each` lists.
    pub field: String,
    /// The `when` condition and whether it held.
    pub condition: Option<(String, bool)>,
    /// Where the value came from: an input path, `const`, a template, a list.
    pub source: String,
    /// What was read there (`None`: nothing).
    pub read: Option<Value>,
    /// Each transform and its result (an error ends the list).
    pub steps: Vec<(String, Result<Value, String>)>,
    pub outcome: FieldOutcome,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FieldOutcome {
    Written(Value),
    /// The rule found nothing and its `default` was written.
    Default(Value),
    /// Nothing to write, and the field is optional.
    LeftOut,
    /// The condition did not hold.
    Skipped,
    /// Written by the `each` rule's elements (their own traces follow).
    List(usize),
    Failed(String),
}

/// A whole record's explanation: every field, then the result (schema check included).
#[derive(Clone, Debug)]
pub struct Explanation {
    pub fields: Vec<FieldTrace>,
    pub result: Result<Value, MappingError>,
    pub schema: Option<String>,
}

impl Mapping {
    /// Explain how this mapping maps `record`.
    pub fn explain(&self, record: &Value) -> Explanation {
        let mut fields = Vec::new();
        trace_rules(&self.rules, record, record, "", &mut fields);
        Explanation {
            fields,
            result: self.map_interpreted(record),
            schema: self.schema.as_ref().map(|s| s.name.clone()),
        }
    }
}

fn trace_rules(rules: &[Rule], cur: &Value, root: &Value, prefix: &str, out: &mut Vec<FieldTrace>) {
    for rule in rules {
        let field = format!("{prefix}{}", rule.to.text);
        let condition = rule
            .when
            .as_ref()
            .map(|c| (describe_condition(c), engine::condition_holds(c, cur, root)));
        let mut t = FieldTrace {
            field: field.clone(),
            condition: condition.clone(),
            source: String::new(),
            read: None,
            steps: Vec::new(),
            outcome: FieldOutcome::LeftOut,
        };
        if condition.is_some_and(|(_, holds)| !holds) {
            t.source = describe_source(&rule.source);
            t.outcome = FieldOutcome::Skipped;
            out.push(t);
            continue;
        }
        match &rule.source {
            Source::Paths(paths) => {
                let found = paths.iter().find_map(|p| {
                    p.select(cur, root)
                        .filter(|v| !engine::is_absent(v))
                        .map(|v| (p, v))
                });
                t.source = paths
                    .iter()
                    .map(|p| p.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" | ");
                let mut value = None;
                if let Some((p, v)) = found {
                    t.source = p.text.clone();
                    t.read = Some(v.clone());
                    value = Some(v.clone());
                    for op in &rule.ops {
                        let Some(v) = value.take() else { break };
                        match engine::apply_op(op, v) {
                            Ok(next) => {
                                t.steps.push((describe_op(op), Ok(next.clone())));
                                if !engine::is_absent(&next) {
                                    value = Some(next);
                                }
                            }
                            Err(e) => {
                                t.steps.push((describe_op(op), Err(e.clone())));
                                t.outcome = FieldOutcome::Failed(e);
                                break;
                            }
                        }
                    }
                }
                if !matches!(t.outcome, FieldOutcome::Failed(_)) {
                    t.outcome = finish(rule, value);
                }
                out.push(t);
            }
            Source::Each { path, rules } => {
                t.source = format!("each {}", path.text);
                let items: Vec<&Value> = match path.select(cur, root) {
                    Some(v) if engine::is_absent(v) => Vec::new(),
                    Some(Value::Array(a)) => a.iter().collect(),
                    Some(one) => vec![one],
                    None => Vec::new(),
                };
                t.read = path.select(cur, root).cloned();
                t.outcome = if items.is_empty() {
                    finish(rule, None)
                } else {
                    FieldOutcome::List(items.len())
                };
                out.push(t);
                for (i, item) in items.into_iter().enumerate() {
                    trace_rules(rules, item, root, &format!("{field}[{i}]."), out);
                }
            }
            Source::Const(_) | Source::Template(_) | Source::Fail(_) => {
                t.source = describe_source(&rule.source);
                // One rule alone: the interpreter's own evaluation of it.
                let one = std::slice::from_ref(rule);
                t.outcome = match engine::run(one, cur, root) {
                    Ok(map) => match map.into_iter().next() {
                        Some((_, v)) => match (&rule.source, &rule.default) {
                            (Source::Template(_), Some(d)) if &v == d => FieldOutcome::Default(v),
                            _ => FieldOutcome::Written(leaf(v, rule)),
                        },
                        None => FieldOutcome::LeftOut,
                    },
                    Err(e) => FieldOutcome::Failed(e.reason),
                };
                out.push(t);
            }
        }
    }
}

/// A rule's own value out of the one-field object `run` builds (`data[0].X` → the X).
fn leaf(v: Value, rule: &Rule) -> Value {
    let mut cur = v;
    for step in rule.to.steps.iter().skip(1) {
        cur = match (step, cur) {
            (crate::path::Step::Key(k), Value::Object(mut m)) => m.remove(k).unwrap_or_default(),
            (crate::path::Step::Index(i), Value::Array(mut a)) if *i < a.len() => a.swap_remove(*i),
            (_, other) => return other,
        };
    }
    cur
}

fn finish(rule: &Rule, value: Option<Value>) -> FieldOutcome {
    match (value, &rule.default) {
        (Some(v), _) => FieldOutcome::Written(v),
        (None, Some(d)) => FieldOutcome::Default(d.clone()),
        (None, None) if rule.required => FieldOutcome::Failed(engine::missing_reason(&rule.source)),
        (None, None) => FieldOutcome::LeftOut,
    }
}

fn describe_source(source: &Source) -> String {
    match source {
        Source::Paths(p) => p
            .iter()
            .map(|p| p.text.as_str())
            .collect::<Vec<_>>()
            .join(" | "),
        Source::Const(v) => format!("const {v}"),
        Source::Template(_) => "template".into(),
        Source::Fail(_) => "fail".into(),
        Source::Each { path, .. } => format!("each {}", path.text),
    }
}

fn describe_condition(c: &Condition) -> String {
    let p = |p: &SourcePath| p.text.clone();
    let case = if c.ignore_case {
        " (ignoring case)"
    } else {
        ""
    };
    let s = match &c.test {
        Test::Exists(x) => format!("{} has a value", p(x)),
        Test::Missing(x) => format!("{} has no value", p(x)),
        Test::Equals(x, v) => format!("{} = {v}", p(x)),
        Test::NotEquals(x, v) => format!("{} ≠ {v}", p(x)),
        Test::In(x, vs) => format!(
            "{} in [{}]",
            p(x),
            vs.iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!("when {s}{case}")
}

fn describe_date(f: &DateFormat) -> String {
    f.describe()
}

pub(crate) fn describe_op(op: &Op) -> String {
    match op {
        Op::Trim => "trim".into(),
        Op::Upper => "upper".into(),
        Op::Lower => "lower".into(),
        Op::Nfc => "nfc".into(),
        Op::CollapseSpaces => "collapse_spaces".into(),
        Op::Digits => "digits".into(),
        Op::StripSpaces => "strip_spaces".into(),
        Op::PhoneVn => "phone_vn".into(),
        Op::Legacy(crate::text::Legacy::Tcvn3) => "tcvn3".into(),
        Op::Legacy(crate::text::Legacy::Vni) => "vni".into(),
        Op::Table(t) => format!("table {}", t.name),
        Op::Date { from, to, .. } => format!(
            "date {} → {}",
            from.iter()
                .map(describe_date)
                .collect::<Vec<_>>()
                .join(" | "),
            describe_date(to)
        ),
        Op::Type(t) => format!(
            "type {}",
            match t {
                ValueType::String => "string",
                ValueType::Integer => "integer",
                ValueType::Decimal => "decimal",
                ValueType::Boolean => "boolean",
            }
        ),
    }
}

impl fmt::Display for FieldTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ← {}", self.field, self.source)?;
        match &self.read {
            Some(v) if !matches!(self.outcome, FieldOutcome::List(_)) => write!(f, " = {v}")?,
            None if self.source.starts_with(|c: char| c.is_alphabetic())
                && !matches!(self.outcome, FieldOutcome::Skipped)
                && !self.source.starts_with("const")
                && self.source != "template"
                && self.source != "fail" =>
            {
                write!(f, ": no value")?
            }
            _ => {}
        }
        writeln!(f)?;
        if let Some((c, holds)) = &self.condition {
            writeln!(f, "    {c}: {}", if *holds { "yes" } else { "no" })?;
        }
        for (op, r) in &self.steps {
            match r {
                Ok(v) => writeln!(f, "    {op} → {v}")?,
                Err(e) => writeln!(f, "    {op} ✗ {e}")?,
            }
        }
        match &self.outcome {
            FieldOutcome::Written(v) => write!(f, "    = {v}"),
            FieldOutcome::Default(v) => write!(f, "    = {v} (default)"),
            FieldOutcome::LeftOut => write!(f, "    left out (optional, no value)"),
            FieldOutcome::Skipped => write!(f, "    skipped"),
            FieldOutcome::List(n) => write!(f, "    = a list of {n}"),
            FieldOutcome::Failed(e) => write!(f, "    ✗ {e}"),
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in &self.fields {
            writeln!(f, "{t}")?;
        }
        match (&self.result, &self.schema) {
            (Ok(_), Some(s)) => write!(f, "schema {s}: ok"),
            (Ok(_), None) => write!(f, "no output schema to check"),
            (Err(e), _) => write!(f, "result: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::compile_str;
    use serde_json::json;
    use std::path::Path;

    #[test]
    fn each_field_tells_its_source_transforms_and_value() {
        let m = compile_str(
            r#"
[mapping]
description = "t"
[tables.kind]
values = { individual = 1 }
[[field]]
to = "data[0].Ten"
from = "name"
transform = ["collapse_spaces", "upper"]
[[field]]
to = "data[0].Loai"
from = "kind"
table = "kind"
[[field]]
to = "data[0].Ngay"
from = "at"
date = { from = "iso8601", to = "yyyyMMdd" }
required = true
[[field]]
to = "data[0].Ghi"
from = "note"
default = "-"
"#,
            Path::new("t.toml"),
            Path::new("."),
        )
        .unwrap();
        let e = m.explain(&json!({"name": " an  binh ", "kind": "individual"}));
        let text = e.to_string();
        assert!(
            text.contains("data[0].Ten ← name = \" an  binh \""),
            "{text}"
        );
        assert!(text.contains("collapse_spaces → \"an binh\""), "{text}");
        assert!(text.contains("upper → \"AN BINH\""), "{text}");
        assert!(text.contains("table kind → 1"), "{text}");
        assert!(text.contains("data[0].Ngay ← at: no value"), "{text}");
        assert!(
            text.contains("✗ required, but the input has no value there"),
            "{text}"
        );
        assert!(text.contains("= \"-\" (default)"), "{text}");
        assert!(e.result.is_err());
    }
}
