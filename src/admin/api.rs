//! The admin API (`/api/v1`, JSON) for the IT Center: overall and per-target status, a
//! message's journey, dead letters (list with filters, show, replay one or a filtered set,
//! drop with a recorded reason), pause and resume a target. Viewers read; operators act.

use super::AdminState;
use crate::delivery::breaker::BreakerState;
use crate::envelope::MessageId;
use crate::ingress::ApiError;
use crate::outbox::{DeadLetter, Notes, OpError};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Every admin route: method, path, who may call it, and what it does. The OpenAPI
/// document is built from this list, and a test calls each entry against the router.
pub const ROUTES: &[(&str, &str, &str, &str)] = &[
    (
        "get",
        "/api/v1/status",
        "viewer",
        "Overall and per-target state",
    ),
    (
        "get",
        "/api/v1/messages/{id}",
        "viewer",
        "A message and where each delivery stands",
    ),
    (
        "get",
        "/api/v1/dossiers/{key}",
        "viewer",
        "A dossier (MaHoSo): its events and whether its latest status reached each target",
    ),
    (
        "get",
        "/api/v1/kpis",
        "viewer",
        "The action plan's KPIs per unit with their definitions and 2024 targets (refresh=true computes them now)",
    ),
    (
        "get",
        "/api/v1/dead-letters",
        "viewer",
        "Dead letters, filtered by target, unit, reason, since_ms, limit",
    ),
    (
        "post",
        "/api/v1/dead-letters/replay",
        "operator",
        "Replay every dead letter matching a filter",
    ),
    (
        "get",
        "/api/v1/dead-letters/{target}/{id}",
        "viewer",
        "One dead letter with the event as sent",
    ),
    (
        "post",
        "/api/v1/dead-letters/{target}/{id}/replay",
        "operator",
        "Replay one dead letter",
    ),
    (
        "post",
        "/api/v1/dead-letters/{target}/{id}/drop",
        "operator",
        "Drop one dead letter with a recorded reason",
    ),
    (
        "post",
        "/api/v1/targets/{target}/pause",
        "operator",
        "Stop deliveries to a target",
    ),
    (
        "post",
        "/api/v1/targets/{target}/resume",
        "operator",
        "Restart deliveries to a target",
    ),
    ("get", "/api/v1/openapi.json", "anyone", "This document"),
];

/// The OpenAPI 3 document of the admin API, from [`ROUTES`].
pub fn openapi() -> Value {
    let mut paths = serde_json::Map::new();
    for (method, path, role, summary) in ROUTES {
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut op = json!({
            "summary": summary,
            "parameters": params,
            "responses": {
                "200": {"description": "OK (JSON)"},
                "401": {"description": "no or unknown token"},
                "403": {"description": "the token's role may not do this"},
                "404": {"description": "no such message, dead letter or target"}
            }
        });
        if *role != "anyone" {
            op["security"] = json!([{ "bearer": [] }]);
            op["x-role"] = json!(role);
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "lienthong admin API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Sync status, dead letters and targets of the integration bus. Viewer tokens read; operator tokens also replay, drop and pause."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    })
}

async fn openapi_json() -> Json<Value> {
    Json(openapi())
}

pub fn routes(state: Arc<AdminState>) -> axum::Router {
    axum::Router::new()
        .route("/api/v1/openapi.json", get(openapi_json))
        .route("/api/v1/status", get(status))
        .route("/api/v1/messages/{id}", get(message))
        .route("/api/v1/dossiers/{key}", get(dossier))
        .route("/api/v1/kpis", get(kpis))
        .route("/api/v1/dead-letters", get(dead_letters))
        .route("/api/v1/dead-letters/replay", post(replay_set))
        .route("/api/v1/dead-letters/{target}/{id}", get(dead_letter))
        .route(
            "/api/v1/dead-letters/{target}/{id}/replay",
            post(replay_one),
        )
        .route("/api/v1/dead-letters/{target}/{id}/drop", post(drop_one))
        .route("/api/v1/targets/{target}/pause", post(pause))
        .route("/api/v1/targets/{target}/resume", post(resume))
        .with_state(state)
}

type ApiResult = Result<Json<Value>, ApiError>;

fn storage(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage",
        format!("the outbox cannot be read: {e}"),
    )
}

fn parse_id(id: &str) -> Result<MessageId, ApiError> {
    id.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            format!("`{id}` is not a message id (a UUID)"),
        )
        .field("id")
    })
}

/// Seconds since the message `id` was accepted.
fn age_s(id: Option<MessageId>, now_ms: u64) -> Option<u64> {
    id.map(|id| now_ms.saturating_sub(id.timestamp_ms()) / 1000)
}

/// Overall, per-target and per-unit state, from the outbox and the relay's counters.
async fn status(State(s): State<Arc<AdminState>>, headers: HeaderMap) -> ApiResult {
    s.tokens.identify(&headers)?;
    let mut doc = status_document(&s).map_err(storage)?;
    if let Some(broker) = &s.broker {
        add_broker_depths(&mut doc, broker).await;
    }
    Ok(Json(doc))
}

/// In a cluster, each target's messages waiting in the broker's partition queues
/// (`in_broker`; null with `broker_error` when the broker cannot be asked).
async fn add_broker_depths(doc: &mut Value, broker: &crate::transport::broker::Broker) {
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
        for (unit, (pending, dead)) in s.outbox.per_unit(&t.name) {
            let f = units.entry(unit).or_default();
            f.pending += pending;
            f.dead += dead;
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
                "pending": q.map_or(0, |q| q.in_memory),
                "backlog_on_disk": q.is_some_and(|q| q.backlog_on_disk),
                "ready": q.map_or(0, |q| q.ready),
                "in_flight": q.map_or(0, |q| q.in_flight),
                "retrying": q.map_or(0, |q| q.retry_scheduled),
                "waiting_for_dossier": q.map_or(0, |q| q.waiting_for_key),
                "blocked_dossiers": q.map_or(0, |q| q.blocked_keys),
                "delivered_since_start": t.stats.delivered.load(Ordering::Relaxed),
                "retried_since_start": t.stats.retried.load(Ordering::Relaxed),
                "dead_since_start": t.stats.dead.load(Ordering::Relaxed),
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

#[derive(Deserialize, Default)]
struct MessageQuery {
    /// Also show the message as each target receives it (after mapping).
    #[serde(default)]
    mapped: bool,
}

/// A message's journey: received, (mapped,) and each delivery's attempts and outcome.
async fn message(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<MessageQuery>,
) -> ApiResult {
    s.tokens.identify(&headers)?;
    let id = parse_id(&id)?;
    let env = s.outbox.message(id).map_err(storage)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no message {id} (never accepted, or removed after the retention period)"),
        )
    })?;
    let deliveries: Vec<Value> = s
        .outbox
        .delivery_states(id)
        .map_err(storage)?
        .into_iter()
        .map(|(target, state)| {
            let mut d = json!({"target": target, "delivery": state});
            if q.mapped {
                d["mapped"] = match s.mappings.render(&env, &target) {
                    Ok(out) => match serde_json::from_slice::<Value>(&out.body) {
                        Ok(v) => json!({"content_type": out.content_type, "body": v}),
                        Err(_) => json!({"content_type": out.content_type,
                                         "body": String::from_utf8_lossy(&out.body)}),
                    },
                    Err(error) => json!({"error": error}),
                };
            }
            d
        })
        .collect();
    Ok(Json(json!({
        "id": env.id, "unit": env.unit, "flow": env.flow, "key": env.key,
        "received_ms": env.received_ms, "received_at": crate::time::rfc3339_ms(env.received_ms),
        "trace_id": env.trace_id,
        "idempotency_key": env.idempotency_key, "deliveries": deliveries,
    })))
}

/// A dossier by its ordering key (`MaHoSo`): every event, and where the latest event
/// bound for each target stands. `portal_synced` answers the IT Center's question: has the
/// dossier's latest status reached the national portal?
async fn dossier(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> ApiResult {
    s.tokens.identify(&headers)?;
    let doc = dossier_document(&s, key.trim()).map_err(storage)?;
    if doc["events"].as_array().is_none_or(|e| e.is_empty()) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no dossier `{}` (no event with this key was accepted, or retention removed them)",
                key.trim()
            ),
        )
        .field("key"));
    }
    Ok(Json(doc))
}

/// The dossier document (the dashboard's search renders the same).
pub fn dossier_document(s: &AdminState, key: &str) -> Result<Value, crate::outbox::StoreError> {
    let messages = s.outbox.dossier_messages(key, 10_000)?;
    let mut events = Vec::with_capacity(messages.len());
    // Per target: the latest event bound for it and that delivery's state.
    let mut latest: BTreeMap<String, (MessageId, crate::outbox::DeliveryState)> = BTreeMap::new();
    for env in &messages {
        let states = s.outbox.delivery_states(env.id)?;
        for (target, state) in &states {
            latest.insert(target.clone(), (env.id, state.clone()));
        }
        let deliveries: Vec<Value> = states
            .into_iter()
            .map(|(target, state)| json!({"target": target, "delivery": state}))
            .collect();
        events.push(json!({
            "id": env.id, "unit": env.unit, "flow": env.flow,
            "received_ms": env.received_ms, "deliveries": deliveries,
        }));
    }
    let targets: Vec<Value> = latest
        .iter()
        .map(|(target, (id, state))| {
            json!({
                "target": target,
                "latest_event": id,
                "reached": matches!(state, crate::outbox::DeliveryState::Delivered { .. }),
                "delivery": state,
            })
        })
        .collect();
    let portal: Vec<&(MessageId, crate::outbox::DeliveryState)> = s
        .portal_targets
        .iter()
        .filter_map(|t| latest.get(t))
        .collect();
    let portal_synced = (!portal.is_empty()).then(|| {
        portal
            .iter()
            .all(|(_, st)| matches!(st, crate::outbox::DeliveryState::Delivered { .. }))
    });
    Ok(json!({
        "key": key,
        "units": messages.iter().map(|m| m.unit.as_str()).collect::<std::collections::BTreeSet<_>>(),
        // null when no event of the dossier goes to the portal.
        "portal_synced": portal_synced,
        "targets": targets,
        "events": events,
    }))
}

#[derive(Deserialize, Default)]
struct KpiQuery {
    #[serde(default)]
    refresh: bool,
}

/// The KPI snapshot; computed now when asked or when none exists yet.
async fn kpis(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Query(q): Query<KpiQuery>,
) -> ApiResult {
    s.tokens.identify(&headers)?;
    let snapshot = match (q.refresh, s.kpis.latest()) {
        (false, Some(snap)) => snap,
        _ => s.kpis.refresh(&s).await.map_err(storage)?,
    };
    Ok(Json(
        serde_json::to_value(&*snapshot).expect("snapshots serialize"),
    ))
}

#[derive(Deserialize, Default)]
pub struct DeadFilter {
    pub target: Option<String>,
    pub unit: Option<String>,
    /// Text the reason must contain.
    pub reason: Option<String>,
    /// Dead at or after this time (milliseconds since the epoch).
    pub since_ms: Option<u64>,
    pub limit: Option<usize>,
}

impl DeadFilter {
    fn matches(&self, d: &DeadLetter) -> bool {
        self.unit.as_ref().is_none_or(|u| &d.unit == u)
            && self
                .reason
                .as_ref()
                .is_none_or(|r| d.reason.contains(r.as_str()))
            && self
                .since_ms
                .is_none_or(|since| d.id.timestamp_ms() >= since || dead_ms(d) >= since)
    }
}

fn dead_ms(d: &DeadLetter) -> u64 {
    d.errors.last().map_or(0, |e| e.at_ms)
}

/// The dead letters matching the filter, oldest first, at most `limit` (100, up to
/// 10,000): read a page at a time, so a million dead letters cost no more memory than
/// the answer.
pub fn select(s: &AdminState, f: &DeadFilter) -> Result<Vec<DeadLetter>, ApiError> {
    let limit = f.limit.unwrap_or(100).min(10_000);
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    s.outbox
        .for_each_dead_letter(f.target.as_deref(), |d| {
            if f.matches(&d) {
                out.push(d);
            }
            out.len() < limit
        })
        .map_err(storage)?;
    Ok(out)
}

async fn dead_letters(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Query(f): Query<DeadFilter>,
) -> ApiResult {
    s.tokens.identify(&headers)?;
    let list = select(&s, &f)?;
    Ok(Json(json!({ "count": list.len(), "dead_letters": list })))
}

async fn dead_letter(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Path((target, id)): Path<(String, String)>,
) -> ApiResult {
    s.tokens.identify(&headers)?;
    let id = parse_id(&id)?;
    let found = s
        .outbox
        .dead_letter(&target, id)
        .map_err(storage)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no dead letter {id} for target `{target}`"),
            )
        })?;
    let message = s.outbox.message(id).map_err(storage)?;
    Ok(Json(
        json!({ "dead_letter": found, "payload": message.map(|m| m.payload) }),
    ))
}

fn op_error(e: OpError, target: &str, id: MessageId) -> ApiError {
    match e {
        OpError::NotFound => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no dead letter {id} for target `{target}`"),
        ),
        other => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage",
            other.to_string(),
        ),
    }
}

async fn replay_one(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Path((target, id)): Path<(String, String)>,
) -> ApiResult {
    let who = s.tokens.operator(&headers)?;
    let id = parse_id(&id)?;
    s.outbox
        .replay(&target, id)
        .await
        .map_err(|e| op_error(e, &target, id))?;
    tracing::info!(operator = %who, %target, %id, "dead letter replayed");
    s.audit.record(
        "dead_letter_replay",
        &who,
        json!({"target": target, "id": id, "via": "api"}),
    );
    Ok(Json(json!({ "replayed": [id] })))
}

#[derive(Deserialize)]
struct DropBody {
    reason: String,
}

async fn drop_one(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Path((target, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult {
    // Who asks comes first: a viewer learns nothing about the body's shape.
    let who = s.tokens.operator(&headers)?;
    let id = parse_id(&id)?;
    let body: Option<DropBody> = serde_json::from_slice(&body).ok();
    let reason = body
        .map(|b| b.reason)
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "reason_required",
                "say why the message is dropped: {\"reason\": \"...\"}",
            )
            .field("reason")
        })?;
    s.outbox
        .drop_dead(&target, id)
        .await
        .map_err(|e| op_error(e, &target, id))?;
    let record = json!({"target": target, "id": id, "reason": reason, "by": who, "at_ms": crate::time::now_ms()});
    s.outbox
        .put_note(
            &format!("dlq-drop/{id}/{target}"),
            record.to_string().as_bytes(),
        )
        .map_err(storage)?;
    tracing::info!(operator = %who, %target, %id, %reason, "dead letter dropped");
    s.audit.record(
        "dead_letter_drop",
        &who,
        json!({"target": target, "id": id, "reason": reason}),
    );
    Ok(Json(json!({ "dropped": id, "reason": reason })))
}

/// Replay every dead letter matching the filter (operators).
async fn replay_set(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult {
    let who = s.tokens.operator(&headers)?;
    let f: DeadFilterBody = if body.is_empty() {
        DeadFilterBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_filter",
                format!(
                    "the filter is not valid: {e} (fields: target, unit, reason, since_ms, limit)"
                ),
            )
        })?
    };
    let filter = DeadFilter {
        target: f.target,
        unit: f.unit,
        reason: f.reason,
        since_ms: f.since_ms,
        limit: f.limit,
    };
    let list = select(&s, &filter)?;
    let mut replayed = Vec::new();
    for d in list {
        match s.outbox.replay(&d.target, d.id).await {
            Ok(()) => replayed.push(d.id),
            Err(OpError::NotFound) => {} // replayed meanwhile
            Err(e) => return Err(op_error(e, &d.target, d.id)),
        }
    }
    tracing::info!(operator = %who, count = replayed.len(), "dead letters replayed");
    if !replayed.is_empty() {
        s.audit.record(
            "dead_letter_replay",
            &who,
            json!({"ids": replayed, "via": "api (filtered set)"}),
        );
    }
    Ok(Json(json!({ "replayed": replayed })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DeadFilterBody {
    target: Option<String>,
    unit: Option<String>,
    reason: Option<String>,
    since_ms: Option<u64>,
    limit: Option<usize>,
}

fn runtime<'a>(
    s: &'a AdminState,
    target: &str,
) -> Result<&'a Arc<crate::delivery::TargetRuntime>, ApiError> {
    s.targets.iter().find(|t| t.name == target).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_target",
            format!("no target `{target}`"),
        )
        .field("target")
    })
}

async fn pause(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Path(target): Path<String>,
) -> ApiResult {
    let who = s.tokens.operator(&headers)?;
    runtime(&s, &target)?.pause();
    tracing::warn!(operator = %who, %target, "target paused");
    Ok(Json(json!({ "target": target, "paused": true })))
}

async fn resume(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Path(target): Path<String>,
) -> ApiResult {
    let who = s.tokens.operator(&headers)?;
    runtime(&s, &target)?.resume();
    tracing::info!(operator = %who, %target, "target resumed");
    Ok(Json(json!({ "target": target, "paused": false })))
}
