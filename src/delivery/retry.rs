//! Backoff: exponential with full jitter, never sooner than the target's `Retry-After` —
//! up to the policy's `max_delay`: a target cannot park a delivery for longer than the
//! operator allowed (a `Retry-After` of years, or one that overflows a timestamp).

use crate::config::RetryConfig;
use std::time::Duration;

/// What to do after a retryable failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    RetryAfter(Duration),
    /// Attempts or age exhausted.
    GiveUp,
}

/// `attempts` counts the attempts made so far, including the one that just failed.
/// `jitter` is a number in [0, 1) (random in production, fixed in tests).
pub fn decide(
    policy: &RetryConfig,
    attempts: u32,
    age: Duration,
    retry_after: Option<Duration>,
    jitter: f64,
) -> RetryDecision {
    if attempts >= policy.max_attempts || age >= policy.max_age {
        return RetryDecision::GiveUp;
    }
    let exp = attempts.saturating_sub(1).min(30);
    let ceiling = policy
        .base_delay
        .saturating_mul(1u32 << exp)
        .min(policy.max_delay);
    let delay = ceiling.mul_f64(jitter.clamp(0.0, 1.0));
    let floor = retry_after.unwrap_or(Duration::ZERO).min(policy.max_delay);
    RetryDecision::RetryAfter(delay.max(floor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryConfig {
        RetryConfig {
            max_attempts: 5,
            max_age: Duration::from_secs(3600),
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        }
    }

    #[test]
    fn ceiling_doubles_up_to_the_cap_and_jitter_scales_it() {
        let p = policy();
        assert_eq!(
            decide(&p, 1, Duration::ZERO, None, 0.999_999),
            RetryDecision::RetryAfter(Duration::from_nanos(99_999_900))
        );
        assert_eq!(
            decide(&p, 3, Duration::ZERO, None, 0.5),
            RetryDecision::RetryAfter(Duration::from_millis(200))
        );
        assert_eq!(
            decide(&p, 4, Duration::ZERO, None, 0.5),
            RetryDecision::RetryAfter(Duration::from_millis(400))
        );
        assert_eq!(
            decide(&p, 1, Duration::ZERO, None, 0.0),
            RetryDecision::RetryAfter(Duration::ZERO)
        );
    }

    #[test]
    fn retry_after_is_a_floor() {
        let p = policy();
        // Above the backoff, within max_delay (1 s): waited for as asked.
        assert_eq!(
            decide(&p, 1, Duration::ZERO, Some(Duration::from_millis(800)), 0.5),
            RetryDecision::RetryAfter(Duration::from_millis(800))
        );
    }

    #[test]
    fn retry_after_is_capped_at_the_policy_s_max_delay() {
        let p = policy();
        for asked in [Duration::from_secs(10 * 365 * 86400), Duration::MAX] {
            assert_eq!(
                decide(&p, 1, Duration::ZERO, Some(asked), 0.5),
                RetryDecision::RetryAfter(p.max_delay)
            );
        }
    }

    #[test]
    fn attempts_and_age_are_bounded() {
        let p = policy();
        assert_eq!(
            decide(&p, 5, Duration::ZERO, None, 0.5),
            RetryDecision::GiveUp
        );
        assert_eq!(
            decide(&p, 1, Duration::from_secs(3600), None, 0.5),
            RetryDecision::GiveUp
        );
    }
}
