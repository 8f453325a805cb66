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
    /// Where each attempt's span goes (`[telemetry]`; a no-op when export is off).
    pub spans: Arc<crate::otlp::Spans>,
    /// Requests waiting for this target's forwards to end (`[amqp] acknowledge =
    /// "replicated"`); none: nobody waits.
    pub settlements: Option<Arc<super::settlements::Settlements>>,
    /// Where each attempt with the platform is logged (`[evidence]`; off in forward mode:
    /// the worker that delivers logs it).
    pub evidence: Arc<crate::evidence::MessageLog>,
}

/// Attempt counters since start, per target.
#[derive(Default, Debug)]
pub struct TargetStats {
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub dead: AtomicU64,
    /// Time from acceptance to delivery, since start.
    pub latency: super::latency::DeliveryLatency,
    /// Bodies rendered by the mapping at delivery (retries reuse theirs, first attempts
    /// the door's: [`super::rendered`]).
    pub renders: AtomicU64,
    /// Bodies of deliveries being retried.
    pub rendered: super::rendered::RenderedBodies,
    /// Bodies the door rendered, for first attempts.
    pub from_door: super::rendered::DoorBodies,
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

    /// Tell `settlements` how each forward ended (requests wait for them there).
    pub fn settling(mut self, settlements: Arc<super::settlements::Settlements>) -> TargetRuntime {
        self.settlements = Some(settlements);
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

    /// Export a span per delivery attempt.
    pub fn exporting_spans(mut self, spans: Arc<crate::otlp::Spans>) -> TargetRuntime {
        self.spans = spans;
        self
    }

    /// Log every attempt in the message log.
    pub fn logging_evidence(mut self, log: Arc<crate::evidence::MessageLog>) -> TargetRuntime {
        self.evidence = log;
        self
    }

    /// Stop claiming new deliveries (those in flight finish). The admin API also keeps
    /// the pause in the outbox ([`paused_note`]) so that it outlives a restart.
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
            breaker: Arc::new(CircuitBreaker::new(name, cfg.circuit_breaker.clone())),
            retry: cfg.retry.clone(),
            concurrency: cfg.concurrency,
            batch: cfg.batch.max(1),
            stats: Arc::new(TargetStats::default()),
            paused: AtomicBool::new(false),
            resumed: tokio::sync::Notify::new(),
            rate_per_second: cfg.rate_limit.as_ref().map(|r| r.per_second),
            procedures: None,
            spans: Arc::new(crate::otlp::Spans::off()),
            settlements: None,
            evidence: Arc::new(crate::evidence::MessageLog::off()),
        }
    }
}

/// The outbox note that says an operator paused `target` (present while paused).
pub fn paused_note(target: &str) -> String {
    format!("paused/{target}")
}
