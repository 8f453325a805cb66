//! `[lookups]`: the platforms units look people and businesses up in, what a citizen
//! lookup must name (its purpose), and each unit's share of every platform.

use super::{AuthConfig, RateLimitConfig, TlsConfig};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// The platforms units look people and businesses up in (request-reply, not queued).
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupsConfig {
    /// The population database (SOAP 1.1).
    pub population: Option<LookupTargetConfig>,
    /// The business registry (REST GET).
    pub business: Option<LookupTargetConfig>,
    /// What a citizen or residence lookup must name: a dossier of the unit's that names the
    /// person, and a purpose (Decree 13/2023/NĐ-CP: personal data for a stated purpose).
    #[serde(default)]
    pub purpose: PurposeConfig,
}

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupTargetConfig {
    /// The platform's address (`https://`; plain `http://` only to this machine unless `allow_plain_http`).
    pub url: String,
    /// As for targets: plain HTTP only to this machine unless allowed.
    #[serde(default)]
    pub allow_plain_http: bool,
    /// Longest wait for one call's answer.
    #[serde(default = "super::default_timeout", with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub timeout: Duration,
    /// The platform's own limit, shared by every unit.
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
    /// Lookups per second each unit may ask of this platform: its share of `rate_limit`,
    /// so that no unit can starve another. Units not named here get an equal share
    /// (`rate_limit.per_second` divided by the number of units, at least 1). Over it:
    /// `429 unit_rate_exceeded` with `Retry-After`.
    #[serde(default)]
    pub unit_shares: BTreeMap<String, u32>,
    /// Lookups each unit may ask of this platform per day (Asia/Ho_Chi_Minh); over it:
    /// `429 unit_daily_quota_exceeded` until midnight. None: no daily ceiling.
    #[serde(default)]
    pub unit_daily_quota: Option<u32>,
    /// How long a reply may be reused (business registry only; citizen data is never
    /// cached).
    #[serde(default = "default_cache_ttl", with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub cache_ttl: Duration,
    /// The credential the platform's gateway asks for (as for `http` targets: API key,
    /// LGSP token or OAuth2 client credentials).
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// CA bundle and client identity for mutual TLS, as for targets.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

fn default_cache_ttl() -> Duration {
    Duration::from_secs(600)
}

/// What a citizen or residence lookup must name. Every such lookup names a purpose
/// (`?purpose=`) and a dossier (`?dossier=`) the unit has sent to the bus, open or closed
/// at most `closed_window` ago, that names the person asked about; anything else is
/// `403` with a code naming the condition that failed, and audited.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PurposeConfig {
    /// How long after a dossier closed (result returned, refused, withdrawn, stopped) its
    /// people may still be looked up for it.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub closed_window: Duration,
    /// Documented exceptions: lookups of a unit that need no dossier (a purpose is still
    /// required), each named, with its reason; shown on the dashboard and in each audit
    /// record it covers.
    pub exceptions: Vec<LookupException>,
}

impl Default for PurposeConfig {
    fn default() -> Self {
        PurposeConfig {
            closed_window: Duration::from_secs(30 * 86_400),
            exceptions: Vec::new(),
        }
    }
}

/// A unit's lookups that need no dossier, e.g. VARANS verifying a radiation worker before
/// any dossier exists.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LookupException {
    /// Its name, in the audit records and on the dashboard (letters, digits, `-`, `_`).
    pub name: String,
    /// The unit it is for.
    pub unit: String,
    /// The lookups it covers: `citizen`, `residence`.
    pub lookups: Vec<String>,
    /// Why, and on whose decision (the record an inspector reads).
    pub reason: String,
}
