//! XML out: a JSON-shaped value written as an XML document (the reverse of
//! [`super::decode`]), with attributes from `"@name"` fields, an optional root element, and
//! an optional SOAP 1.1 envelope declaring the mapping's namespaces.

use super::SOAP11_NS;
use crate::codec::KeyOrder;
use serde_json::Value;

/// How to write a value as XML.
#[derive(Clone, Debug, Default)]
pub struct XmlWriteOptions {
    /// Wrap the value in an element of this name.
    pub root: Option<String>,
    /// Wrap it all in a SOAP 1.1 envelope (`soap:Envelope/soap:Body`).
    pub soap: bool,
    /// Default namespace declared on the first element written inside the envelope.
    pub namespace: Option<String>,
    /// Prefixed namespaces declared on that element: (prefix, uri).
    pub namespaces: Vec<(String, String)>,
}

/// Write a value as an XML document (the reverse of [`super::decode`]).
pub fn encode(value: &Value, opts: &XmlWriteOptions, order: &KeyOrder) -> Result<String, String> {
    let mut out = String::with_capacity(512);
    out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    if opts.soap {
        out.push_str(r#"<soap:Envelope xmlns:soap=""#);
        out.push_str(SOAP11_NS);
        out.push_str(r#""><soap:Body>"#);
    }
    let mut decls = String::new();
    if let Some(ns) = &opts.namespace {
        decls.push_str(" xmlns=\"");
        escape_into(&mut decls, ns);
        decls.push('"');
    }
    for (p, uri) in &opts.namespaces {
        decls.push_str(" xmlns:");
        decls.push_str(p);
        decls.push_str("=\"");
        escape_into(&mut decls, uri);
        decls.push('"');
    }
    match &opts.root {
        Some(root) => write_element(&mut out, root, value, &decls, order)?,
        None => {
            let Value::Object(map) = value else {
                return Err(
                    "XML output needs an object at the top (or set output.xml.root)".into(),
                );
            };
            if map.len() != 1 {
                return Err(format!(
                    "XML output needs exactly one top-level element, the mapping produced {} (set output.xml.root to wrap them)",
                    map.len()
                ));
            }
            let (name, v) = map.iter().next().unwrap();
            write_element(&mut out, name, v, &decls, order)?;
        }
    }
    if opts.soap {
        out.push_str("</soap:Body></soap:Envelope>");
    }
    Ok(out)
}

fn write_element(
    out: &mut String,
    name: &str,
    value: &Value,
    decls: &str,
    order: &KeyOrder,
) -> Result<(), String> {
    if let Value::Array(items) = value {
        for item in items {
            write_element(out, name, item, decls, order)?;
        }
        return Ok(());
    }
    if !valid_name(name) {
        return Err(format!("`{name}` is not a valid XML element name"));
    }
    out.push('<');
    out.push_str(name);
    out.push_str(decls);
    match value {
        Value::Object(map) => {
            let entries = order.sorted(map);
            for (k, v) in &entries {
                if let Some(attr) = k.strip_prefix('@') {
                    if !valid_name(attr) {
                        return Err(format!("`{attr}` is not a valid XML attribute name"));
                    }
                    out.push(' ');
                    out.push_str(attr);
                    out.push_str("=\"");
                    escape_into(out, &scalar_text(v));
                    out.push('"');
                }
            }
            out.push('>');
            for (k, v) in entries {
                if k.starts_with('@') {
                    continue;
                }
                if k == "#text" {
                    escape_into(out, &scalar_text(v));
                } else {
                    write_element(out, k, v, "", order)?;
                }
            }
        }
        Value::Null => {
            out.push_str("/>");
            return Ok(());
        }
        scalar => {
            out.push('>');
            escape_into(out, &scalar_text(scalar));
        }
    }
    out.push_str("</");
    out.push_str(name);
    out.push('>');
    Ok(())
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}
