//! The bytes on the wire, as every part of the mapping crate names them: the formats (JSON,
//! XML, CSV), the text encodings of a CSV file, and why an input could not be decoded.
//!
//! The codecs decode into the compiled engine's values (`plan`), while the plan, the mapping
//! files (`spec`) and the schemas name formats and decode errors: so these live here, below
//! all of them, and `codec` re-exports them where callers have always found them.

use serde::Deserialize;

/// A wire format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Json,
    Xml,
    Csv,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Xml => "xml",
            Format::Csv => "csv",
        }
    }

    /// The HTTP content type a target receives in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Xml => "text/xml; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }

    /// The file extension of fixtures in this format.
    pub fn extension(self) -> &'static str {
        self.name()
    }

    /// The format a `Content-Type` header names, if it is one of ours.
    pub fn from_content_type(ct: &str) -> Option<Format> {
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/json" => Some(Format::Json),
            "application/xml" | "text/xml" | "application/soap+xml" => Some(Format::Xml),
            "text/csv" => Some(Format::Csv),
            e if e.ends_with("+json") => Some(Format::Json),
            e if e.ends_with("+xml") => Some(Format::Xml),
            _ => None,
        }
    }
}

/// The character encoding of an input file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TextEncoding {
    #[default]
    #[serde(alias = "utf-8")]
    Utf8,
    /// Every byte is one character (ISO-8859-1), so TCVN3 fields survive for a `tcvn3`
    /// transform on the fields that need it.
    Latin1,
    /// The whole file is TCVN3 (ABC).
    Tcvn3,
    /// The whole file is VNI (VNI-Windows fonts: letters followed by mark bytes).
    Vni,
    /// The whole file is Windows-1258 (Vietnamese Windows code page: base letters and
    /// combining tone marks, composed to NFC on reading).
    #[serde(rename = "windows-1258", alias = "cp1258")]
    Windows1258,
}

impl TextEncoding {
    /// How a mapping's `[input] encoding` names it.
    pub fn option_name(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "utf-8",
            TextEncoding::Latin1 => "latin1",
            TextEncoding::Tcvn3 => "tcvn3",
            TextEncoding::Vni => "vni",
            TextEncoding::Windows1258 => "windows-1258",
        }
    }
}

/// Why an input could not be decoded. Every variant says where and what, in words a unit IT
/// team can act on.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{message}")]
    Encoding { message: String },
    #[error("{message}")]
    Forbidden { message: String },
    #[error("input is nested deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("input is {size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("{message}")]
    Shape { message: String },
}

impl DecodeError {
    /// A syntax error at a byte offset of `text`, turned into line and column.
    pub fn syntax(text: &str, offset: usize, message: String) -> DecodeError {
        let (line, column) = line_column(text, offset);
        DecodeError::Syntax {
            line,
            column,
            message,
        }
    }

    pub fn too_large(size: usize, limit: usize) -> DecodeError {
        DecodeError::TooLarge { size, limit }
    }
}

/// 1-based line and column of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// A JSON syntax error, with its line and column.
pub fn json_error(e: serde_json::Error) -> DecodeError {
    DecodeError::Syntax {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    }
}
