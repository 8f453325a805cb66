//! The `file_drop` section of a `kind = "file_drop"` target, as the config holds it.

pub use crate::config::{DropEncoding, FileDropConfig};
