//! The errors of the mapping language: compiling a file, and mapping a record.

use std::fmt;
use std::path::PathBuf;

/// A problem in a mapping, schema or table file, with where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct CompileError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is about the file as a whole.
    pub line: usize,
    /// The output field (`to`) of the rule, when the problem is in a rule.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for CompileError {}

/// Every problem found in one file (or set of files), reported together.
#[derive(Debug, Clone, PartialEq)]
pub struct CompileErrors(pub Vec<CompileError>);

impl fmt::Display for CompileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CompileErrors {}

/// Why a record could not be mapped. Permanent: the record will not map better next time,
/// so the relay sends it to dead letters with this text.
#[derive(Debug, Clone, PartialEq)]
pub struct MappingError {
    /// Output field, with concrete indexes (`data[0].TaiLieuNop[1].TenTepDinhKem`).
    pub field: String,
    /// Input path the value came from, when there was one.
    pub source: Option<String>,
    pub reason: String,
}

impl MappingError {
    pub fn new(field: &str, source: Option<&str>, reason: impl Into<String>) -> Self {
        MappingError {
            field: field.to_string(),
            source: source.map(str::to_string),
            reason: reason.into(),
        }
    }

    /// The same error seen from an enclosing `each` rule over `parent_source`: both paths
    /// gain the element's index (a source read from `$root` stays as it is).
    pub fn nested(mut self, parent: &str, parent_source: &str, index: usize) -> Self {
        self.field = format!("{parent}[{index}].{}", self.field);
        self.source = self.source.map(|s| match s.as_str() {
            "$" => format!("{parent_source}[{index}]"),
            "$root" => String::new(),
            _ => match s.strip_prefix("$root.") {
                Some(rest) => rest.to_string(),
                None => format!("{parent_source}[{index}].{s}"),
            },
        });
        self
    }
}

impl fmt::Display for MappingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`", self.field)?;
        if let Some(s) = &self.source {
            write!(f, " (from `{s}`)")?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for MappingError {}
