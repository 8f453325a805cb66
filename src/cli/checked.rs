//! A configuration loaded for a command: read, then checked, every problem printed with
//! its key path.

use crate::config::{self, Config};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

/// The configuration at `path` and the unit keys it resolves to, or the exit code after
/// printing what is wrong.
pub fn load(path: &Path) -> Result<(Config, BTreeMap<String, String>), ExitCode> {
    let cfg = config::load_file(path).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    match config::validate(&cfg, |var| std::env::var(var).ok()) {
        Ok(keys) => Ok((cfg, keys)),
        Err(problems) => {
            eprintln!(
                "error: {} has {} problem(s):",
                path.display(),
                problems.len()
            );
            for p in problems {
                eprintln!("  - {p}");
            }
            Err(ExitCode::from(2))
        }
    }
}
