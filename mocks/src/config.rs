//! The `[mocks]` section of the bus's configuration and the fault scenario files: what
//! `lienthong run` starts in-process and `lienthong mocks` serves on its own.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How a duration is written in the configuration (`humantime`: `500ms`, `30s`, `5min`,
/// `2days`): the schema of the `Duration` fields read with `humantime_serde`.
pub struct HumanDuration;

impl schemars::JsonSchema for HumanDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "format": "duration"})
    }
}

/// The bundled mock services, started in-process by `lienthong run` when enabled.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MocksConfig {
    /// Start them inside `lienthong run`.
    pub enabled: bool,
    /// Address the mock services listen on.
    pub listen: SocketAddr,
    /// Seed of the synthetic registers (same seed, same people and businesses) and of
    /// the fault draws.
    pub seed: u64,
    /// Fault rules in force from the start (`[[mocks.faults]]`); see `lienthong mocks`.
    pub faults: Vec<crate::faults::FaultRule>,
    /// A scenario file (TOML: optional `seed`, `[[faults]]`) whose rules are added to
    /// `faults`; `lienthong mocks --scenario FILE` does the same.
    pub scenario: Option<PathBuf>,
    /// The portal's success `error_code`: 0, "0" or "00".
    pub portal_success_code: serde_json::Value,
    /// How long a portal session lasts before the mock asks for a new login.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "HumanDuration")]
    pub portal_session_ttl: Duration,
    /// Where the payment mock sends `Confirm` callbacks: unset, the bus's own
    /// `/callbacks/payment` at its `server.listen` (whatever port that is); "" for nowhere.
    pub payment_callback_url: Option<String>,
    /// How long after an `INIT` the mock payment platform sends its `CONFIRM` callback.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "HumanDuration")]
    pub payment_callback_delay: Duration,
    /// Shares of paid and failed payments; the rest expire.
    pub payment_paid: f64,
    /// Share of payments that fail (`MaLoi` other than 00).
    pub payment_failed: f64,
    /// The IP Office's import folder the mock reads (what a `file_drop` target writes);
    /// unset: none.
    pub ipo_drop_dir: Option<PathBuf>,
}

impl Default for MocksConfig {
    fn default() -> Self {
        let d = crate::MockSettings::default();
        MocksConfig {
            enabled: false,
            listen: "127.0.0.1:9090".parse().expect("literal address"),
            seed: d.seed,
            faults: Vec::new(),
            scenario: None,
            portal_success_code: d.portal_success_code,
            portal_session_ttl: d.portal_session_ttl,
            payment_callback_url: None,
            payment_callback_delay: d.payment_callback_delay,
            payment_paid: d.payment_paid,
            payment_failed: d.payment_failed,
            ipo_drop_dir: None,
        }
    }
}

impl MocksConfig {
    /// What the mocks crate needs to serve. `bus_callback` is the bus's own callback
    /// address, used when `payment_callback_url` is not set.
    pub fn settings(&self, bus_callback: Option<String>) -> crate::MockSettings {
        crate::MockSettings {
            seed: self.seed,
            faults: self.faults.clone(),
            portal_success_code: self.portal_success_code.clone(),
            portal_session_ttl: self.portal_session_ttl,
            payment_callback_url: match &self.payment_callback_url {
                Some(url) if url.is_empty() => None,
                Some(url) => Some(url.clone()),
                None => bus_callback,
            },
            payment_callback_delay: self.payment_callback_delay,
            payment_paid: self.payment_paid,
            payment_failed: self.payment_failed,
            ipo_drop_dir: self.ipo_drop_dir.clone(),
        }
    }
}

/// A fault scenario for the mocks, kept in its own file so testers can switch scenarios
/// without touching the bus's configuration.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub description: String,
    /// Replaces `mocks.seed` when set.
    pub seed: Option<u64>,
    #[serde(default)]
    pub faults: Vec<crate::faults::FaultRule>,
}

/// One problem of the section: its key path and what is wrong.
fn problem(path: impl Into<String>, message: impl Into<String>) -> (String, String) {
    (path.into(), message.into())
}

impl MocksConfig {
    /// Every problem of the section at once (key path, message), for the bus's validation.
    pub fn problems(&self) -> Vec<(String, String)> {
        let m = self;
        let mut problems = Vec::new();
        if !matches!(m.portal_success_code.as_i64(), Some(0))
            && !matches!(m.portal_success_code.as_str(), Some("0" | "00"))
        {
            problems.push(problem(
                "mocks.portal_success_code",
                "the portal answers success as 0, \"0\" or \"00\"",
            ));
        }
        for (name, share) in [
            ("payment_paid", m.payment_paid),
            ("payment_failed", m.payment_failed),
        ] {
            if !(0.0..=1.0).contains(&share) {
                problems.push(problem(format!("mocks.{name}"), "must be between 0 and 1"));
            }
        }
        if m.payment_paid + m.payment_failed > 1.0 {
            problems.push(problem(
                "mocks.payment_failed",
                "payment_paid + payment_failed is more than 1",
            ));
        }
        for (i, rule) in self.faults.iter().enumerate() {
            for (field, message) in rule.problems() {
                let path = match field {
                    Some(field) => format!("mocks.faults[{i}].{field}"),
                    None => format!("mocks.faults[{i}]"),
                };
                problems.push(problem(path, message));
            }
        }
        problems
    }
}
