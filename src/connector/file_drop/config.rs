//! The `file_drop` section of a `kind = "file_drop"` target.

use serde::Deserialize;

/// The encoding a unit's import job reads.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DropEncoding {
    #[default]
    #[serde(rename = "utf-8")]
    Utf8,
    /// TCVN 5712:1993 (VN3), one byte per character: the IP Office's old systems.
    Tcvn3,
}

/// How files are written into the drop folder (the target's `url` names the folder).
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileDropConfig {
    #[serde(default)]
    pub encoding: DropEncoding,
    /// The file name extension; default from the mapped body's content type (`csv`,
    /// `xml`, `json`).
    #[serde(default)]
    pub extension: Option<String>,
}
