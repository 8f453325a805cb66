//! The relay: for each target, a pool of workers that claim deliveries from the outbox,
//! wait for the target's circuit breaker and rate limit, send through the target's
//! connector and record the verdict (delivered, retry later, or dead letter).

pub mod activity;
pub mod breaker;
pub mod retry;

use crate::config::{RetryConfig, TargetConfig, TargetKind};
use crate::connector::{
    Connector, HttpConnector, PaymentConnector, PortalConnector, PortalCredentials, Verdict,
};
use crate::envelope::Envelope;
use crate::mappings::{MappingSet, Outbound};
use crate::outbox::Notes;
use crate::outbox::{AttemptError, Lease, Outbox};
use crate::time::now_ms;
use activity::Outcome;
use breaker::{CircuitBreaker, Permit};
use governor::DefaultDirectRateLimiter;
use retry::RetryDecision;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Everything the relay needs to deliver to one target.
pub struct TargetRuntime {
    pub name: String,
    pub connector: Arc<dyn Connector>,
    pub limiter: Option<Arc<DefaultDirectRateLimiter>>,
    pub breaker: Arc<CircuitBreaker>,
    pub retry: RetryConfig,
    pub concurrency: usize,
    /// Most deliveries merged into one call (1: no batching).
    pub batch: usize,
    pub stats: Arc<TargetStats>,
    /// Set by an operator: the workers stop claiming until resumed.
    pub paused: AtomicBool,
    resumed: tokio::sync::Notify,
    /// The configured rate limit, for status views.
    pub rate_per_second: Option<u32>,
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
    fn failed(&self, envelope: &Envelope, error: &str, dead: bool, now: u64) {
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

impl TargetRuntime {
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
        let connector: Arc<dyn Connector> = match cfg.kind {
            TargetKind::Http => Arc::new(HttpConnector::with_auth(
                &cfg.url,
                cfg.timeout,
                auth_of(cfg)?,
                cfg.tls.as_ref(),
            )?),
            TargetKind::Portal => {
                let auth = cfg
                    .portal
                    .as_ref()
                    .ok_or("kind = \"portal\" needs a portal section")?;
                let password = auth
                    .password(|v| std::env::var(v).ok())
                    .ok_or_else(|| format!("{} is not set", auth.password_env))?;
                Arc::new(PortalConnector::new(
                    &cfg.url,
                    cfg.timeout,
                    PortalCredentials {
                        username: auth.username.clone(),
                        password,
                        madonvi: auth.madonvi.clone(),
                    },
                    cfg.tls.as_ref(),
                )?)
            }
            TargetKind::Payment => {
                let auth = cfg
                    .payment
                    .as_ref()
                    .ok_or("kind = \"payment\" needs a payment section")?;
                Arc::new(PaymentConnector::new(
                    &cfg.url,
                    cfg.timeout,
                    auth.credentials(|v| std::env::var(v).ok())?,
                    notes,
                    cfg.tls.as_ref(),
                )?)
            }
        };
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
            limiter,
            breaker: Arc::new(CircuitBreaker::new(cfg.circuit_breaker.clone())),
            retry: cfg.retry.clone(),
            concurrency: cfg.concurrency,
            batch: cfg.batch.max(1),
            stats: Arc::new(TargetStats::default()),
            paused: AtomicBool::new(false),
            resumed: tokio::sync::Notify::new(),
            rate_per_second: cfg.rate_limit.as_ref().map(|r| r.per_second),
        }
    }
}

/// The credential an `http` target's config asks for.
fn auth_of(cfg: &TargetConfig) -> Result<crate::connector::auth::Auth, String> {
    use crate::config::AuthConfig;
    use crate::connector::auth::{Auth, OAuth2, lgsp_token};
    let Some(a) = &cfg.auth else {
        return Ok(Auth::None);
    };
    let secret = a
        .secret(|v| std::env::var(v).ok())
        .ok_or_else(|| format!("{} is not set", a.secret_source().0))?;
    Ok(match a {
        AuthConfig::ApiKey { header, .. } => Auth::Header {
            name: header.clone(),
            value: secret,
        },
        AuthConfig::Lgsp {
            header,
            access_key,
            app_name,
            partner_code,
            partner_code_cus,
            ..
        } => Auth::Header {
            name: header.clone(),
            value: lgsp_token(
                access_key,
                &secret,
                app_name,
                partner_code,
                partner_code_cus,
            ),
        },
        AuthConfig::Oauth2 {
            token_url,
            client_id,
            scope,
            ..
        } => Auth::OAuth2(OAuth2::new(
            reqwest::Url::parse(token_url).map_err(|e| format!("{token_url}: {e}"))?,
            client_id.clone(),
            secret,
            scope.clone(),
        )),
    })
}

/// The running worker pools.
pub struct Relay {
    workers: JoinSet<()>,
    stop: watch::Sender<bool>,
}

impl Relay {
    pub fn start(
        outbox: Outbox,
        targets: Vec<Arc<TargetRuntime>>,
        mappings: Arc<MappingSet>,
    ) -> Relay {
        let (stop, stop_rx) = watch::channel(false);
        let mut workers = JoinSet::new();
        for target in targets {
            for _ in 0..target.concurrency {
                let w = Worker {
                    outbox: outbox.clone(),
                    mappings: Arc::clone(&mappings),
                    target: Arc::clone(&target),
                    stop: stop_rx.clone(),
                };
                workers.spawn(w.run());
            }
        }
        Relay { workers, stop }
    }

    /// Stop claiming, let in-flight attempts finish within `grace`, then abort the rest.
    /// Call [`Outbox::close`] first so idle workers wake up and leave.
    pub async fn drain(mut self, grace: Duration) -> usize {
        let _ = self.stop.send(true);
        let deadline = tokio::time::sleep(grace);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = self.workers.join_next() => if next.is_none() { return 0 },
                _ = &mut deadline => {
                    let left = self.workers.len();
                    self.workers.abort_all();
                    while self.workers.join_next().await.is_some() {}
                    return left;
                }
            }
        }
    }
}

/// A claimed delivery, loaded and in the target's format.
type Prepared = (Lease, Envelope, Outbound);

struct Worker {
    outbox: Outbox,
    mappings: Arc<MappingSet>,
    target: Arc<TargetRuntime>,
    stop: watch::Receiver<bool>,
}

impl Worker {
    /// Wait while an operator has the target paused. `false` if shutdown came first.
    async fn wait_while_paused(&mut self) -> bool {
        while self.target.paused.load(Ordering::Relaxed) {
            let resumed = self.target.resumed.notified();
            tokio::select! {
                _ = resumed => {}
                // Checked again now and then: a resume between the load and the wait is
                // not missed for long.
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = self.stop.changed() => return false,
            }
        }
        !*self.stop.borrow()
    }

    async fn run(mut self) {
        loop {
            if !self.wait_while_paused().await {
                break;
            }
            let Some(lease) = self.outbox.claim(&self.target.name).await else {
                break;
            };
            if self.target.paused.load(Ordering::Relaxed) {
                // Paused while waiting for work: put it back.
                drop(lease);
                continue;
            }
            if !self.wait_for_permission().await {
                // Shutting down: dropping the lease puts the delivery back to pending.
                drop(lease);
                break;
            }
            if self.target.batch > 1 {
                let mut leases = vec![lease];
                while leases.len() < self.target.batch {
                    match self.outbox.try_claim(&self.target.name) {
                        Some(l) => leases.push(l),
                        None => break,
                    }
                }
                if leases.len() > 1 {
                    self.attempt_batch(leases).await;
                } else {
                    self.attempt(leases.pop().expect("one lease")).await;
                }
            } else {
                self.attempt(lease).await;
            }
            if *self.stop.borrow() {
                break;
            }
        }
    }

    /// Wait for the breaker and the rate limit. `false` if shutdown came first.
    async fn wait_for_permission(&mut self) -> bool {
        loop {
            if *self.stop.borrow() {
                return false;
            }
            match self.target.breaker.acquire() {
                Permit::Go => break,
                Permit::Wait(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = self.stop.changed() => return false,
                    }
                }
            }
        }
        if let Some(limiter) = &self.target.limiter {
            tokio::select! {
                _ = limiter.until_ready() => {}
                _ = self.stop.changed() => {
                    self.target.breaker.on_neutral();
                    return false;
                }
            }
        }
        true
    }

    /// Load a claimed delivery and put it in the target's format. A message that cannot be
    /// read or mapped is a dead letter at once (no attempt will do better).
    fn prepare(&self, lease: Lease) -> Option<Prepared> {
        let t = &self.target;
        let envelope = match self.outbox.load(&lease) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(target_system = %t.name, id = %lease.info.id, error = %e, "cannot load message");
                self.outbox
                    .dead(lease, None, format!("message unreadable: {e}"));
                return None;
            }
        };
        let rendered = if t.connector.wants_mapping() {
            self.mappings.render(&envelope, &t.name)
        } else {
            Ok(Outbound {
                content_type: "application/json",
                body: bytes::Bytes::new(),
            })
        };
        match rendered {
            Ok(body) => Some((lease, envelope, body)),
            Err(reason) => {
                t.stats.dead.fetch_add(1, Ordering::Relaxed);
                t.stats
                    .recent
                    .record(lease.info.unit, Outcome::Dead, now_ms());
                t.stats.failed(&envelope, &reason, true, now_ms());
                tracing::warn!(target_system = %t.name, id = %envelope.id, %reason, "mapping failed: dead letter");
                let error = AttemptError {
                    at_ms: now_ms(),
                    error: reason.clone(),
                    status: None,
                };
                self.outbox.dead(lease, Some(error), reason);
                None
            }
        }
    }

    /// Tell the breaker how a call went (once per permit).
    fn judge(&self, verdict: &Verdict) {
        match verdict {
            // A permanent refusal is the message's fault, not the target's.
            Verdict::Delivered | Verdict::Permanent { .. } => self.target.breaker.on_success(),
            Verdict::Retryable { .. } => self.target.breaker.on_failure(),
        }
    }

    /// One delivery, with the permit already held.
    async fn attempt(&self, lease: Lease) {
        let Some((lease, envelope, body)) = self.prepare(lease) else {
            self.target.breaker.on_neutral();
            return;
        };
        let verdict = self.target.connector.deliver(&envelope, &body).await;
        self.judge(&verdict);
        self.settle(lease, &envelope, verdict);
    }

    /// Several deliveries (of different keys, so order per key holds) with the permit held
    /// for the first call. Bodies the connector can merge go in one call; if that call does
    /// not succeed, each is sent on its own so every message gets its own verdict.
    async fn attempt_batch(&mut self, leases: Vec<Lease>) {
        let t = Arc::clone(&self.target);
        let mut groups: Vec<(String, Vec<Prepared>)> = Vec::new();
        let mut singles = Vec::new();
        for lease in leases {
            let Some(item) = self.prepare(lease) else {
                continue;
            };
            match t.connector.batch_group(&item.2) {
                Some(g) => match groups.iter_mut().find(|(k, _)| *k == g) {
                    Some((_, items)) => items.push(item),
                    None => groups.push((g, vec![item])),
                },
                None => singles.push(item),
            }
        }
        let mut permit = true;
        for (_, items) in groups {
            if items.len() == 1 {
                singles.extend(items);
                continue;
            }
            let merged = {
                let bodies: Vec<&Outbound> = items.iter().map(|(_, _, b)| b).collect();
                t.connector.merge(&bodies)
            };
            let Some(merged) = merged else {
                singles.extend(items);
                continue;
            };
            if !permit && !self.wait_for_permission().await {
                return; // Shutting down: the leases go back to pending when dropped.
            }
            permit = false;
            let verdict = t.connector.deliver(&items[0].1, &merged).await;
            self.judge(&verdict);
            if verdict == Verdict::Delivered {
                tracing::debug!(target_system = %t.name, messages = items.len(), "delivered in one call");
                for (lease, envelope, _) in items {
                    self.settle(lease, &envelope, Verdict::Delivered);
                }
            } else {
                singles.extend(items);
            }
        }
        for (lease, envelope, body) in singles {
            if !permit && !self.wait_for_permission().await {
                return;
            }
            permit = false;
            let verdict = t.connector.deliver(&envelope, &body).await;
            self.judge(&verdict);
            self.settle(lease, &envelope, verdict);
        }
        if permit {
            t.breaker.on_neutral();
        }
    }

    /// Record a verdict: delivered, retry later, or dead letter.
    fn settle(&self, lease: Lease, envelope: &Envelope, verdict: Verdict) {
        let t = &self.target;
        let attempts = lease.info.attempts + 1;
        match verdict {
            Verdict::Delivered => {
                t.stats.delivered.fetch_add(1, Ordering::Relaxed);
                t.stats
                    .recent
                    .record(lease.info.unit, Outcome::Delivered, now_ms());
                t.stats
                    .latency
                    .record(now_ms().saturating_sub(envelope.received_ms));
                tracing::debug!(target_system = %t.name, id = %envelope.id, attempts, "delivered");
                if t.connector.wants_mapping() {
                    self.outbox.delivered(lease);
                } else {
                    // The broker forwarder: a worker does the delivery proper.
                    self.outbox.forwarded(lease);
                }
            }
            Verdict::Retryable {
                reason,
                status,
                retry_after,
            } => {
                let now = now_ms();
                let error = AttemptError {
                    at_ms: now,
                    error: reason.clone(),
                    status,
                };
                let age = Duration::from_millis(now.saturating_sub(envelope.received_ms));
                match retry::decide(&t.retry, attempts, age, retry_after, rand::random::<f64>()) {
                    RetryDecision::RetryAfter(delay) => {
                        t.stats.retried.fetch_add(1, Ordering::Relaxed);
                        t.stats.recent.record(lease.info.unit, Outcome::Failed, now);
                        t.stats.failed(envelope, &reason, false, now);
                        tracing::debug!(target_system = %t.name, id = %envelope.id, attempts, ?delay, %reason, "retry scheduled");
                        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
                        self.outbox
                            .retry(lease, error, now.saturating_add(delay_ms));
                    }
                    RetryDecision::GiveUp => {
                        t.stats.dead.fetch_add(1, Ordering::Relaxed);
                        t.stats.recent.record(lease.info.unit, Outcome::Dead, now);
                        t.stats.failed(envelope, &reason, true, now);
                        tracing::warn!(target_system = %t.name, id = %envelope.id, attempts, %reason, "giving up: dead letter");
                        let why = format!("gave up after {attempts} attempts: {reason}");
                        self.outbox.dead(lease, Some(error), why);
                    }
                }
            }
            Verdict::Permanent { reason, status } => {
                // The target answered properly; it is the message that is wrong.
                t.stats.dead.fetch_add(1, Ordering::Relaxed);
                t.stats
                    .recent
                    .record(lease.info.unit, Outcome::Dead, now_ms());
                t.stats.failed(envelope, &reason, true, now_ms());
                tracing::warn!(target_system = %t.name, id = %envelope.id, %reason, "permanent failure: dead letter");
                let error = AttemptError {
                    at_ms: now_ms(),
                    error: reason.clone(),
                    status,
                };
                self.outbox.dead(lease, Some(error), reason);
            }
        }
    }
}
