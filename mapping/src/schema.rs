//! Output schemas: what a target accepts, checked after mapping so a wrong message is a
//! dead letter with a field path here, not a vague rejection from a national platform.
//!
//! A schema is a TOML file in `mappings/_schemas/`, keyed by field path; `[]` stands for
//! every element of an array:
//!
//! ```toml
//! description = "Portal DongBoHoSoMC"
//! [fields."data[].MaHoSo"]
//! required = true
//! max_len = 50
//! [fields."data[].MaDoiTuong"]
//! format = ["so_dinh_danh", "ma_so_doanh_nghiep"]   # any of
//! ```
//!
//! Formats: `so_dinh_danh` (12 digits), `cmnd` (9 digits), `ma_so_doanh_nghiep` (10 digits,
//! optional `-NNN` branch), `phone` (Vietnamese: 0 and 9 digits for mobiles or 10 for landlines, or +84/84 for the 0),
//! `datetime14` (a real `yyyyMMddHHmmss`), `date8` (a real `yyyyMMdd`), `digits`, `email`.

use crate::error::MappingError;
use crate::spec::{OneOrMany, toml_to_json};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

mod format;
pub use format::TextFormat;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct SchemaFile {
    pub description: String,
    #[serde(default)]
    pub fields: BTreeMap<String, FieldRuleSpec>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct FieldRuleSpec {
    #[serde(default)]
    pub required: bool,
    #[serde(rename = "type")]
    pub value_type: Option<String>,
    pub format: Option<OneOrMany>,
    pub max_len: Option<usize>,
    pub min_len: Option<usize>,
    #[serde(rename = "enum")]
    pub one_of: Option<Vec<toml::Value>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
    Integer,
    Number,
    Boolean,
    Array,
    Object,
}

impl Kind {
    fn parse(s: &str) -> Result<Kind, String> {
        Ok(match s {
            "string" => Kind::String,
            "integer" => Kind::Integer,
            "number" | "decimal" => Kind::Number,
            "boolean" => Kind::Boolean,
            "array" => Kind::Array,
            "object" => Kind::Object,
            other => {
                return Err(format!(
                    "unknown type `{other}` (string, integer, number, boolean, array, object)"
                ));
            }
        })
    }

    fn matches(self, v: Scalar<'_>) -> bool {
        match (self, v) {
            (Kind::String, Scalar::Text(_))
            | (Kind::Number, Scalar::Number(_))
            | (Kind::Boolean, Scalar::Bool(_))
            | (Kind::Array, Scalar::List)
            | (Kind::Object, Scalar::Object) => true,
            (Kind::Integer, Scalar::Number(n)) => n.is_i64() || n.is_u64(),
            _ => false,
        }
    }
}

#[derive(Debug)]
enum Seg {
    Key(String),
    Each,
}

/// What the schema says of one field.
#[derive(Debug)]
pub struct FieldRule {
    pub path: String,
    segs: Vec<Seg>,
    pub required: bool,
    pub kind: Option<Kind>,
    pub formats: Vec<TextFormat>,
    pub max_len: Option<usize>,
    pub min_len: Option<usize>,
    pub one_of: Option<Vec<Value>>,
}

/// A compiled output schema.
#[derive(Debug)]
pub struct Schema {
    pub name: String,
    rules: Vec<FieldRule>,
    /// The rules' paths merged, so a record is walked once however many rules it has.
    tree: CheckNode,
}

/// The rules' paths as one tree: what is checked at a place of the record, and below it.
#[derive(Debug, Default)]
struct CheckNode {
    /// Rules whose path ends here (their value checks), by index.
    ends: Vec<usize>,
    keys: Vec<(String, CheckNode)>,
    each: Option<Box<CheckNode>>,
    /// The lowest index of a rule at or below this node.
    first_rule: usize,
}

impl CheckNode {
    fn add(&mut self, segs: &[Seg], rule: usize) {
        if self.ends.is_empty() && self.keys.is_empty() && self.each.is_none() {
            self.first_rule = rule;
        }
        self.first_rule = self.first_rule.min(rule);
        let Some((seg, rest)) = segs.split_first() else {
            self.ends.push(rule);
            return;
        };
        let next = match seg {
            Seg::Key(k) => match self.keys.iter().position(|(name, _)| name == k) {
                Some(at) => &mut self.keys[at].1,
                None => {
                    self.keys.push((k.clone(), CheckNode::default()));
                    &mut self.keys.last_mut().expect("just pushed").1
                }
            },
            Seg::Each => self.each.get_or_insert_with(Box::default),
        };
        next.add(rest, rule);
    }
}

impl Schema {
    /// Compile a schema file's text; every problem is reported.
    pub fn compile(name: &str, text: &str) -> Result<Schema, Vec<String>> {
        let spec: SchemaFile = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        let mut problems = Vec::new();
        let mut rules = Vec::new();
        for (path, r) in spec.fields {
            let mut segs = Vec::new();
            for part in path.split('.') {
                let (key, each) = match part.strip_suffix("[]") {
                    Some(k) => (k, true),
                    None => (part, false),
                };
                if key.is_empty() || key.contains(['[', ']']) {
                    problems.push(format!(
                        "`{path}`: bad path segment `{part}` (use name or name[])"
                    ));
                }
                segs.push(Seg::Key(key.to_string()));
                if each {
                    segs.push(Seg::Each);
                }
            }
            let kind = match r.value_type.as_deref().map(Kind::parse).transpose() {
                Ok(k) => k,
                Err(e) => {
                    problems.push(format!("`{path}`: {e}"));
                    None
                }
            };
            let mut formats = Vec::new();
            for f in r.format.map(OneOrMany::into_vec).unwrap_or_default() {
                match TextFormat::parse(&f) {
                    Ok(f) => formats.push(f),
                    Err(e) => problems.push(format!("`{path}`: {e}")),
                }
            }
            rules.push(FieldRule {
                path,
                segs,
                required: r.required,
                kind,
                formats,
                max_len: r.max_len,
                min_len: r.min_len,
                one_of: r.one_of.map(|v| v.iter().map(toml_to_json).collect()),
            });
        }
        if problems.is_empty() {
            let mut tree = CheckNode::default();
            for (i, rule) in rules.iter().enumerate() {
                tree.add(&rule.segs, i);
            }
            Ok(Schema {
                name: name.to_string(),
                rules,
                tree,
            })
        } else {
            Err(problems)
        }
    }

    /// Every field rule, in path order.
    pub fn rules(&self) -> &[FieldRule] {
        &self.rules
    }

    /// The rule for an output path as a mapping writes it (`data[0].MaHoSo` is the
    /// schema's `data[].MaHoSo`).
    pub fn field_rule(&self, output_path: &str) -> Option<&FieldRule> {
        let mut wanted = String::with_capacity(output_path.len());
        let mut in_index = false;
        for c in output_path.chars() {
            match c {
                '[' => {
                    in_index = true;
                    wanted.push_str("[]");
                }
                ']' => in_index = false,
                _ if in_index => {}
                _ => wanted.push(c),
            }
        }
        self.rules.iter().find(|r| r.path == wanted)
    }

    /// Check a mapped record; the first violation is the error.
    pub fn check(&self, out: &Value) -> Result<(), MappingError> {
        self.check_record(out)
    }

    /// [`Schema::check`] over any form of mapped record (see [`Checked`]).
    ///
    /// The rules are checked together in one walk of the record; of the violations found,
    /// the one reported is the one checking rule by rule, in order, would meet first.
    pub fn check_record<'v, V: Checked<'v>>(&self, out: V) -> Result<(), MappingError> {
        let mut walk = Walk {
            rules: &self.rules,
            at: Vec::with_capacity(8),
            first: None,
        };
        walk.node(&self.tree, out);
        match walk.first {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }
}

/// A mapped record as the schema check reads it: `serde_json`'s values, or the compiled
/// engine's output rows (`plan::output`), checked by the same code.
pub trait Checked<'v>: Copy {
    /// `None` when this is not an object; `Some(None)` when it has no such field, or null.
    fn field(self, key: &str) -> Option<Option<Self>>;
    /// Call `f` on each element, in order; `None` when this is not a list.
    fn each_element(
        self,
        f: &mut dyn FnMut(usize, Self) -> Result<(), MappingError>,
    ) -> Option<Result<(), MappingError>>;
    fn scalar(self) -> Scalar<'v>;
    /// The value as serde_json builds it, for messages and rare comparisons.
    fn to_value(self) -> Value;
}

/// What a checked value is, with its text or number.
#[derive(Clone, Copy, Debug)]
pub enum Scalar<'v> {
    Null,
    Bool(bool),
    Number(&'v serde_json::Number),
    Text(&'v str),
    List,
    Object,
}

impl<'v> Checked<'v> for &'v Value {
    fn field(self, key: &str) -> Option<Option<Self>> {
        match self {
            Value::Object(m) => Some(m.get(key).filter(|c| !c.is_null())),
            _ => None,
        }
    }

    fn each_element(
        self,
        f: &mut dyn FnMut(usize, Self) -> Result<(), MappingError>,
    ) -> Option<Result<(), MappingError>> {
        match self {
            Value::Array(items) => Some(items.iter().enumerate().try_for_each(|(i, e)| f(i, e))),
            _ => None,
        }
    }

    fn scalar(self) -> Scalar<'v> {
        match self {
            Value::Null => Scalar::Null,
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Number(n) => Scalar::Number(n),
            Value::String(s) => Scalar::Text(s),
            Value::Array(_) => Scalar::List,
            Value::Object(_) => Scalar::Object,
        }
    }

    fn to_value(self) -> Value {
        self.clone()
    }
}

impl Scalar<'_> {
    fn kind_name(self) -> &'static str {
        match self {
            Scalar::Null => "nothing",
            Scalar::Bool(_) => "a boolean",
            Scalar::Number(_) => "a number",
            Scalar::Text(_) => "text",
            Scalar::List => "a list",
            Scalar::Object => "an object",
        }
    }

    /// Equal to a schema's `enum` value (a list or object never is: schemas list scalars).
    fn equals(self, v: &Value) -> bool {
        match (self, v) {
            (Scalar::Null, Value::Null) => true,
            (Scalar::Bool(a), Value::Bool(b)) => a == *b,
            (Scalar::Number(a), Value::Number(b)) => a == b,
            (Scalar::Text(a), Value::String(b)) => a == b,
            _ => false,
        }
    }
}

/// One step of the path being checked, kept borrowed: the text of a path is only built
/// when there is an error to report.
enum At<'a> {
    Key(&'a str),
    Index(usize),
}

fn render(at: &[At<'_>]) -> String {
    let mut s = String::new();
    for step in at {
        match step {
            At::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            At::Index(i) => {
                s.push('[');
                s.push_str(&i.to_string());
                s.push(']');
            }
        }
    }
    s
}

/// One walk of a record through the schema's tree, keeping the violation of the
/// lowest-numbered rule (within a rule, the first met: elements are visited in order).
struct Walk<'s> {
    rules: &'s [FieldRule],
    at: Vec<At<'s>>,
    first: Option<(usize, MappingError)>,
}

impl<'s> Walk<'s> {
    fn found(&mut self, rule: usize, e: MappingError) {
        if self.first.as_ref().is_none_or(|(r, _)| rule < *r) {
            self.first = Some((rule, e));
        }
    }

    /// Whether nothing below a node starting at rule `first_rule` could be reported.
    fn settled(&self, first_rule: usize) -> bool {
        self.first.as_ref().is_some_and(|(r, _)| *r <= first_rule)
    }

    fn node<'v, V: Checked<'v>>(&mut self, node: &'s CheckNode, v: V) {
        if self.settled(node.first_rule) {
            return;
        }
        for &r in &node.ends {
            if let Err(e) = check_value(&self.rules[r], v, &self.at) {
                self.found(r, e);
            }
        }
        for (k, child) in &node.keys {
            let Some(found) = v.field(k) else {
                // Not an object: nothing below applies.
                continue;
            };
            self.at.push(At::Key(k));
            match found {
                Some(c) => self.node(child, c),
                None => {
                    for &r in &child.ends {
                        let rule = &self.rules[r];
                        if rule.required {
                            let e = MappingError::new(
                                &render(&self.at),
                                None,
                                format!(
                                    "required by the target's schema ({}) but missing",
                                    rule.path
                                ),
                            );
                            self.found(r, e);
                        }
                    }
                }
            }
            self.at.pop();
        }
        if let Some(each) = &node.each {
            if self.settled(each.first_rule) {
                return;
            }
            let mut visit = |i: usize, item: V| {
                self.at.push(At::Index(i));
                self.node(each, item);
                self.at.pop();
                Ok(())
            };
            if v.each_element(&mut visit).is_none() {
                let e = MappingError::new(
                    &render(&self.at),
                    None,
                    format!("must be a list, found {}", v.scalar().kind_name()),
                );
                self.found(each.first_rule, e);
            }
        }
    }
}

fn check_value<'v, V: Checked<'v>>(
    rule: &FieldRule,
    v: V,
    at: &[At<'_>],
) -> Result<(), MappingError> {
    let fail = |reason: String| Err(MappingError::new(&render(at), None, reason));
    let scalar = v.scalar();
    if let Some(kind) = rule.kind
        && !kind.matches(scalar)
    {
        return fail(
            format!("must be {kind:?} (lowercase) but is {}", scalar.kind_name()).to_lowercase(),
        );
    }
    if let Some(allowed) = &rule.one_of
        && !allowed.iter().any(|a| scalar.equals(a))
        && !(matches!(scalar, Scalar::List | Scalar::Object) && allowed.contains(&v.to_value()))
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        return fail(format!(
            "{} is not one of {}",
            v.to_value(),
            list.join(", ")
        ));
    }
    // A field with a text format or length is text: a list, an object or a yes/no there is wrong
    // whatever it holds.
    let text_rules = !rule.formats.is_empty() || rule.max_len.is_some() || rule.min_len.is_some();
    if text_rules && matches!(scalar, Scalar::List | Scalar::Object | Scalar::Bool(_)) {
        return fail(format!("must be text but is {}", scalar.kind_name()));
    }
    // A number is checked as the text it is written as (a 12-digit id sent unquoted),
    // when there is a text rule to check.
    let number_text;
    let text = match scalar {
        Scalar::Text(s) => Some(s),
        Scalar::Number(n) if text_rules => {
            number_text = n.to_string();
            Some(number_text.as_str())
        }
        _ => None,
    };
    if let Some(s) = text {
        // Characters, not bytes; counted only when the byte length leaves it open (a
        // character is one to four bytes), as most text is far inside its bounds.
        let settled = rule.max_len.is_none_or(|max| s.len() <= max)
            && rule.min_len.is_none_or(|min| s.len() / 4 >= min);
        if !settled {
            let len = s.chars().count();
            if let Some(max) = rule.max_len
                && len > max
            {
                return fail(format!(
                    "is {len} characters long, the target accepts at most {max}"
                ));
            }
            if let Some(min) = rule.min_len
                && len < min
            {
                return fail(format!(
                    "is {len} characters long, the target needs at least {min}"
                ));
            }
        }
        if !rule.formats.is_empty() && !rule.formats.iter().any(|f| f.check(s)) {
            let wanted: Vec<&str> = rule.formats.iter().map(|f| f.describe()).collect();
            return fail(format!("`{s}` is not {}", wanted.join(" or ")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
