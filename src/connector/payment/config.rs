//! The `payment` section of a `kind = "payment"` target.

use serde::Deserialize;
use std::time::Duration;

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
    pub fn reconcile(&self) -> super::reconcile::ReconcileSettings {
        super::reconcile::ReconcileSettings {
            every: self.reconcile_every,
            query_after: self.query_after,
            give_up_after: self.give_up_after,
        }
    }

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
