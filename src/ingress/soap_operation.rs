//! The operation of a SOAP envelope — the first element of its Body, found by namespace —
//! read as a stream: nothing is built, so finding it costs a pass over the bytes, not a
//! decode of the whole message (the message is decoded once, when it is taken, off the
//! serving threads when large). The same pass refuses what is not one envelope: another
//! root, a DOCTYPE, an element after the envelope's end, an operation name longer than
//! any a WSDL would give.

use lienthong_mapping::codec::xml::{SOAP11_NS, SOAP12_NS};
use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

/// Deepest nesting read (the decoders' own limit).
const MAX_DEPTH: usize = lienthong_mapping::codec::xml::XmlLimits::DEFAULT_MAX_DEPTH;

/// The longest operation name taken (and echoed in a fault).
pub const MAX_OPERATION_CHARS: usize = 100;

/// Why a body is not one SOAP envelope with an operation.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NotAnEnvelope {
    #[error("the SOAP message cannot be read: {0}")]
    Syntax(String),
    #[error("the root element is not a SOAP envelope (soap:Envelope)")]
    NotSoap,
    #[error("a DOCTYPE is not accepted in a SOAP message")]
    Doctype,
    #[error("the soap:Body holds no operation")]
    NoOperation,
    #[error("the operation's name is longer than {MAX_OPERATION_CHARS} characters")]
    NameTooLong,
    #[error("there is content after the envelope's end: send one SOAP envelope")]
    AfterEnvelope,
    #[error("elements are nested too deep (more than {} levels)", MAX_DEPTH)]
    TooDeep,
}

fn is_soap(ns: &ResolveResult<'_>) -> bool {
    matches!(ns, ResolveResult::Bound(n)
        if n.as_ref() == SOAP11_NS || n.as_ref() == SOAP12_NS)
}

/// The line and column (from 1) of byte `at` of `bytes`.
pub fn line_and_column(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = &bytes[..at.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = before.len()
        - before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1)
        + 1;
    (line, column)
}

/// Why, and where (the byte the reader had reached).
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub why: NotAnEnvelope,
    pub at: usize,
}

/// The local name of the first element of the envelope's Body.
pub fn operation_of(bytes: &[u8]) -> Result<String, Refused> {
    let mut reader = NsReader::from_reader(bytes);
    read(&mut reader).map_err(|why| Refused {
        at: match why {
            NotAnEnvelope::Syntax(_) => reader.error_position() as usize,
            _ => reader.buffer_position() as usize,
        },
        why,
    })
}

fn read(reader: &mut NsReader<&[u8]>) -> Result<String, NotAnEnvelope> {
    let mut buf = Vec::new();
    // Elements open, and whether the envelope is done.
    let mut depth = 0usize;
    let mut ended = false;
    // The depth of the current envelope's children (where its Body is), and of its Body's
    // (where the operation is). An envelope whose Body holds another envelope (a relay's
    // wrapping) is read through, as the decoders read it.
    let mut envelope_children: Option<usize> = None;
    let mut body_children: Option<usize> = None;
    let mut operation: Option<String> = None;
    loop {
        let (ns, event) = reader
            .read_resolved_event_into(&mut buf)
            .map_err(|e| NotAnEnvelope::Syntax(e.to_string()))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if ended {
                    return Err(NotAnEnvelope::AfterEnvelope);
                }
                let name = e.local_name();
                let local: &str = name.as_ref();
                let soap = is_soap(&ns);
                if depth == 0 {
                    if !(soap && local == "Envelope") {
                        return Err(NotAnEnvelope::NotSoap);
                    }
                    envelope_children = Some(1);
                } else if operation.is_none() {
                    if body_children == Some(depth) {
                        if soap && local == "Envelope" {
                            envelope_children = Some(depth + 1);
                            body_children = None;
                        } else if local.chars().count() > MAX_OPERATION_CHARS {
                            return Err(NotAnEnvelope::NameTooLong);
                        } else {
                            operation = Some(local.to_string());
                        }
                    } else if envelope_children == Some(depth)
                        && body_children.is_none()
                        && soap
                        && local == "Body"
                    {
                        body_children = Some(depth + 1);
                    }
                }
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(NotAnEnvelope::TooDeep);
                    }
                } else if depth == 0 {
                    ended = true;
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                ended |= depth == 0;
            }
            Event::Text(ref t) if ended && !AsRef::<str>::as_ref(t).trim().is_empty() => {
                return Err(NotAnEnvelope::AfterEnvelope);
            }
            Event::CData(_) | Event::GeneralRef(_) if ended => {
                return Err(NotAnEnvelope::AfterEnvelope);
            }
            Event::DocType(_) => return Err(NotAnEnvelope::Doctype),
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !ended {
        return Err(NotAnEnvelope::Syntax("the envelope is not closed".into()));
    }
    operation.ok_or(NotAnEnvelope::NoOperation)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: &str = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">"#;

    fn envelope(body: &str) -> String {
        format!(
            "<?xml version=\"1.0\"?>{OPEN}<s:Header><x/></s:Header><s:Body>{body}</s:Body></s:Envelope>\n"
        )
    }

    #[test]
    fn the_operation_is_the_first_element_of_the_body_by_namespace() {
        let op =
            operation_of(envelope("<t:GuiHoSo xmlns:t=\"urn:t\"><a>1</a></t:GuiHoSo>").as_bytes());
        assert_eq!(op.unwrap(), "GuiHoSo");
        assert_eq!(
            operation_of(envelope("<Empty/>").as_bytes()).unwrap(),
            "Empty"
        );
    }

    #[test]
    fn an_envelope_wrapped_in_an_envelope_is_read_through() {
        let inner = envelope("<t:GuiHoSo xmlns:t=\"urn:t\"/>");
        let inner = inner.trim_start_matches("<?xml version=\"1.0\"?>");
        assert_eq!(operation_of(envelope(inner).as_bytes()).unwrap(), "GuiHoSo");
    }

    #[test]
    fn what_is_not_one_envelope_with_an_operation_is_refused() {
        let refused = |text: &str| operation_of(text.as_bytes()).unwrap_err().why;
        assert_eq!(
            refused("<Envelope><Body><Op/></Body></Envelope>"),
            NotAnEnvelope::NotSoap
        );
        assert_eq!(refused(&envelope("")), NotAnEnvelope::NoOperation);
        assert_eq!(
            refused(&format!("{}<Op/>", envelope("<GuiHoSo/>"))),
            NotAnEnvelope::AfterEnvelope
        );
        assert_eq!(
            refused(&format!("{}text", envelope("<GuiHoSo/>"))),
            NotAnEnvelope::AfterEnvelope
        );
        assert_eq!(
            refused(&envelope(&format!(
                "<{}/>",
                "A".repeat(MAX_OPERATION_CHARS + 1)
            ))),
            NotAnEnvelope::NameTooLong
        );
        assert_eq!(
            refused(&format!("<!DOCTYPE x>{}", envelope("<GuiHoSo/>"))),
            NotAnEnvelope::Doctype
        );
        assert!(matches!(
            refused(&format!("{OPEN}<s:Body><GuiHoSo>")),
            NotAnEnvelope::Syntax(_)
        ));
    }
}
