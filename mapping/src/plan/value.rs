//! The values the compiled engine works on: text borrowed from the input bytes (or from the
//! mapping's own constants) wherever it can be, owned only where a transform changed it.
//!
//! A [`Val`] is JSON-shaped like `serde_json::Value`, with two more forms: a constant of the
//! mapping borrowed as it is ([`Val::Json`]), and the output of one `each` element
//! ([`Val::Record`]), kept in its compiled shape until it is written.

use super::output::Record;
use crate::path::{SourcePath, Step};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;

/// A value read from the input or produced by a rule.
#[derive(Clone, Debug)]
pub enum Val<'a> {
    Null,
    Bool(bool),
    Num(Number),
    Str(Cow<'a, str>),
    Arr(Vec<Val<'a>>),
    /// Fields in input order; a repeated key counts as its last occurrence, as in
    /// `serde_json`'s maps.
    Obj(Vec<(Cow<'a, str>, Val<'a>)>),
    /// A list or object borrowed from the mapping (a constant, default or table value) or
    /// from a record already decoded to `serde_json::Value`.
    Json(&'a Value),
    /// One element's output of an `each` rule.
    Record(Box<Record<'a>>),
}

impl<'a> Val<'a> {
    /// A `serde_json` value seen as a `Val` without copying its text.
    pub fn from_json(v: &'a Value) -> Val<'a> {
        match v {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => Val::Num(n.clone()),
            Value::String(s) => Val::Str(Cow::Borrowed(s)),
            Value::Array(_) | Value::Object(_) => Val::Json(v),
        }
    }

    /// Missing, null and empty text all count as "no value" (see `engine::is_absent`).
    pub fn is_absent(&self) -> bool {
        match self {
            Val::Null => true,
            Val::Str(s) => s.is_empty(),
            Val::Json(v) => v.is_null() || v.as_str().is_some_and(str::is_empty),
            _ => false,
        }
    }

    pub fn is_array(&self) -> bool {
        matches!(self, Val::Arr(_)) || matches!(self, Val::Json(v) if v.is_array())
    }

    /// Text form of a scalar, as `engine::scalar_text` gives it.
    pub fn scalar_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Val::Str(s) => Some(Cow::Borrowed(s)),
            Val::Num(n) => Some(Cow::Owned(n.to_string())),
            Val::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            Val::Json(v) => crate::engine::scalar_text(v),
            _ => None,
        }
    }

    /// The value as `serde_json` builds it (for the output formats other than JSON, for
    /// `Mapping::map`, and for error messages).
    pub fn to_value(&self) -> Value {
        match self {
            Val::Null => Value::Null,
            Val::Bool(b) => Value::Bool(*b),
            Val::Num(n) => Value::Number(n.clone()),
            Val::Str(s) => Value::String(s.to_string()),
            Val::Arr(items) => Value::Array(items.iter().map(Val::to_value).collect()),
            Val::Obj(fields) => {
                let mut m = Map::new();
                for (k, v) in fields {
                    m.insert(k.to_string(), v.to_value());
                }
                Value::Object(m)
            }
            Val::Json(v) => (*v).clone(),
            Val::Record(r) => r.to_value(),
        }
    }

    /// The field `key` of an object (its last occurrence).
    fn field(&self, key: &str) -> Option<Sel<'_, 'a>> {
        match self {
            Val::Obj(fields) => fields
                .iter()
                .rev()
                .find(|(k, _)| super::same_name(k, key))
                .map(|(_, v)| Sel::Val(v)),
            Val::Json(Value::Object(m)) => m.get(key).map(Sel::Json),
            _ => None,
        }
    }
}

/// A selected part of the input: a `Val`, or a part of a `serde_json::Value` inside one.
#[derive(Clone, Copy, Debug)]
pub enum Sel<'v, 'a> {
    Val(&'v Val<'a>),
    Json(&'a Value),
}

impl<'v, 'a> Sel<'v, 'a> {
    fn step(self, step: &Step) -> Option<Sel<'v, 'a>> {
        match (step, self) {
            // An XML element with only text is that text (see `SourcePath::select`).
            (Step::Key(k), Sel::Val(Val::Str(_) | Val::Json(Value::String(_))))
                if k == crate::path::TEXT_KEY =>
            {
                Some(self)
            }
            (Step::Key(k), Sel::Json(Value::String(_))) if k == crate::path::TEXT_KEY => Some(self),
            (Step::Key(k), Sel::Val(v)) => v.field(k),
            (Step::Key(k), Sel::Json(Value::Object(m))) => m.get(k).map(Sel::Json),
            (Step::Index(i), Sel::Val(Val::Arr(a))) => a.get(*i).map(Sel::Val),
            (Step::Index(i), Sel::Val(Val::Json(Value::Array(a))) | Sel::Json(Value::Array(a))) => {
                a.get(*i).map(Sel::Json)
            }
            // An index into something that is not a list treats it as a one-element list
            // (see `SourcePath::select`).
            (Step::Index(0), Sel::Val(v)) if !matches!(v, Val::Null) => Some(self),
            (Step::Index(0), Sel::Json(v)) if !v.is_null() => Some(self),
            _ => None,
        }
    }

    /// The selected value as a `Val` (a copy of the handle, never of long text).
    pub fn to_val(self) -> Val<'a> {
        match self {
            Sel::Val(v) => v.clone(),
            Sel::Json(v) => Val::from_json(v),
        }
    }

    /// The elements of a list; `None` when this is not one.
    pub fn elements(self) -> Option<impl Iterator<Item = Sel<'v, 'a>>> {
        let items: Vec<Sel<'v, 'a>> = match self {
            Sel::Val(Val::Arr(a)) => a.iter().map(Sel::Val).collect(),
            Sel::Val(Val::Json(serde_json::Value::Array(a))) | Sel::Json(Value::Array(a)) => {
                a.iter().map(Sel::Json).collect()
            }
            _ => return None,
        };
        Some(items.into_iter())
    }

    pub fn is_absent(self) -> bool {
        match self {
            Sel::Val(v) => v.is_absent(),
            Sel::Json(v) => crate::engine::is_absent(v),
        }
    }

    pub fn scalar_text(self) -> Option<Cow<'v, str>> {
        match self {
            Sel::Val(v) => v.scalar_text(),
            Sel::Json(v) => crate::engine::scalar_text(v),
        }
    }

    /// `engine::loose_eq` against a constant of the mapping.
    pub fn loose_eq(self, c: &Value, ignore_case: bool) -> bool {
        match self {
            Sel::Json(v) => json_eq(v, c, ignore_case),
            Sel::Val(Val::Json(v)) => json_eq(v, c, ignore_case),
            Sel::Val(Val::Str(s)) => match c {
                Value::String(t) if ignore_case => crate::text::eq_lowercase(s, t),
                Value::String(t) => s.as_ref() == t,
                Value::Number(_) | Value::Bool(_) => {
                    crate::engine::scalar_text(c).as_deref() == Some(s.trim())
                }
                _ => false,
            },
            Sel::Val(Val::Num(n)) => match c {
                Value::String(t) => n.to_string() == t.trim(),
                Value::Number(m) => n == m,
                _ => false,
            },
            Sel::Val(Val::Bool(b)) => match c {
                Value::String(t) => (if *b { "true" } else { "false" }) == t.trim(),
                Value::Bool(x) => b == x,
                _ => false,
            },
            Sel::Val(Val::Null) => c.is_null(),
            Sel::Val(v @ (Val::Arr(_) | Val::Obj(_) | Val::Record(_))) => &v.to_value() == c,
        }
    }
}

fn json_eq(v: &Value, c: &Value, ignore_case: bool) -> bool {
    match (v, c, ignore_case) {
        (Value::String(x), Value::String(y), true) => crate::text::eq_lowercase(x, y),
        _ => crate::engine::loose_eq(v, c),
    }
}

impl SourcePath {
    /// [`SourcePath::select`] over `Val`s.
    pub fn select_val<'v, 'a>(
        &self,
        current: Sel<'v, 'a>,
        root: Sel<'v, 'a>,
    ) -> Option<Sel<'v, 'a>> {
        let mut v = if self.from_root { root } else { current };
        for step in &self.steps {
            v = v.step(step)?;
        }
        Some(v)
    }
}

/// Text borrowed from `whole` when `part` lies inside it, else copied: quick-xml hands out
/// names and text tied to its event, though they are slices of the input itself.
pub fn borrow_from<'a>(whole: &'a str, part: &str) -> Cow<'a, str> {
    let start = whole.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    if at >= start && at + part.len() <= start + whole.len() {
        let off = at - start;
        Cow::Borrowed(&whole[off..off + part.len()])
    } else {
        Cow::Owned(part.to_string())
    }
}

// Reading a whole value with serde (borrowing text that has no escapes).
impl<'de> serde::Deserialize<'de> for Val<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(super::want::WantSeed(None))
    }
}

/// [`crate::codec::split_records`] for a document read as a `Val`.
pub fn split_records<'a>(
    doc: Val<'a>,
    path: Option<&[String]>,
) -> Result<Vec<Val<'a>>, crate::wire::DecodeError> {
    use crate::wire::DecodeError;
    let Some(path) = path else {
        return Ok(match doc {
            Val::Arr(items) => items,
            other => vec![other],
        });
    };
    let mut cur = doc;
    for seg in path {
        cur = match cur {
            Val::Obj(mut fields) => match fields.iter().rposition(|(k, _)| k == seg) {
                Some(at) => fields.swap_remove(at).1,
                None => {
                    return Err(DecodeError::Shape {
                        message: format!(
                            "no `{seg}` in the input (records are at `{}`)",
                            path.join(".")
                        ),
                    });
                }
            },
            _ => {
                return Err(DecodeError::Shape {
                    message: format!("records are expected at `{}`", path.join(".")),
                });
            }
        };
    }
    Ok(match cur {
        Val::Arr(items) => items,
        Val::Str(s) if s.is_empty() => Vec::new(),
        other => vec![other],
    })
}
