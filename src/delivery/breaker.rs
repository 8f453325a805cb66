//! Circuit breaker per target: after `failure_threshold` consecutive retryable failures it
//! opens; after `cooldown` one probe is let through (half-open); a success closes it.
//! Opening and closing are logged with the target's name (and the failure that opened it),
//! so an operator sees in the log why deliveries to a platform paused.

use crate::config::CircuitBreakerConfig;
use std::sync::Mutex;
use tokio::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

enum Inner {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

pub struct CircuitBreaker {
    /// The target's name, for the log.
    target: String,
    config: CircuitBreakerConfig,
    inner: Mutex<Inner>,
}

/// Permission to make one attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Permit {
    Go,
    /// Wait this long, then ask again.
    Wait(Duration),
}

impl CircuitBreaker {
    pub fn new(target: &str, config: CircuitBreakerConfig) -> Self {
        CircuitBreaker {
            target: target.to_string(),
            config,
            inner: Mutex::new(Inner::Closed { failures: 0 }),
        }
    }

    pub fn acquire(&self) -> Permit {
        let mut g = self.inner.lock().unwrap();
        match &mut *g {
            Inner::Closed { .. } => Permit::Go,
            Inner::Open { until } => {
                let now = Instant::now();
                if now >= *until {
                    *g = Inner::HalfOpen { probing: true };
                    Permit::Go
                } else {
                    Permit::Wait(*until - now)
                }
            }
            Inner::HalfOpen { probing } => {
                if *probing {
                    Permit::Wait(Duration::from_millis(100))
                } else {
                    *probing = true;
                    Permit::Go
                }
            }
        }
    }

    /// The target answered properly (delivered, or a verdict on the message itself).
    pub fn on_success(&self) {
        let mut g = self.inner.lock().unwrap();
        if !matches!(*g, Inner::Closed { .. }) {
            tracing::info!(
                target_name = %self.target,
                "circuit closed: the target answers again; deliveries resume"
            );
        }
        *g = Inner::Closed { failures: 0 };
    }

    /// A retryable failure that says the target is unwell (`reason`, for the log). Neither
    /// permanent refusals nor per-message answers such as "not there yet" count: the
    /// target answered properly.
    pub fn on_failure(&self, reason: &str) {
        let mut g = self.inner.lock().unwrap();
        let open = match &mut *g {
            Inner::Closed { failures } => {
                *failures += 1;
                *failures >= self.config.failure_threshold
            }
            Inner::HalfOpen { .. } => true,
            Inner::Open { .. } => false,
        };
        if open {
            tracing::warn!(
                target_name = %self.target,
                cooldown_ms = self.config.cooldown.as_millis() as u64,
                last_failure = %reason,
                "circuit opened: deliveries to the target pause until a probe succeeds"
            );
            *g = Inner::Open {
                until: Instant::now() + self.config.cooldown,
            };
        }
    }

    /// An attempt that ended without a verdict on the target (e.g. the message could not
    /// be loaded): give the probe slot back.
    pub fn on_neutral(&self) {
        if let Inner::HalfOpen { probing } = &mut *self.inner.lock().unwrap() {
            *probing = false;
        }
    }

    pub fn state(&self) -> BreakerState {
        match &*self.inner.lock().unwrap() {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(
            "portal",
            CircuitBreakerConfig {
                failure_threshold: 3,
                cooldown: Duration::from_secs(10),
            },
        )
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_threshold_then_probes_after_cooldown() {
        let b = breaker();
        for _ in 0..2 {
            b.on_failure("HTTP 503");
        }
        assert_eq!(b.acquire(), Permit::Go);
        b.on_failure("HTTP 503");
        assert_eq!(b.state(), BreakerState::Open);
        assert!(matches!(b.acquire(), Permit::Wait(d) if d <= Duration::from_secs(10)));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(b.acquire(), Permit::Go, "one probe after the cooldown");
        assert!(
            matches!(b.acquire(), Permit::Wait(_)),
            "only one probe at a time"
        );
        b.on_failure("HTTP 503");
        assert_eq!(b.state(), BreakerState::Open, "failed probe reopens");
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(b.acquire(), Permit::Go);
        b.on_success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.acquire(), Permit::Go);
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_count() {
        let b = breaker();
        b.on_failure("HTTP 503");
        b.on_failure("HTTP 503");
        b.on_success();
        b.on_failure("HTTP 503");
        b.on_failure("HTTP 503");
        assert_eq!(b.state(), BreakerState::Closed);
    }

    /// Lines written by `tracing` while `f` runs.
    fn logged(f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Buf(std::sync::Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = buf.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    /// Issue 38: an operator sees in the log why deliveries to a platform paused and when
    /// they went on.
    #[tokio::test(start_paused = true)]
    async fn opening_and_closing_are_logged_with_the_target_and_the_failure() {
        let b = breaker();
        let opened = logged(|| {
            for _ in 0..3 {
                b.on_failure("HTTP 503");
            }
        });
        assert!(opened.contains("circuit opened"), "{opened}");
        assert!(opened.contains("target_name=portal"), "{opened}");
        assert!(opened.contains("HTTP 503"), "{opened}");
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(b.acquire(), Permit::Go);
        let closed = logged(|| b.on_success());
        assert!(closed.contains("circuit closed"), "{closed}");
        // A success while closed says nothing.
        assert_eq!(logged(|| b.on_success()), "");
    }
}
