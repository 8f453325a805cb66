//! Dead letters: list with filters, show one, replay one or a filtered set, drop one with
//! a recorded reason.

use super::{ApiResult, parse_id, storage};
use crate::admin::AdminState;
use crate::envelope::MessageId;
use crate::ingress::ApiError;
use crate::outbox::{DeadLetter, Notes, OpError};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

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

pub(super) async fn dead_letters(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Query(f): Query<DeadFilter>,
) -> ApiResult {
    s.tokens.identify(&headers)?;
    let list = select(&s, &f)?;
    Ok(Json(json!({ "count": list.len(), "dead_letters": list })))
}

pub(super) async fn dead_letter(
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

pub(super) async fn replay_one(
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

pub(super) async fn drop_one(
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
pub(super) async fn replay_set(
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
