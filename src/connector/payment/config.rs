//! What the payment connector makes of the `payment` section of a `kind = "payment"`
//! target (the section itself is the config's, [`crate::config::PaymentAuthConfig`]).

pub use crate::config::PaymentAuthConfig;

/// What the payment connector makes of its section.
impl PaymentAuthConfig {
    pub fn reconcile(&self) -> super::reconcile::ReconcileSettings {
        super::reconcile::ReconcileSettings {
            every: self.reconcile_every,
            query_after: self.query_after,
            give_up_after: self.give_up_after,
        }
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
