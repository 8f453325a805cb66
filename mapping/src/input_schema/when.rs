//! Fields a mapping needs only when a condition holds (`when = { path, equals | in }`), as
//! JSON Schema's `if`/`then`: "when the unit asks for Zalo, the certificate number must be
//! there". Without it the published schema would either demand the field of every event
//! (refusing events the mapping delivers) or of none (promising events the mapping
//! refuses).

use super::Node;
use crate::engine::{Condition, Test};
use crate::path::Step;
use serde_json::{Value, json};

/// One conditional requirement at a node: when the value at `path` matches `test`, each
/// of `required` must be there and not blank.
pub(super) struct Conditional {
    pub path: Vec<Step>,
    pub test: Value,
    pub required: Vec<Vec<Step>>,
}

/// The schema a value must match for `cond` to hold, when JSON Schema can say it: equal
/// to a value, or one of several (ignoring case where the condition does). `None` for the
/// other tests, which state no requirement.
pub(super) fn test_of(cond: &Condition) -> Option<(Vec<Step>, Value)> {
    let (path, values) = match &cond.test {
        Test::Equals(p, v) => (p, vec![v.clone()]),
        Test::In(p, vs) => (p, vs.clone()),
        _ => return None,
    };
    if path.from_root
        || path.steps.is_empty()
        || path.steps.iter().any(|s| matches!(s, Step::Index(_)))
    {
        return None;
    }
    let mut alternatives: Vec<Value> = Vec::new();
    for v in &values {
        match v {
            Value::String(s) if cond.ignore_case => {
                alternatives.push(json!({"type": "string", "pattern": caseless(s)}));
            }
            Value::String(s) => {
                alternatives.push(json!({"const": s}));
                // `1` equals "1" (XML and CSV give every value as text).
                if let Ok(n) = s.parse::<i64>()
                    && n.to_string() == *s
                {
                    alternatives.push(json!({"const": n}));
                }
            }
            other => {
                alternatives.push(json!({"const": other}));
                alternatives.push(json!({"const": other.to_string()}));
            }
        }
    }
    let test = match <[Value; 1]>::try_from(alternatives) {
        Ok([one]) => one,
        Err(many) => json!({"anyOf": many}),
    };
    Some((path.steps.clone(), test))
}

/// `^[zZ][aA][lL][oO]$`: the text in any case (ECMA-262 patterns have no inline flags).
fn caseless(s: &str) -> String {
    let mut out = String::from("^");
    for c in s.chars() {
        let (lo, up) = (c.to_lowercase().to_string(), c.to_uppercase().to_string());
        if lo != up && lo.chars().count() == 1 && up.chars().count() == 1 {
            out.push_str(&format!("[{lo}{up}]"));
        } else if c.is_ascii_alphanumeric() || !c.is_ascii() {
            out.push(c);
        } else {
            out.push('\\');
            out.push(c);
        }
    }
    out.push('$');
    out
}

impl Conditional {
    /// `{"if": …, "then": …}`.
    pub(super) fn into_json(self) -> Value {
        let mut cond = Node::default();
        cond.require(&self.path);
        let mut if_ = super::strip_to_required(cond.into_json());
        set_leaf(&mut if_, &self.path, self.test);
        let mut then = Node::default();
        for path in &self.required {
            then.require(path);
        }
        let mut then = super::strip_to_required(then.into_json());
        for path in &self.required {
            set_leaf(&mut then, path, json!({"pattern": super::NOT_BLANK}));
        }
        json!({"if": if_, "then": then})
    }
}

/// Put `leaf` at `path` of a schema of nested `properties`.
fn set_leaf(schema: &mut Value, path: &[Step], leaf: Value) {
    let mut node = schema;
    for step in path {
        let Step::Key(k) = step else { return };
        node = &mut node["properties"][k.as_str()];
    }
    *node = leaf;
}
