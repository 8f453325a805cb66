//! The sections of a target (and a lookup platform) its kind reads: `auth`, `tls`,
//! `portal`, `payment` and `file_drop`, as the config holds them; the connectors
//! ([`crate::connector`]) build their clients and credentials from them.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// How an endpoint authenticates (the `auth` section of `http` targets and lookups).
/// Credentials of an `http` target. Secrets are read from the `*_env` variables; the
/// `dev_*` values are for the bundled mocks and refused in production.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// A static key in a header.
    ApiKey {
        /// The header that carries the key.
        #[serde(default = "default_api_key_header")]
        header: String,
        /// The environment variable holding the key.
        key_env: String,
        /// DEVELOPMENT ONLY; refused in production.
        #[serde(default)]
        dev_key: Option<String>,
    },
    /// The LGSP gateway's base64 JSON key header.
    Lgsp {
        /// The header that carries the base64 JSON key.
        #[serde(default = "default_lgsp_header")]
        header: String,
        /// `AccessKey` the gateway issued.
        access_key: String,
        /// The environment variable holding `SecretKey`.
        secret_key_env: String,
        /// DEVELOPMENT ONLY; refused in production.
        #[serde(default)]
        dev_secret_key: Option<String>,
        /// `AppName` registered with the gateway.
        app_name: String,
        /// `PartnerCode` of the ministry.
        partner_code: String,
        /// `PartnerCodeCus` of the platform behind the gateway.
        partner_code_cus: String,
    },
    /// OAuth 2.0 client credentials; the token is cached until it expires.
    Oauth2 {
        /// The token endpoint.
        token_url: String,
        /// The client id the gateway issued.
        client_id: String,
        /// The environment variable holding the client secret.
        client_secret_env: String,
        /// DEVELOPMENT ONLY; refused in production.
        #[serde(default)]
        dev_client_secret: Option<String>,
        /// The scope to ask for, when the gateway wants one.
        #[serde(default)]
        scope: Option<String>,
        /// A header that carries the token again, besides `Authorization: Bearer`:
        /// `lgspaccesstoken` for the population database through a provincial gateway.
        #[serde(default)]
        token_header: Option<String>,
    },
}

fn default_api_key_header() -> String {
    "x-api-key".into()
}

fn default_lgsp_header() -> String {
    "lgspaccesstoken".into()
}

impl AuthConfig {
    /// (variable, development value) of the secret.
    pub fn secret_source(&self) -> (&str, Option<&str>) {
        match self {
            AuthConfig::ApiKey {
                key_env, dev_key, ..
            } => (key_env, dev_key.as_deref()),
            AuthConfig::Lgsp {
                secret_key_env,
                dev_secret_key,
                ..
            } => (secret_key_env, dev_secret_key.as_deref()),
            AuthConfig::Oauth2 {
                client_secret_env,
                dev_client_secret,
                ..
            } => (client_secret_env, dev_client_secret.as_deref()),
        }
    }

    pub fn secret(&self, env: impl Fn(&str) -> Option<String>) -> Option<String> {
        let (var, dev) = self.secret_source();
        env(var)
            .filter(|s| !s.is_empty())
            .or_else(|| dev.map(str::to_string))
    }
}

/// The `tls` section of targets and lookups: extra CA certificates and a client identity
/// for mutual TLS (PEM files).
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM bundle of CA certificates trusted in addition to the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS, with `client_key`.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// Private key (PEM) of `client_cert`.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
}

/// The payment platform's partner code and shared key (for `MaXacThuc`). The key lives in
/// the environment variable `shared_key_env`; `dev_shared_key` is the bundled mock's and
/// is refused in production.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentAuthConfig {
    /// The partner code the payment platform issued to the ministry.
    pub partner_code: String,
    /// The environment variable holding the shared key that signs `MaXacThuc`.
    pub shared_key_env: String,
    /// DEVELOPMENT ONLY (the bundled mock's key); refused in production.
    #[serde(default)]
    pub dev_shared_key: Option<String>,
    /// How often open payments are reconciled (`QUERY`, `GET_BILL`).
    #[serde(default = "default_reconcile_every", with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub reconcile_every: Duration,
    /// A fee request whose `CONFIRM` has not come this long after its `INIT` is asked
    /// about with `QUERY`.
    #[serde(default = "default_query_after", with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub query_after: Duration,
    /// A payment still pending this long after its `INIT` is reported to the unit as
    /// expired (`MaLoi` 02).
    #[serde(default = "default_give_up_after", with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub give_up_after: Duration,
}

fn default_reconcile_every() -> Duration {
    Duration::from_secs(60)
}
fn default_query_after() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_give_up_after() -> Duration {
    Duration::from_secs(2 * 24 * 3600)
}

impl PaymentAuthConfig {
    pub fn shared_key(&self, env: impl Fn(&str) -> Option<String>) -> Option<String> {
        env(&self.shared_key_env)
            .filter(|k| !k.is_empty())
            .or_else(|| self.dev_shared_key.clone())
    }
}

/// Portal login. The password lives in the environment variable `password_env`;
/// `dev_password` is for the bundled mock only and refused in production.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalAuthConfig {
    /// The account the portal issued.
    pub username: String,
    /// The environment variable holding its password.
    pub password_env: String,
    /// DEVELOPMENT ONLY (the bundled mock's password); refused in production.
    #[serde(default)]
    pub dev_password: Option<String>,
    /// The unit code sent as `madonvi`, for units without their own in `unit_codes`.
    pub madonvi: String,
    /// Each unit's own code on the portal (`madonvi`), e.g. `{ nafosted = "000.00.17.G22" }`:
    /// the portal counts dossiers under the unit that handles them.
    #[serde(default)]
    pub unit_codes: BTreeMap<String, String>,
    /// The destination code sent in the `dstcode` header to the gateway adapter in front
    /// of the portal.
    #[serde(default = "default_dstcode")]
    pub dstcode: String,
    /// How often the bus asks the portal for citizens' ratings of the units' dossiers
    /// (`LayDanhSachDanhGia`, the last 31 days each time) to count Decision 766's
    /// satisfaction group, at least `"1min"`; absent: never (a `kind = "portal"` target only).
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<crate::config::HumanDuration>")]
    pub ratings_every: Option<std::time::Duration>,
}

fn default_dstcode() -> String {
    "VN:GOV:000.00.00.G22:vpcpdvcprovider".into()
}

impl PortalAuthConfig {
    /// The password: from `password_env`, else the development one.
    pub fn password(&self, env: impl Fn(&str) -> Option<String>) -> Option<String> {
        env(&self.password_env)
            .filter(|p| !p.is_empty())
            .or_else(|| self.dev_password.clone())
    }
}

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

/// The folder a `url` names: `file:///srv/ipo/import` or a plain path.
pub fn drop_folder(location: &str) -> Result<PathBuf, String> {
    match location.strip_prefix("file://") {
        Some(path) if path.starts_with('/') => Ok(PathBuf::from(path)),
        Some(_) => Err(format!(
            "`{location}`: a file:// URL needs an absolute path (file:///srv/...)"
        )),
        None if location.trim().is_empty() => Err("name the drop folder".into()),
        None if location.contains("://") => Err(format!(
            "`{location}` is not a folder: write a path or a file:/// URL"
        )),
        None => Ok(PathBuf::from(location)),
    }
}
