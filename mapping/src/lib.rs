//! The mapping language of lienthong: declarative TOML files that translate a unit's own
//! messages into a national platform's format (and replies back), with no rebuild.
//!
//! ```text
//! input bytes ─► codec::decode_records (JSON | XML/SOAP | CSV) ─► records (JSON-shaped values)
//!   record ─► Mapping::map (rules in order: select ► transform ► table ► date ► type ► place)
//!          ─► schema check ─► codec::encode (JSON | XML/SOAP | CSV) ─► output bytes
//! ```
//!
//! * [`spec`] is the file format, [`compile`] turns a file into a [`Mapping`] and reports
//!   every problem with its file, line and field; [`engine`] runs it.
//! * [`codec`] reads and writes JSON, XML (SOAP 1.1, attributes, CDATA; no DOCTYPE) and CSV.
//! * [`text`] converts TCVN3 and VNI to Unicode; [`datetime`] reads and writes dates;
//!   [`schema`] checks output against what the target accepts.
//! * [`fixtures`] runs the example cases that sit beside each mapping.
//!
//! The language itself is documented for unit IT teams in `mappings/README.md`.
#![forbid(unsafe_code)]

pub mod codec;
pub mod compile;
pub mod datetime;
pub mod engine;
pub mod error;
pub mod fixtures;
mod input_schema;
pub mod path;
pub mod schema;
pub mod spec;
pub mod text;

pub use codec::{DecodeError, Format};
pub use compile::{compile_file, compile_str};
pub use error::{CompileError, CompileErrors, MappingError};

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A compiled mapping, ready to run. Cheap to share: it is immutable.
#[derive(Debug)]
pub struct Mapping {
    pub file: PathBuf,
    pub description: String,
    decode: codec::DecodeOptions,
    encode: codec::EncodeOptions,
    rules: Vec<engine::Rule>,
    schema: Option<Arc<schema::Schema>>,
}

impl Mapping {
    /// Compile the mapping at `file`; `mappings_root` holds `_schemas/`.
    pub fn load(file: &Path, mappings_root: &Path) -> Result<Mapping, CompileErrors> {
        compile_file(file, mappings_root)
    }

    pub fn input_format(&self) -> Format {
        self.decode.format
    }

    pub fn output_format(&self) -> Format {
        self.encode.format
    }

    /// The content type of what [`Mapping::render`] produces.
    pub fn content_type(&self) -> &'static str {
        self.encode.format.content_type()
    }

    pub fn decode_options(&self) -> &codec::DecodeOptions {
        &self.decode
    }

    /// Decode raw input in this mapping's input format into records.
    pub fn decode(&self, input: &[u8]) -> Result<Vec<Value>, DecodeError> {
        codec::decode_records(input, &self.decode)
    }

    /// Map one record and check the result against the target's schema.
    pub fn map(&self, record: &Value) -> Result<Value, MappingError> {
        let out = Value::Object(engine::run(&self.rules, record, record)?);
        if let Some(schema) = &self.schema {
            schema.check(&out)?;
        }
        Ok(out)
    }

    /// Map one record and write it in the output format.
    pub fn render(&self, record: &Value) -> Result<Vec<u8>, MappingError> {
        let out = self.map(record)?;
        self.encode_value(&out)
    }

    /// JSON Schema of the record this mapping reads (see [`input_schema`]).
    pub fn input_schema(&self) -> Value {
        input_schema::input_schema(&self.rules, self.schema.as_deref())
    }

    /// JSON Schema of what this mapping writes: its output fields.
    pub fn output_schema(&self) -> Value {
        input_schema::output_schema(&self.rules, self.schema.as_deref())
    }

    /// Write an already-mapped value in the output format.
    pub fn encode_value(&self, out: &Value) -> Result<Vec<u8>, MappingError> {
        codec::encode(out, &self.encode).map_err(|e| MappingError::new("(output)", None, e))
    }
}
