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
use serde_json::{Map, Value};

/// The compiled layout of a mapping's output (or of one `each` element's).
#[derive(Debug)]
pub struct Shape {
    /// Node 0 is the record itself; children come after their parents.
    nodes: Vec<Node>,
    /// Node by node, the JSON of each object field's name with its quotes (`"MaHoSo"`),
    /// escaped once here rather than on every record written.
    keys: Vec<Vec<Box<str>>>,
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
            keys: vec![Vec::new()],
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
                            let json = serde_json::to_string(k).expect("a key serialises");
                            self.keys[node].insert(at, json.into_boxed_str());
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
                    self.keys.push(Vec::new());
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
    present: Present,
}

impl<'a> Record<'a> {
    pub fn new(shape: &'a Shape) -> Record<'a> {
        Record {
            shape,
            slots: vec![None; shape.slots],
            present: Present::default(),
        }
    }

    /// The value of a slot, to fill in place.
    pub fn slot_mut(&mut self, slot: usize) -> &mut Option<Val<'a>> {
        &mut self.slots[slot]
    }

    /// Work out which containers exist, once all rules have run.
    pub fn finish(&mut self) {
        let nodes = &self.shape.nodes;
        let mut present = Present::new(nodes.len());
        // Children come after their parents: one pass from the end settles every node.
        for n in (0..nodes.len()).rev() {
            let here = match &nodes[n] {
                Node::Slot(s) => self.slots[*s].is_some(),
                Node::Object(fields) => fields.iter().any(|(_, c)| present.get(*c)),
                Node::List(items) => items.iter().any(|(_, c)| present.get(*c)),
            };
            if here {
                present.set(n);
            }
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

/// Which nodes of a shape have a value below them: one word of bits for a shape of up to
/// 64 nodes (every shipped mapping's), more words only beyond that.
#[derive(Clone, Debug, Default)]
struct Present {
    first: u64,
    rest: Vec<u64>,
}

impl Present {
    fn new(nodes: usize) -> Present {
        Present {
            first: 0,
            rest: vec![0; nodes.saturating_sub(64).div_ceil(64)],
        }
    }

    fn get(&self, node: usize) -> bool {
        let word = if node < 64 {
            self.first
        } else {
            self.rest[(node - 64) / 64]
        };
        word >> (node % 64) & 1 == 1
    }

    fn set(&mut self, node: usize) {
        let word = if node < 64 {
            &mut self.first
        } else {
            &mut self.rest[(node - 64) / 64]
        };
        *word |= 1 << (node % 64);
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
            .find(|(_, c)| r.present.get(*c))
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
                        if r.present.get(*c) {
                            m.insert(k.clone(), Out::child(r, *c).to_value());
                        }
                    }
                    Value::Object(m)
                }
                Node::List(items) => {
                    let mut list = vec![Value::Null; Out::list_len(r, items)];
                    for (i, c) in items {
                        if r.present.get(*c) {
                            list[*i] = Out::child(r, *c).to_value();
                        }
                    }
                    Value::Array(list)
                }
            },
        }
    }
}

impl Out<'_, '_> {
    /// Write this part as compact JSON, byte for byte what `serde_json::to_writer` writes
    /// for the same value: keys come pre-escaped from the shape, text is copied in runs
    /// between the bytes that need escaping.
    pub fn write_json(self, buf: &mut Vec<u8>) {
        match self {
            Out::Json(v) => write_value(v, buf),
            Out::Val(v) => match v {
                Val::Null => buf.extend_from_slice(b"null"),
                Val::Bool(true) => buf.extend_from_slice(b"true"),
                Val::Bool(false) => buf.extend_from_slice(b"false"),
                Val::Num(n) => write_number(n, buf),
                Val::Str(t) => write_str(t, buf),
                Val::Arr(items) => {
                    buf.push(b'[');
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            buf.push(b',');
                        }
                        Out::of_val(item).write_json(buf);
                    }
                    buf.push(b']');
                }
                // An object copied from the input: sorted and deduplicated as serde_json does.
                Val::Obj(_) => write_value(&v.to_value(), buf),
                Val::Json(j) => write_value(j, buf),
                Val::Record(r) => r.root().write_json(buf),
            },
            Out::Node(r, n) => match &r.shape.nodes[n] {
                Node::Slot(_) => Out::child(r, n).write_json(buf),
                Node::Object(fields) => {
                    buf.push(b'{');
                    let mut first = true;
                    for (i, (_, c)) in fields.iter().enumerate() {
                        if r.present.get(*c) {
                            if !first {
                                buf.push(b',');
                            }
                            first = false;
                            let key = &r.shape.keys[n];
                            buf.extend_from_slice(key[i].as_bytes());
                            buf.push(b':');
                            Out::child(r, *c).write_json(buf);
                        }
                    }
                    buf.push(b'}');
                }
                Node::List(items) => {
                    let len = Out::list_len(r, items);
                    buf.push(b'[');
                    let mut next = 0;
                    for (i, c) in items {
                        if *i >= len {
                            break;
                        }
                        while next < *i {
                            buf.extend_from_slice(if next == 0 { b"null" } else { b",null" });
                            next += 1;
                        }
                        if next > 0 {
                            buf.push(b',');
                        }
                        if r.present.get(*c) {
                            Out::child(r, *c).write_json(buf);
                        } else {
                            buf.extend_from_slice(b"null");
                        }
                        next += 1;
                    }
                    buf.push(b']');
                }
            },
        }
    }
}

fn write_value(v: &Value, buf: &mut Vec<u8>) {
    serde_json::to_writer(buf, v).expect("a Value always serialises into memory");
}

fn write_number(n: &serde_json::Number, buf: &mut Vec<u8>) {
    serde_json::to_writer(buf, n).expect("a Number always serialises into memory");
}

/// Text as a JSON string, escaped as serde_json escapes it: `"` and `\\`, the five short
/// control escapes, other control bytes as `\u00xx`; everything else (UTF-8 included) as is.
pub fn write_str(s: &str, buf: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    buf.reserve(bytes.len() + 2);
    buf.push(b'"');
    let mut start = 0;
    while let Some(at) = next_escape(bytes, start) {
        buf.extend_from_slice(&bytes[start..at]);
        let b = bytes[at];
        match b {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            0x08 => buf.extend_from_slice(b"\\b"),
            0x0c => buf.extend_from_slice(b"\\f"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                buf.extend_from_slice(b"\\u00");
                buf.push(HEX[usize::from(b >> 4)]);
                buf.push(HEX[usize::from(b & 0xf)]);
            }
        }
        start = at + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
    buf.push(b'"');
}

/// The first byte at or after `from` that JSON needs escaped. Eight bytes are tested at a
/// time (a word-wide test for a control byte, `"` or `\\`): most text has none.
pub(super) fn next_escape(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let needs = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    let mut at = from;
    for chunk in bytes[from..].chunks_exact(8) {
        let x = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        // A byte below 0x20, or one equal to `"` or `\\` (zero after the xor); bytes of
        // 0x80 and above never match, and a false alarm only costs the byte-wise look.
        let zero = |y: u64| y.wrapping_sub(ONES) & !y & HIGH;
        let hit = (x.wrapping_sub(ONES * 0x20) & !x & HIGH)
            | zero(x ^ (ONES * u64::from(b'"')))
            | zero(x ^ (ONES * u64::from(b'\\')));
        if hit != 0
            && let Some(i) = chunk.iter().position(|&b| needs(b))
        {
            return Some(at + i);
        }
        at += 8;
    }
    bytes[at..].iter().position(|&b| needs(b)).map(|i| at + i)
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
                .find(|(k, _)| super::same_name(k, key))
                .map(|(_, v)| Out::of_val(v)),
            Out::Val(_) => return None,
            Out::Node(r, n) => match &r.shape.nodes[n] {
                Node::Object(fields) => fields
                    .iter()
                    .find(|(name, _)| super::same_name(name, key))
                    .map(|(_, c)| *c)
                    .filter(|c| r.present.get(*c))
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
                        let e = if r.present.get(*c) {
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

#[cfg(test)]
mod tests {
    use super::write_str;

    #[test]
    fn text_is_escaped_as_serde_json_escapes_it() {
        let mut every_char: String = (0u32..0x300).filter_map(char::from_u32).collect();
        every_char.push_str("\u{2028}\u{2029}\u{feff}Nguyễn \"Thị\" \\ / 🙂");
        let long = "abcdefgh\u{1f}ijklmnop\"qrstuvw\\xyz0123456789 Đề tài \u{0}".repeat(3);
        for s in [
            every_char.as_str(),
            &long,
            "",
            "plain",
            "\"",
            "\\",
            "a\u{1}b",
            "\u{7f}",
        ] {
            let mut ours = Vec::new();
            write_str(s, &mut ours);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(s).unwrap()
            );
        }
    }
}
