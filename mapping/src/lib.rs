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
//!   every problem with its file, line and field; [`plan`] is the compiled engine that runs
//!   it, and [`engine`] the rule interpreter it replaced, kept as the reference the
//!   differential test holds the compiled engine to.
//! * [`codec`] reads and writes JSON, XML (SOAP 1.1, attributes, CDATA; no DOCTYPE) and CSV.
//! * [`text`] converts TCVN3 and VNI to Unicode; [`datetime`] reads and writes dates;
//!   [`schema`] checks output against what the target accepts; [`wire`] names the formats,
//!   CSV text encodings and decode errors every part shares.
//! * [`fixtures`] runs the example cases that sit beside each mapping.
//!
//! The language itself is documented for unit IT teams in `mappings/README.md`.
#![forbid(unsafe_code)]

pub mod codec;
pub mod compile;
pub mod datetime;
pub mod detect;
pub mod door;
pub mod engine;
pub mod error;
pub mod explain;
pub mod fixtures;
mod input_schema;
pub mod path;
pub mod plan;
pub mod scaffold;
pub mod schema;
pub mod spec;
pub mod text;
pub mod wire;

pub use codec::{DecodeError, Format};
pub use compile::{compile_file, compile_str};
pub use error::{CompileError, CompileErrors, MappingError};

use plan::value::Sel;
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
    /// The compiled engine's plan; `None` for the rare mapping only the interpreter runs
    /// (see [`plan`]).
    plan: Option<plan::Plan>,
    /// The fields of a record the rules read, and of a whole input document.
    record_fields: plan::want::Want,
    document_fields: plan::want::Want,
    /// The published input schema, compiled for the door check ([`door`]).
    door: door::SchemaCheck,
}

/// Why an input could not be rendered: it could not be read, or its record not mapped.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum RenderError {
    #[error("input: {0}")]
    Input(DecodeError),
    #[error("{0}")]
    Mapping(MappingError),
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

    /// Accept inputs of up to `max_bytes` (the decoders' own limit is 16 MiB): the bus
    /// raises it to the largest body a route of its may take, so that the decoder never
    /// refuses what the door let in.
    pub fn allow_input_bytes(&mut self, max_bytes: usize) {
        let limits = &mut self.decode;
        limits.xml_limits.max_bytes = limits.xml_limits.max_bytes.max(max_bytes);
        limits.csv.max_bytes = limits.csv.max_bytes.max(max_bytes);
    }

    /// Decode raw input in this mapping's input format into records.
    pub fn decode(&self, input: &[u8]) -> Result<Vec<Value>, DecodeError> {
        codec::decode_records(input, &self.decode)
    }

    /// Map one record and check the result against the target's schema.
    pub fn map(&self, record: &Value) -> Result<Value, MappingError> {
        match &self.plan {
            Some(plan) => {
                let root = Sel::Json(record);
                Ok(self.run(plan, root)?.to_value())
            }
            None => self.map_interpreted(record),
        }
    }

    /// Map one record and write it in the output format.
    pub fn render(&self, record: &Value) -> Result<Vec<u8>, MappingError> {
        let mut out = Vec::new();
        match &self.plan {
            Some(plan) => self.write(&self.run(plan, Sel::Json(record))?, &mut out)?,
            None => out = self.render_interpreted(record)?,
        }
        Ok(out)
    }

    /// Map one record given as JSON text (an event as the outbox keeps it) and write it in
    /// the output format: the JSON is read once, keeping only the fields the mapping reads.
    pub fn render_json(&self, record: &[u8]) -> Result<Vec<u8>, RenderError> {
        let Some(plan) = &self.plan else {
            let value: Value = serde_json::from_slice(record)
                .map_err(|e| RenderError::Input(codec::json_error(e)))?;
            return self
                .render_interpreted(&value)
                .map_err(RenderError::Mapping);
        };
        let value = plan::want::read_json(
            record,
            Some(&self.record_fields),
            self.decode.xml_limits.max_bytes,
        )
        .map_err(RenderError::Input)?;
        let mut out = Vec::new();
        let mapped = self
            .run(plan, Sel::Val(&value))
            .map_err(RenderError::Mapping)?;
        self.write(&mapped, &mut out)
            .map_err(RenderError::Mapping)?;
        Ok(out)
    }

    /// Decode an input in this mapping's input format and render each of its records:
    /// what the bus does with a unit's message, in one pass over the bytes.
    pub fn translate(
        &self,
        input: &[u8],
    ) -> Result<Vec<Result<Vec<u8>, MappingError>>, DecodeError> {
        let Some(plan) = &self.plan else {
            let records = self.decode(input)?;
            return Ok(records.iter().map(|r| self.render_interpreted(r)).collect());
        };
        let path = self.decode.records.as_deref();
        let render = |root: Sel<'_, '_>| {
            let mut out = Vec::new();
            self.write(&self.run(plan, root)?, &mut out)?;
            Ok(out)
        };
        Ok(match self.decode.format {
            Format::Json => {
                let doc = plan::want::read_json(
                    input,
                    Some(&self.document_fields),
                    self.decode.xml_limits.max_bytes,
                )?;
                let records = plan::value::split_records(doc, path)?;
                records.iter().map(|r| render(Sel::Val(r))).collect()
            }
            Format::Xml => {
                let doc = codec::xml::decode_val(input, self.decode.xml_limits)?;
                let records = plan::value::split_records(doc, path)?;
                records.iter().map(|r| render(Sel::Val(r))).collect()
            }
            Format::Csv => {
                let records = self.decode(input)?;
                records.iter().map(|r| render(Sel::Json(r))).collect()
            }
        })
    }

    /// The compiled plan over one record, schema-checked.
    fn run<'a>(
        &'a self,
        plan: &'a plan::Plan,
        root: Sel<'_, 'a>,
    ) -> Result<plan::output::Record<'a>, MappingError> {
        let out = plan.run(&self.rules, root, root)?;
        if let Some(schema) = &self.schema {
            schema.check_record(out.root())?;
        }
        Ok(out)
    }

    /// Write a mapped record in the output format: JSON straight from its slots.
    fn write(
        &self,
        record: &plan::output::Record<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), MappingError> {
        match self.encode.format {
            Format::Json => {
                // About what a portal record takes: one allocation instead of a dozen
                // doublings.
                out.reserve(1536);
                record.root().write_json(out);
                Ok(())
            }
            _ => {
                out.extend(self.encode_value(&record.to_value())?);
                Ok(())
            }
        }
    }

    /// Whether the compiled engine runs this mapping (else the interpreter does).
    pub fn is_compiled(&self) -> bool {
        self.plan.is_some()
    }

    /// [`Mapping::map`] by the rule interpreter: the reference the compiled engine is
    /// tested against.
    pub fn map_interpreted(&self, record: &Value) -> Result<Value, MappingError> {
        let out = Value::Object(engine::run(&self.rules, record, record)?);
        if let Some(schema) = &self.schema {
            schema.check(&out)?;
        }
        Ok(out)
    }

    /// [`Mapping::render`] by the rule interpreter.
    pub fn render_interpreted(&self, record: &Value) -> Result<Vec<u8>, MappingError> {
        let out = self.map_interpreted(record)?;
        self.encode_value(&out)
    }

    /// The door's verdict on one record ([`door`]): every missing field and misplaced
    /// object or list the published schema finds, else the first problem the mapping finds
    /// when run without sending; empty when the record can be delivered (as far as the
    /// bus can know).
    pub fn check_record(&self, record: &Value) -> Vec<door::Problem> {
        self.check_and_render(record).err().unwrap_or_default()
    }

    /// [`Mapping::check_record`] keeping the body the mapping wrote, so that the first
    /// delivery attempt sends it instead of running the mapping a second time.
    pub fn check_and_render(&self, record: &Value) -> Result<Vec<u8>, Vec<door::Problem>> {
        let mut problems = Vec::new();
        self.door
            .check(record, &mut Vec::new(), self.door_mode(), &mut problems);
        if !problems.is_empty() {
            problems.sort();
            problems.dedup();
            return Err(problems);
        }
        self.render_checked(record).map_err(|p| vec![p])
    }

    /// The mapping run on `record` without sending: its first refusal, at the input path
    /// it read; empty when it maps. The door's second step, after the schema.
    pub fn dry_run(&self, record: &Value) -> Vec<door::Problem> {
        self.render_checked(record).err().into_iter().collect()
    }

    /// The body this mapping writes for `record` (what [`Mapping::render`] gives), or its
    /// first refusal at the input path it read: the door's dry run, whose body the first
    /// delivery attempt can send.
    pub fn render_checked(&self, record: &Value) -> Result<Vec<u8>, door::Problem> {
        self.render(record).map_err(|mut e| {
            // Refused by the target's schema after mapping: the rule's input names it.
            if e.source.is_none() {
                e.source = self.source_of(&e.field);
            }
            door::Problem::of_mapping(&e)
        })
    }

    /// How much of the published schema the door enforces: all of it, for JSON as JSON
    /// Schema reads it, for XML and CSV (all text) reading text as the number, code or
    /// list the schema names ([`door::Mode::Text`]).
    fn door_mode(&self) -> door::Mode {
        door::Mode::of_format(self.decode.format)
    }

    /// The first input path of the top-level rule that writes `field`.
    fn source_of(&self, field: &str) -> Option<String> {
        self.rules
            .iter()
            .find(|r| r.to.text == field)
            .and_then(|r| match &r.source {
                engine::Source::Paths(paths) => paths.first().map(|p| p.text.clone()),
                _ => None,
            })
    }

    /// Every problem of `record` against the published input schema, all keywords read
    /// as JSON Schema reads them ([`door::Mode::Published`]).
    pub fn check_against_schema(&self, record: &Value) -> Vec<door::Problem> {
        let mut problems = Vec::new();
        self.door.check(
            record,
            &mut Vec::new(),
            door::Mode::Published,
            &mut problems,
        );
        problems
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
