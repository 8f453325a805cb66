//! The `[admin]` section: who may use the admin API and the dashboard (tokens by role,
//! given by environment variable or digest), sessions, and the dashboard's sampling.

use serde::Deserialize;
use std::time::Duration;

/// Who may use the admin API and dashboard.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    #[serde(default)]
    pub tokens: Vec<AdminTokenConfig>,
    /// How often the dashboard's KPIs are computed again from the outbox.
    #[serde(default = "default_kpi_interval", with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub kpi_interval: Duration,
    /// A dashboard session ends after this long without a request...
    #[serde(default = "default_session_idle", with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub session_idle: Duration,
    /// ...and this long after sign-in in any case.
    #[serde(default = "default_session_max", with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub session_max: Duration,
    /// How often each platform's backlog, oldest pending and delivery rate are sampled
    /// for the dashboard's 24-hour charts (a day of samples is kept in memory).
    #[serde(default = "default_history_every", with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub history_every: Duration,
}

fn default_history_every() -> Duration {
    Duration::from_secs(300)
}

fn default_kpi_interval() -> Duration {
    Duration::from_secs(30)
}

fn default_session_idle() -> Duration {
    Duration::from_secs(30 * 60)
}

fn default_session_max() -> Duration {
    Duration::from_secs(12 * 3600)
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            tokens: Vec::new(),
            kpi_interval: default_kpi_interval(),
            session_idle: default_session_idle(),
            session_max: default_session_max(),
            history_every: default_history_every(),
        }
    }
}

/// One credential digest or several (`"…"` or `["…", "…"]`): during a rotation the new
/// and the old are both accepted.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Digests {
    One(String),
    Many(Vec<String>),
}

impl Digests {
    pub fn list(&self) -> Vec<&str> {
        match self {
            Digests::One(d) => vec![d.as_str()],
            Digests::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// The credentials in one value: several are separated by commas (a key rotation: the new
/// and the old, both accepted until the old is removed). Blank parts are ignored.
pub fn credential_list(value: &str) -> Vec<&str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminTokenConfig {
    /// Who holds it (shown in logs of what operators did).
    pub name: String,
    /// `viewer` reads; `operator` may also replay, drop and pause.
    pub role: AdminRole,
    /// The environment variable holding the token (several, comma-separated, during a rotation).
    pub token_env: String,
    /// DEVELOPMENT ONLY; refused in production.
    #[serde(default)]
    pub dev_token: Option<String>,
    /// The SHA-256 (hex) of the token, or a list of them during a rotation, used when
    /// `token_env`'s variable is unset: the token itself then never reaches the bus's
    /// machine.
    #[serde(default)]
    pub token_sha256: Option<Digests>,
}

impl AdminTokenConfig {
    /// What the bus checks tokens against: the tokens, or `sha256:<hex>` for digests
    /// (several during a rotation).
    pub fn accepted(&self, env: impl Fn(&str) -> Option<String>) -> Vec<String> {
        match self.token(&env) {
            Some(tokens) => credential_list(&tokens)
                .into_iter()
                .map(str::to_string)
                .collect(),
            None => self
                .token_sha256
                .as_ref()
                .map(|d| {
                    d.list()
                        .into_iter()
                        .map(|h| format!("sha256:{}", h.trim().to_ascii_lowercase()))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    pub fn token(&self, env: impl Fn(&str) -> Option<String>) -> Option<String> {
        env(&self.token_env)
            .filter(|t| !t.is_empty())
            .or_else(|| self.dev_token.clone())
    }
}

#[derive(
    Clone, Copy, Debug, Deserialize, PartialEq, Eq, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum AdminRole {
    /// Reads status, messages and dead letters.
    Viewer,
    /// Also replays, drops and pauses.
    Operator,
}
