//! The `payment` section of a `kind = "payment"` target.

use serde::Deserialize;

/// The payment platform's partner code and shared key (for `MaXacThuc`). The key lives in
/// the environment variable `shared_key_env`; `dev_shared_key` is the bundled mock's and
/// is refused in production.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentAuthConfig {
    pub partner_code: String,
    pub shared_key_env: String,
    #[serde(default)]
    pub dev_shared_key: Option<String>,
}

impl PaymentAuthConfig {
    pub fn shared_key(&self, env: impl Fn(&str) -> Option<String>) -> Option<String> {
        env(&self.shared_key_env)
            .filter(|k| !k.is_empty())
            .or_else(|| self.dev_shared_key.clone())
    }

    /// Partner code and key, or which variable to set.
    pub fn credentials(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<super::PaymentCredentials, String> {
        Ok(super::PaymentCredentials {
            partner_code: self.partner_code.clone(),
            shared_key: self
                .shared_key(env)
                .ok_or_else(|| format!("{} is not set", self.shared_key_env))?,
        })
    }
}
