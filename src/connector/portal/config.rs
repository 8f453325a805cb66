//! The `portal` section of a `kind = "portal"` target.

use serde::Deserialize;
use std::collections::BTreeMap;

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
