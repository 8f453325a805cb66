//! The JSON Schema of one event of a route: what each of its targets' mappings reads,
//! merged, with the ordering key. The route's API document publishes it, and the door
//! holds a JSON event to it (so the document and the door cannot disagree).
//!
//! The surgery: the ordering key made required, a target's requirements dropped when it
//! takes only some events, and two targets' schemas merged.

use super::Route;
use crate::mappings::MappingSet;
use serde_json::{Value, json};

/// The JSON Schema of one event of `route`.
pub fn event_schema(mappings: &MappingSet, route: &Route) -> Value {
    let mut event = json!({"type": "object"});
    for target in &route.targets {
        if let Some(m) = mappings.for_delivery(&route.unit, &route.flow, target) {
            let mut schema = m.input_schema();
            // A target that takes only some events (`deliver_when`) requires nothing of
            // the others: its fields are described, not required.
            if route.deliver_when.contains_key(target) {
                strip_required(&mut schema);
            }
            merge(&mut event, schema);
        }
    }
    if let Some(pointer) = &route.key_pointer {
        require_key(&mut event, pointer, route.ordered);
    }
    event
}

/// The ordering key at `pointer` required (when the route orders by it) and a non-blank
/// string of at most 256 characters.
fn require_key(event: &mut Value, pointer: &str, required: bool) {
    let segments: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let mut node = event;
    for (i, seg) in segments.iter().enumerate() {
        let obj = node.as_object_mut().expect("object schema");
        obj.insert("type".into(), json!("object"));
        if required {
            let req = obj.entry("required").or_insert_with(|| json!([]));
            let list = req.as_array_mut().expect("required list");
            if !list.iter().any(|v| v == seg.as_str()) {
                list.push(json!(seg));
                list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
        let props = obj
            .entry("properties")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("properties");
        node = props.entry(seg.clone()).or_insert_with(|| json!({}));
        if i + 1 == segments.len() {
            let leaf = node.as_object_mut().expect("leaf schema");
            leaf.insert("type".into(), json!("string"));
            leaf.insert("minLength".into(), json!(1));
            leaf.insert("maxLength".into(), json!(256));
            leaf.entry("pattern")
                .or_insert_with(|| json!("[0-9A-Za-z]"));
            let d = leaf
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            leaf.insert(
                "description".into(),
                json!(format!("The ordering key. {d}").trim().to_string()),
            );
        }
    }
}

fn strip_required(schema: &mut Value) {
    if let Some(o) = schema.as_object_mut() {
        o.remove("required");
        o.remove("anyOf");
        o.remove("allOf");
        for key in ["properties"] {
            if let Some(Value::Object(props)) = o.get_mut(key) {
                props.values_mut().for_each(strip_required);
            }
        }
        if let Some(items) = o.get_mut("items") {
            strip_required(items);
        }
    }
}

/// Merge schema `b` into `a`: properties recursively, required lists joined, the first
/// leaf's constraints kept where both constrain, alternatives (`anyOf`) all kept.
fn merge(a: &mut Value, b: Value) {
    // Two mappings constraining one value differently: it must meet both (the door
    // holds an event to this schema, and each mapping then reads it).
    if a != &b && constrains(a) && constrains(&b) {
        let description = a.get("description").cloned();
        let both = json!({"allOf": [without_description(a.take()), without_description(b)]});
        *a = both;
        if let Some(d) = description {
            a["description"] = d;
        }
        return;
    }
    let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) else {
        return;
    };
    for (k, v) in b {
        if a.get(&k) == Some(&v) {
            continue; // the same mapping on two targets (portal and ministry)
        }
        match k.as_str() {
            "properties" => {
                let props = a
                    .entry("properties")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .expect("properties");
                if let Value::Object(vp) = v {
                    for (name, schema) in vp {
                        match props.get_mut(&name) {
                            Some(existing) => merge(existing, schema),
                            None => {
                                props.insert(name, schema);
                            }
                        }
                    }
                }
            }
            "required" => {
                let req = a.entry("required").or_insert_with(|| json!([]));
                let list = req.as_array_mut().expect("required");
                for r in v.as_array().into_iter().flatten() {
                    if !list.contains(r) {
                        list.push(r.clone());
                    }
                }
                list.sort_by(|x, y| x.as_str().cmp(&y.as_str()));
            }
            "anyOf" | "allOf" if !a.contains_key("anyOf") && !a.contains_key("allOf") => {
                a.insert(k, v);
            }
            "anyOf" | "allOf" => {
                let groups = match (k.as_str(), v) {
                    ("anyOf", v) => vec![json!({"anyOf": v})],
                    (_, Value::Array(g)) => g,
                    _ => Vec::new(),
                };
                let mut all: Vec<Value> = match (a.remove("anyOf"), a.remove("allOf")) {
                    (Some(any), _) => vec![json!({"anyOf": any})],
                    (None, Some(Value::Array(g))) => g,
                    _ => Vec::new(),
                };
                for g in groups {
                    if !all.contains(&g) {
                        all.push(g);
                    }
                }
                a.insert("allOf".into(), Value::Array(all));
            }
            "items" => match a.get_mut("items") {
                Some(existing) => merge(existing, v),
                None => {
                    a.insert(k, v);
                }
            },
            "description" => {
                a.entry(k).or_insert(v);
            }
            _ => {
                // A leaf already constrained by another mapping keeps its constraints.
                let constrained = ["enum", "pattern"].iter().any(|c| a.contains_key(*c));
                if !constrained || k == "type" && !a.contains_key("type") {
                    a.entry(k).or_insert(v);
                }
            }
        }
    }
}

/// A leaf (not an object or a list) that constrains its value.
fn constrains(v: &Value) -> bool {
    let Some(o) = v.as_object() else { return false };
    let container = ["properties", "items", "required"]
        .iter()
        .any(|k| o.contains_key(*k))
        || matches!(o.get("type"), Some(t) if t == "object" || t == "array");
    !container
        && [
            "enum",
            "pattern",
            "anyOf",
            "allOf",
            "maxLength",
            "minLength",
            "minimum",
            "maximum",
        ]
        .iter()
        .any(|k| o.contains_key(*k))
}

fn without_description(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("description");
    }
    v
}
