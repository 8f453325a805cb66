//! The `[evidence]` section: the message log of every exchange (`crate::evidence`).

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// What the message log keeps of each exchange.
#[derive(
    Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum EvidenceMode {
    /// No message log.
    Off,
    /// The default: who, what, when and the SHA-256 digests of the bodies; never the
    /// bodies themselves (no personal data).
    #[default]
    Metadata,
    /// As `metadata`, and the bodies too, sealed with the outbox's key (needs
    /// `[outbox.encryption]`).
    Full,
}

/// The message log: a signed, hash-chained record of every accepted event and every
/// delivery attempt, archived by day.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EvidenceConfig {
    pub mode: EvidenceMode,
    /// Where the day files go; by default `evidence/` in the outbox's data directory.
    pub dir: Option<PathBuf>,
    /// The bus's Ed25519 signing key (64 hex digits); made on the first start when the
    /// file does not exist. By default `evidence.key` in the outbox's data directory.
    pub key_file: Option<PathBuf>,
    /// A signed seal at least this often while records arrive.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub seal_every: Duration,
    /// ... or after this many records, whichever comes first.
    pub seal_records: u64,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        EvidenceConfig {
            mode: EvidenceMode::Metadata,
            dir: None,
            key_file: None,
            seal_every: Duration::from_secs(2),
            seal_records: 10_000,
        }
    }
}

impl EvidenceConfig {
    /// Every problem of the section, as (key, message).
    pub fn problems(&self, encrypted_outbox: bool) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.mode == EvidenceMode::Full && !encrypted_outbox {
            out.push((
                "evidence.mode",
                "`full` keeps the bodies, which hold personal data: set [outbox.encryption] so they are sealed, or use `metadata`".to_string(),
            ));
        }
        if self.seal_every.is_zero() || self.seal_every > Duration::from_secs(3600) {
            out.push((
                "evidence.seal_every",
                "must be more than 0 and at most 1h".to_string(),
            ));
        }
        if !(1..=1_000_000).contains(&self.seal_records) {
            out.push(("evidence.seal_records", "must be 1 to 1000000".to_string()));
        }
        out
    }
}
