//! The mapping file format as it is written: TOML, read strictly (an unknown key is an
//! error, so a typo never silently does nothing). [`crate::compile`] turns it into a
//! runnable [`crate::Mapping`].

use crate::wire::Format;
use crate::wire::TextEncoding;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct MappingFile {
    pub mapping: Header,
    #[serde(default)]
    pub input: InputSpec,
    #[serde(default)]
    pub output: OutputSpec,
    /// Code tables by name, inline or from a shared file.
    #[serde(default)]
    pub tables: BTreeMap<String, Spanned<TableSpec>>,
    /// The rules, applied in order.
    #[serde(default)]
    pub field: Vec<Spanned<FieldSpec>>,
    /// Named sub-mappings for `each` rules.
    #[serde(default)]
    pub sub: BTreeMap<String, Vec<Spanned<FieldSpec>>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// What this mapping does, in a line.
    pub description: String,
    /// Output schema checked after mapping: `mappings/_schemas/<schema>.toml`.
    pub schema: Option<String>,
    /// Zone of dates that carry none (default Asia/Ho_Chi_Minh).
    pub timezone: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    #[serde(default)]
    pub format: Format,
    /// Dot path to the repeated element holding one record each (batch exports).
    pub records: Option<String>,
    /// Character encoding of CSV input.
    #[serde(default)]
    pub encoding: TextEncoding,
    /// CSV field delimiter (default `,`).
    pub delimiter: Option<char>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    #[serde(default)]
    pub format: Format,
    pub xml: Option<XmlOutputSpec>,
    pub delimiter: Option<char>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct XmlOutputSpec {
    pub root: Option<String>,
    #[serde(default)]
    pub soap: bool,
    pub namespace: Option<String>,
    #[serde(default)]
    pub namespaces: BTreeMap<String, String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// A shared table file (relative to the mapping file) with `values`, `default`, `ignore_case`.
    pub file: Option<String>,
    pub values: Option<BTreeMap<String, toml::Value>>,
    /// Used for a code not in the table; without it an unknown code is a mapping error.
    pub default: Option<toml::Value>,
    #[serde(default)]
    pub ignore_case: bool,
}

/// A shared table file.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct TableFile {
    pub description: Option<String>,
    pub values: BTreeMap<String, toml::Value>,
    pub default: Option<toml::Value>,
    #[serde(default)]
    pub ignore_case: bool,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Output path.
    pub to: String,
    /// Input path, or a list: the first one present is used.
    pub from: Option<OneOrMany>,
    #[serde(rename = "const")]
    pub constant: Option<toml::Value>,
    /// Text with `{path}` placeholders.
    pub template: Option<String>,
    /// Refuse the record with this message (a template) when the rule applies: use it with
    /// `when` to turn an error reply or an impossible combination into a mapping error.
    pub fail: Option<String>,
    /// Input array: each element goes through the sub-mapping named by `with`.
    pub each: Option<String>,
    pub with: Option<String>,
    pub when: Option<WhenSpec>,
    #[serde(default)]
    pub transform: Vec<String>,
    pub table: Option<String>,
    pub date: Option<DateSpec>,
    #[serde(rename = "type")]
    pub value_type: Option<String>,
    pub default: Option<toml::Value>,
    #[serde(default)]
    pub required: bool,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct WhenSpec {
    pub exists: Option<String>,
    pub missing: Option<String>,
    pub path: Option<String>,
    pub equals: Option<toml::Value>,
    pub not_equals: Option<toml::Value>,
    #[serde(rename = "in")]
    pub one_of: Option<Vec<toml::Value>>,
    /// Compare text without regard to case.
    #[serde(default)]
    pub ignore_case: bool,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct DateSpec {
    /// Source format(s): a pattern like `dd/MM/yyyy HH:mm`, or iso8601, epoch, epoch_ms.
    pub from: OneOrMany,
    pub to: String,
    /// Zone of source dates without one (default: the mapping's timezone).
    pub zone: Option<String>,
    /// Zone the output is written in (default: the mapping's timezone).
    pub to_zone: Option<String>,
}

/// Convert a TOML value to JSON (dates become strings).
pub fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => J::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}
