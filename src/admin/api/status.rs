//! `GET /api/v1/status`: overall, per-target and per-unit state from the outbox's running
//! totals and the targets' counters (the dashboard renders the same document).

use super::age_s;
use super::{ApiResult, storage};
use crate::admin::AdminState;
use crate::delivery::breaker::BreakerState;
use crate::envelope::MessageId;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Overall, per-target and per-unit state, from the outbox and the relay's counters.
pub(super) async fn status(State(s): State<Arc<AdminState>>, headers: HeaderMap) -> ApiResult {
    s.tokens.identify(&headers)?;
    let mut doc = status_document(&s).map_err(storage)?;
    if let Some(broker) = &s.broker {
        add_broker_depths(&mut doc, broker).await;
    }
    Ok(Json(doc))
}

/// In a cluster, each target's messages waiting in the broker's partition queues
/// (`in_broker`; null with `broker_error` when the broker cannot be asked).
pub(super) async fn add_broker_depths(doc: &mut Value, broker: &crate::transport::broker::Broker) {
    let Some(targets) = doc["targets"].as_array_mut() else {
        return;
    };
    for t in targets {
        let name = t["target"].as_str().unwrap_or_default().to_string();
        match broker.depth(&name).await {
            Ok(n) => t["in_broker"] = json!(n),
            Err(e) => {
                t["in_broker"] = Value::Null;
                t["broker_error"] = json!(e.to_string());
            }
        }
    }
}

/// The status document (also rendered by the dashboard, so both always agree).
pub fn status_document(s: &AdminState) -> Result<Value, crate::outbox::StoreError> {
    let now = crate::time::now_ms();
    let stats = s.outbox.stats();
    let mut units: BTreeMap<String, UnitFigures> = s
        .units
        .iter()
        .map(|u| (u.clone(), UnitFigures::default()))
        .collect();
    let mut targets = Vec::new();
    for t in &s.targets {
        let per_unit_window = s
            .outbox
            .queue(&t.name)
            .map(|q| q.per_unit())
            .unwrap_or_default();
        let mut oldest: Option<MessageId> = None;
        for (tag, c) in &per_unit_window {
            let f = units.entry(tag.name().to_string()).or_default();
            f.in_flight += c.in_flight as u64;
            f.retrying += c.retrying as u64;
            f.oldest = min_id(f.oldest, c.oldest);
            oldest = min_id(oldest, c.oldest);
        }
        // Exact, from the outbox's running counts (the window holds only the oldest).
        let (mut target_pending, mut target_dead) = (0, 0);
        for (unit, (pending, dead)) in s.outbox.per_unit(&t.name) {
            let f = units.entry(unit).or_default();
            f.pending += pending;
            f.dead += dead;
            target_pending += pending;
            target_dead += dead;
        }
        let recent_per_unit = t.stats.recent.per_unit(now);
        for (unit, summary) in &recent_per_unit {
            units
                .entry(unit.to_string())
                .or_default()
                .recent
                .push(*summary);
        }
        let recent =
            crate::delivery::activity::ActivitySummary::sum(recent_per_unit.iter().map(|(_, s)| s));
        let q = stats.targets.get(&t.name);
        targets.push(json!({
                "target": t.name,
                // Every delivery to this target not yet delivered or dead (held behind a
                // dead letter included); `in_window` is the part the scheduler holds.
                "pending": target_pending,
                // Its dead letters now (running totals, like `pending`).
                "dead": target_dead,
                "in_window": q.map_or(0, |q| q.in_memory),
                "backlog_on_disk": q.is_some_and(|q| q.backlog_on_disk),
                "ready": q.map_or(0, |q| q.ready),
                "in_flight": q.map_or(0, |q| q.in_flight),
                "retrying": q.map_or(0, |q| q.retry_scheduled),
                "waiting_for_dossier": q.map_or(0, |q| q.waiting_for_key),
                "blocked_dossiers": q.map_or(0, |q| q.blocked_keys),
                "delivered_since_start": t.stats.delivered.load(Ordering::Relaxed),
                "retried_since_start": t.stats.retried.load(Ordering::Relaxed),
                "dead_since_start": t.stats.dead.load(Ordering::Relaxed),
                // Mapping runs: a retry reuses its first attempt's body.
                "renders_since_start": t.stats.renders.load(Ordering::Relaxed),
                "bodies_kept_for_retry": t.stats.rendered.size().0,
                "bodies_from_door": t.stats.from_door.size().0,
                "circuit": t.breaker.state(),
                "paused": t.paused.load(Ordering::Relaxed),
                "rate_limit_per_second": t.rate_per_second,
                // Bucket bounds: the delivery latency is at most this, for 50 % / 99 %.
                "latency_p50_ms": t.stats.latency.quantile_ms(0.5),
                "latency_p99_ms": t.stats.latency.quantile_ms(0.99),
                "oldest_pending_age_s": age_s(oldest, now),
                "recent": recent,
        }));
    }
    let refused = s.mappings.refused();
    let units: Vec<Value> = units
        .into_iter()
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, f)| {
            json!({
                "unit": name,
                "pending": f.pending,
                "in_flight": f.in_flight,
                "retrying": f.retrying,
                "dead": f.dead,
                "oldest_pending_age_s": age_s(f.oldest, now),
                "recent": crate::delivery::activity::ActivitySummary::sum(&f.recent),
            })
        })
        .collect();
    let healthy = s
        .targets
        .iter()
        .all(|t| t.breaker.state() == BreakerState::Closed && !t.paused.load(Ordering::Relaxed));
    // The last failed attempts over all targets, newest first.
    let mut failures: Vec<(String, crate::delivery::activity::Failure)> = s
        .targets
        .iter()
        .flat_map(|t| {
            t.stats
                .failures
                .list()
                .into_iter()
                .map(|f| (t.name.clone(), f))
        })
        .collect();
    failures.sort_by_key(|f| std::cmp::Reverse(f.1.at_ms));
    failures.truncate(crate::delivery::activity::RecentFailures::KEPT);
    let failures: Vec<Value> = failures
        .into_iter()
        .map(|(target, f)| {
            json!({"target": target, "unit": f.unit, "id": f.id, "error": f.error,
                   "dead": f.dead, "at_ms": f.at_ms, "at": crate::time::rfc3339_ms(f.at_ms)})
        })
        .collect();
    Ok(json!({
        "healthy": healthy,
        "accepting": s.accepting.load(Ordering::Relaxed),
        "pending": stats.pending,
        "pending_bytes": stats.pending_bytes,
        "dead": stats.dead,
        "accepted_since_start": stats.accepted_since_start,
        "disk_bytes": stats.disk_bytes,
        "window_seconds": crate::delivery::activity::WINDOW_SECONDS,
        "targets": targets,
        "units": units,
        "recent_failures": failures,
        "mappings_refused": {
            "at": (refused.at_ms > 0).then(|| crate::time::rfc3339_ms(refused.at_ms)),
            "problems": refused.problems,
        },
    }))
}

/// One unit's figures, summed over the targets its messages go to.
#[derive(Default)]
struct UnitFigures {
    pending: u64,
    in_flight: u64,
    retrying: u64,
    dead: u64,
    oldest: Option<MessageId>,
    recent: Vec<crate::delivery::activity::ActivitySummary>,
}

fn min_id(a: Option<MessageId>, b: Option<MessageId>) -> Option<MessageId> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
