//! Reading the config file and applying `LIENTHONG_<SECTION>__<KEY>` environment overrides.

use super::Config;
use std::path::{Path, PathBuf};

/// Prefix of override variables. Only variables with `__` after the prefix are overrides
/// (`LIENTHONG_SERVER__LISTEN`, `LIENTHONG_TARGETS__PORTAL__URL`); others such as the unit
/// key variables named by `key_env` are left alone.
const ENV_PREFIX: &str = "LIENTHONG_";

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {var}: {message}")]
    Override { var: String, message: String },
}

/// Load a config file, applying environment overrides from the process environment and
/// the mocks' scenario file when one is named.
pub fn load_file(path: &Path) -> Result<Config, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut config = load_str(&text, path, std::env::vars())?;
    config.source = Some(path.to_path_buf());
    if let Some(scenario) = config.mocks.scenario.clone() {
        apply_scenario(&mut config, &scenario)?;
    }
    Ok(config)
}

/// Add a scenario file's fault rules to the mocks' (and its seed, if it sets one).
pub fn apply_scenario(config: &mut Config, path: &Path) -> Result<(), LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let scenario: super::Scenario = toml::from_str(&text).map_err(|e| LoadError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if let Some(seed) = scenario.seed {
        config.mocks.seed = seed;
    }
    config.mocks.faults.extend(scenario.faults);
    config.mocks.scenario = Some(path.to_path_buf());
    Ok(())
}

/// Whether an environment variable is a config override (`LIENTHONG_<SECTION>__<KEY>`).
fn is_override(var: &str) -> bool {
    var.starts_with(ENV_PREFIX) && var[ENV_PREFIX.len()..].contains("__")
}

/// Parse config text, applying the overrides found among `vars`. Relative paths of the
/// text are taken as relative to `path`'s folder, those of overrides to the working
/// directory (see `config/paths.rs`).
pub fn load_str(
    text: &str,
    path: &Path,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, LoadError> {
    let overrides: Vec<(String, String)> =
        vars.into_iter().filter(|(k, _)| is_override(k)).collect();
    let overridden: Vec<String> = overrides
        .iter()
        .map(|(k, _)| super::paths::override_key(k, ENV_PREFIX))
        .collect();
    let mut config = parse_with_overrides(text, path, overrides)?;
    if let Some(base) = path.parent().filter(|b| !b.as_os_str().is_empty()) {
        super::paths::resolve_relative_to(&mut config, base, &|key| {
            super::paths::is_overridden(key, &overridden)
        });
    }
    Ok(config)
}

fn parse_with_overrides(
    text: &str,
    path: &Path,
    overrides: Vec<(String, String)>,
) -> Result<Config, LoadError> {
    let parse_error = |e: toml::de::Error| LoadError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    if overrides.is_empty() {
        // Straight from the text, so errors carry line and column.
        return toml::from_str(text).map_err(parse_error);
    }
    let mut table: toml::Table = toml::from_str(text).map_err(parse_error)?;
    for (var, value) in overrides {
        apply_override(&mut table, &var, &value)?;
    }
    Config::deserialize_table(table).map_err(|e| LoadError::Parse {
        path: path.to_path_buf(),
        message: format!("{e} (after applying LIENTHONG_* environment overrides)"),
    })
}

impl Config {
    fn deserialize_table(table: toml::Table) -> Result<Config, toml::de::Error> {
        // Round-trip through text: simplest way to reuse the strict deserializer.
        let text = toml::to_string(&table).unwrap_or_default();
        toml::from_str(&text)
    }
}

/// Set `a.b.c` in the table from `LIENTHONG_A__B__C=value`. The value is read as a TOML
/// value when it parses as one (numbers, booleans, arrays, inline tables) and as a string
/// otherwise.
fn apply_override(table: &mut toml::Table, var: &str, value: &str) -> Result<(), LoadError> {
    let path: Vec<String> = var[ENV_PREFIX.len()..]
        .split("__")
        .map(|s| s.to_ascii_lowercase())
        .collect();
    if path.iter().any(|s| s.is_empty()) {
        return Err(LoadError::Override {
            var: var.to_string(),
            message: "empty key segment".into(),
        });
    }
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    let (last, parents) = path.split_last().expect("at least one segment");
    let mut node = table;
    for segment in parents {
        let entry = node
            .entry(segment.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = entry.as_table_mut().ok_or_else(|| LoadError::Override {
            var: var.to_string(),
            message: format!("`{segment}` is not a table in the config file"),
        })?;
    }
    node.insert(last.clone(), parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
        [server]
        listen = "127.0.0.1:8080"
        [targets.portal]
        kind = "http"
        url = "http://127.0.0.1:9090/portal"
    "#;

    #[test]
    fn env_overrides_nested_keys_with_typed_values() {
        let vars = vec![
            (
                "LIENTHONG_SERVER__LISTEN".to_string(),
                "127.0.0.1:0".to_string(),
            ),
            (
                "LIENTHONG_TARGETS__PORTAL__CONCURRENCY".to_string(),
                "3".to_string(),
            ),
            (
                "LIENTHONG_UNIT_KEY_STAMEQ".to_string(),
                "not-an-override".to_string(),
            ),
        ];
        let cfg = load_str(BASE, Path::new("t.toml"), vars).unwrap();
        assert_eq!(cfg.server.listen.port(), 0);
        assert_eq!(cfg.targets["portal"].concurrency, 3);
    }

    #[test]
    fn unknown_keys_are_errors_with_their_name() {
        let err = load_str(
            "[server]\nlisten_addr = \"x\"\n",
            Path::new("t.toml"),
            vec![],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("listen_addr"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn secrets_cannot_be_written_in_the_file() {
        let text = "[units.stameq]\nkey_env = \"K\"\nkey = \"secret\"\n";
        let err = load_str(text, Path::new("t.toml"), vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `key`"), "{err}");
    }
}
