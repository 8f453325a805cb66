//! A reader for the everyday subset of XML, a few times faster than quick-xml on a unit's
//! message: the input is already known to be UTF-8, markup is found with `memchr`, and
//! names, attribute values and text are handed to the [`Builder`] as slices of the input.
//!
//! The subset: elements with ASCII names; attributes as `name="value"` (or single quotes)
//! whose values hold no `<`, `&`, tab or line break; text with the predefined entities and
//! character references; CDATA; comments; processing instructions and the XML declaration
//! before the root; namespace declarations (resolved only for a SOAP `Envelope` and `Body`).
//! Anything else — a DOCTYPE, a byte-order mark, an unusual name, an end tag with spaces,
//! more than 16 attributes on a tag, and every error — makes it give up (`None`), and quick-xml reads the input instead, with
//! its error messages. So whenever this reader returns a value it is the value quick-xml's
//! path gives, which `tests` check over every fixture and mutations of them, as does the
//! `decode_xml` fuzz target.

use super::{Builder, Frame, XmlLimits, resolve_entity, soap_uri};
use crate::plan::value::Val;
use memchr::{memchr, memchr2, memmem};
use quick_xml::events::BytesText;
use std::borrow::Cow;

/// More attributes on one tag than this are left to quick-xml.
const MAX_ATTRIBUTES: usize = 16;

/// Read a document, or `None` when it is outside the subset (see the module docs).
pub(super) fn read(text: &str, limits: XmlLimits) -> Option<Val<'_>> {
    let mut s = Scanner {
        text,
        bytes: text.as_bytes(),
        at: 0,
        doc: Builder::new(text, limits),
        names: Vec::with_capacity(16),
        namespaces: Vec::new(),
        attributes: Vec::with_capacity(8),
        root_seen: false,
    };
    s.document()?;
    s.doc.finish().ok()
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    doc: Builder<'a>,
    /// The full names of the open elements, to match end tags against.
    names: Vec<&'a str>,
    /// Namespace declarations in scope: prefix (`""` for the default namespace), URI, and
    /// the depth of the element that declares it.
    namespaces: Vec<(&'a str, &'a str, usize)>,
    /// The attributes of the tag being read (a buffer kept between tags).
    attributes: Vec<(&'a str, &'a str)>,
    root_seen: bool,
}

/// XML's white space.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// A name as this reader takes them: an ASCII letter or `_`, then letters, digits, `_`,
/// `-`, `.` and `:`.
fn name_len(bytes: &[u8]) -> usize {
    match bytes.first() {
        Some(b) if b.is_ascii_alphabetic() || *b == b'_' => {}
        _ => return 0,
    }
    bytes
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':')))
        .unwrap_or(bytes.len())
}

/// The part of a qualified name after the first colon, as quick-xml's `local_name`.
fn local(name: &str) -> &str {
    name.split_once(':').map_or(name, |(_, l)| l)
}

impl<'a> Scanner<'a> {
    fn document(&mut self) -> Option<()> {
        if self.bytes.starts_with(b"\xEF\xBB\xBF") {
            return None;
        }
        loop {
            let lt = memchr(b'<', &self.bytes[self.at..]).map(|i| self.at + i);
            let end = lt.unwrap_or(self.bytes.len());
            if end > self.at {
                self.text_run(self.at, end)?;
            }
            let Some(lt) = lt else { break };
            self.at = lt;
            match *self.bytes.get(lt + 1)? {
                b'/' => self.end_tag()?,
                b'!' => self.bang()?,
                b'?' => self.instruction()?,
                _ => self.start_tag()?,
            }
        }
        (self.names.is_empty() && self.root_seen).then_some(())
    }

    /// Character data between two pieces of markup: text, split at references.
    fn text_run(&mut self, from: usize, to: usize) -> Option<()> {
        let outside = self.names.is_empty();
        let mut start = from;
        loop {
            let amp = memchr(b'&', &self.bytes[start..to]).map(|i| start + i);
            let end = amp.unwrap_or(to);
            if end > start {
                let raw = &self.text[start..end];
                if outside && !raw.bytes().all(is_space) {
                    return None;
                }
                // One look for the rare bytes: `]` (of a stray `]]>`) and `\r`.
                let content = if memchr2(b']', b'\r', raw.as_bytes()).is_none() {
                    Cow::Borrowed(raw)
                } else if raw.contains("]]>") {
                    return None;
                } else if raw.contains('\r') {
                    // quick-xml's own line-end normalisation, as its reader applies it.
                    BytesText::from_escaped(raw).xml10_content()
                } else {
                    Cow::Borrowed(raw)
                };
                self.doc.text(raw, content, start).ok()?;
            }
            let Some(amp) = amp else { break };
            if outside {
                return None;
            }
            let semi = amp + 1 + memchr(b';', &self.bytes[amp + 1..to])?;
            let name = &self.text[amp + 1..semi];
            if name.is_empty()
                || name.len() > 10
                || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'#')
            {
                return None;
            }
            resolve_entity(name)?;
            self.doc.reference(name, amp).ok()?;
            start = semi + 1;
        }
        Some(())
    }

    /// `</name>`, exactly the name of the element it closes.
    fn end_tag(&mut self) -> Option<()> {
        let from = self.at + 2;
        let gt = from + memchr(b'>', &self.bytes[from..])?;
        let name = &self.text[from..gt];
        if self.names.pop()? != name {
            return None;
        }
        let depth = self.names.len();
        while self.namespaces.last().is_some_and(|n| n.2 == depth) {
            self.namespaces.pop();
        }
        self.doc.end();
        self.at = gt + 1;
        Some(())
    }

    /// A comment or CDATA section; a DOCTYPE (or anything else) is left to quick-xml.
    fn bang(&mut self) -> Option<()> {
        let rest = &self.bytes[self.at..];
        if rest.starts_with(b"<!--") {
            let from = self.at + 4;
            let end = from + memmem::find(&self.bytes[from..], b"-->")?;
            let body = &self.bytes[from..end];
            if memmem::find(body, b"--").is_some() || body.ends_with(b"-") {
                return None;
            }
            self.at = end + 3;
        } else if rest.starts_with(b"<![CDATA[") {
            if self.names.is_empty() {
                return None;
            }
            let from = self.at + 9;
            let end = from + memmem::find(&self.bytes[from..], b"]]>")?;
            self.doc.cdata(Cow::Borrowed(&self.text[from..end]));
            self.at = end + 3;
        } else {
            return None;
        }
        Some(())
    }

    /// `<?target ...?>`, the XML declaration included: only before the root.
    fn instruction(&mut self) -> Option<()> {
        if self.root_seen {
            return None;
        }
        let from = self.at + 2;
        if name_len(&self.bytes[from..]) == 0 {
            return None;
        }
        let end = from + memmem::find(&self.bytes[from..], b"?>")?;
        if memchr2(b'<', b'>', &self.bytes[from..end]).is_some() {
            return None;
        }
        self.at = end + 2;
        Some(())
    }

    /// A start tag or an empty-element tag, with its attributes.
    fn start_tag(&mut self) -> Option<()> {
        if self.names.is_empty() && self.root_seen {
            return None;
        }
        self.doc.check_depth().ok()?;
        self.root_seen = true;
        let from = self.at + 1;
        let len = name_len(&self.bytes[from..]);
        if len == 0 {
            return None;
        }
        let name = &self.text[from..from + len];
        let mut at = from + len;
        self.attributes.clear();
        let empty = loop {
            let spaced = at;
            while is_space(*self.bytes.get(at)?) {
                at += 1;
            }
            match self.bytes[at] {
                b'>' => {
                    at += 1;
                    break false;
                }
                b'/' if self.bytes.get(at + 1) == Some(&b'>') => {
                    at += 2;
                    break true;
                }
                _ if at == spaced => return None,
                _ => {}
            }
            // The duplicate check below is a scan: many attributes go to quick-xml.
            if self.attributes.len() >= MAX_ATTRIBUTES {
                return None;
            }
            let key_len = name_len(&self.bytes[at..]);
            if key_len == 0 || self.bytes.get(at + key_len) != Some(&b'=') {
                return None;
            }
            let key = &self.text[at..at + key_len];
            at += key_len + 1;
            let quote = *self.bytes.get(at)?;
            if quote != b'"' && quote != b'\'' {
                return None;
            }
            let value_from = at + 1;
            let value_end = value_from + memchr(quote, &self.bytes[value_from..])?;
            let value = &self.text[value_from..value_end];
            if value
                .bytes()
                .any(|b| matches!(b, b'<' | b'&' | b'\t' | b'\n' | b'\r'))
                || self.attributes.iter().any(|(k, _)| *k == key)
            {
                return None;
            }
            self.attributes.push((key, value));
            at = value_end + 1;
        };
        // Namespace declarations first: they apply to the element's own name.
        let depth = self.names.len();
        for &(key, uri) in &self.attributes {
            let prefix = match key.strip_prefix("xmlns") {
                Some("") => "",
                Some(p) => match p.strip_prefix(':') {
                    Some(p) if !p.is_empty() && p != "xml" && p != "xmlns" => p,
                    Some(_) => return None,
                    None => continue,
                },
                None => continue,
            };
            // quick-xml refuses the reserved namespaces bound to other prefixes, and more
            // than 128 bindings in scope; an empty one unbinds. All left to it.
            if uri.is_empty()
                || uri == "http://www.w3.org/XML/1998/namespace"
                || uri == "http://www.w3.org/2000/xmlns/"
                || self.namespaces.len() >= 64
            {
                return None;
            }
            self.namespaces.push((prefix, uri, depth));
        }
        let local_name = local(name);
        let soap = if matches!(local_name, "Envelope" | "Body") {
            let prefix = name.split_once(':').map_or("", |(p, _)| p);
            self.namespaces
                .iter()
                .rev()
                .find(|n| n.0 == prefix)
                .and_then(|n| soap_uri(n.1.as_bytes()))
        } else {
            None
        };
        let mut frame = Frame::new(Cow::Borrowed(local_name), soap);
        for &(key, value) in &self.attributes {
            if key == "xmlns" || key.starts_with("xmlns:") {
                continue;
            }
            frame.attribute(local(key), Cow::Borrowed(value));
        }
        if empty {
            self.doc.empty(frame);
            while self.namespaces.last().is_some_and(|n| n.2 == depth) {
                self.namespaces.pop();
            }
        } else {
            self.doc.start(frame);
            self.names.push(name);
        }
        self.at = at;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode_with_quick_xml;
    use super::*;

    /// The scanner against quick-xml on one input: same value, or it gives up.
    fn agrees(input: &str) -> bool {
        let limits = XmlLimits::default();
        match read(input, limits) {
            Some(v) => {
                let reference = decode_with_quick_xml(input, limits)
                    .unwrap_or_else(|e| panic!("took {input:?}, quick-xml refused: {e}"));
                assert_eq!(format!("{v:?}"), format!("{reference:?}"), "{input:?}");
                true
            }
            None => false,
        }
    }

    #[test]
    fn reads_what_quick_xml_reads_and_gives_up_on_the_rest() {
        let taken = [
            r#"<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header/>
  <soap:Body><m:A xmlns:m="urn:x" k='v'><m:B>1</m:B><m:B>2</m:B><!-- note --></m:A></soap:Body>
</soap:Envelope>"#,
            r#"<Envelope xmlns="http://www.w3.org/2003/05/soap-envelope"><Body><A/></Body></Envelope>"#,
            r#"<x:Envelope xmlns:x="urn:not-soap"><x:Body><A/></x:Body></x:Envelope>"#,
            "<a>Tom &amp; Jerry &lt;3 &#233;&#x1EC7;</a>",
            "<a>  <b>x</b>  &amp;  <c/> tail </a>",
            "<a>line\r\nbreak\rhere</a>",
            "<a><![CDATA[<raw> & ]]>text</a>",
            "<a b=\"1\" c:d='2'><e f=\"\"/></a>",
            "<a><b/><b>x</b><b><c>y</c></b></a>",
            "<a>\n</a>",
            "<a/>",
        ];
        for input in taken {
            assert!(agrees(input), "gave up on {input}");
        }
        let refused = [
            "",
            "text",
            "<a>",
            "<a></b>",
            "<a></a >",
            "<a><a/>",
            "<a/><b/>",
            "<a b=1/>",
            "<a b=\"1\" b=\"2\"/>",
            "<a b=\"1\"c=\"2\"/>",
            "<a b=\"x&amp;y\"/>",
            "<a>&unknown;</a>",
            "<a>&amp</a>",
            "<!DOCTYPE a><a/>",
            "\u{feff}<a/>",
            "<a><!-- a -- b --></a>",
            "<a>]]></a>",
            "<1a/>",
            "<é/>",
            "x<a/>",
            "<a xmlns:p=\"\"/>",
            "<a xmlns:p=\"http://www.w3.org/XML/1998/namespace\"/>",
            "<a xmlns:xml=\"http://www.w3.org/XML/1998/namespace\"/>",
            "<a xmlns:p=\"http://www.w3.org/2000/xmlns/\"/>",
        ];
        for input in refused {
            assert!(!agrees(input), "took {input:?}");
        }
        let deep = format!("{}{}", "<a>".repeat(70), "</a>".repeat(70));
        assert!(!agrees(&deep));
    }

    #[test]
    fn agrees_with_quick_xml_on_every_fixture_and_mutations_of_them() {
        use crate::fixtures::corpus;
        let mut taken = 0;
        for (n, input) in corpus::case_inputs("xml").into_iter().enumerate() {
            let text = String::from_utf8(input).expect("UTF-8 case");
            if decode_with_quick_xml(&text, XmlLimits::default()).is_ok()
                && !text.contains("DOCTYPE")
            {
                assert!(agrees(&text), "{text}");
            }
            let alphabet = b"<>/!?&;:=\"' \r\nab-[]x#";
            for m in corpus::mutations(text.as_bytes(), alphabet, 300, n as u64) {
                if let Ok(m) = String::from_utf8(m) {
                    taken += usize::from(agrees(&m));
                }
            }
        }
        assert!(taken > 0);
    }
}
