//! `/metrics` in the OpenMetrics text format (which Prometheus scrapes), written by the
//! `prometheus-client` crate. Everything is read at scrape time from the outbox's running
//! totals, the relay's counters and the KPI snapshot (never a second source of truth), by
//! a [`Collector`]; the delivery-latency histograms carry trace ids as exemplars.

use super::AdminState;
use crate::delivery::breaker::BreakerState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Every metric family: name (a counter's without `_total`, which its samples carry),
/// type and help line.
const FAMILIES: &[(&str, MetricType, &str)] = &[
    (
        "lienthong_kpi_percent",
        MetricType::Gauge,
        "A Decision 1205 KPI in percent, by unit (unit=\"all\": the ministry) and kpi, over the KPI snapshot's period; absent while it has no denominator.",
    ),
    (
        "lienthong_kpi_target_percent",
        MetricType::Gauge,
        "The target of each KPI, in percent.",
    ),
    (
        "lienthong_overdue_dossiers",
        MetricType::Gauge,
        "Open dossiers past their NgayHenTra (due date) without a result, by unit (as of the latest KPI snapshot).",
    ),
    (
        "lienthong_pending_deliveries",
        MetricType::Gauge,
        "Deliveries (message x target) not yet delivered or dead.",
    ),
    (
        "lienthong_dead_letters",
        MetricType::Gauge,
        "Dead letters waiting for an operator.",
    ),
    (
        "lienthong_accepted_events",
        MetricType::Counter,
        "Events accepted since start.",
    ),
    (
        "lienthong_payment_callbacks_forged",
        MetricType::Counter,
        "Payment callbacks refused for a wrong MaXacThuc since start (nothing of them is stored).",
    ),
    (
        "lienthong_lookups",
        MetricType::Counter,
        "Lookups since start, by unit, kind (citizen, residence, business) and outcome: asked (the platform was asked), or the code of a refusal before any platform was asked (purpose_missing, dossier_missing, dossier_unknown, dossier_closed, person_missing, person_not_in_dossier, unit_rate_exceeded, unit_daily_quota_exceeded, rate_limited).",
    ),
    (
        "lienthong_idempotency_keys_checked_locally",
        MetricType::Counter,
        "In a cluster: keyed requests this node checked against its own memory only since start, the cluster's idempotency guard out of reach (a resend to another node meanwhile may be stored twice). Absent on a single node.",
    ),
    (
        "lienthong_deliveries",
        MetricType::Counter,
        "Delivery attempts since start, by target and outcome.",
    ),
    (
        "lienthong_target_ready",
        MetricType::Gauge,
        "Deliveries ready to be attempted now, by target.",
    ),
    (
        "lienthong_target_in_flight",
        MetricType::Gauge,
        "Deliveries being attempted now, by target.",
    ),
    (
        "lienthong_target_retry_scheduled",
        MetricType::Gauge,
        "Deliveries waiting for their next attempt, by target.",
    ),
    (
        "lienthong_target_blocked_keys",
        MetricType::Gauge,
        "Dossiers held back behind a dead letter, by target.",
    ),
    (
        "lienthong_circuit_open",
        MetricType::Gauge,
        "1 when the target's circuit breaker is open or half-open.",
    ),
    (
        "lienthong_target_paused",
        MetricType::Gauge,
        "1 when an operator paused the target.",
    ),
    (
        "lienthong_outbox_disk_bytes",
        MetricType::Gauge,
        "Bytes the outbox occupies on disk.",
    ),
    (
        "lienthong_outbox_fsync_seconds",
        MetricType::Gauge,
        "Time the data directory's disk took to make a 4 KiB write durable (fdatasync), measured at start: stat=median and stat=worst of a few syncs. Every acknowledged request waits at least this long.",
    ),
    (
        "lienthong_evidence_lines",
        MetricType::Counter,
        "Lines the message log wrote since start, by kind: record (an accepted event or a delivery attempt), seal (a signed seal, synced to disk), error (a line the disk refused; its evidence is missing). Absent when [evidence] mode is off.",
    ),
    (
        "lienthong_delivery_latency_seconds",
        MetricType::Histogram,
        "Time from acceptance to delivery, by target.",
    ),
    (
        "lienthong_unit_deliveries",
        MetricType::Counter,
        "Delivery attempts since start, by unit, target and outcome.",
    ),
    (
        "lienthong_unit_pending_deliveries",
        MetricType::Gauge,
        "Pending deliveries by unit and target (those in the scheduler's window).",
    ),
    (
        "lienthong_unit_oldest_pending_seconds",
        MetricType::Gauge,
        "Age of the oldest pending delivery, by unit and target.",
    ),
];

/// Every family as the metrics reference lists it: name (a counter's without `_total`),
/// type and help line.
pub fn families() -> Vec<(&'static str, &'static str, &'static str)> {
    FAMILIES
        .iter()
        .map(|(name, kind, help)| {
            let kind = match kind {
                MetricType::Counter => "counter",
                MetricType::Gauge => "gauge",
                MetricType::Histogram => "histogram",
                _ => "unknown",
            };
            (*name, kind, *help)
        })
        .collect()
}

/// The content type of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub async fn metrics(State(state): State<Arc<AdminState>>) -> impl IntoResponse {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(BusCollector(state)));
    let mut out = String::with_capacity(8192);
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    ([(header::CONTENT_TYPE, OPENMETRICS)], out)
}

/// Reads the bus's figures on each scrape.
struct BusCollector(Arc<AdminState>);

impl std::fmt::Debug for BusCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BusCollector")
    }
}

/// A sample's labels.
type Labels = Vec<(&'static str, String)>;

/// A gauge's value: a count is written as an integer, a share or a duration as a float.
#[derive(Clone, Copy)]
enum Value {
    Count(i64),
    Float(f64),
}

impl From<usize> for Value {
    fn from(n: usize) -> Self {
        Value::Count(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::Count(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

/// The samples of one family, gathered before it is written.
enum Samples {
    Gauges(Vec<(Labels, Value)>),
    Counters(Vec<(Labels, u64)>),
}

impl Collector for BusCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let state = &self.0;
        let kpi = state.kpis.latest();
        let stats = state.outbox.stats();
        let now = crate::time::now_ms();
        for (name, kind, help) in FAMILIES {
            if *name == "lienthong_delivery_latency_seconds" {
                let mut family = encoder.encode_descriptor(name, help, None, *kind)?;
                for t in &state.targets {
                    let labels = [("target", t.name.clone())];
                    t.stats
                        .latency
                        .histogram()
                        .encode(family.encode_family(&labels)?)?;
                }
                continue;
            }
            let samples = samples(name, state, kpi.as_deref(), &stats, now);
            let mut family = encoder.encode_descriptor(name, help, None, *kind)?;
            match samples {
                Samples::Gauges(list) => {
                    for (labels, v) in list {
                        let metric = family.encode_family(&labels)?;
                        match v {
                            Value::Count(n) => ConstGauge::new(n).encode(metric)?,
                            Value::Float(f) => ConstGauge::new(f).encode(metric)?,
                        }
                    }
                }
                Samples::Counters(list) => {
                    for (labels, v) in list {
                        ConstCounter::new(v).encode(family.encode_family(&labels)?)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The samples of the family `name`.
fn samples(
    name: &str,
    state: &AdminState,
    kpi: Option<&crate::admin::kpi::KpiSnapshot>,
    stats: &crate::outbox::OutboxStats,
    now: u64,
) -> Samples {
    let gauge = |v: Value| Samples::Gauges(vec![(Vec::new(), v)]);
    let per_target = |f: &dyn Fn(&crate::delivery::TargetRuntime) -> Value| {
        Samples::Gauges(
            state
                .targets
                .iter()
                .map(|t| (vec![("target", t.name.clone())], f(t)))
                .collect(),
        )
    };
    let queue = |t: &crate::delivery::TargetRuntime,
                 f: fn(&crate::outbox::QueueCounts) -> usize| {
        stats
            .targets
            .get(&t.name)
            .map_or(Value::Count(0), |q| Value::from(f(q)))
    };
    match name {
        "lienthong_kpi_percent" | "lienthong_kpi_target_percent" | "lienthong_overdue_dossiers" => {
            kpi_samples(name, kpi)
        }
        "lienthong_pending_deliveries" => gauge(Value::from(stats.pending)),
        "lienthong_dead_letters" => gauge(Value::from(stats.dead)),
        "lienthong_outbox_disk_bytes" => gauge(Value::from(stats.disk_bytes)),
        "lienthong_outbox_fsync_seconds" => Samples::Gauges(
            state
                .disk_speed
                .map(|d| {
                    vec![
                        (
                            vec![("stat", "median".to_string())],
                            Value::Float(d.median.as_secs_f64()),
                        ),
                        (
                            vec![("stat", "worst".to_string())],
                            Value::Float(d.worst.as_secs_f64()),
                        ),
                    ]
                })
                .unwrap_or_default(),
        ),
        "lienthong_evidence_lines" => {
            let c = &state.evidence.counts;
            let counts = [
                ("record", &c.records),
                ("seal", &c.seals),
                ("error", &c.errors),
            ];
            Samples::Counters(if state.evidence.enabled() {
                counts
                    .iter()
                    .map(|(kind, n)| {
                        (
                            vec![("kind", (*kind).to_string())],
                            n.load(std::sync::atomic::Ordering::Relaxed),
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            })
        }
        "lienthong_accepted_events" => {
            Samples::Counters(vec![(Vec::new(), stats.accepted_since_start)])
        }
        "lienthong_payment_callbacks_forged" => Samples::Counters(vec![(
            Vec::new(),
            state.callbacks.forged_total.load(Ordering::Relaxed),
        )]),
        "lienthong_lookups" => Samples::Counters(
            state
                .lookups
                .since_start()
                .into_iter()
                .map(|((unit, kind, outcome), n)| {
                    (
                        vec![("unit", unit), ("kind", kind), ("outcome", outcome)],
                        n,
                    )
                })
                .collect(),
        ),
        "lienthong_idempotency_keys_checked_locally" => Samples::Counters(
            state
                .broker
                .is_some()
                .then(|| {
                    (
                        Vec::new(),
                        state.keys_checked_locally.load(Ordering::Relaxed),
                    )
                })
                .into_iter()
                .collect(),
        ),
        "lienthong_deliveries" => Samples::Counters(
            state
                .targets
                .iter()
                .flat_map(|t| {
                    [
                        ("delivered", t.stats.delivered.load(Ordering::Relaxed)),
                        ("retried", t.stats.retried.load(Ordering::Relaxed)),
                        ("dead", t.stats.dead.load(Ordering::Relaxed)),
                    ]
                    .map(|(outcome, n)| {
                        (
                            vec![("target", t.name.clone()), ("outcome", outcome.to_string())],
                            n,
                        )
                    })
                })
                .collect(),
        ),
        "lienthong_target_ready" => per_target(&|t| queue(t, |q| q.ready)),
        "lienthong_target_in_flight" => per_target(&|t| queue(t, |q| q.in_flight)),
        "lienthong_target_retry_scheduled" => per_target(&|t| queue(t, |q| q.retry_scheduled)),
        "lienthong_target_blocked_keys" => per_target(&|t| queue(t, |q| q.blocked_keys)),
        "lienthong_circuit_open" => {
            per_target(&|t| Value::Count(i64::from(t.breaker.state() != BreakerState::Closed)))
        }
        "lienthong_target_paused" => {
            per_target(&|t| Value::Count(i64::from(t.paused.load(Ordering::Relaxed))))
        }
        "lienthong_unit_deliveries"
        | "lienthong_unit_pending_deliveries"
        | "lienthong_unit_oldest_pending_seconds" => unit_samples(name, state, now),
        _ => Samples::Gauges(Vec::new()),
    }
}

/// The samples of the KPI families: each unit's figures (and `all`), the plan's targets,
/// the overdue dossiers.
fn kpi_samples(name: &str, kpi: Option<&crate::admin::kpi::KpiSnapshot>) -> Samples {
    match name {
        "lienthong_kpi_percent" => Samples::Gauges(
            kpi.map(|snapshot| {
                std::iter::once(("all", &snapshot.overall))
                    .chain(snapshot.units.iter().map(|u| (u.unit.as_str(), u)))
                    .flat_map(|(unit, u)| {
                        u.kpis.iter().filter_map(move |(kpi, ratio)| {
                            ratio.percent.map(|p| {
                                (
                                    vec![("unit", unit.to_string()), ("kpi", kpi.to_string())],
                                    Value::Float(p),
                                )
                            })
                        })
                    })
                    .collect()
            })
            .unwrap_or_default(),
        ),
        "lienthong_kpi_target_percent" => Samples::Gauges(
            crate::admin::kpi::KPIS
                .iter()
                .map(|k| {
                    (
                        vec![("kpi", k.id.to_string())],
                        Value::Float(k.target_percent),
                    )
                })
                .collect(),
        ),
        "lienthong_overdue_dossiers" => Samples::Gauges(
            kpi.map(|k| {
                k.units
                    .iter()
                    .map(|u| {
                        (
                            vec![("unit", u.unit.clone())],
                            Value::Count(u.overdue as i64),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        ),
        _ => Samples::Gauges(Vec::new()),
    }
}

/// The samples of the per-unit families: deliveries by outcome, what waits and how long.
fn unit_samples(name: &str, state: &AdminState, now: u64) -> Samples {
    match name {
        "lienthong_unit_deliveries" => Samples::Counters(
            state
                .targets
                .iter()
                .flat_map(|t| {
                    t.stats.recent.totals_per_unit().into_iter().flat_map(
                        move |(unit, (delivered, failed, dead))| {
                            [
                                ("delivered", delivered),
                                ("retried", failed),
                                ("dead", dead),
                            ]
                            .map(|(outcome, n)| {
                                (
                                    vec![
                                        ("unit", unit.to_string()),
                                        ("target", t.name.clone()),
                                        ("outcome", outcome.to_string()),
                                    ],
                                    n,
                                )
                            })
                        },
                    )
                })
                .collect(),
        ),
        "lienthong_unit_pending_deliveries" | "lienthong_unit_oldest_pending_seconds" => {
            let oldest = name == "lienthong_unit_oldest_pending_seconds";
            let mut list = Vec::new();
            for t in &state.targets {
                let Some(q) = state.outbox.queue(&t.name) else {
                    continue;
                };
                for (tag, c) in q.per_unit() {
                    let labels = vec![("unit", tag.name().to_string()), ("target", t.name.clone())];
                    match (oldest, c.oldest) {
                        (false, _) => list.push((labels, Value::Count(c.pending as i64))),
                        (true, Some(o)) => list.push((
                            labels,
                            Value::Float(now.saturating_sub(o.timestamp_ms()) as f64 / 1000.0),
                        )),
                        (true, None) => {}
                    }
                }
            }
            Samples::Gauges(list)
        }
        _ => Samples::Gauges(Vec::new()),
    }
}
