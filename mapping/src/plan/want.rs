//! What a mapping reads of a record, and a JSON reader that keeps only that.
//!
//! [`Want`] is the tree of field names that the mapping's paths name (`from`, `when`,
//! templates, `each` with its sub-mapping's paths below it, `$root.` paths from the top).
//! Where a path ends its value is used as it is, so everything under it is kept. List
//! indexes are not part of the tree: every element of a list is read with the tree of the
//! list's own position, which keeps what any index could select.
//!
//! [`WantSeed`] reads JSON with `serde_json`'s borrowing deserializer: text without escapes
//! stays a slice of the input, and fields outside the tree are skipped without being built.

use super::value::Val;
use crate::engine::{Rule, Source, TemplatePart};
use crate::path::{SourcePath, Step};
use crate::wire::DecodeError;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Number;
use std::borrow::Cow;
use std::fmt;

/// The parts of a record that a mapping reads.
#[derive(Debug, Default, Clone)]
pub struct Want {
    /// The value here is used as a whole: keep all of it.
    whole: bool,
    /// Sorted by name.
    keys: Vec<(String, Want)>,
}

impl Want {
    /// What `rules` read, for records (or `each` elements) at `prefix` below the root.
    pub fn of_rules(rules: &[Rule]) -> Want {
        let mut want = Want::default();
        add_rules(&mut want, rules, &[]);
        want
    }

    /// This tree below the field path `at` (a document whose records sit at `at`).
    pub fn under(self, at: &[String]) -> Want {
        at.iter().rev().fold(self, |inner, key| Want {
            whole: false,
            keys: vec![(key.clone(), inner)],
        })
    }

    fn add(&mut self, steps: &[Step], whole: bool) {
        let mut node = self;
        for step in steps {
            let Step::Key(k) = step else { continue };
            if node.whole {
                return;
            }
            let i = match node.keys.binary_search_by(|(name, _)| name.as_str().cmp(k)) {
                Ok(i) => i,
                Err(i) => {
                    node.keys.insert(i, (k.clone(), Want::default()));
                    i
                }
            };
            node = &mut node.keys[i].1;
        }
        if whole {
            node.whole = true;
            node.keys.clear();
        }
    }

    /// How many field names are read here.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// What to keep of a value at this node: `None` for all of it.
    pub fn filter(&self) -> Option<&Want> {
        (!self.whole).then_some(self)
    }

    /// The node of the field `key`, when the mapping reads it.
    pub fn child(&self, key: &str) -> Option<&Want> {
        // A scan comparing lengths first beats a binary search's full comparisons on the
        // few dozen names a mapping reads.
        self.keys
            .iter()
            .find(|(name, _)| super::same_name(name, key))
            .map(|(_, w)| w)
    }

    /// The seed reading a value at this node.
    fn seed(&self) -> WantSeed<'_> {
        WantSeed((!self.whole).then_some(self))
    }
}

/// Add every path `rules` read; `prefix` is where their current element is.
fn add_rules(want: &mut Want, rules: &[Rule], prefix: &[Step]) {
    let path = |p: &SourcePath, whole: bool| {
        let mut steps = if p.from_root {
            Vec::new()
        } else {
            prefix.to_vec()
        };
        steps.extend(p.steps.iter().cloned());
        (steps, whole)
    };
    let mut paths = Vec::new();
    for rule in rules {
        if let Some(cond) = &rule.when {
            let p = cond.test.path();
            paths.push(path(p, true));
        }
        match &rule.source {
            Source::Paths(ps) => paths.extend(ps.iter().map(|p| path(p, true))),
            Source::Template(parts) | Source::Fail(parts) => {
                for part in parts {
                    if let TemplatePart::Field(p) = part {
                        paths.push(path(p, true));
                    }
                }
            }
            Source::Const(_) => {}
            Source::Each { path: p, rules } => {
                let (at, _) = path(p, false);
                want.add(&at, false);
                add_rules(want, rules, &at);
            }
        }
    }
    for (steps, whole) in paths {
        want.add(&steps, whole);
    }
}

/// Read one JSON document, keeping what `want` names (everything when it is `None`).
pub fn read_json<'a>(
    input: &'a [u8],
    want: Option<&Want>,
    max_bytes: usize,
) -> Result<Val<'a>, DecodeError> {
    let want = want.and_then(Want::filter);
    if input.len() <= max_bytes
        && let Some(value) = super::scan::read(input, want)
    {
        return Ok(value);
    }
    read_json_with_serde(input, want, max_bytes)
}

/// [`read_json`] through serde's visitor only: the reader for whatever the fast one
/// ([`super::scan`]) gives up on, whose errors are the ones a unit sees, and the
/// reference that reader is tested against.
pub fn read_json_with_serde<'a>(
    input: &'a [u8],
    want: Option<&Want>,
    max_bytes: usize,
) -> Result<Val<'a>, DecodeError> {
    if input.len() > max_bytes {
        return Err(DecodeError::too_large(input.len(), max_bytes));
    }
    let seed = WantSeed(want.and_then(Want::filter));
    let syntax = crate::wire::json_error;
    // serde_json refuses nesting past 128 levels by itself, skipped parts included.
    let mut de = serde_json::Deserializer::from_slice(input);
    let value = seed.deserialize(&mut de).map_err(syntax)?;
    de.end().map_err(syntax)?;
    Ok(value)
}

/// Reads a value keeping the fields a [`Want`] names (all of it when `None`).
#[derive(Clone, Copy)]
pub struct WantSeed<'w>(pub Option<&'w Want>);

impl<'de> DeserializeSeed<'de> for WantSeed<'_> {
    type Value = Val<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Val<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for WantSeed<'_> {
    type Value = Val<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Val<'de>, E> {
        Ok(Val::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Val<'de>, E> {
        Ok(Val::Num(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Val<'de>, E> {
        Ok(Val::Num(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Val<'de>, E> {
        Ok(Number::from_f64(v).map_or(Val::Null, Val::Num))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Owned(v.to_string())))
    }

    fn visit_string<E>(self, v: String) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Owned(v)))
    }

    fn visit_unit<E>(self) -> Result<Val<'de>, E> {
        Ok(Val::Null)
    }

    fn visit_none<E>(self) -> Result<Val<'de>, E> {
        Ok(Val::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Val<'de>, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element_seed(self)? {
            items.push(v);
        }
        Ok(Val::Arr(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Val<'de>, A::Error> {
        // At most one field per name the mapping reads (a repeated key aside).
        let mut fields = Vec::with_capacity(self.0.map_or(0, |w| w.keys.len()));
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let seed = match self.0 {
                None => WantSeed(None),
                Some(want) => match want.child(&key) {
                    Some(child) => child.seed(),
                    None => {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                },
            };
            let value = map.next_value_seed(seed)?;
            fields.push((key, value));
        }
        Ok(Val::Obj(fields))
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn want(paths: &[&str]) -> Want {
        let mut w = Want::default();
        for p in paths {
            w.add(&SourcePath::parse(p).unwrap().steps, true);
        }
        w
    }

    #[test]
    fn keeps_only_the_named_fields_and_borrows_their_text() {
        let input = br#"{"a": {"b": "x", "c": [1, 2]}, "d": [{"e": "y", "f": 1}], "g": "z"}"#;
        let w = want(&["a.b", "d[0].e"]);
        let v = read_json(input, Some(&w), 1 << 20).unwrap();
        assert_eq!(v.to_value(), json!({"a": {"b": "x"}, "d": [{"e": "y"}]}));
        let Val::Obj(fields) = &v else { panic!() };
        let Val::Obj(a) = &fields[0].1 else { panic!() };
        assert!(matches!(&a[0].1, Val::Str(Cow::Borrowed("x"))));
    }

    #[test]
    fn a_path_that_ends_keeps_all_below_it() {
        let w = want(&["a", "a.b"]);
        let v = read_json(br#"{"a": {"b": 1, "c": {"d": 2}}}"#, Some(&w), 1 << 20).unwrap();
        assert_eq!(v.to_value(), json!({"a": {"b": 1, "c": {"d": 2}}}));
    }

    #[test]
    fn errors_are_serde_json_s() {
        let e = read_json(b"{\"a\": }", None, 1 << 20).unwrap_err();
        let f: serde_json::Error =
            serde_json::from_slice::<serde_json::Value>(b"{\"a\": }").unwrap_err();
        assert_eq!(e.to_string(), format!("line 1, column 7: {f}"));
        assert!(read_json(b"{} x", None, 1 << 20).is_err());
        assert!(matches!(
            read_json(b"[1]", None, 2),
            Err(DecodeError::TooLarge { .. })
        ));
    }
}
