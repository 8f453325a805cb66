//! XML in and out, as JSON-shaped values so one mapping language covers every format.
//!
//! Decoding rules (what a mapping's paths select into):
//! * an element with neither attributes nor child elements becomes its text (`<a/>` → `""`);
//! * otherwise an object: attributes as `"@name"`, child elements by local name, repeated
//!   children as an array (in document order), non-blank text beside children as `"#text"`;
//! * the document becomes `{ "<root local name>": ... }`; a SOAP 1.1 or 1.2 envelope becomes
//!   the content of its `Body`, found by namespace, e.g. `{ "GuiHoSo": ... }` or `{ "Fault": ... }`.
//!
//! Namespace prefixes are dropped on the way in (the local name is what a unit IT team sees in
//! its samples); on the way out element names are written as given (`"ns:Name"`), with the
//! namespaces the mapping declares. A DOCTYPE or an entity declaration is refused, never
//! expanded, and so is input deeper or larger than the limits.

mod scan;
mod write;

pub use write::{XmlWriteOptions, encode};

use super::DecodeError;
use crate::plan::value::{Val, borrow_from};
use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;

pub const SOAP11_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const SOAP12_NS: &str = "http://www.w3.org/2003/05/soap-envelope";

/// Limits on what the decoder accepts.
#[derive(Clone, Copy, Debug)]
pub struct XmlLimits {
    pub max_depth: usize,
    pub max_bytes: usize,
}

impl XmlLimits {
    /// The deepest nesting read unless a caller says otherwise.
    pub const DEFAULT_MAX_DEPTH: usize = 64;
}

impl Default for XmlLimits {
    fn default() -> Self {
        XmlLimits {
            max_depth: Self::DEFAULT_MAX_DEPTH,
            max_bytes: 16 * 1024 * 1024,
        }
    }
}

/// An element being built: its name, attributes and children so far, and its text, all
/// borrowed from the input where they can be.
struct Frame<'a> {
    name: Cow<'a, str>,
    /// Namespace of the element, kept only for the SOAP envelope and body.
    soap: Option<&'static str>,
    fields: Fields<'a>,
    has_children: bool,
    text: Cow<'a, str>,
}

/// An element's attributes and children, with an index by name once there are many (a
/// message with thousands of distinct children must not cost a search per child).
#[derive(Default)]
struct Fields<'a> {
    list: Vec<(Cow<'a, str>, Val<'a>)>,
    /// Boxed: most elements have no index, and frames are moved on every tag.
    index: Option<Box<NameIndex<'a>>>,
}

/// Where each name is in [`Fields::list`].
#[derive(Default)]
struct NameIndex<'a>(HashMap<Cow<'a, str>, usize>);

impl<'a> Fields<'a> {
    const INDEX_FROM: usize = 16;

    fn position(&self, name: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.0.get(name).copied(),
            None => self.list.iter().position(|(k, _)| k == name),
        }
    }

    fn push(&mut self, name: Cow<'a, str>, value: Val<'a>) {
        if let Some(index) = &mut self.index {
            index.0.insert(name.clone(), self.list.len());
        } else if self.list.len() + 1 >= Self::INDEX_FROM {
            let mut index: HashMap<Cow<'a, str>, usize> = self
                .list
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.clone(), i))
                .collect();
            index.insert(name.clone(), self.list.len());
            self.index = Some(Box::new(NameIndex(index)));
        }
        self.list.push((name, value));
    }
}

/// Decode an XML document into a value (see the module docs for the shape).
pub fn decode(input: &[u8], limits: XmlLimits) -> Result<Value, DecodeError> {
    decode_val(input, limits).map(|v| v.to_value())
}

/// [`decode`], keeping names and text as slices of `input` where no entity or line-end
/// rewriting changed them.
///
/// A message in the everyday subset of XML is read by [`scan`], a few times faster than
/// quick-xml; anything else (and every error) by quick-xml, as before. Both feed the same
/// [`Builder`], so the shape of the value is defined in one place.
pub fn decode_val(input: &[u8], limits: XmlLimits) -> Result<Val<'_>, DecodeError> {
    if input.len() > limits.max_bytes {
        return Err(DecodeError::too_large(input.len(), limits.max_bytes));
    }
    let text = std::str::from_utf8(input).map_err(|e| DecodeError::Encoding {
        message: format!("XML is not valid UTF-8 at byte {}", e.valid_up_to()),
    })?;
    if let Some(value) = scan::read(text, limits) {
        return Ok(value);
    }
    decode_with_quick_xml(text, limits)
}

/// [`decode_val`] by quick-xml alone: the reader of whatever [`scan`] gives up on, whose
/// errors are the ones a unit sees, and the reference the scanner is tested against.
pub fn decode_with_quick_xml(text: &str, limits: XmlLimits) -> Result<Val<'_>, DecodeError> {
    let mut reader = NsReader::from_str(text);
    reader.config_mut().trim_text(false);
    let mut doc = Builder::new(text, limits);
    loop {
        let pos = reader.buffer_position() as usize;
        // Namespaces are resolved only where they matter (a SOAP envelope and its body):
        // resolving every element was a tenth of the decoding time.
        let event = reader
            .read_event()
            .map_err(|e| DecodeError::syntax(text, pos, e.to_string()))?;
        match event {
            Event::Start(start) => {
                doc.check_depth()?;
                doc.start(open(&start, soap_namespace(&reader, &start), text, pos)?);
            }
            Event::Empty(start) => {
                doc.check_depth()?;
                doc.empty(open(&start, soap_namespace(&reader, &start), text, pos)?);
            }
            Event::End(_) => doc.end(),
            Event::Text(t) => {
                let raw: &str = t.as_ref();
                doc.text(raw, t.xml10_content(), pos)?;
            }
            Event::CData(c) => doc.cdata(c.into_inner()),
            Event::GeneralRef(r) => doc.reference(&r, pos)?,
            Event::DocType(_) => {
                return Err(DecodeError::Forbidden {
                    message: "a DOCTYPE is not accepted (entity declarations are never expanded)"
                        .into(),
                });
            }
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    doc.finish()
}

/// Builds the value of a document from its parts in document order (what either reader
/// finds): the one place that says what shape XML takes (see the module docs).
struct Builder<'a> {
    text: &'a str,
    limits: XmlLimits,
    stack: Vec<Frame<'a>>,
    root: Option<(Cow<'a, str>, Option<&'static str>, Val<'a>)>,
    /// The SOAP Body's first element, once closed.
    soap_body: Option<Val<'a>>,
}

impl<'a> Builder<'a> {
    fn new(text: &'a str, limits: XmlLimits) -> Builder<'a> {
        Builder {
            text,
            limits,
            stack: Vec::with_capacity(16),
            root: None,
            soap_body: None,
        }
    }

    /// Whether one more element may open here: the readers ask before each start tag,
    /// before they read its attributes.
    fn check_depth(&self) -> Result<(), DecodeError> {
        if self.stack.len() >= self.limits.max_depth {
            return Err(DecodeError::TooDeep {
                limit: self.limits.max_depth,
            });
        }
        Ok(())
    }

    /// A start tag.
    fn start(&mut self, frame: Frame<'a>) {
        self.stack.push(frame);
    }

    /// An empty-element tag (`<a/>`).
    fn empty(&mut self, frame: Frame<'a>) {
        close(frame, &mut self.stack, &mut self.root, &mut self.soap_body);
    }

    /// An end tag (the reader has checked that it matches).
    fn end(&mut self) {
        let frame = self
            .stack
            .pop()
            .expect("end tags are matched by the reader");
        close(frame, &mut self.stack, &mut self.root, &mut self.soap_body);
    }

    /// A run of character data: `raw` as written, `content` with line ends normalised.
    fn text(&mut self, raw: &str, content: Cow<'a, str>, pos: usize) -> Result<(), DecodeError> {
        if let Some(top) = self.stack.last_mut() {
            // Indentation between child elements is layout, not data: skip it without
            // copying (most text events of a pretty-printed message).
            if !(top.has_children && raw.bytes().all(|b| b.is_ascii_whitespace())) {
                append(&mut top.text, content);
            }
        } else if !raw.chars().all(char::is_whitespace) {
            return Err(DecodeError::syntax(
                self.text,
                pos,
                "text outside the root element".into(),
            ));
        }
        Ok(())
    }

    fn cdata(&mut self, content: Cow<'a, str>) {
        if let Some(top) = self.stack.last_mut() {
            append(&mut top.text, content);
        }
    }

    /// An entity or character reference (`&amp;`, `&#233;`): only the predefined ones.
    fn reference(&mut self, name: &str, pos: usize) -> Result<(), DecodeError> {
        let ch = resolve_entity(name).ok_or_else(|| {
            DecodeError::syntax(
                self.text,
                pos,
                format!("undefined entity `&{name};` (only the five XML entities and character references are accepted)"),
            )
        })?;
        if let Some(top) = self.stack.last_mut() {
            top.text.to_mut().push(ch);
        }
        Ok(())
    }

    fn finish(self) -> Result<Val<'a>, DecodeError> {
        let text = self.text;
        if let Some(open) = self.stack.last() {
            return Err(DecodeError::syntax(
                text,
                text.len(),
                format!("unexpected end of input inside <{}>", open.name),
            ));
        }
        let (name, soap, value) = self
            .root
            .ok_or_else(|| DecodeError::syntax(text, 0, "no root element".into()))?;
        if soap.is_some() && name == "Envelope" {
            return self.soap_body.ok_or_else(|| DecodeError::Shape {
                message: "the SOAP envelope has no Body element with content".into(),
            });
        }
        Ok(Val::Obj(vec![(name, value)]))
    }
}

/// Add a piece of text to an element's text, borrowing the first piece.
fn append<'a>(text: &mut Cow<'a, str>, piece: Cow<'a, str>) {
    if text.is_empty() {
        *text = piece;
    } else {
        text.to_mut().push_str(&piece);
    }
}

fn resolve_entity(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "apos" => Some('\''),
        "quot" => Some('"'),
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix('x').or_else(|| num.strip_prefix('X')) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code).filter(|c| *c != '\0')
        }
    }
}

/// The SOAP namespace of an `Envelope` or `Body` element, if it is in one.
fn soap_namespace(reader: &NsReader<&[u8]>, start: &BytesStart<'_>) -> Option<&'static str> {
    let local = start.local_name();
    if !matches!(local.as_ref(), "Envelope" | "Body") {
        return None;
    }
    match reader.resolver().resolve_element(start.name()).0 {
        ResolveResult::Bound(n) => soap_uri(n.as_ref().as_bytes()),
        _ => None,
    }
}

/// The SOAP 1.1 or 1.2 envelope namespace, if `uri` is one.
fn soap_uri(uri: &[u8]) -> Option<&'static str> {
    if uri == SOAP11_NS.as_bytes() {
        Some(SOAP11_NS)
    } else if uri == SOAP12_NS.as_bytes() {
        Some(SOAP12_NS)
    } else {
        None
    }
}

fn open<'a>(
    start: &BytesStart<'a>,
    soap: Option<&'static str>,
    text: &'a str,
    pos: usize,
) -> Result<Frame<'a>, DecodeError> {
    let local = start.local_name();
    let mut frame = Frame::new(borrow_from(text, local.as_ref()), soap);
    for attr in start.attributes() {
        let attr = attr.map_err(|e| DecodeError::syntax(text, pos, e.to_string()))?;
        let key = attr.key;
        // Namespace declarations are syntax, not data.
        if key.as_ref() == "xmlns" || key.as_ref().starts_with("xmlns:") {
            continue;
        }
        let local = key.local_name();
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| DecodeError::syntax(text, pos, e.to_string()))?;
        frame.attribute(local.as_ref(), borrow_from(text, &value));
    }
    Ok(frame)
}

impl<'a> Frame<'a> {
    fn new(name: Cow<'a, str>, soap: Option<&'static str>) -> Frame<'a> {
        Frame {
            name,
            soap,
            fields: Fields::default(),
            has_children: false,
            text: Cow::Borrowed(""),
        }
    }

    /// An attribute (not a namespace declaration), by local name: `"@name"`.
    fn attribute(&mut self, local: &str, value: Cow<'a, str>) {
        let mut key = String::with_capacity(local.len() + 1);
        key.push('@');
        key.push_str(local);
        self.fields.push(Cow::Owned(key), Val::Str(value));
    }
}

fn close<'a>(
    frame: Frame<'a>,
    stack: &mut [Frame<'a>],
    root: &mut Option<(Cow<'a, str>, Option<&'static str>, Val<'a>)>,
    soap_body: &mut Option<Val<'a>>,
) {
    let Frame {
        name,
        soap,
        mut fields,
        has_children,
        text,
    } = frame;
    let value = if fields.list.is_empty() && !has_children {
        Val::Str(text)
    } else {
        if !text.trim().is_empty() {
            fields.push(Cow::Borrowed("#text"), Val::Str(text));
        }
        Val::Obj(fields.list)
    };
    let Some(parent) = stack.last_mut() else {
        *root = Some((name, soap, value));
        return;
    };
    // The first element inside a SOAP Body is the message.
    parent.has_children = true;
    if parent.soap.is_some() && parent.name == "Body" && soap_body.is_none() {
        *soap_body = Some(Val::Obj(vec![(name, value)]));
        return;
    }
    match parent.fields.position(&name) {
        None => parent.fields.push(name, value),
        Some(at) => match &mut parent.fields.list[at].1 {
            Val::Arr(items) => items.push(value),
            existing => {
                let first = std::mem::replace(existing, Val::Null);
                *existing = Val::Arr(vec![first, value]);
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::KeyOrder;
    use serde_json::json;

    fn d(s: &str) -> Result<Value, DecodeError> {
        decode(s.as_bytes(), XmlLimits::default())
    }

    #[test]
    fn elements_attributes_repeats_and_cdata() {
        let v = d(r#"<?xml version="1.0"?>
            <HoSo loai="moi"><Ma>HS-1</Ma><Tep>a</Tep><Tep>b</Tep><Ghi><![CDATA[<x> & y]]></Ghi><Rong/></HoSo>"#)
        .unwrap();
        assert_eq!(
            v,
            json!({"HoSo": {"@loai": "moi", "Ma": "HS-1", "Tep": ["a", "b"], "Ghi": "<x> & y", "Rong": ""}})
        );
    }

    #[test]
    fn soap_body_is_found_by_namespace_whatever_the_prefix() {
        let v = d(r#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Header/><e:Body><m:Gui xmlns:m="urn:x"><m:Ma>1</m:Ma></m:Gui></e:Body></e:Envelope>"#).unwrap();
        assert_eq!(v, json!({"Gui": {"Ma": "1"}}));
        // An element called Envelope in another namespace is just data.
        let v = d(r#"<Envelope><Body><A>1</A></Body></Envelope>"#).unwrap();
        assert_eq!(v, json!({"Envelope": {"Body": {"A": "1"}}}));
    }

    #[test]
    fn doctype_entities_depth_and_size_are_refused() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xx">]><a>&x;</a>"#;
        assert!(matches!(d(bomb), Err(DecodeError::Forbidden { .. })));
        assert!(
            d("<a>&nope;</a>")
                .unwrap_err()
                .to_string()
                .contains("undefined entity")
        );
        assert_eq!(d("<a>&lt;&#x1EA1;&#65;</a>").unwrap(), json!({"a": "<ạA"}));
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(matches!(d(&deep), Err(DecodeError::TooDeep { .. })));
        let big = vec![b' '; 10];
        assert!(matches!(
            decode(
                &big,
                XmlLimits {
                    max_depth: 8,
                    max_bytes: 5
                }
            ),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let e = d("<a>\n<b></c></a>").unwrap_err();
        let DecodeError::Syntax { line, .. } = e else {
            panic!("{e:?}")
        };
        assert_eq!(line, 2);
    }

    #[test]
    fn encode_round_trips_and_writes_soap_with_namespaces() {
        let v = json!({"TraCuu": {"@v": "1", "Ma": "a<b", "Ds": ["x", "y"], "Trong": null}});
        let mut order = KeyOrder::default();
        for k in ["@v", "Ma", "Ds", "Trong"] {
            order.push(k);
        }
        let xml = encode(
            &v,
            &XmlWriteOptions {
                soap: true,
                namespace: Some("http://dancuquocgia.bca".into()),
                ..Default::default()
            },
            &order,
        )
        .unwrap();
        assert!(xml.contains(r#"<soap:Body><TraCuu xmlns="http://dancuquocgia.bca" v="1"><Ma>a&lt;b</Ma><Ds>x</Ds><Ds>y</Ds><Trong/></TraCuu></soap:Body>"#), "{xml}");
        let back = d(&xml).unwrap();
        assert_eq!(
            back,
            json!({"TraCuu": {"@v": "1", "Ma": "a<b", "Ds": ["x", "y"], "Trong": ""}})
        );
    }
}
