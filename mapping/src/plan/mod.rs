//! The compiled engine: a mapping turned into a field plan that reads the input once and
//! writes the output straight from it. This is what the bus runs; the rule interpreter in
//! [`crate::engine`] is the reference it is tested against.
//!
//! ```text
//! input bytes ─► want::read_json: scan::read (only the fields the mapping names; text
//!             │    borrowed), serde_json's reader for what it gives up on
//!             └► codec::xml::decode_val: xml::scan (everyday XML; text borrowed),
//!                  quick-xml for what it gives up on
//!   record ─► Plan::run: each rule in order ─► its output slot (a Val, usually borrowed)
//!          ─► schema check over the slots ─► Out::write_json writes the slots in key order
//! ```
//!
//! Why it is faster than the interpreter: no `serde_json::Value` tree is built for the input
//! or the output, text that no transform changes is never copied (a trimmed name is a slice
//! of the input), constants and table values are borrowed from the mapping, and fields the
//! mapping does not read are skipped by the JSON reader.
//!
//! What it must do exactly as the interpreter does — value for value, error for error — is
//! checked by `tests/differential.rs` over every fixture and a generated corpus. A mapping
//! whose output paths overlap (one rule writes `a`, another `a.b`) has output that depends
//! on which rules find values; it is left to the interpreter ([`Plan::build`] says `None`).

pub mod output;
pub mod scan;
pub mod value;
pub mod want;

use crate::engine::{
    self, Condition, Op, Rule, Source, TemplatePart, Test, ValueType, missing_reason,
};
use crate::error::MappingError;
use crate::text;
use output::{Record, Shape};
use std::borrow::Cow;
use value::{Sel, Val};

/// A compiled list of rules (a mapping, or a sub-mapping used by an `each`).
#[derive(Debug)]
pub struct Plan {
    shape: Shape,
    /// The slot each rule writes, rule by rule.
    slot_of: Vec<usize>,
    /// The plan of each `each` rule's sub-mapping, rule by rule.
    subs: Vec<Option<Plan>>,
}

impl Plan {
    /// The plan of `rules`, or `None` when their output paths overlap (see the module docs).
    pub fn build(rules: &[Rule]) -> Option<Plan> {
        let mut shape = Shape::default();
        let mut slot_of = Vec::with_capacity(rules.len());
        let mut subs = Vec::with_capacity(rules.len());
        for rule in rules {
            slot_of.push(shape.slot(&rule.to)?);
            subs.push(match &rule.source {
                Source::Each { rules, .. } => Some(Plan::build(rules)?),
                _ => None,
            });
        }
        Some(Plan {
            shape,
            slot_of,
            subs,
        })
    }

    /// Run `rules` (the ones this plan was built from) over `cur`, an element of `root`.
    pub fn run<'a>(
        &'a self,
        rules: &'a [Rule],
        cur: Sel<'_, 'a>,
        root: Sel<'_, 'a>,
    ) -> Result<Record<'a>, MappingError> {
        let mut out = Record::new(&self.shape);
        for (i, rule) in rules.iter().enumerate() {
            if let Some(cond) = &rule.when
                && !holds(cond, cur, root)
            {
                continue;
            }
            // A value is built where it will stay: moved from one place to the next, a
            // value just written stalls the processor on every read (store forwarding).
            let slot = out.slot_mut(self.slot_of[i]);
            if slot.is_none() {
                self.apply_rule(i, rule, cur, root, slot)?;
            } else {
                // A second rule for a field that has a value keeps it when it finds none.
                let mut value = None;
                self.apply_rule(i, rule, cur, root, &mut value)?;
                if value.is_some() {
                    *slot = value;
                }
            }
        }
        out.finish();
        Ok(out)
    }

    /// Run one rule into `dest` (empty on entry): its value, else its default, else
    /// nothing, or the error of a required field with neither.
    fn apply_rule<'a>(
        &'a self,
        index: usize,
        rule: &'a Rule,
        cur: Sel<'_, 'a>,
        root: Sel<'_, 'a>,
        dest: &mut Option<Val<'a>>,
    ) -> Result<(), MappingError> {
        let from = self.evaluate(index, rule, cur, root, dest)?;
        if dest.is_none() {
            match &rule.default {
                Some(d) => *dest = Some(Val::from_json(d)),
                None if rule.required => {
                    return Err(MappingError::new(
                        &rule.to.text,
                        from,
                        missing_reason(&rule.source),
                    ));
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Put the rule's value in `dest` (left empty when absent); returns the input path it
    /// came from, for the message of a required field.
    fn evaluate<'a>(
        &'a self,
        index: usize,
        rule: &'a Rule,
        cur: Sel<'_, 'a>,
        root: Sel<'_, 'a>,
        dest: &mut Option<Val<'a>>,
    ) -> Result<Option<&'a str>, MappingError> {
        match &rule.source {
            Source::Const(v) => {
                *dest = Some(Val::from_json(v));
                Ok(None)
            }
            Source::Paths(paths) => {
                let found = paths.iter().find_map(|p| {
                    p.select_val(cur, root)
                        .filter(|v| !v.is_absent())
                        .map(|v| (v, p))
                });
                let Some((v, p)) = found else {
                    return Ok(paths.first().map(|p| p.text.as_str()));
                };
                let from = Some(p.text.as_str());
                *dest = Some(v.to_val());
                apply_ops(&rule.ops, dest)
                    .map_err(|reason| MappingError::new(&rule.to.text, from, reason))?;
                Ok(from)
            }
            Source::Fail(parts) => {
                let mut s = String::new();
                for part in parts {
                    match part {
                        TemplatePart::Text(t) => s.push_str(t),
                        TemplatePart::Field(p) => {
                            let v = p.select_val(cur, root).and_then(Sel::scalar_text);
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
                            if let Some(v) = p.select_val(cur, root).filter(|v| !v.is_absent()) {
                                let t = v.scalar_text().ok_or_else(|| {
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
                    return Ok(None);
                }
                *dest = Some(Val::Str(Cow::Owned(s)));
                apply_ops(&rule.ops, dest)
                    .map_err(|reason| MappingError::new(&rule.to.text, None, reason))?;
                Ok(None)
            }
            Source::Each { path, rules } => {
                let from = Some(path.text.as_str());
                let sub = self.subs[index]
                    .as_ref()
                    .expect("each rules have a sub-plan");
                let Some(found) = path.select_val(cur, root).filter(|v| !v.is_absent()) else {
                    return Ok(from);
                };
                let mut out = Vec::new();
                let mut one = |i: usize, item: Sel<'_, 'a>| {
                    let mapped = sub
                        .run(rules, item, root)
                        .map_err(|e| e.nested(&rule.to.text, &path.text, i))?;
                    out.push(Val::Record(Box::new(mapped)));
                    Ok::<(), MappingError>(())
                };
                match found.elements() {
                    Some(items) => {
                        for (i, item) in items.enumerate() {
                            one(i, item)?;
                        }
                    }
                    None => one(0, found)?,
                }
                *dest = Some(Val::Arr(out));
                Ok(from)
            }
        }
    }
}

/// `a == b`, with the length and the last byte compared before the bytes: field names
/// are looked up by scanning short lists, and most names differ in length or ending
/// (`MaHoSo`, `MaTTHC`, `SoBienNhan`, ...), so most comparisons end without a `memcmp`.
#[inline]
pub(crate) fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.as_bytes().last() == b.as_bytes().last() && a == b
}

fn holds(cond: &Condition, cur: Sel<'_, '_>, root: Sel<'_, '_>) -> bool {
    let present = |p: &crate::path::SourcePath| p.select_val(cur, root).filter(|v| !v.is_absent());
    let eq = |x: Sel<'_, '_>, c: &serde_json::Value| x.loose_eq(c, cond.ignore_case);
    match &cond.test {
        Test::Exists(p) => present(p).is_some(),
        Test::Missing(p) => present(p).is_none(),
        Test::Equals(p, v) => present(p).is_some_and(|x| eq(x, v)),
        Test::NotEquals(p, v) => !present(p).is_some_and(|x| eq(x, v)),
        Test::In(p, vs) => present(p).is_some_and(|x| vs.iter().any(|v| eq(x, v))),
    }
}

/// Apply `ops` to the value in `dest`, in place; a value they leave absent (empty text,
/// null) is taken out.
fn apply_ops<'a>(ops: &'a [Op], dest: &mut Option<Val<'a>>) -> Result<(), String> {
    let Some(v) = dest else { return Ok(()) };
    for op in ops {
        // Text through a text transform, the common case, is changed where it lies.
        match (&mut *v, text_transform(op)) {
            (Val::Str(text), Some((_, f))) => transform_in_place(text, f),
            _ => *v = apply_op(op, std::mem::replace(v, Val::Null))?,
        }
        if v.is_absent() {
            *dest = None;
            return Ok(());
        }
    }
    Ok(())
}

/// A text transform: returns its input borrowed when it changes nothing.
type TextFn = for<'x> fn(&'x str) -> Cow<'x, str>;

/// The name and function of `op` when it is a plain text transform.
fn text_transform(op: &Op) -> Option<(&'static str, TextFn)> {
    Some(match op {
        Op::Trim => ("trim", |s| Cow::Borrowed(s.trim())),
        Op::Upper => ("upper", |s| {
            keep_or(
                s,
                s.bytes().all(|b| b.is_ascii() && !b.is_ascii_lowercase()),
                str::to_uppercase,
            )
        }),
        Op::Lower => ("lower", |s| {
            keep_or(
                s,
                s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()),
                str::to_lowercase,
            )
        }),
        Op::Nfc => ("nfc", |s| keep_or(s, text::is_nfc(s), text::nfc)),
        Op::CollapseSpaces => ("collapse_spaces", |s| {
            keep_or(s, is_collapsed(s), text::collapse_spaces)
        }),
        Op::StripSpaces => ("strip_spaces", |s| {
            keep_or(s, !s.contains(char::is_whitespace), |s| {
                s.split_whitespace().collect()
            })
        }),
        _ => return None,
    })
}

/// `f` over text, keeping borrowed text borrowed and owned text unmoved when `f` changes
/// nothing.
fn transform_in_place(text: &mut Cow<'_, str>, f: impl for<'x> Fn(&'x str) -> Cow<'x, str>) {
    match text {
        Cow::Borrowed(s) => *text = f(s),
        Cow::Owned(s) => {
            let changed = match f(s) {
                Cow::Borrowed(t) if t.len() == s.len() => None,
                other => Some(other.into_owned()),
            };
            if let Some(t) = changed {
                *s = t;
            }
        }
    }
}

/// Why a value that is not text cannot go where text is needed.
fn not_text(what: &str, v: &Val<'_>) -> String {
    engine::not_text_found(what, v.is_array())
}

/// The text of a scalar (numbers and yes/no as written), or why it has none.
fn text_of<'v>(v: &'v Val<'_>, what: &str) -> Result<Cow<'v, str>, String> {
    v.scalar_text().ok_or_else(|| not_text(what, v))
}

/// Apply a text transform, keeping the input's borrowed text when it changes nothing;
/// numbers and yes/no pass through unchanged.
fn map_text<'a>(
    mut v: Val<'a>,
    what: &str,
    f: impl for<'x> Fn(&'x str) -> Cow<'x, str>,
) -> Result<Val<'a>, String> {
    match &mut v {
        Val::Str(text) => transform_in_place(text, f),
        Val::Num(_) | Val::Bool(_) => {}
        Val::Json(j) if !j.is_array() && !j.is_object() => {
            return map_text(Val::from_json(j), what, f);
        }
        other => return Err(not_text(what, other)),
    }
    Ok(v)
}

/// Unchanged when `keep`, else the transformed copy.
fn keep_or<'x>(s: &'x str, keep: bool, f: impl FnOnce(&str) -> String) -> Cow<'x, str> {
    if keep {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(f(s))
    }
}

/// Whether `collapse_spaces` would leave `s` as it is.
fn is_collapsed(s: &str) -> bool {
    let mut prev_space = true;
    for c in s.chars() {
        if c.is_whitespace() {
            if c != ' ' || prev_space {
                return false;
            }
            prev_space = true;
        } else {
            prev_space = false;
        }
    }
    !prev_space || s.is_empty()
}

fn apply_op<'a>(op: &'a Op, v: Val<'a>) -> Result<Val<'a>, String> {
    match op {
        Op::Trim | Op::Upper | Op::Lower | Op::Nfc | Op::CollapseSpaces | Op::StripSpaces => {
            let (name, f) = text_transform(op).expect("a text transform");
            map_text(v, name, f)
        }
        Op::Digits => {
            let s = text_of(&v, "digits")?;
            if s.bytes().all(|b| b.is_ascii_digit()) {
                return Ok(match v {
                    Val::Str(t) => Val::Str(t),
                    _ => Val::Str(Cow::Owned(s.into_owned())),
                });
            }
            Ok(Val::Str(Cow::Owned(
                s.chars().filter(char::is_ascii_digit).collect(),
            )))
        }
        Op::PhoneVn => Ok(Val::Str(Cow::Owned(engine::phone_vn(&text_of(
            &v, "phone_vn",
        )?)))),
        Op::Legacy(l) => map_text(v, "legacy text conversion", |s| {
            Cow::Owned(text::legacy_to_unicode(s, *l))
        }),
        Op::Table(t) => engine::table_value(t, &text_of(&v, "a code table")?).map(Val::from_json),
        Op::Date {
            from,
            to,
            zone,
            to_zone,
        } => engine::convert_date(&text_of(&v, "a date")?, from, to, *zone, *to_zone)
            .map(|s| Val::Str(Cow::Owned(s))),
        Op::Type(t) => convert(v, *t),
    }
}

fn convert<'a>(v: Val<'a>, t: ValueType) -> Result<Val<'a>, String> {
    // Constants of the mapping are seen as the scalar they hold.
    let v = match v {
        Val::Json(j) if !j.is_array() && !j.is_object() => Val::from_json(j),
        v => v,
    };
    match t {
        ValueType::String => match v {
            Val::Str(_) => Ok(v),
            Val::Num(n) => Ok(Val::Str(Cow::Owned(n.to_string()))),
            Val::Bool(b) => Ok(Val::Str(Cow::Borrowed(if b { "true" } else { "false" }))),
            _ => Err("cannot turn a list or object into text".into()),
        },
        ValueType::Integer => match &v {
            Val::Num(n) => engine::whole_number(n).map(Val::Num),
            Val::Str(s) => engine::whole_number_text(s).map(Val::Num),
            _ => Err("expected a whole number".into()),
        },
        ValueType::Decimal => match &v {
            Val::Num(_) => Ok(v),
            Val::Str(s) => engine::decimal_text(s).map(Val::Num),
            _ => Err("expected a number".into()),
        },
        ValueType::Boolean => match &v {
            Val::Bool(_) => Ok(v),
            Val::Num(n) if n.as_i64() == Some(0) => Ok(Val::Bool(false)),
            Val::Num(n) if n.as_i64() == Some(1) => Ok(Val::Bool(true)),
            Val::Str(s) => engine::yes_no_text(s).map(Val::Bool),
            _ => Err("expected a yes/no value".into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapsed_text_is_recognised() {
        for s in ["", "a", "a b", "Nguyễn Thị Minh"] {
            assert!(is_collapsed(s), "{s:?}");
            assert_eq!(text::collapse_spaces(s), s);
        }
        for s in [" a", "a ", "a  b", "a\tb", "a\nb", " "] {
            assert!(!is_collapsed(s), "{s:?}");
        }
    }
}
