//! The `portal` section of a `kind = "portal"` target.

use serde::Deserialize;

/// Portal login. The password lives in the environment variable `password_env`;
/// `dev_password` is for the bundled mock only and refused in production.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalAuthConfig {
    pub username: String,
    pub password_env: String,
    #[serde(default)]
    pub dev_password: Option<String>,
    /// The unit code sent as `madonvi` and in the `dstcode` header.
    pub madonvi: String,
}

impl PortalAuthConfig {
    /// The password: from `password_env`, else the development one.
    pub fn password(&self, env: impl Fn(&str) -> Option<String>) -> Option<String> {
        env(&self.password_env)
            .filter(|p| !p.is_empty())
            .or_else(|| self.dev_password.clone())
    }
}
