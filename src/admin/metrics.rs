//! `/metrics` in the Prometheus text format, read from the outbox and the relay's counters
//! (never a second source of truth).

use super::AdminState;
use crate::delivery::breaker::BreakerState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Every metric family: name, type and help line.
const FAMILIES: &[(&str, &str, &str)] = &[
    (
        "lienthong_kpi_percent",
        "gauge",
        "A Decision 1205 KPI in percent, by unit (unit=\"all\": the ministry) and kpi, over the KPI snapshot's period; absent while it has no denominator.",
    ),
    (
        "lienthong_kpi_target_percent",
        "gauge",
        "The target of each KPI, in percent.",
    ),
    (
        "lienthong_overdue_dossiers",
        "gauge",
        "Open dossiers past their NgayHenTra (due date) without a result, by unit (as of the latest KPI snapshot).",
    ),
    (
        "lienthong_pending_deliveries",
        "gauge",
        "Deliveries (message x target) not yet delivered or dead.",
    ),
    (
        "lienthong_dead_letters",
        "gauge",
        "Dead letters waiting for an operator.",
    ),
    (
        "lienthong_accepted_events_total",
        "counter",
        "Events accepted since start.",
    ),
    (
        "lienthong_payment_callbacks_forged_total",
        "counter",
        "Payment callbacks refused for a wrong MaXacThuc since start (nothing of them is stored).",
    ),
    (
        "lienthong_deliveries_total",
        "counter",
        "Delivery attempts since start, by target and outcome.",
    ),
    (
        "lienthong_target_ready",
        "gauge",
        "Deliveries ready to be attempted now, by target.",
    ),
    (
        "lienthong_target_in_flight",
        "gauge",
        "Deliveries being attempted now, by target.",
    ),
    (
        "lienthong_target_retry_scheduled",
        "gauge",
        "Deliveries waiting for their next attempt, by target.",
    ),
    (
        "lienthong_target_blocked_keys",
        "gauge",
        "Dossiers held back behind a dead letter, by target.",
    ),
    (
        "lienthong_circuit_open",
        "gauge",
        "1 when the target's circuit breaker is open or half-open.",
    ),
    (
        "lienthong_target_paused",
        "gauge",
        "1 when an operator paused the target.",
    ),
    (
        "lienthong_outbox_disk_bytes",
        "gauge",
        "Bytes the outbox occupies on disk.",
    ),
    (
        "lienthong_delivery_latency_seconds",
        "histogram",
        "Time from acceptance to delivery, by target.",
    ),
    (
        "lienthong_unit_deliveries_total",
        "counter",
        "Delivery attempts since start, by unit, target and outcome.",
    ),
    (
        "lienthong_unit_pending_deliveries",
        "gauge",
        "Pending deliveries by unit and target (those in the scheduler's window).",
    ),
    (
        "lienthong_unit_oldest_pending_seconds",
        "gauge",
        "Age of the oldest pending delivery, by unit and target.",
    ),
];

pub async fn metrics(State(state): State<Arc<AdminState>>) -> impl IntoResponse {
    let mut out = String::with_capacity(4096);
    for (name, kind, help) in FAMILIES {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    write_units(&mut out, &state);
    write_overdue(&mut out, &state);
    write_kpis(&mut out, &state);
    write_outbox(&mut out, &state);
    write_targets(&mut out, &state);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

/// Overdue dossiers per unit, from the KPI snapshot (refreshed every `kpi_interval`; the
/// scrape reads no store).
fn write_overdue(out: &mut String, state: &AdminState) {
    if let Some(k) = state.kpis.latest() {
        for u in &k.units {
            let _ = writeln!(
                out,
                "lienthong_overdue_dossiers{{unit=\"{}\"}} {}",
                u.unit, u.overdue
            );
        }
    }
}

/// Each KPI against its target, from the KPI snapshot (the scrape reads no store).
fn write_kpis(out: &mut String, state: &AdminState) {
    for k in &crate::admin::kpi::KPIS {
        let _ = writeln!(
            out,
            "lienthong_kpi_target_percent{{kpi=\"{}\"}} {}",
            k.id, k.target_percent
        );
    }
    let Some(snapshot) = state.kpis.latest() else {
        return;
    };
    let all = std::iter::once(("all", &snapshot.overall))
        .chain(snapshot.units.iter().map(|u| (u.unit.as_str(), u)));
    for (unit, u) in all {
        for (kpi, ratio) in &u.kpis {
            if let Some(percent) = ratio.percent {
                let _ = writeln!(
                    out,
                    "lienthong_kpi_percent{{unit=\"{unit}\",kpi=\"{kpi}\"}} {percent}"
                );
            }
        }
    }
}

/// Outcomes, pending deliveries and the oldest pending per unit and target.
fn write_units(out: &mut String, state: &AdminState) {
    let now = crate::time::now_ms();
    for t in &state.targets {
        let name = &t.name;
        for (unit, (delivered, failed, dead)) in t.stats.recent.totals_per_unit() {
            for (outcome, n) in [
                ("delivered", delivered),
                ("retried", failed),
                ("dead", dead),
            ] {
                let _ = writeln!(
                    out,
                    "lienthong_unit_deliveries_total{{unit=\"{unit}\",target=\"{name}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        if let Some(q) = state.outbox.queue(name) {
            for (tag, c) in q.per_unit() {
                let unit = tag.name();
                let _ = writeln!(
                    out,
                    "lienthong_unit_pending_deliveries{{unit=\"{unit}\",target=\"{name}\"}} {}",
                    c.pending
                );
                if let Some(oldest) = c.oldest {
                    let _ = writeln!(
                        out,
                        "lienthong_unit_oldest_pending_seconds{{unit=\"{unit}\",target=\"{name}\"}} {}",
                        now.saturating_sub(oldest.timestamp_ms()) as f64 / 1000.0
                    );
                }
            }
        }
    }
}

/// The outbox's running totals and the refused payment callbacks.
fn write_outbox(out: &mut String, state: &AdminState) {
    let stats = state.outbox.stats();
    let _ = writeln!(out, "lienthong_pending_deliveries {}", stats.pending);
    let _ = writeln!(out, "lienthong_dead_letters {}", stats.dead);
    let _ = writeln!(
        out,
        "lienthong_accepted_events_total {}",
        stats.accepted_since_start
    );
    let _ = writeln!(out, "lienthong_outbox_disk_bytes {}", stats.disk_bytes);
    let _ = writeln!(
        out,
        "lienthong_payment_callbacks_forged_total {}",
        state.callbacks.forged_total.load(Ordering::Relaxed)
    );
}

/// Per target: outcomes, scheduling state, breaker, latency histogram, pause.
fn write_targets(out: &mut String, state: &AdminState) {
    let stats = state.outbox.stats();
    for t in &state.targets {
        let name = &t.name;
        for (outcome, n) in [
            ("delivered", t.stats.delivered.load(Ordering::Relaxed)),
            ("retried", t.stats.retried.load(Ordering::Relaxed)),
            ("dead", t.stats.dead.load(Ordering::Relaxed)),
        ] {
            let _ = writeln!(
                out,
                "lienthong_deliveries_total{{target=\"{name}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        if let Some(q) = stats.targets.get(name) {
            let _ = writeln!(
                out,
                "lienthong_target_ready{{target=\"{name}\"}} {}",
                q.ready
            );
            let _ = writeln!(
                out,
                "lienthong_target_in_flight{{target=\"{name}\"}} {}",
                q.in_flight
            );
            let _ = writeln!(
                out,
                "lienthong_target_retry_scheduled{{target=\"{name}\"}} {}",
                q.retry_scheduled
            );
            let _ = writeln!(
                out,
                "lienthong_target_blocked_keys{{target=\"{name}\"}} {}",
                q.blocked_keys
            );
        }
        let open = u8::from(t.breaker.state() != BreakerState::Closed);
        let _ = writeln!(out, "lienthong_circuit_open{{target=\"{name}\"}} {open}");
        let (cumulative, sum_ms) = t.stats.latency.snapshot();
        for (i, count) in cumulative.iter().enumerate() {
            let le = crate::delivery::LATENCY_BUCKETS_MS
                .get(i)
                .map_or("+Inf".to_string(), |ms| format!("{}", *ms as f64 / 1000.0));
            let _ = writeln!(
                out,
                "lienthong_delivery_latency_seconds_bucket{{target=\"{name}\",le=\"{le}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "lienthong_delivery_latency_seconds_sum{{target=\"{name}\"}} {}",
            sum_ms as f64 / 1000.0
        );
        let _ = writeln!(
            out,
            "lienthong_delivery_latency_seconds_count{{target=\"{name}\"}} {}",
            cumulative.last().copied().unwrap_or(0)
        );
        let paused = u8::from(t.paused.load(Ordering::Relaxed));
        let _ = writeln!(out, "lienthong_target_paused{{target=\"{name}\"}} {paused}");
    }
}
