//! Codecs: how a unit's message becomes the JSON-shaped value a mapping reads, and how a
//! mapping's result is written for the target. JSON, XML (with SOAP 1.1) and CSV.

pub mod csv;
pub mod json;
pub mod xml;

pub use crate::wire::{DecodeError, Format, json_error, line_column};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// How an input is decoded into records.
#[derive(Clone, Debug, Default)]
pub struct DecodeOptions {
    pub format: Format,
    pub xml_limits: xml::XmlLimits,
    pub csv: csv::CsvOptions,
    /// Path (dot-separated) to the element or array holding one record each; without it the
    /// whole document is one record.
    pub records: Option<Vec<String>>,
}

/// Decode one input into its records.
pub fn decode_records(input: &[u8], opts: &DecodeOptions) -> Result<Vec<Value>, DecodeError> {
    let doc = match opts.format {
        Format::Json => decode_json(input, opts.xml_limits)?,
        Format::Xml => xml::decode(input, opts.xml_limits)?,
        // CSV is a list of records by nature.
        Format::Csv => return csv::decode(input, &opts.csv),
    };
    split_records(doc, opts.records.as_deref())
}

fn decode_json(input: &[u8], limits: xml::XmlLimits) -> Result<Value, DecodeError> {
    if input.len() > limits.max_bytes {
        return Err(DecodeError::too_large(input.len(), limits.max_bytes));
    }
    // serde_json refuses nesting past 128 levels by itself.
    serde_json::from_slice(input).map_err(json_error)
}

/// Take the records out of a decoded document: the value at `path`, one record per element
/// when it is an array. A single repeated XML element decodes as an object, so one record.
pub fn split_records(doc: Value, path: Option<&[String]>) -> Result<Vec<Value>, DecodeError> {
    let Some(path) = path else {
        return Ok(match doc {
            Value::Array(items) => items,
            other => vec![other],
        });
    };
    let mut cur = doc;
    for seg in path {
        cur = match cur {
            Value::Object(mut map) => map.remove(seg).ok_or_else(|| DecodeError::Shape {
                message: format!(
                    "no `{seg}` in the input (records are at `{}`)",
                    path.join(".")
                ),
            })?,
            _ => {
                return Err(DecodeError::Shape {
                    message: format!("records are expected at `{}`", path.join(".")),
                });
            }
        };
    }
    Ok(match cur {
        Value::Array(items) => items,
        Value::String(s) if s.is_empty() => Vec::new(),
        other => vec![other],
    })
}

/// The order fields are written in where order matters (XML elements of a SOAP sequence,
/// CSV columns): the order in which a mapping's rules first name each field. Fields it
/// does not know come after, alphabetically.
#[derive(Clone, Debug, Default)]
pub struct KeyOrder(HashMap<String, usize>);

impl KeyOrder {
    /// Add `key` at the end if it is not known yet.
    pub fn push(&mut self, key: &str) {
        let next = self.0.len();
        self.0.entry(key.to_string()).or_insert(next);
    }

    /// The entries of `map` in this order.
    pub fn sorted<'a>(&self, map: &'a Map<String, Value>) -> Vec<(&'a String, &'a Value)> {
        let mut entries: Vec<_> = map.iter().collect();
        entries.sort_by_key(|(k, _)| self.0.get(k.as_str()).copied().unwrap_or(usize::MAX));
        entries
    }
}

/// How a result is written.
#[derive(Clone, Debug, Default)]
pub struct EncodeOptions {
    pub format: Format,
    pub xml: xml::XmlWriteOptions,
    pub csv_delimiter: u8,
    pub key_order: Arc<KeyOrder>,
}

/// Write one mapped record in the target's format.
pub fn encode(value: &Value, opts: &EncodeOptions) -> Result<Vec<u8>, String> {
    match opts.format {
        Format::Json => serde_json::to_vec(value).map_err(|e| e.to_string()),
        Format::Xml => xml::encode(value, &opts.xml, &opts.key_order).map(String::into_bytes),
        Format::Csv => csv::encode(value, opts.csv_delimiter, &opts.key_order),
    }
}
