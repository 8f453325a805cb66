//! The output of a compiled mapping: its shape is known before any record is seen (the
//! rules' `to` paths), so a mapped record is a row of slots, one per output field, and is
//! written straight from them — in `serde_json`'s key order, without building a map.
//!
//! A container (`data`, `data[0]`) exists in the output when a slot below it has a value,
//! as when the interpreter creates it on its first write; a list is as long as its highest
//! index with a value, the indexes below that holding `null`.

use super::value::Val;
use crate::error::MappingError;
use crate::path::{OutputPath, Step};
use crate::schema::{Checked, Scalar};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

/// The compiled layout of a mapping's output (or of one `each` element's).
#[derive(Debug)]
pub struct Shape {
    /// Node 0 is the record itself; children come after their parents.
    nodes: Vec<Node>,
    slots: usize,
}

#[derive(Debug)]
enum Node {
    /// Fields sorted by name (the order `serde_json` writes them in).
    Object(Vec<(String, usize)>),
    /// Elements sorted by index.
    List(Vec<(usize, usize)>),
    Slot(usize),
}

impl Default for Shape {
    fn default() -> Shape {
        Shape {
            nodes: vec![Node::Object(Vec::new())],
            slots: 0,
        }
    }
}

impl Shape {
    /// The slot that `to` writes, made if new. `None` when the path runs through a field
    /// another path writes as a whole (or the other way round): what is written there then
    /// depends on which rules have values, and only the interpreter follows that.
    pub fn slot(&mut self, to: &OutputPath) -> Option<usize> {
        let mut node = 0;
        for (i, step) in to.steps.iter().enumerate() {
            let last = i + 1 == to.steps.len();
            let next = self.nodes.len();
            let child = match (&mut self.nodes[node], step) {
                (Node::Object(fields), Step::Key(k)) => {
                    match fields.binary_search_by(|(name, _)| name.as_str().cmp(k)) {
                        Ok(at) => Some(fields[at].1),
                        Err(at) => {
                            fields.insert(at, (k.clone(), next));
                            None
                        }
                    }
                }
                (Node::List(items), Step::Index(idx)) => {
                    match items.binary_search_by_key(idx, |(i, _)| *i) {
                        Ok(at) => Some(items[at].1),
                        Err(at) => {
                            items.insert(at, (*idx, next));
                            None
                        }
                    }
                }
                _ => return None,
            };
            node = match child {
                Some(existing) => {
                    let is_slot = matches!(self.nodes[existing], Node::Slot(_));
                    if is_slot != last {
                        return None;
                    }
                    existing
                }
                None => {
                    let made = if last {
                        self.slots += 1;
                        Node::Slot(self.slots - 1)
                    } else if matches!(to.steps[i + 1], Step::Index(_)) {
                        Node::List(Vec::new())
                    } else {
                        Node::Object(Vec::new())
                    };
                    self.nodes.push(made);
                    next
                }
            };
        }
        match self.nodes[node] {
            Node::Slot(s) => Some(s),
            _ => None,
        }
    }

    pub fn slots(&self) -> usize {
        self.slots
    }
}

/// One mapped record (or `each` element): its shape and the value of every slot.
#[derive(Clone, Debug)]
pub struct Record<'a> {
    shape: &'a Shape,
    slots: Vec<Option<Val<'a>>>,
    /// Whether each node of the shape has a value below it.
    present: Vec<bool>,
}

impl<'a> Record<'a> {
    pub fn new(shape: &'a Shape) -> Record<'a> {
        Record {
            shape,
            slots: vec![None; shape.slots],
            present: Vec::new(),
        }
    }

    pub fn set(&mut self, slot: usize, value: Val<'a>) {
        self.slots[slot] = Some(value);
    }

    /// Work out which containers exist, once all rules have run.
    pub fn finish(&mut self) {
        let nodes = &self.shape.nodes;
        let mut present = vec![false; nodes.len()];
        // Children come after their parents: one pass from the end settles every node.
        for n in (0..nodes.len()).rev() {
            present[n] = match &nodes[n] {
                Node::Slot(s) => self.slots[*s].is_some(),
                Node::Object(fields) => fields.iter().any(|(_, c)| present[*c]),
                Node::List(items) => items.iter().any(|(_, c)| present[*c]),
            };
        }
        self.present = present;
    }

    pub fn root(&self) -> Out<'_, 'a> {
        Out::Node(self, 0)
    }

    pub fn to_value(&self) -> Value {
        self.root().to_value()
    }
}

/// A part of a mapped record: a container of its shape, or a value in a slot.
#[derive(Clone, Copy, Debug)]
pub enum Out<'r, 'a> {
    Node(&'r Record<'a>, usize),
    Val(&'r Val<'a>),
    Json(&'r Value),
}

impl<'r, 'a> Out<'r, 'a> {
    fn of_val(v: &'r Val<'a>) -> Out<'r, 'a> {
        match v {
            Val::Json(j) => Out::Json(j),
            Val::Record(r) => Out::Node(r, 0),
            v => Out::Val(v),
        }
    }

    /// The existing list elements (index, value; `None` for a gap that holds `null`).
    fn list_len(r: &Record<'_>, items: &[(usize, usize)]) -> usize {
        items
            .iter()
            .rev()
            .find(|(_, c)| r.present[*c])
            .map_or(0, |(i, _)| i + 1)
    }

    fn child(r: &'r Record<'a>, node: usize) -> Out<'r, 'a> {
        match &r.shape.nodes[node] {
            Node::Slot(s) => Out::of_val(r.slots[*s].as_ref().expect("present slot")),
            _ => Out::Node(r, node),
        }
    }

    pub fn to_value(self) -> Value {
        match self {
            Out::Val(v) => v.to_value(),
            Out::Json(v) => v.clone(),
            Out::Node(r, n) => match &r.shape.nodes[n] {
                Node::Slot(_) => Out::child(r, n).to_value(),
                Node::Object(fields) => {
                    let mut m = Map::new();
                    for (k, c) in fields {
                        if r.present[*c] {
                            m.insert(k.clone(), Out::child(r, *c).to_value());
                        }
                    }
                    Value::Object(m)
                }
                Node::List(items) => {
                    let mut list = vec![Value::Null; Out::list_len(r, items)];
                    for (i, c) in items {
                        if r.present[*c] {
                            list[*i] = Out::child(r, *c).to_value();
                        }
                    }
                    Value::Array(list)
                }
            },
        }
    }
}

impl Serialize for Out<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Out::Json(v) => v.serialize(s),
            Out::Val(v) => match v {
                Val::Null => s.serialize_unit(),
                Val::Bool(b) => s.serialize_bool(*b),
                Val::Num(n) => n.serialize(s),
                Val::Str(t) => s.serialize_str(t),
                Val::Arr(items) => {
                    let mut seq = s.serialize_seq(Some(items.len()))?;
                    for item in items {
                        seq.serialize_element(&Out::of_val(item))?;
                    }
                    seq.end()
                }
                // An object copied from the input: sorted and deduplicated as serde_json does.
                Val::Obj(_) => v.to_value().serialize(s),
                Val::Json(j) => j.serialize(s),
                Val::Record(r) => r.root().serialize(s),
            },
            Out::Node(r, n) => match &r.shape.nodes[n] {
                Node::Slot(_) => Out::child(r, n).serialize(s),
                Node::Object(fields) => {
                    let count = fields.iter().filter(|(_, c)| r.present[*c]).count();
                    let mut map = s.serialize_map(Some(count))?;
                    for (k, c) in fields {
                        if r.present[*c] {
                            map.serialize_entry(k, &Out::child(r, *c))?;
                        }
                    }
                    map.end()
                }
                Node::List(items) => {
                    let len = Out::list_len(r, items);
                    let mut seq = s.serialize_seq(Some(len))?;
                    let mut next = 0;
                    for (i, c) in items {
                        if *i >= len {
                            break;
                        }
                        while next < *i {
                            seq.serialize_element(&())?;
                            next += 1;
                        }
                        if r.present[*c] {
                            seq.serialize_element(&Out::child(r, *c))?;
                        } else {
                            seq.serialize_element(&())?;
                        }
                        next += 1;
                    }
                    seq.end()
                }
            },
        }
    }
}

/// `null` for the gaps of a list.
static NULL: Value = Value::Null;

impl<'r> Checked<'r> for Out<'r, '_> {
    fn field(self, key: &str) -> Option<Option<Self>> {
        let found = match self {
            Out::Json(v) => return v.field(key).map(|f| f.map(Out::Json)),
            Out::Val(Val::Obj(fields)) => fields
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| Out::of_val(v)),
            Out::Val(_) => return None,
            Out::Node(r, n) => match &r.shape.nodes[n] {
                Node::Object(fields) => fields
                    .iter()
                    .find(|(name, _)| name == key)
                    .map(|(_, c)| *c)
                    .filter(|c| r.present[*c])
                    .map(|c| Out::child(r, c)),
                _ => return None,
            },
        };
        Some(found.filter(|o| !o.is_null()))
    }

    fn each_element(
        self,
        f: &mut dyn FnMut(usize, Self) -> Result<(), MappingError>,
    ) -> Option<Result<(), MappingError>> {
        match self {
            Out::Json(v) => {
                let Value::Array(items) = v else { return None };
                Some(
                    items
                        .iter()
                        .enumerate()
                        .try_for_each(|(i, e)| f(i, Out::Json(e))),
                )
            }
            Out::Val(Val::Arr(items)) => Some(
                items
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, e)| f(i, Out::of_val(e))),
            ),
            Out::Val(_) => None,
            Out::Node(r, n) => {
                let Node::List(items) = &r.shape.nodes[n] else {
                    return None;
                };
                let len = Out::list_len(r, items);
                let mut next = 0;
                let mut run = || {
                    for (i, c) in items {
                        if *i >= len {
                            break;
                        }
                        while next < *i {
                            f(next, Out::Json(&NULL))?;
                            next += 1;
                        }
                        let e = if r.present[*c] {
                            Out::child(r, *c)
                        } else {
                            Out::Json(&NULL)
                        };
                        f(*i, e)?;
                        next += 1;
                    }
                    Ok(())
                };
                Some(run())
            }
        }
    }

    fn scalar(self) -> Scalar<'r> {
        match self {
            Out::Json(v) => v.scalar(),
            Out::Val(v) => match v {
                Val::Null => Scalar::Null,
                Val::Bool(b) => Scalar::Bool(*b),
                Val::Num(n) => Scalar::Number(n),
                Val::Str(s) => Scalar::Text(s),
                Val::Arr(_) => Scalar::List,
                Val::Obj(_) | Val::Record(_) => Scalar::Object,
                Val::Json(j) => j.scalar(),
            },
            Out::Node(r, n) => match &r.shape.nodes[n] {
                Node::Object(_) => Scalar::Object,
                Node::List(_) => Scalar::List,
                Node::Slot(_) => Out::child(r, n).scalar(),
            },
        }
    }

    fn to_value(self) -> Value {
        Out::to_value(self)
    }
}

impl Out<'_, '_> {
    fn is_null(&self) -> bool {
        match self {
            Out::Val(Val::Null) => true,
            Out::Json(v) => v.is_null(),
            _ => false,
        }
    }
}
