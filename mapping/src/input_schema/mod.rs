//! What a mapping reads and writes, as JSON Schema (draft 2020-12, the dialect of OpenAPI
//! 3.1), for the contract a unit IT team integrates against.
//!
//! The schema is derived, not written: every source path a rule names becomes a property
//! (nested objects and arrays follow the path), described with the output field it feeds.
//! What the mapping insists on becomes a constraint:
//!
//! * a `required` rule (or one whose output field the target's schema requires) without a
//!   `when` makes its path required; a list of paths, or `when = { missing = … }`, makes
//!   "one of them" (`anyOf`);
//! * a code table without a default gives an `enum` of its codes;
//! * a date gives a `pattern` of every source format it is read in, which only real
//!   dates match ([`dates`]);
//! * a `type` gives the JSON type; text transforms give `string`;
//! * where the value reaches the output unchanged but for trimming, normalising or
//!   keeping digits, the target schema's format, length and enumeration are carried back
//!   to the input, in every spelling those operations take ([`spellings`]).
//!
//! The derived schema is a description a client is generated from, a promise (data it
//! accepts passes the mapping's own checks) and the door's rule for JSON ([`crate::door`]).

use crate::engine::{Op, Rule, Source, Test, ValueType};
use crate::path::{SourcePath, Step};
use crate::schema::{Kind, Schema};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

mod dates;
mod spellings;
mod when;

/// One node of the schema being built: an object's properties, an array's items, the
/// constraints of a leaf.
#[derive(Default)]
struct Node {
    properties: BTreeMap<String, Node>,
    required: BTreeSet<String>,
    items: Option<Box<Node>>,
    /// Groups of alternatives: in each group, one of the paths (from this node) must be
    /// present.
    any_of: Vec<Vec<Vec<Step>>>,
    /// Fields required only when a condition holds ([`when`]).
    conditionals: Vec<when::Conditional>,
    leaf: Map<String, Value>,
    feeds: BTreeSet<String>,
}

impl Node {
    fn at(&mut self, steps: &[Step]) -> &mut Node {
        let mut node = self;
        for step in steps {
            node = match step {
                Step::Key(k) => node.properties.entry(k.clone()).or_default(),
                Step::Index(_) => node.items.get_or_insert_with(Default::default),
            };
        }
        node
    }

    /// Mark every key along `steps` required in its parent (down to the first array).
    fn require(&mut self, steps: &[Step]) {
        let mut node = self;
        for step in steps {
            match step {
                Step::Key(k) => {
                    node.required.insert(k.clone());
                    node = node.properties.entry(k.clone()).or_default();
                }
                // An element of an array is not required to exist by one rule.
                Step::Index(_) => return,
            }
        }
    }

    /// The paths (from this node) whose presence an `anyOf` group or a condition reads,
    /// with `inherited`, those of the nodes above that run through this one.
    fn presence_bound(&self, inherited: Vec<Vec<Step>>) -> Vec<Vec<Step>> {
        let groups = self.any_of.iter().flatten().cloned();
        let conditions = self
            .conditionals
            .iter()
            .flat_map(|c| c.required.iter().chain([&c.path]).cloned());
        inherited
            .into_iter()
            .chain(groups)
            .chain(conditions)
            .collect()
    }

    fn into_json(self) -> Value {
        self.into_json_bound(Vec::new())
    }

    fn into_json_bound(self, inherited: Vec<Vec<Step>>) -> Value {
        let mut out = Map::new();
        if !self.properties.is_empty()
            || !self.required.is_empty()
            || !self.any_of.is_empty()
            || !self.conditionals.is_empty()
        {
            out.insert("type".into(), json!("object"));
            if !self.properties.is_empty() {
                // An optional object may be null (a platform's "no result"), unless its
                // presence is asked for by an alternative or a condition.
                let bound = self.presence_bound(inherited);
                let required = &self.required;
                let properties = self.properties.into_iter().map(|(k, n)| {
                    let below: Vec<Vec<Step>> = bound
                        .iter()
                        .filter(|p| p.first() == Some(&Step::Key(k.clone())))
                        .map(|p| p[1..].to_vec())
                        .collect();
                    let asked = !below.is_empty();
                    let mut v = n.into_json_bound(below);
                    if !required.contains(&k) && !asked && v["type"] == "object" {
                        v["type"] = json!(["object", "null"]);
                    }
                    (k, v)
                });
                out.insert("properties".into(), Value::Object(properties.collect()));
            }
            if !self.required.is_empty() {
                out.insert("required".into(), json!(self.required));
            }
            let groups: Vec<Value> = self
                .any_of
                .into_iter()
                .map(|alternatives| {
                    let alternatives: Vec<Value> =
                        alternatives.iter().map(|path| given(path)).collect();
                    json!({ "anyOf": alternatives })
                })
                .collect();
            let mut groups = groups;
            let conditionals: Vec<Value> = self
                .conditionals
                .into_iter()
                .map(when::Conditional::into_json)
                .collect();
            let single = groups.len() == 1 && conditionals.is_empty();
            groups.extend(conditionals);
            match <[Value; 1]>::try_from(groups) {
                Ok([one]) if single => {
                    out.insert("anyOf".into(), one["anyOf"].clone());
                }
                Ok([one]) => {
                    out.insert("allOf".into(), json!([one]));
                }
                Err(groups) if !groups.is_empty() => {
                    out.insert("allOf".into(), Value::Array(groups));
                }
                Err(_) => {}
            }
        } else if let Some(items) = self.items {
            out.insert("type".into(), json!("array"));
            out.insert("items".into(), items.into_json());
        } else {
            out.extend(self.leaf);
        }
        if !self.feeds.is_empty() {
            let feeds: Vec<&str> = self.feeds.iter().map(String::as_str).collect();
            let feeds = format!("→ {}", feeds.join(", "));
            let text = match out.get("description").and_then(Value::as_str) {
                Some(own) => format!("{own} ({feeds})"),
                None => feeds,
            };
            out.insert("description".into(), json!(text));
        }
        Value::Object(out)
    }
}

/// A condition's schema states presence only: its `type` and descriptions are noise.
fn strip_to_required(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("description");
        o.remove("type");
        if let Some(Value::Object(props)) = o.get_mut("properties") {
            for p in props.values_mut() {
                *p = strip_to_required(p.take());
            }
        }
    }
    v
}

/// An `anyOf` alternative: the value at `path` is given, as the mapping reads it (not
/// empty text; the property's own type refuses null). Down to the first list, whose elements one rule does not ask.
fn given(path: &[Step]) -> Value {
    match path.split_first() {
        Some((Step::Key(k), rest)) => {
            let inner = if rest.first().is_some_and(|s| matches!(s, Step::Key(_))) {
                given(rest)
            } else {
                json!({"minLength": 1})
            };
            json!({"required": [k], "properties": {k.clone(): inner}})
        }
        _ => json!({}),
    }
}

/// The schema of what `rules` read, with constraints carried back from `schema`.
pub(crate) fn input_schema(rules: &[Rule], schema: Option<&Schema>) -> Value {
    let mut root = Node::default();
    read_rules(rules, schema, &mut root, None, "");
    let mut v = root.into_json();
    if let Some(o) = v.as_object_mut() {
        o.insert("type".into(), json!("object"));
    }
    v
}

/// Where the rules of an `each` sub-mapping read: the array element (`current`), or the
/// record (`$root.`).
fn read_rules(
    rules: &[Rule],
    schema: Option<&Schema>,
    root: &mut Node,
    each: Option<&[Step]>,
    out_prefix: &str,
) {
    for rule in rules {
        let to = rule.to.text.as_str();
        // The target schema's rule for this field, by its whole output path.
        let full_to = format!("{out_prefix}{to}");
        let output = schema.and_then(|s| s.field_rule(&full_to));
        let schema_requires = output.is_some_and(|f| f.required) && rule.default.is_none();
        let must = (rule.required || schema_requires) && rule.default.is_none();
        let steps_of = |p: &SourcePath| -> Vec<Step> {
            match (p.from_root, each) {
                (false, Some(prefix)) => {
                    let mut s = prefix.to_vec();
                    s.extend(p.steps.iter().cloned());
                    s
                }
                _ => p.steps.clone(),
            }
        };
        if let Some(cond) = &rule.when {
            let p = cond.test.path();
            if !p.steps.is_empty() {
                root.at(&steps_of(p))
                    .feeds
                    .insert(format!("(condition of {to})"));
            }
        }
        match &rule.source {
            Source::Paths(paths) => {
                for p in paths {
                    if p.steps.is_empty() {
                        continue;
                    }
                    let steps = steps_of(p);
                    let node = root.at(&steps);
                    node.feeds.insert(to.to_string());
                    constrain(node, &rule.ops, output, must);
                }
                // Required paths inside array elements are not stated: an element's
                // shape is described, its presence is the unit's.
                let in_array = |s: &Vec<Step>| s.iter().any(|x| matches!(x, Step::Index(_)));
                let alternatives: Vec<Vec<Step>> = paths
                    .iter()
                    .filter(|p| !p.steps.is_empty())
                    .map(steps_of)
                    .filter(|s| !in_array(s))
                    .collect();
                // Inside an `each`, a required field is required of every element.
                if let (true, Some(prefix), [p]) =
                    (must && rule.when.is_none(), each, paths.as_slice())
                    && !p.from_root
                    && !p.steps.is_empty()
                    && !p.steps.iter().any(|x| matches!(x, Step::Index(_)))
                {
                    root.at(prefix).require(&p.steps);
                }
                if !must || alternatives.len() != paths.len() || each.is_some() {
                    continue;
                }
                match (&rule.when, alternatives.as_slice()) {
                    (None, [one]) => root.require(one),
                    (None, _) => root.any_of.push(alternatives),
                    (Some(cond), [one]) => {
                        if let Test::Missing(other) = &cond.test
                            && !other.steps.is_empty()
                        {
                            root.any_of.push(vec![steps_of(other), one.clone()]);
                        } else if let Some((path, test)) = when::test_of(cond) {
                            root.conditionals.push(when::Conditional {
                                path,
                                test,
                                required: vec![one.clone()],
                            });
                        }
                    }
                    _ => {}
                }
            }
            Source::Template(parts) | Source::Fail(parts) => {
                let template = matches!(rule.source, Source::Template(_));
                for part in parts {
                    if let crate::engine::TemplatePart::Field(p) = part
                        && !p.steps.is_empty()
                    {
                        let steps = steps_of(p);
                        let node = root.at(&steps);
                        node.feeds.insert(to.to_string());
                        // A template the output needs needs each of its fields.
                        if template && must && rule.when.is_none() && each.is_none() {
                            constrain(node, &[Op::Trim], None, true);
                            if !steps.iter().any(|x| matches!(x, Step::Index(_))) {
                                root.require(&steps);
                            }
                        } else if template
                            && must
                            && each.is_none()
                            && let Some(cond) = &rule.when
                            && let Some((path, test)) = when::test_of(cond)
                            && !steps.iter().any(|x| matches!(x, Step::Index(_)))
                        {
                            constrain(node, &[], None, false);
                            root.conditionals.push(when::Conditional {
                                path,
                                test,
                                required: vec![steps.clone()],
                            });
                        } else if template && node.properties.is_empty() && node.items.is_none() {
                            // A template inserts text (a number or boolean written out),
                            // never a list or an object.
                            constrain(node, &[], None, false);
                        }
                    }
                }
            }
            Source::Each { path, rules } => {
                let mut steps = steps_of(path);
                // A list the output needs must be there.
                if must
                    && rule.when.is_none()
                    && each.is_none()
                    && !steps.is_empty()
                    && !steps.iter().any(|x| matches!(x, Step::Index(_)))
                {
                    root.require(&steps);
                }
                steps.push(Step::Index(0));
                let node = root.at(&steps);
                node.feeds.insert(format!("{to}[] (each)"));
                read_rules(rules, schema, root, Some(&steps), &format!("{full_to}[0]."));
            }
            Source::Const(_) => {}
        }
    }
}

/// A leaf's constraints from the rule's operations and, where the value reaches the output
/// unchanged in substance, from the output field's rule.
fn constrain(node: &mut Node, ops: &[Op], output: Option<&crate::schema::FieldRule>, must: bool) {
    let preserving = |op: &Op| {
        matches!(
            op,
            Op::Trim | Op::Nfc | Op::CollapseSpaces | Op::Digits | Op::StripSpaces | Op::PhoneVn
        )
    };
    // Changing the case before a code table: the codes in either case are the table's.
    let cased = |op: &Op| matches!(op, Op::Upper | Op::Lower);
    let first = ops.iter().find(|op| !preserving(op) && !cased(op));
    let table_after_case = matches!(first, Some(Op::Table(t)) if t.default.is_none());
    let first = if table_after_case {
        first
    } else {
        // A case change keeps a format the output checks (an e-mail in small letters):
        // the output's pattern is carried back as for the preserving operations.
        ops.iter().find(|op| !preserving(op) && !cased(op))
    };
    // An earlier rule reading the same path already said what it is; a bare type gives
    // way to a code list (the same value feeds a field as it is and through a table).
    let only_not_blank = node.leaf.get("pattern") == Some(&json!(NOT_BLANK));
    let said = ["enum", "anyOf"].iter().any(|k| node.leaf.contains_key(*k))
        || node.leaf.contains_key("pattern") && !only_not_blank;
    // A number read as its text: where an operation makes text of it, or no output
    // field asks for text (a number kept a number there would be refused).
    let number_ok = output.is_none_or(|o| o.kind != Some(Kind::String))
        || ops
            .iter()
            .any(|op| matches!(op, Op::Type(ValueType::String) | Op::Digits | Op::PhoneVn));
    // A bare type from an earlier rule (a template, a copy) still takes what this
    // rule's output field asks of the value (its length, form, codes): every use of a
    // value must hold, not only the first one read.
    let carries = first.is_none()
        && output.is_some_and(|o| {
            o.max_len.is_some()
                || o.min_len.is_some()
                || !o.formats.is_empty()
                || o.one_of.is_some()
        });
    if said || node.leaf.contains_key("type") && !table_after_case && !carries {
        if !number_ok && node.leaf.get("type") == Some(&json!(["string", "number"])) {
            node.leaf.insert("type".into(), json!("string"));
        }
        if must {
            not_blank(&mut node.leaf);
        }
        return;
    }
    let earlier_max = node.leaf.get("maxLength").and_then(Value::as_u64);
    node.leaf.remove("type");
    node.leaf.remove("pattern");
    let leaf = &mut node.leaf;
    match first {
        Some(Op::Table(t)) if t.default.is_none() => {
            // Codes are looked up as text, so `true` and `1` find the codes "true" and "1":
            // both spellings are listed, each with its type. The codes as the table writes
            // them (a table that ignores case takes others too; a generated client's enum
            // must not have one code twice).
            let codes: Vec<&String> = t.values.keys().collect();
            let bools: Vec<Value> = codes
                .iter()
                .filter_map(|k| k.parse::<bool>().ok())
                .map(Value::from)
                .collect();
            let ints: Vec<Value> = codes
                .iter()
                .filter_map(|k| k.parse::<i64>().ok().filter(|n| n.to_string() == **k))
                .map(Value::from)
                .collect();
            let text = json!({"type": "string", "enum": codes});
            // A table that ignores case (or a case change before it) takes every code in
            // any case: the codes as written stay the enumeration a client is generated
            // with, and a caseless pattern says what else the door lets in.
            let case_first = ops
                .iter()
                .take_while(|op| !matches!(op, Op::Table(_)))
                .any(cased);
            let any_case = (case_first || t.ignore_case)
                && codes.iter().any(|c| c.chars().any(char::is_alphabetic));
            if bools.is_empty() && ints.is_empty() && !any_case {
                leaf.extend(text.as_object().expect("object").clone());
            } else {
                let mut alternatives = vec![text];
                if any_case {
                    let spelled: Vec<String> =
                        codes.iter().map(|c| spellings::caseless(c)).collect();
                    alternatives.push(json!({"type": "string",
                        "pattern": format!("^(?:{})$", spelled.join("|"))}));
                }
                if !bools.is_empty() {
                    alternatives.push(json!({"type": "boolean", "enum": bools}));
                }
                if !ints.is_empty() {
                    alternatives.push(json!({"type": "integer", "enum": ints}));
                }
                leaf.insert("anyOf".into(), Value::Array(alternatives));
            }
        }
        Some(Op::Table(t)) => {
            leaf.insert(
                "description".into(),
                json!(format!(
                    "one of {} (others take the default)",
                    t.values.keys().cloned().collect::<Vec<_>>().join(", ")
                )),
            );
        }
        Some(Op::Date { from, .. }) => dates::date(leaf, from),
        Some(Op::Type(ValueType::Integer)) => {
            // What the mapping takes as a whole number, written as a decimal too (`5.0`),
            // or as text (`"500000"`; `150.000` where `digits` runs first).
            let digits_first = ops
                .iter()
                .take_while(|op| !matches!(op, Op::Type(_)))
                .any(|op| matches!(op, Op::Digits));
            let mut text = spellings::integer_text(digits_first);
            if !must {
                text = format!("^$|{text}");
            }
            leaf.insert(
                "anyOf".into(),
                json!([
                    {"type": "integer", "minimum": -8_999_999_999_999_999i64, "maximum": 8_999_999_999_999_999i64},
                    {"type": "string", "pattern": text},
                ]),
            );
        }
        Some(Op::Type(ValueType::Decimal)) => {
            leaf.insert("type".into(), json!("number"));
        }
        Some(Op::Type(ValueType::Boolean)) => {
            leaf.insert("type".into(), json!("boolean"));
        }
        Some(Op::Type(ValueType::String)) => {
            leaf.insert("type".into(), json!("string"));
        }
        Some(_) => {
            leaf.insert("type".into(), json!("string"));
        }
        None => {
            if let Some(out) = output {
                spellings::carry_back(leaf, out, spellings::Normalised::of(ops));
                // Two output fields' lengths: the shorter holds for both.
                if let (Some(was), Some(now)) =
                    (earlier_max, leaf.get("maxLength").and_then(Value::as_u64))
                {
                    leaf.insert("maxLength".into(), json!(was.min(now)));
                }
            }
        }
    }
    // What a mapping reads as text is text; a number would do too, a list or an object
    // would not.
    if !leaf.contains_key("anyOf") {
        leaf.entry("type").or_insert_with(|| json!("string"));
    }
    if must {
        not_blank(leaf);
    } else if let Some(Value::String(p)) = leaf.get_mut("pattern")
        && p.as_str() != NOT_BLANK
    {
        // Empty text is no value, as the mapping reads it: an optional field may be "".
        *p = format!("^$|{p}");
    }
    // Free text: a number is read as its text (`1700000` for an amount in a message).
    let free = ["pattern", "enum", "maxLength", "minLength", "anyOf"]
        .iter()
        .all(|k| !leaf.contains_key(*k) || (*k == "pattern" && leaf[*k] == json!(NOT_BLANK)));
    if free && number_ok && leaf.get("type") == Some(&json!("string")) {
        leaf.insert("type".into(), json!(["string", "number"]));
    }
}

/// Missing, null and blank text are all "no value": a required one needs a character.
fn not_blank(leaf: &mut Map<String, Value>) {
    let text =
        |t: &Value| t == "string" || t.as_array().is_some_and(|a| a.contains(&json!("string")));
    if leaf.get("type").is_some_and(text)
        && !leaf.contains_key("pattern")
        && !leaf.contains_key("enum")
    {
        leaf.insert("pattern".into(), json!(NOT_BLANK));
    }
}

/// The pattern of a required text: a letter or a digit somewhere (the door's check reads
/// it as "required, blank").
pub(crate) const NOT_BLANK: &str = "[0-9A-Za-z]";

/// The schema of what `rules` write: each output field, with the target schema's rules
/// where it has them (for describing a reply a unit receives).
pub(crate) fn output_schema(rules: &[Rule], schema: Option<&Schema>) -> Value {
    let mut root = Node::default();
    write_rules(rules, schema, &mut root, &[]);
    let mut v = root.into_json();
    if let Some(o) = v.as_object_mut() {
        o.insert("type".into(), json!("object"));
    }
    v
}

fn write_rules(rules: &[Rule], schema: Option<&Schema>, root: &mut Node, prefix: &[Step]) {
    for rule in rules {
        let mut steps = prefix.to_vec();
        steps.extend(rule.to.steps.iter().cloned());
        match &rule.source {
            Source::Each { rules, .. } => {
                steps.push(Step::Index(0));
                root.at(&steps);
                write_rules(rules, schema, root, &steps);
            }
            Source::Fail(_) => {}
            _ => {
                let node = root.at(&steps);
                if let Some(out) = schema.and_then(|s| s.field_rule(&rule.to.text)) {
                    let described: Vec<&str> = out.formats.iter().map(|f| f.describe()).collect();
                    if !described.is_empty() {
                        node.leaf
                            .insert("description".into(), json!(described.join(" or ")));
                    }
                }
            }
        }
    }
}
