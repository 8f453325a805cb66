//! Running a compiled mapping over one record: each rule selects, converts and places one
//! output field; `each` rules run a sub-mapping per array element. The first failure is the
//! error, naming the output field with concrete indexes and the input path.

use crate::datetime::{self, DateFormat, Zone};
use crate::error::MappingError;
use crate::path::{OutputPath, SourcePath};
use crate::text::{self, Legacy};
use serde_json::{Map, Number, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where a rule's value comes from.
#[derive(Debug)]
pub enum Source {
    /// The first of these paths that holds a value.
    Paths(Vec<SourcePath>),
    Const(Value),
    Template(Vec<TemplatePart>),
    /// Refuse the record with this message.
    Fail(Vec<TemplatePart>),
    Each {
        path: SourcePath,
        rules: Arc<Vec<Rule>>,
    },
}

#[derive(Debug)]
pub enum TemplatePart {
    Text(String),
    Field(SourcePath),
}

/// A `when` test, optionally comparing text without regard to case.
#[derive(Debug)]
pub struct Condition {
    pub test: Test,
    pub ignore_case: bool,
}

#[derive(Debug)]
pub enum Test {
    Exists(SourcePath),
    Missing(SourcePath),
    Equals(SourcePath, Value),
    NotEquals(SourcePath, Value),
    In(SourcePath, Vec<Value>),
}

impl Test {
    /// The input path the test reads.
    pub fn path(&self) -> &SourcePath {
        match self {
            Test::Exists(p)
            | Test::Missing(p)
            | Test::Equals(p, _)
            | Test::NotEquals(p, _)
            | Test::In(p, _) => p,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    String,
    Integer,
    Decimal,
    Boolean,
}

#[derive(Debug)]
pub struct Table {
    pub name: String,
    /// Small tables: an ordered map beats hashing here.
    pub values: BTreeMap<String, Value>,
    pub default: Option<Value>,
    pub ignore_case: bool,
}

#[derive(Debug)]
pub enum Op {
    Trim,
    Upper,
    Lower,
    Nfc,
    CollapseSpaces,
    Digits,
    /// Remove all whitespace (base64 wrapped over lines, numbers with spaces).
    StripSpaces,
    /// Normalise a Vietnamese phone number to its national form 0xxxxxxxxx.
    PhoneVn,
    Legacy(Legacy),
    Table(Arc<Table>),
    Date {
        from: Vec<DateFormat>,
        to: DateFormat,
        zone: Zone,
        to_zone: Zone,
    },
    Type(ValueType),
}

/// One compiled `[[field]]` rule.
#[derive(Debug)]
pub struct Rule {
    pub to: OutputPath,
    pub source: Source,
    pub when: Option<Condition>,
    pub ops: Vec<Op>,
    pub default: Option<Value>,
    pub required: bool,
}

/// Missing, null and empty text all count as "no value": legacy systems send empty tags.
pub fn is_absent(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Compare a record value with a constant from the mapping; XML and CSV give every value
/// as text, so `1` and `"1"` are equal.
pub fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x == y,
        (Value::String(s), other) | (other, Value::String(s)) => match other {
            Value::Number(_) | Value::Bool(_) => scalar_text(other).as_deref() == Some(s.trim()),
            _ => false,
        },
        _ => a == b,
    }
}

/// Text form of a scalar for templates, tables and conversions.
pub fn scalar_text(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Value::String(s) => Some(std::borrow::Cow::Borrowed(s)),
        Value::Number(n) => Some(std::borrow::Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(std::borrow::Cow::Borrowed(if *b {
            "true"
        } else {
            "false"
        })),
        _ => None,
    }
}

impl Condition {
    fn holds(&self, cur: &Value, root: &Value) -> bool {
        let present = |p: &SourcePath| p.select(cur, root).filter(|v| !is_absent(v));
        let eq = |a: &Value, b: &Value| match (a, b, self.ignore_case) {
            (Value::String(x), Value::String(y), true) => x.to_lowercase() == y.to_lowercase(),
            _ => loose_eq(a, b),
        };
        match &self.test {
            Test::Exists(p) => present(p).is_some(),
            Test::Missing(p) => present(p).is_none(),
            Test::Equals(p, v) => present(p).is_some_and(|x| eq(x, v)),
            Test::NotEquals(p, v) => !present(p).is_some_and(|x| eq(x, v)),
            Test::In(p, vs) => present(p).is_some_and(|x| vs.iter().any(|v| eq(x, v))),
        }
    }
}

/// Whether a rule's `when` holds for `cur` (an element of `root`).
pub(crate) fn condition_holds(c: &Condition, cur: &Value, root: &Value) -> bool {
    c.holds(cur, root)
}

/// Run `rules` over `cur` (the record, or an element inside an `each`).
pub fn run(rules: &[Rule], cur: &Value, root: &Value) -> Result<Map<String, Value>, MappingError> {
    let mut out = Map::new();
    for rule in rules {
        if let Some(cond) = &rule.when
            && !cond.holds(cur, root)
        {
            continue;
        }
        let (value, from) = evaluate(rule, cur, root)?;
        let value = match value {
            Some(v) => Some(v),
            None => rule.default.clone(),
        };
        match value {
            Some(v) => rule
                .to
                .set(&mut out, v)
                .map_err(|e| MappingError::new(&rule.to.text, from, e))?,
            None if rule.required => {
                let reason = missing_reason(&rule.source);
                return Err(MappingError::new(&rule.to.text, from, reason));
            }
            None => {}
        }
    }
    Ok(out)
}

/// Why a required field has no value.
pub fn missing_reason(source: &Source) -> String {
    match source {
        Source::Paths(p) if p.len() > 1 => format!(
            "required, but none of {} has a value",
            p.iter()
                .map(|p| format!("`{}`", p.text))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Source::Paths(_) | Source::Each { .. } => {
            "required, but the input has no value there".to_string()
        }
        _ => "required, but it came out empty".to_string(),
    }
}

/// The rule's value (None = absent) and the input path it came from.
fn evaluate<'r>(
    rule: &'r Rule,
    cur: &Value,
    root: &Value,
) -> Result<(Option<Value>, Option<&'r str>), MappingError> {
    match &rule.source {
        Source::Const(v) => Ok((Some(v.clone()), None)),
        Source::Paths(paths) => {
            let found = paths.iter().find_map(|p| {
                p.select(cur, root)
                    .filter(|v| !is_absent(v))
                    .map(|v| (v, p))
            });
            let Some((v, p)) = found else {
                return Ok((None, paths.first().map(|p| p.text.as_str())));
            };
            let from = Some(p.text.as_str());
            let v = apply_ops(&rule.ops, v.clone())
                .map_err(|reason| MappingError::new(&rule.to.text, from, reason))?;
            Ok((v, from))
        }
        Source::Fail(parts) => {
            let mut s = String::new();
            for part in parts {
                match part {
                    TemplatePart::Text(t) => s.push_str(t),
                    TemplatePart::Field(p) => {
                        let v = p.select(cur, root).and_then(scalar_text);
                        s.push_str(v.as_deref().unwrap_or("?"));
                    }
                }
            }
            Err(MappingError::new(&rule.to.text, None, s))
        }
        Source::Template(parts) => {
            let mut s = String::new();
            let mut any = false;
            for part in parts {
                match part {
                    TemplatePart::Text(t) => s.push_str(t),
                    TemplatePart::Field(p) => {
                        if let Some(v) = p.select(cur, root).filter(|v| !is_absent(v)) {
                            let t = scalar_text(v).ok_or_else(|| {
                                MappingError::new(
                                    &rule.to.text,
                                    Some(&p.text),
                                    "a template can only insert text, numbers or booleans",
                                )
                            })?;
                            s.push_str(&t);
                            any = true;
                        }
                    }
                }
            }
            let has_fields = parts.iter().any(|p| matches!(p, TemplatePart::Field(_)));
            if has_fields && !any {
                return Ok((None, None));
            }
            let v = apply_ops(&rule.ops, Value::String(s))
                .map_err(|reason| MappingError::new(&rule.to.text, None, reason))?;
            Ok((v, None))
        }
        Source::Each { path, rules } => {
            let from = Some(path.text.as_str());
            let items: Vec<&Value> = match path.select(cur, root) {
                None => return Ok((None, from)),
                Some(v) if is_absent(v) => return Ok((None, from)),
                Some(Value::Array(a)) => a.iter().collect(),
                Some(one) => vec![one],
            };
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                let mapped =
                    run(rules, item, root).map_err(|e| e.nested(&rule.to.text, &path.text, i))?;
                out.push(Value::Object(mapped));
            }
            Ok((Some(Value::Array(out)), from))
        }
    }
}

fn apply_ops(ops: &[Op], mut v: Value) -> Result<Option<Value>, String> {
    for op in ops {
        v = apply_op(op, v)?;
        if is_absent(&v) {
            return Ok(None);
        }
    }
    Ok(Some(v))
}

/// Why a list or object cannot go where text is needed.
fn not_text(what: &str, v: &Value) -> String {
    not_text_found(what, v.is_array())
}

pub(crate) fn not_text_found(what: &str, is_list: bool) -> String {
    let found = if is_list { "a list" } else { "an object" };
    format!("{what} needs text, the input has {found}")
}

/// `phone_vn`: the digits, with a leading 84 turned into the national 0.
pub(crate) fn phone_vn(s: &str) -> String {
    let mut d: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
    if d.starts_with("84") && (d.len() == 11 || d.len() == 12) {
        d = format!("0{}", &d[2..]);
    }
    d
}

/// A code table's value for `key` (already text), its default, or why neither.
pub(crate) fn table_value<'t>(t: &'t Table, key: &str) -> Result<&'t Value, String> {
    let key = key.trim();
    let hit = if t.ignore_case && !key.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        t.values.get(&key.to_lowercase())
    } else {
        t.values.get(key)
    };
    match (hit, &t.default) {
        (Some(x), _) => Ok(x),
        (None, Some(d)) => Ok(d),
        (None, None) => {
            let mut known: Vec<&String> = t.values.keys().collect();
            known.sort();
            let known: Vec<&str> = known.iter().take(12).map(|s| s.as_str()).collect();
            Err(format!(
                "`{key}` is not in code table `{}` (known: {}{})",
                t.name,
                known.join(", "),
                if t.values.len() > 12 { ", ..." } else { "" }
            ))
        }
    }
}

/// A date read with the first of `from` that fits, written as `to`.
pub(crate) fn convert_date(
    s: &str,
    from: &[DateFormat],
    to: &DateFormat,
    zone: Zone,
    to_zone: Zone,
) -> Result<String, String> {
    // The first format's complaint is the telling one: it is the most specific.
    let mut first = None;
    for f in from {
        match datetime::parse(s, f, zone) {
            Ok(at) => return Ok(datetime::format(at, to, to_zone)),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    let why = first.unwrap_or_default();
    Err(if from.len() > 1 {
        format!("`{s}` matches none of the date formats ({why})")
    } else {
        format!("cannot read `{s}` as a date: {why}")
    })
}

/// `type = "integer"` of a number.
pub(crate) fn whole_number(n: &Number) -> Result<Number, String> {
    if n.is_i64() || n.is_u64() {
        return Ok(n.clone());
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok((f as i64).into()),
        _ => Err(format!("{n} is not a whole number")),
    }
}

/// `type = "integer"` of text.
pub(crate) fn whole_number_text(s: &str) -> Result<Number, String> {
    s.trim()
        .parse::<i64>()
        .map(Number::from)
        .map_err(|_| format!("`{s}` is not a whole number"))
}

/// `type = "decimal"` of text; a lone comma is the Vietnamese decimal separator.
pub(crate) fn decimal_text(s: &str) -> Result<Number, String> {
    let t = s.trim();
    let t = if !t.contains('.') && t.matches(',').count() == 1 {
        t.replace(',', ".")
    } else {
        t.to_string()
    };
    if let Ok(i) = t.parse::<i64>() {
        return Ok(i.into());
    }
    t.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .and_then(Number::from_f64)
        .ok_or_else(|| format!("`{s}` is not a number"))
}

/// `type = "boolean"` of text: the yes/no words unit systems use.
pub(crate) fn yes_no_text(s: &str) -> Result<bool, String> {
    match s.trim().to_lowercase().as_str() {
        "true" | "1" | "yes" | "y" | "có" | "co" | "x" => Ok(true),
        "false" | "0" | "no" | "n" | "không" | "khong" => Ok(false),
        _ => Err(format!("`{s}` is not a yes/no value")),
    }
}

fn text_of(v: &Value, what: &str) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(_) | Value::Bool(_) => Ok(v.to_string()),
        other => Err(not_text(what, other)),
    }
}

fn map_text(v: Value, what: &str, f: impl FnOnce(&str) -> String) -> Result<Value, String> {
    match v {
        Value::String(s) => Ok(Value::String(f(&s))),
        Value::Number(_) | Value::Bool(_) => Ok(v),
        other => Err(not_text(what, &other)),
    }
}

pub(crate) fn apply_op(op: &Op, v: Value) -> Result<Value, String> {
    match op {
        Op::Trim => map_text(v, "trim", |s| s.trim().to_string()),
        Op::Upper => map_text(v, "upper", str::to_uppercase),
        Op::Lower => map_text(v, "lower", str::to_lowercase),
        Op::Nfc => match v {
            Value::String(s) if text::is_nfc(&s) => Ok(Value::String(s)),
            v => map_text(v, "nfc", text::nfc),
        },
        Op::CollapseSpaces => map_text(v, "collapse_spaces", text::collapse_spaces),
        Op::StripSpaces => map_text(v, "strip_spaces", |s| s.split_whitespace().collect()),
        Op::Digits => {
            let s = text_of(&v, "digits")?;
            Ok(Value::String(
                s.chars().filter(char::is_ascii_digit).collect(),
            ))
        }
        Op::PhoneVn => Ok(Value::String(phone_vn(&text_of(&v, "phone_vn")?))),
        Op::Legacy(l) => map_text(v, "legacy text conversion", |s| {
            text::legacy_to_unicode(s, *l)
        }),
        Op::Table(t) => table_value(t, &text_of(&v, "a code table")?).cloned(),
        Op::Date {
            from,
            to,
            zone,
            to_zone,
        } => convert_date(&text_of(&v, "a date")?, from, to, *zone, *to_zone).map(Value::String),
        Op::Type(t) => convert(v, *t),
    }
}

fn convert(v: Value, t: ValueType) -> Result<Value, String> {
    match t {
        ValueType::String => match v {
            Value::String(_) => Ok(v),
            Value::Number(_) | Value::Bool(_) => Ok(Value::String(v.to_string())),
            _ => Err("cannot turn a list or object into text".into()),
        },
        ValueType::Integer => match &v {
            Value::Number(n) => whole_number(n).map(Value::Number),
            Value::String(s) => whole_number_text(s).map(Value::Number),
            _ => Err("expected a whole number".into()),
        },
        ValueType::Decimal => match &v {
            Value::Number(_) => Ok(v),
            Value::String(s) => decimal_text(s).map(Value::Number),
            _ => Err("expected a number".into()),
        },
        ValueType::Boolean => match &v {
            Value::Bool(_) => Ok(v),
            Value::Number(n) if n.as_i64() == Some(0) => Ok(Value::Bool(false)),
            Value::Number(n) if n.as_i64() == Some(1) => Ok(Value::Bool(true)),
            Value::String(s) => yes_no_text(s).map(Value::Bool),
            _ => Err("expected a yes/no value".into()),
        },
    }
}
