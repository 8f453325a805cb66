//! A target's runtime: its connector, breaker, rate limit, retry policy and counters, and
//! how it is built from the target's config. Shared by the single node's relay and the
//! cluster's workers.

use super::activity;
use super::breaker::CircuitBreaker;
use crate::config::{RetryConfig, TargetConfig};
use crate::connector::Connector;
use crate::envelope::Envelope;
use crate::outbox::Notes;
use governor::DefaultDirectRateLimiter;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Everything needed to deliver to one target, on either path.
pub struct TargetRuntime {
    pub name: String,
    pub connector: Arc<dyn Connector>,
    /// Delivered to the platform here, or forwarded to the broker's workers.
    pub mode: DeliveryMode,
    pub limiter: Option<Arc<DefaultDirectRateLimiter>>,
    pub breaker: Arc<CircuitBreaker>,
    pub retry: RetryConfig,
    pub concurrency: usize,
    /// Most deliveries merged into one call (1: no batching).
    pub batch: usize,
    pub stats: Arc<TargetStats>,
    /// Set by an operator: the workers stop claiming until resumed.
    pub paused: AtomicBool,
    pub(super) resumed: tokio::sync::Notify,
    /// The configured rate limit, for status views.
    pub rate_per_second: Option<u32>,
    /// For portal targets with `[procedures] unknown = "reject"`: the catalogue a body's
    /// `MaTTHC` must be in.
    pub procedures: Option<Arc<crate::procedures::Catalogue>>,
}

/// Attempt counters since start, per target.
#[derive(Default, Debug)]
pub struct TargetStats {
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub dead: AtomicU64,
    /// Time from acceptance to delivery, since start.
    pub latency: LatencyHistogram,
    /// Outcomes over the last few minutes, per unit.
    pub recent: activity::ActivityByUnit,
    pub failures: activity::RecentFailures,
}

impl TargetStats {
    pub(super) fn failed(&self, envelope: &Envelope, error: &str, dead: bool, now: u64) {
        self.failures.push(activity::Failure {
            at_ms: now,
            unit: envelope.unit.clone(),
            id: envelope.id,
            error: error.to_string(),
            dead,
        });
    }
}

/// Upper bounds (milliseconds) of the delivery-latency buckets.
pub const LATENCY_BUCKETS_MS: [u64; 12] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 5_000, 30_000, 300_000, 3_600_000,
];

/// A fixed-bucket histogram of delivery latency (Prometheus style, lock-free).
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Count per bucket of [`LATENCY_BUCKETS_MS`], plus one for everything slower.
    buckets: [AtomicU64; 13],
    sum_ms: AtomicU64,
}

impl LatencyHistogram {
    pub fn record(&self, ms: u64) {
        let i = LATENCY_BUCKETS_MS
            .iter()
            .position(|b| ms <= *b)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// Cumulative counts per bucket bound (the last is +Inf), and the sum.
    pub fn snapshot(&self) -> (Vec<u64>, u64) {
        let mut total = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|b| {
                total += b.load(Ordering::Relaxed);
                total
            })
            .collect();
        (cumulative, self.sum_ms.load(Ordering::Relaxed))
    }

    /// The bucket bound under which a share `q` of deliveries fell (None: none yet).
    pub fn quantile_ms(&self, q: f64) -> Option<u64> {
        let (cumulative, _) = self.snapshot();
        let total = *cumulative.last()?;
        if total == 0 {
            return None;
        }
        let want = (total as f64 * q).ceil() as u64;
        let i = cumulative.iter().position(|c| *c >= want)?;
        Some(LATENCY_BUCKETS_MS.get(i).copied().unwrap_or(u64::MAX))
    }
}

/// What "delivering" means for a target's runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryMode {
    /// Render through the mapping and call the platform: a success is a delivery.
    Direct,
    /// Hand the event, unmapped, to the broker (cluster ingress): a success means a worker
    /// will deliver it; the outbox records it as forwarded.
    Forward,
}

impl TargetRuntime {
    /// This runtime forwards to the broker instead of delivering.
    pub fn forwarding(mut self) -> TargetRuntime {
        self.mode = DeliveryMode::Forward;
        self
    }

    /// Refuse bodies whose `MaTTHC` is not in the unit's catalogue (dead letters).
    pub fn checking_procedures(
        mut self,
        catalogue: Arc<crate::procedures::Catalogue>,
    ) -> TargetRuntime {
        self.procedures = Some(catalogue);
        self
    }

    /// Stop claiming new deliveries (those in flight finish).
    pub fn pause(&self) {
        self.paused.store(true, Ordering::Relaxed);
    }

    pub fn resume(&self) {
        self.paused.store(false, Ordering::Relaxed);
        self.resumed.notify_waiters();
    }

    /// Build the runtime of a configured target, with the connector its `kind` names.
    pub fn from_config(
        name: &str,
        cfg: &TargetConfig,
        notes: Arc<dyn Notes>,
    ) -> Result<TargetRuntime, String> {
        let connector = crate::connector::build::connector(cfg, notes)?;
        Ok(Self::with_connector(name, cfg, connector))
    }

    pub fn with_connector(
        name: &str,
        cfg: &TargetConfig,
        connector: Arc<dyn Connector>,
    ) -> TargetRuntime {
        let limiter = cfg
            .rate_limit
            .as_ref()
            .and_then(|rl| rl.limiter())
            .map(Arc::new);
        TargetRuntime {
            name: name.to_string(),
            connector,
            mode: DeliveryMode::Direct,
            limiter,
            breaker: Arc::new(CircuitBreaker::new(cfg.circuit_breaker.clone())),
            retry: cfg.retry.clone(),
            concurrency: cfg.concurrency,
            batch: cfg.batch.max(1),
            stats: Arc::new(TargetStats::default()),
            paused: AtomicBool::new(false),
            resumed: tokio::sync::Notify::new(),
            rate_per_second: cfg.rate_limit.as_ref().map(|r| r.per_second),
            procedures: None,
        }
    }
}
