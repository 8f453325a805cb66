//! Paths into a record and into the output: `dossier.applicant.name`, `files[0].id`,
//! `HoSo.@loai` (an XML attribute), `$root.MaHoSo` (the whole record, from inside an
//! `each` sub-mapping), `$` (the current element itself).

use serde_json::{Map, Value};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// A compiled path that selects from a record.
#[derive(Clone, Debug)]
pub struct SourcePath {
    pub text: String,
    pub from_root: bool,
    pub steps: Vec<Step>,
}

fn parse_steps(text: &str, allow_empty: bool) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    if text.is_empty() {
        return if allow_empty {
            Ok(steps)
        } else {
            Err("empty path".into())
        };
    }
    for seg in text.split('.') {
        let (name, mut rest) = match seg.find('[') {
            Some(i) => (&seg[..i], &seg[i..]),
            None => (seg, ""),
        };
        if name.is_empty() && (rest.is_empty() || steps.is_empty() && !allow_empty) {
            return Err(format!("empty segment in path `{text}`"));
        }
        if !name.is_empty() {
            // Spaces may be inside a name (CSV headers such as `Họ và tên`), not around it.
            if name.contains([']', '{', '}']) || name.trim() != name {
                return Err(format!("`{name}` in path `{text}` is not a field name"));
            }
            steps.push(Step::Key(name.to_string()));
        }
        while !rest.is_empty() {
            let close = rest
                .find(']')
                .ok_or_else(|| format!("unclosed `[` in path `{text}`"))?;
            let idx: usize = rest[1..close].parse().map_err(|_| {
                format!(
                    "`{}` in path `{text}` is not an index (use [0], [1], ...)",
                    &rest[..=close]
                )
            })?;
            steps.push(Step::Index(idx));
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(format!("unexpected `{rest}` in path `{text}`"));
            }
        }
    }
    Ok(steps)
}

impl SourcePath {
    pub fn parse(text: &str) -> Result<SourcePath, String> {
        let t = text.trim();
        if t == "$" {
            return Ok(SourcePath {
                text: t.into(),
                from_root: false,
                steps: Vec::new(),
            });
        }
        if t == "$root" {
            return Ok(SourcePath {
                text: t.into(),
                from_root: true,
                steps: Vec::new(),
            });
        }
        let (from_root, rest) = match t.strip_prefix("$root.") {
            Some(r) => (true, r),
            None => (false, t),
        };
        if rest.starts_with('$') {
            return Err(format!(
                "`{t}`: paths start with a field name, `$root.` or are `$`"
            ));
        }
        Ok(SourcePath {
            text: t.to_string(),
            from_root,
            steps: parse_steps(rest, false)?,
        })
    }

    /// The value at this path, if there is one. An index into something that is not an
    /// array treats it as a one-element list: a repeated XML element that occurs once
    /// decodes as an object, and `Tep[0]` should still find it. `#text` of text is the
    /// text: an element written without its attributes decodes as its text alone.
    pub fn select<'a>(&self, current: &'a Value, root: &'a Value) -> Option<&'a Value> {
        let mut v = if self.from_root { root } else { current };
        for step in &self.steps {
            v = match (step, v) {
                (Step::Key(k), Value::Object(m)) => m.get(k)?,
                // An XML element with only text is that text: `Ten.#text` finds it.
                (Step::Key(k), Value::String(_)) if k == TEXT_KEY => v,
                (Step::Index(i), Value::Array(a)) => a.get(*i)?,
                (Step::Index(0), other) if !other.is_null() => other,
                _ => return None,
            };
        }
        Some(v)
    }
}

/// The key of an XML element's own text beside its attributes or children.
pub const TEXT_KEY: &str = "#text";

/// A compiled output path.
#[derive(Clone, Debug)]
pub struct OutputPath {
    pub text: String,
    pub steps: Vec<Step>,
}

impl OutputPath {
    pub fn parse(text: &str) -> Result<OutputPath, String> {
        let t = text.trim();
        if t.starts_with('$') {
            return Err(format!("output path `{t}` cannot start with `$`"));
        }
        let steps = parse_steps(t, false)?;
        if !matches!(steps.first(), Some(Step::Key(_))) {
            return Err(format!("output path `{t}` must start with a field name"));
        }
        Ok(OutputPath {
            text: t.to_string(),
            steps,
        })
    }

    /// Put `value` at this path in `out`, creating objects and arrays on the way.
    /// Fails when an earlier rule put something else where a container is needed.
    pub fn set(&self, out: &mut Map<String, Value>, value: Value) -> Result<(), String> {
        let (first, rest) = self.steps.split_first().expect("parse checks non-empty");
        let Step::Key(k) = first else { unreachable!() };
        if rest.is_empty() {
            out.insert(k.clone(), value);
            return Ok(());
        }
        let next_is_index = matches!(rest[0], Step::Index(_));
        let mut cur = out
            .entry(k.clone())
            .or_insert_with(|| empty_container(next_is_index));
        for (i, step) in rest.iter().enumerate() {
            let last = i + 1 == rest.len();
            let next_is_index = !last && matches!(rest[i + 1], Step::Index(_));
            cur = match (step, cur) {
                (Step::Key(k), Value::Object(m)) => {
                    if last {
                        m.insert(k.clone(), value);
                        return Ok(());
                    }
                    m.entry(k.clone())
                        .or_insert_with(|| empty_container(next_is_index))
                }
                (Step::Index(idx), Value::Array(a)) => {
                    while a.len() <= *idx {
                        a.push(Value::Null);
                    }
                    if last {
                        a[*idx] = value;
                        return Ok(());
                    }
                    let slot = &mut a[*idx];
                    if slot.is_null() {
                        *slot = empty_container(next_is_index);
                    }
                    slot
                }
                _ => {
                    return Err(format!(
                        "`{}` conflicts with a value another rule already wrote",
                        self.text
                    ));
                }
            };
        }
        Ok(())
    }
}

fn empty_container(array: bool) -> Value {
    if array {
        Value::Array(Vec::new())
    } else {
        Value::Object(Map::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn select_keys_indexes_attributes_and_root() {
        let rec = json!({"a": {"b": [{"c": 1}, {"c": 2}], "@id": "x"}, "one": {"c": 3}});
        let sel = |p: &str| SourcePath::parse(p).unwrap().select(&rec, &rec).cloned();
        assert_eq!(sel("a.b[1].c"), Some(json!(2)));
        assert_eq!(sel("a.@id"), Some(json!("x")));
        assert_eq!(sel("one[0].c"), Some(json!(3)));
        assert_eq!(sel("a.b.c"), None);
        assert_eq!(sel("$root.a.@id"), Some(json!("x")));
        assert!(SourcePath::parse("a..b").is_err());
        assert!(SourcePath::parse("a[x]").is_err());
        assert!(SourcePath::parse("a[0").is_err());
        assert!(SourcePath::parse("a. b").is_err());
        let rec = json!({"Họ và tên": "An"});
        let p = SourcePath::parse("Họ và tên").unwrap();
        assert_eq!(p.select(&rec, &rec), Some(&json!("An")));
    }

    #[test]
    fn set_builds_nested_objects_and_arrays() {
        let mut out = Map::new();
        OutputPath::parse("data[0].MaHoSo")
            .unwrap()
            .set(&mut out, json!("H1"))
            .unwrap();
        OutputPath::parse("data[0].TrangThai")
            .unwrap()
            .set(&mut out, json!(2))
            .unwrap();
        OutputPath::parse("service")
            .unwrap()
            .set(&mut out, json!("X"))
            .unwrap();
        assert_eq!(
            Value::Object(out.clone()),
            json!({"data": [{"MaHoSo": "H1", "TrangThai": 2}], "service": "X"})
        );
        let e = OutputPath::parse("service.x")
            .unwrap()
            .set(&mut out, json!(1))
            .unwrap_err();
        assert!(e.contains("conflicts"), "{e}");
    }
}
