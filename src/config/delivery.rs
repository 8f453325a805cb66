//! The delivery policy sections of a target: `rate_limit`, `retry` and
//! `circuit_breaker` (the delivery core, [`crate::delivery`], acts on them).

use serde::Deserialize;
use std::time::Duration;

/// Calls per second a target (or a unit) is allowed, with a burst.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Calls (or requests) per second allowed on average.
    pub per_second: u32,
    /// Calls allowed at once above the average, after a quiet spell.
    #[serde(default)]
    pub burst: Option<u32>,
}

impl RateLimitConfig {
    /// The limiter this asks for (None when `per_second` is 0: no limit).
    pub fn limiter(&self) -> Option<governor::DefaultDirectRateLimiter> {
        let rate = std::num::NonZeroU32::new(self.per_second)?;
        let burst = self
            .burst
            .and_then(std::num::NonZeroU32::new)
            .unwrap_or(rate);
        Some(governor::RateLimiter::direct(
            governor::Quota::per_second(rate).allow_burst(burst),
        ))
    }
}

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Attempts before a delivery goes to dead letters.
    pub max_attempts: u32,
    /// Age (since acceptance) after which a failing delivery goes to dead letters.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub max_age: Duration,
    /// First backoff ceiling; each retry doubles it (full jitter below the ceiling).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub base_delay: Duration,
    /// The longest wait between two attempts (a platform's `Retry-After` is honoured up to this).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub max_delay: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 12,
            max_age: Duration::from_secs(24 * 3600),
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(300),
        }
    }
}

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CircuitBreakerConfig {
    /// Consecutive retryable failures that open the breaker.
    pub failure_threshold: u32,
    /// How long the breaker stays open before one probe is let through.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub cooldown: Duration,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        CircuitBreakerConfig {
            failure_threshold: 10,
            cooldown: Duration::from_secs(15),
        }
    }
}
