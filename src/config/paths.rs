//! Relative paths written in a config file are relative to the file's folder, not to the
//! directory the bus happens to be started from: `lienthong run --config /srv/bus/x.toml`
//! finds `mappings = "mappings"` in `/srv/bus/mappings` wherever it is started. Paths given
//! in `LIENTHONG_*` environment overrides (and on the command line) stay relative to the
//! working directory, where the person who typed them stands.

use super::{Config, TargetKind};
use std::path::{Path, PathBuf};

/// Resolve every relative path of `config` that came from the file against `base` (the
/// file's folder). `overridden(key)` tells whether an environment override set `key`
/// (e.g. `outbox.data_dir`) or a table above it.
pub fn resolve_relative_to(config: &mut Config, base: &Path, overridden: &dyn Fn(&str) -> bool) {
    let fix = |key: &str, p: &mut PathBuf| {
        if p.is_relative() && !overridden(key) {
            *p = joined(base, p);
        }
    };
    let fix_opt = |key: &str, p: &mut Option<PathBuf>| {
        if let Some(p) = p {
            fix(key, p);
        }
    };
    fix("outbox.data_dir", &mut config.outbox.data_dir);
    if let Some(e) = &mut config.outbox.encryption {
        fix_opt("outbox.encryption.keys_file", &mut e.keys_file);
        fix_opt("outbox.encryption.dev_keys_file", &mut e.dev_keys_file);
    }
    fix("mappings.dir", &mut config.mappings.dir);
    fix_opt("inbox.dir", &mut config.inbox.dir);
    fix_opt("audit.path", &mut config.audit.path);
    fix_opt("mocks.ipo_drop_dir", &mut config.mocks.ipo_drop_dir);
    fix_opt("mocks.scenario", &mut config.mocks.scenario);
    if let Some(tls) = &mut config.server.tls {
        fix("server.tls.cert_file", &mut tls.cert_file);
        fix("server.tls.key_file", &mut tls.key_file);
    }
    if let Some(tls) = &mut config.amqp.tls {
        fix_tls("amqp.tls", tls, &fix_opt);
    }
    for (name, target) in &mut config.targets {
        let key = format!("targets.{name}");
        if let Some(tls) = &mut target.tls {
            fix_tls(&format!("{key}.tls"), tls, &fix_opt);
        }
        // A file_drop target's folder, written as a plain relative path.
        if target.kind == TargetKind::FileDrop
            && !target.url.contains("://")
            && Path::new(&target.url).is_relative()
            && !overridden(&format!("{key}.url"))
        {
            target.url = joined(base, Path::new(&target.url))
                .to_string_lossy()
                .into_owned();
        }
    }
}

/// `base/rel` without `.` and with `dir/..` folded (`config/../mappings` is `mappings`), so
/// messages name the path as a person would write it.
fn joined(base: &Path, rel: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in base.join(rel).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

fn fix_tls(key: &str, tls: &mut super::TlsConfig, fix_opt: &dyn Fn(&str, &mut Option<PathBuf>)) {
    fix_opt(&format!("{key}.ca_file"), &mut tls.ca_file);
    fix_opt(&format!("{key}.client_cert"), &mut tls.client_cert);
    fix_opt(&format!("{key}.client_key"), &mut tls.client_key);
}

/// The config key an override variable sets: `LIENTHONG_OUTBOX__DATA_DIR` → `outbox.data_dir`.
pub fn override_key(var: &str, prefix: &str) -> String {
    var[prefix.len()..]
        .split("__")
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join(".")
}

/// Whether `key` was set by one of `overrides` (the key itself or a table above it).
pub fn is_overridden(key: &str, overrides: &[String]) -> bool {
    overrides.iter().any(|o| {
        key == o
            || key
                .strip_prefix(o.as_str())
                .is_some_and(|r| r.starts_with('.'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_covers_its_key_and_the_keys_below_it() {
        let o = vec![
            override_key("LIENTHONG_OUTBOX__DATA_DIR", "LIENTHONG_"),
            override_key("LIENTHONG_TARGETS__PORTAL__TLS", "LIENTHONG_"),
        ];
        assert!(is_overridden("outbox.data_dir", &o));
        assert!(is_overridden("targets.portal.tls.ca_file", &o));
        assert!(!is_overridden("targets.portal_b.tls.ca_file", &o));
        assert!(!is_overridden("mappings.dir", &o));
    }

    #[test]
    fn paths_are_joined_as_a_person_would_write_them() {
        assert_eq!(
            joined(Path::new("config"), Path::new("../mappings")),
            PathBuf::from("mappings")
        );
        assert_eq!(
            joined(Path::new("config"), Path::new("./dev.keys")),
            PathBuf::from("config/dev.keys")
        );
        assert_eq!(
            joined(Path::new("/srv/bus"), Path::new("../data")),
            PathBuf::from("/srv/data")
        );
        assert_eq!(
            joined(Path::new("config"), Path::new("..")),
            PathBuf::from(".")
        );
        assert_eq!(
            joined(Path::new("../x"), Path::new("../y")),
            PathBuf::from("../y")
        );
    }
}
