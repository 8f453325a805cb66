//! The door check: is a record one its mapping can deliver? Asked before the bus stores
//! an event, by `lienthong mapping test` and by the mapping studio, so that all three give
//! the same verdict.
//!
//! Two steps, every problem of the record at once where it can be:
//!
//! 1. **The published schema.** The record is checked against the input schema the
//!    contract publishes ([`crate::Mapping::input_schema`]): the same document a unit
//!    generates its client from, so a request the document forbids is refused and one it
//!    allows is not refused for its shape. Only the keywords that schema is written with
//!    are read (`type`, `properties`, `required`, `items`, `enum`, `pattern`, lengths,
//!    bounds, `anyOf`, `allOf`); every violation is listed, each at its path.
//! 2. **The mapping itself, dry.** What a schema cannot say (conditions, code tables with
//!    defaults, dates that do not exist, a `fail` rule, the target schema's checks of the
//!    output) is found by running the mapping without sending. It stops at its first
//!    problem, so this step adds at most one, named by the input path it came from.
//!
//! A record is held to every keyword of the published schema: the document a client is
//! generated from is the door's rule, so a request it forbids is refused and one it
//! allows is not refused for its form. That schema is written to take every spelling the
//! mapping reads (each date format, `+84 912 345 678`, a code in any case, an amount as
//! text; see `input_schema::spellings`), so the door does not refuse what the mapping
//! delivers. A JSON record is read as JSON Schema reads it ([`Mode::Published`]); an XML or
//! CSV record, all text, as its document describes such a body ([`Mode::Text`]): text that
//! reads as a number meets `integer`, one element is a list of one, an empty element is
//! no value.

use crate::path::Step;
use serde_json::Value;

/// One thing wrong with a record: where (a path into the record, in the unit's terms)
/// and what.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    pub path: Vec<Step>,
    pub reason: String,
}

impl Problem {
    /// The path as a JSON pointer (RFC 6901): `/applicant/idNumber`, `/files/2/name`;
    /// empty for the record itself.
    pub fn pointer(&self) -> String {
        pointer_of(&self.path)
    }
}

impl Problem {
    /// A mapping's refusal, at the input path its value came from (the record itself when
    /// it came from none), saying which output field it feeds.
    pub fn of_mapping(e: &crate::MappingError) -> Problem {
        let path = e
            .source
            .as_deref()
            .filter(|s| !s.is_empty())
            .and_then(|s| crate::path::SourcePath::parse(s).ok())
            .map(|p| p.steps)
            .unwrap_or_default();
        let reason = if path.is_empty() && e.source.is_none() {
            format!("{} (the output field `{}`)", e.reason, e.field)
        } else {
            format!("{} (for the output field `{}`)", e.reason, e.field)
        };
        Problem { path, reason }
    }
}

/// The door's verdict on a whole input in the mapping's own format, as the bus would give
/// it: each problem as `[record]/path: reason` (`/path: reason` for an input of one
/// record); empty when every record would be accepted. An input that cannot be read is
/// refused whole.
pub fn verdict(mapping: &crate::Mapping, input: &[u8]) -> Vec<String> {
    let records = match mapping.decode(input) {
        Ok(r) if r.is_empty() => return vec!["the input holds no records".into()],
        Ok(r) => r,
        Err(e) => return vec![format!("the input cannot be read: {e}")],
    };
    let many = records.len() > 1;
    let mut out = Vec::new();
    for (i, record) in records.iter().enumerate() {
        for p in mapping.check_record(record) {
            let at = if many {
                format!("[{i}]")
            } else {
                String::new()
            };
            let pointer = p.pointer();
            let field = if at.is_empty() && pointer.is_empty() {
                "/".to_string()
            } else {
                format!("{at}{pointer}")
            };
            out.push(format!("{field}: {}", p.reason));
        }
    }
    out
}

/// `steps` as a JSON pointer.
pub fn pointer_of(steps: &[Step]) -> String {
    let mut out = String::new();
    for s in steps {
        out.push('/');
        match s {
            Step::Key(k) => out.push_str(&k.replace('~', "~0").replace('/', "~1")),
            Step::Index(i) => out.push_str(&i.to_string()),
        }
    }
    out
}

/// A published JSON Schema compiled for the door: the one a route's document gives its
/// events (every target's mapping's input schema, merged), held to every keyword.
#[derive(Debug)]
pub struct PublishedSchema(SchemaCheck);

impl PublishedSchema {
    /// Compile `schema`; a pattern that does not compile is the bus's error, named.
    pub fn compile(schema: &Value) -> Result<PublishedSchema, String> {
        SchemaCheck::compile(schema).map(PublishedSchema)
    }

    /// Every problem of `record` against the schema, in path order.
    pub fn check(&self, record: &Value) -> Vec<Problem> {
        self.check_in(record, Mode::Published)
    }

    /// [`PublishedSchema::check`] reading the record in `mode` ([`Mode::Text`] for a
    /// record of XML or CSV text).
    pub fn check_in(&self, record: &Value, mode: Mode) -> Vec<Problem> {
        let mut problems = Vec::new();
        self.0.check(record, &mut Vec::new(), mode, &mut problems);
        problems.sort();
        problems.dedup();
        problems
    }
}

/// The JSON types a schema names.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Type {
    String,
    Integer,
    Number,
    Boolean,
    Object,
    Array,
    Null,
}

impl Type {
    fn parse(name: &str) -> Option<Type> {
        Some(match name {
            "string" => Type::String,
            "integer" => Type::Integer,
            "number" => Type::Number,
            "boolean" => Type::Boolean,
            "object" => Type::Object,
            "array" => Type::Array,
            "null" => Type::Null,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Type::String => "text",
            Type::Integer => "a whole number",
            Type::Number => "a number",
            Type::Boolean => "true or false",
            Type::Object => "an object",
            Type::Array => "a list",
            Type::Null => "null",
        }
    }
}

/// A schema compiled once, with its patterns built: checked on every event.
#[derive(Debug, Default)]
pub(crate) struct SchemaCheck {
    types: Vec<Type>,
    properties: Vec<(String, SchemaCheck)>,
    required: Vec<String>,
    items: Option<Box<SchemaCheck>>,
    enumeration: Option<Vec<Value>>,
    pattern: Option<(regex::Regex, String)>,
    min_len: Option<usize>,
    max_len: Option<usize>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    any_of: Vec<SchemaCheck>,
    all_of: Vec<SchemaCheck>,
    /// `if` … `then`: what is required when a condition holds.
    if_then: Option<(Box<SchemaCheck>, Box<SchemaCheck>)>,
    /// What the value is, for messages: the schema's description without its `→ feeds`.
    what: Option<String>,
}

/// The pattern the input schema gives a required text: it needs a letter or a digit.
use crate::input_schema::NOT_BLANK;

mod mode;
pub use mode::Mode;

impl SchemaCheck {
    /// Compile `schema` (as [`crate::input_schema`] writes it). A pattern that does not
    /// compile is an error of the bus, not of a unit: it is reported, never ignored.
    pub(crate) fn compile(schema: &Value) -> Result<SchemaCheck, String> {
        let Some(o) = schema.as_object() else {
            return Ok(SchemaCheck::default());
        };
        let mut c = SchemaCheck::default();
        match o.get("type") {
            Some(Value::String(t)) => c.types.extend(Type::parse(t)),
            Some(Value::Array(ts)) => c
                .types
                .extend(ts.iter().filter_map(Value::as_str).filter_map(Type::parse)),
            _ => {}
        }
        if let Some(Value::Object(props)) = o.get("properties") {
            for (k, v) in props {
                c.properties.push((k.clone(), SchemaCheck::compile(v)?));
            }
        }
        if let Some(Value::Array(req)) = o.get("required") {
            c.required = req
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
        }
        if let Some(items) = o.get("items") {
            c.items = Some(Box::new(SchemaCheck::compile(items)?));
        }
        if let Some(Value::Array(values)) = o.get("enum") {
            c.enumeration = Some(values.clone());
        }
        if let Some(v) = o.get("const") {
            c.enumeration = Some(vec![v.clone()]);
        }
        if let (Some(cond), Some(then)) = (o.get("if"), o.get("then")) {
            c.if_then = Some((
                Box::new(SchemaCheck::compile(cond)?),
                Box::new(SchemaCheck::compile(then)?),
            ));
        }
        if let Some(Value::String(p)) = o.get("pattern") {
            let re = regex::Regex::new(p).map_err(|e| format!("pattern `{p}`: {e}"))?;
            c.pattern = Some((re, p.clone()));
        }
        let count = |k: &str| o.get(k).and_then(Value::as_u64).map(|n| n as usize);
        c.min_len = count("minLength");
        c.max_len = count("maxLength");
        c.minimum = o.get("minimum").and_then(Value::as_f64);
        c.maximum = o.get("maximum").and_then(Value::as_f64);
        for (key, list) in [("anyOf", &mut c.any_of), ("allOf", &mut c.all_of)] {
            if let Some(Value::Array(alts)) = o.get(key) {
                for a in alts {
                    list.push(SchemaCheck::compile(a)?);
                }
            }
        }
        c.what = o
            .get("description")
            .and_then(Value::as_str)
            .map(|d| match d.find("→") {
                Some(0) => String::new(),
                Some(i) => d[..i]
                    .trim_end()
                    .trim_end_matches('(')
                    .trim_end()
                    .to_string(),
                None => d.to_string(),
            })
            .filter(|d| !d.is_empty());
        Ok(c)
    }

    /// Every problem of `value` (at `path`) against this schema, added to `out`.
    pub(crate) fn check(
        &self,
        value: &Value,
        path: &mut Vec<Step>,
        mode: Mode,
        out: &mut Vec<Problem>,
    ) {
        let problem = |path: &[Step], reason: String| Problem {
            path: path.to_vec(),
            reason,
        };
        // An element written with its text alone is that text: an object of `#text`.
        if mode == Mode::Text
            && let Value::String(s) = value
            && self.types.contains(&Type::Object)
            && !self.types.contains(&Type::String)
            && self
                .properties
                .iter()
                .any(|(k, _)| k == crate::path::TEXT_KEY)
        {
            let element = serde_json::json!({ crate::path::TEXT_KEY: s });
            return self.check(&element, path, mode, out);
        }
        // One element where a list is expected: the list of one (XML, and the engine).
        if self.types == [Type::Array] && !matches!(value, Value::Array(_)) && mode.lenient() {
            if let Some(items) = &self.items {
                path.push(Step::Index(0));
                items.check(value, path, mode, out);
                path.pop();
            }
            return;
        }
        if !self.types.is_empty() && !self.types.iter().any(|t| mode.has_type(value, *t)) {
            let wanted: Vec<&str> = self.types.iter().map(|t| t.name()).collect();
            out.push(problem(
                path,
                format!("{} given, {} expected", shown(value), wanted.join(" or ")),
            ));
            return;
        }
        self.check_value(value, path, mode, out);
        if let Value::Object(o) = value {
            for name in &self.required {
                let given = o.get(name).filter(|v| !(mode.lenient() && Mode::absent(v)));
                if given.is_none() {
                    path.push(Step::Key(name.clone()));
                    let how = if o.contains_key(name) {
                        "blank"
                    } else {
                        "missing"
                    };
                    out.push(problem(path, format!("required, {how}")));
                    path.pop();
                }
            }
            for (name, sub) in &self.properties {
                match o.get(name) {
                    Some(v) if !(mode.lenient() && Mode::absent(v)) => {
                        path.push(Step::Key(name.clone()));
                        sub.check(v, path, mode, out);
                        path.pop();
                    }
                    _ => {}
                }
            }
        }
        if let (Value::Array(items), Some(sub)) = (value, &self.items) {
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i));
                sub.check(item, path, mode, out);
                path.pop();
            }
        }
        for all in &self.all_of {
            all.check(value, path, mode, out);
        }
        // The condition is read as written, whatever the mode; what it requires is
        // checked in the mode asked for.
        if let Some((cond, then)) = &self.if_then {
            let mut unmet = Vec::new();
            cond.check(value, path, mode.of_condition(), &mut unmet);
            if unmet.is_empty() {
                then.check(value, path, mode, out);
            }
        }
        if !self.any_of.is_empty() {
            self.check_any_of(value, path, mode, out);
        }
    }

    /// A scalar's own constraints: its code list, its form, its length and bounds.
    fn check_value(&self, value: &Value, path: &[Step], mode: Mode, out: &mut Vec<Problem>) {
        if let Some(values) = &self.enumeration
            && !values.iter().any(|code| mode.is_code(value, code))
        {
            out.push(Problem {
                path: path.to_vec(),
                reason: format!("{} is not one of the codes {}", shown(value), codes(values)),
            });
            return;
        }
        if let Value::String(s) = value {
            self.check_text(s, path, out);
        }
        if let Some(n) = mode.number(value) {
            let problem = |reason: String| Problem {
                path: path.to_vec(),
                reason,
            };
            if let Some(min) = self.minimum.filter(|m| n < *m) {
                out.push(problem(format!("{n} is below the least allowed, {min}")));
            }
            if let Some(max) = self.maximum.filter(|m| n > *m) {
                out.push(problem(format!("{n} is above the most allowed, {max}")));
            }
        }
    }

    fn check_text(&self, s: &str, path: &[Step], out: &mut Vec<Problem>) {
        let problem = |reason: String| Problem {
            path: path.to_vec(),
            reason,
        };
        let chars = s.chars().count();
        if let Some(min) = self.min_len.filter(|m| chars < *m) {
            out.push(problem(format!(
                "{chars} characters, at least {min} expected"
            )));
        }
        if let Some(max) = self.max_len.filter(|m| chars > *m) {
            out.push(problem(format!(
                "{chars} characters, at most {max} expected"
            )));
        }
        if let Some((re, source)) = &self.pattern
            && !re.is_match(s)
        {
            out.push(problem(if source == NOT_BLANK {
                "required, blank".into()
            } else if let Some(what) = &self.what {
                match fixed_digits(source) {
                    Some(n) if s.chars().all(|c| c.is_ascii_digit()) => {
                        format!("{chars} digits, {n} expected ({what})")
                    }
                    _ => format!("{} is not {what}", shown(&Value::String(s.into()))),
                }
            } else {
                format!(
                    "{} does not have the form `{source}`",
                    shown(&Value::String(s.into()))
                )
            }));
        }
    }

    /// `anyOf`: a code written as text, number or boolean; or "one of these fields".
    fn check_any_of(
        &self,
        value: &Value,
        path: &mut Vec<Step>,
        mode: Mode,
        out: &mut Vec<Problem>,
    ) {
        let mut first = Vec::new();
        for (i, alt) in self.any_of.iter().enumerate() {
            let mut found = Vec::new();
            alt.check(value, path, mode, &mut found);
            if found.is_empty() {
                return;
            }
            if i == 0 {
                first = found;
            }
        }
        let codes_: Vec<Value> = self
            .any_of
            .iter()
            .filter_map(|a| a.enumeration.as_ref())
            .flat_map(|v| v.iter().cloned())
            .collect();
        if !codes_.is_empty() {
            out.push(Problem {
                path: path.clone(),
                reason: format!(
                    "{} is not one of the codes {}",
                    shown(value),
                    codes(&codes_)
                ),
            });
            return;
        }
        let presence: Vec<String> = self
            .any_of
            .iter()
            .filter_map(|a| a.required_path().map(|p| format!("`{p}`")))
            .collect();
        if presence.len() == self.any_of.len() {
            out.push(Problem {
                path: path.clone(),
                reason: format!("one of {} is required; none is given", presence.join(", ")),
            });
        } else {
            out.extend(first);
        }
    }

    /// For an alternative that only states presence (`{"required": ["a"], "properties":
    /// {"a": {"required": ["b"]}}}`): the path it requires, `a/b`.
    fn required_path(&self) -> Option<String> {
        let [name] = self.required.as_slice() else {
            return None;
        };
        let below = self
            .properties
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, sub)| sub.required_path());
        Some(match below {
            Some(rest) => format!("{name}/{rest}"),
            None => name.clone(),
        })
    }
}

/// `^(?:[0-9]{12})$` → 12: a pattern of a fixed number of digits.
fn fixed_digits(pattern: &str) -> Option<usize> {
    pattern
        .strip_prefix("^(?:[0-9]{")?
        .strip_suffix("})$")?
        .parse()
        .ok()
}

/// A value as a message shows it: short, and never a whole document.
fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => {
            let cut: String = s.chars().take(40).collect();
            if cut.len() < s.len() {
                format!("`{cut}…`")
            } else {
                format!("`{s}`")
            }
        }
        Value::Object(_) => "an object".into(),
        Value::Array(_) => "a list".into(),
        Value::Null => "null".into(),
        other => format!("`{other}`"),
    }
}

/// A code list for a message: at most a dozen, then how many more.
fn codes(values: &[Value]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for v in values {
        let t = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if !seen.contains(&t) {
            seen.push(t);
        }
    }
    let more = seen.len().saturating_sub(12);
    let mut list = seen.into_iter().take(12).collect::<Vec<_>>().join(", ");
    if more > 0 {
        list.push_str(&format!(" and {more} more"));
    }
    list
}

#[cfg(test)]
mod tests;
