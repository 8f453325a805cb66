//! Dead letters: list with filters, show one, replay one or a filtered set, drop one with
//! a recorded reason.

use super::{ApiResult, parse_id, storage};
use crate::admin::AdminState;
use crate::envelope::MessageId;
use crate::outbox::{DeadCursor, DeadLetter, DeadQuery, Notes, OpError};
use crate::web::ApiError;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// 2^53 - 1: the largest whole number every JSON reader keeps exactly; the contract's
/// bound for times in milliseconds.
pub const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;

#[derive(Deserialize, Default)]
pub struct DeadFilter {
    pub target: Option<String>,
    pub unit: Option<String>,
    /// Text the reason must contain.
    pub reason: Option<String>,
    /// Dead at or after this time (milliseconds since the epoch).
    pub since_ms: Option<u64>,
    /// The `next` of the previous page (`target/id`).
    pub after: Option<String>,
    pub limit: Option<usize>,
}

impl DeadFilter {
    /// The outbox query: a page of at most `limit` (100, up to 10,000).
    pub fn query(&self) -> Result<DeadQuery, ApiError> {
        if let Some(t) = self.since_ms.filter(|t| *t > MAX_SAFE_INTEGER) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("since_ms: {t} is past the largest time a JSON number carries exactly"),
            )
            .field("since_ms"));
        }
        let after = match self.after.as_ref().filter(|a| !a.is_empty()) {
            Some(a) => Some(a.parse::<DeadCursor>().map_err(|e| {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_cursor", e).field("after")
            })?),
            None => None,
        };
        Ok(DeadQuery {
            target: self.target.clone(),
            unit: self.unit.clone(),
            reason: self.reason.clone(),
            since_ms: self.since_ms,
            after,
            limit: self.limit.unwrap_or(100).min(10_000),
        })
    }
}

/// The dead letters matching the filter, oldest first, one page; and where the next page
/// starts when there may be more.
pub fn select_page(
    s: &AdminState,
    f: &DeadFilter,
) -> Result<(Vec<DeadLetter>, Option<DeadCursor>), ApiError> {
    s.outbox.dead_letter_page(&f.query()?).map_err(storage)
}

/// [`select_page`] without the cursor.
pub fn select(s: &AdminState, f: &DeadFilter) -> Result<Vec<DeadLetter>, ApiError> {
    Ok(select_page(s, f)?.0)
}

pub(super) async fn dead_letters(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Query(f): Query<DeadFilter>,
) -> ApiResult {
    s.tokens.identify(&headers)?;
    let (list, next) = select_page(&s, &f)?;
    Ok(Json(json!({
        "count": list.len(),
        "dead_letters": list,
        "next": next.map(|c| c.to_string()),
    })))
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
    drop_with_reason(&s, &who, &target, id, &reason)
        .await
        .map_err(|e| op_error(e, &target, id))?;
    tracing::info!(operator = %who, %target, %id, %reason, "dead letter dropped");
    s.audit.record(
        "dead_letter_drop",
        &who,
        json!({"target": target, "id": id, "reason": reason}),
    );
    Ok(Json(json!({ "dropped": id, "reason": reason })))
}

/// A filter sent as a JSON body (bulk replay and drop).
fn filter_of(body: &[u8], fields: &str) -> Result<DeadFilterBody, ApiError> {
    if body.is_empty() {
        return Ok(DeadFilterBody::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_filter",
            format!("the filter is not valid: {e} (fields: {fields})"),
        )
    })
}

/// Replay one page of the dead letters matching the filter (operators); `next` says
/// where the following page starts, so a caller can go through all of them.
pub(super) async fn replay_set(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult {
    let who = s.tokens.operator(&headers)?;
    let f = filter_of(&body, "target, unit, reason, since_ms, after, limit")?;
    let (list, next) = select_page(&s, &f.filter()?)?;
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
    Ok(Json(
        json!({ "replayed": replayed, "next": next.map(|c| c.to_string()) }),
    ))
}

/// Drop one page of the dead letters matching the filter (operators), with a reason.
pub(super) async fn drop_set(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult {
    let who = s.tokens.operator(&headers)?;
    let f = filter_of(&body, "target, unit, reason, since_ms, after, limit, why")?;
    let why = f.why.clone().filter(|r| !r.trim().is_empty()).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "reason_required",
            "say why these messages are dropped: {\"why\": \"...\"} (reason filters by the dead letters' reason)",
        )
        .field("why")
    })?;
    let dropped = drop_listed(&s, &who, &f.filter()?, &why).await?;
    Ok(Json(json!({
        "dropped": dropped.0,
        "why": why,
        "next": dropped.1.map(|c| c.to_string()),
    })))
}

/// Give up on one dead letter for good, keeping why and who beside it (a note read by
/// the dead letter's history); the API's drops and the dashboard's all go through here.
pub async fn drop_with_reason(
    s: &AdminState,
    who: &str,
    target: &str,
    id: MessageId,
    why: &str,
) -> Result<(), OpError> {
    s.outbox.drop_dead(target, id).await?;
    let record = json!({"target": target, "id": id, "reason": why, "by": who,
                        "at_ms": crate::time::now_ms()});
    s.outbox
        .put_note(
            &format!("dlq-drop/{id}/{target}"),
            record.to_string().as_bytes(),
        )
        .map_err(|e| OpError::Storage(e.to_string()))
}

/// Drop the page `filter` selects; the ids dropped and the next page's cursor.
async fn drop_listed(
    s: &AdminState,
    who: &str,
    filter: &DeadFilter,
    why: &str,
) -> Result<(Vec<MessageId>, Option<DeadCursor>), ApiError> {
    let (list, next) = select_page(s, filter)?;
    let mut dropped = Vec::new();
    for d in list {
        match drop_with_reason(s, who, &d.target, d.id, why).await {
            Ok(()) => dropped.push(d.id),
            Err(OpError::NotFound) => {}
            Err(e) => return Err(op_error(e, &d.target, d.id)),
        }
    }
    tracing::info!(operator = %who, count = dropped.len(), reason = %why, "dead letters dropped");
    if !dropped.is_empty() {
        s.audit.record(
            "dead_letter_drop",
            who,
            json!({"ids": dropped, "reason": why, "via": "filtered set"}),
        );
    }
    Ok((dropped, next))
}

/// The filter of a bulk replay or drop, sent as JSON. Numbers are taken as JSON Schema
/// reads them: `915.0` is the whole number 915.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DeadFilterBody {
    target: Option<String>,
    unit: Option<String>,
    reason: Option<String>,
    since_ms: Option<serde_json::Number>,
    after: Option<String>,
    limit: Option<serde_json::Number>,
    /// Why a set is dropped (drop only).
    why: Option<String>,
}

/// A whole, non-negative JSON number, or which field is not one.
fn whole(field: &str, n: &Option<serde_json::Number>) -> Result<Option<u64>, ApiError> {
    let Some(n) = n else { return Ok(None) };
    n.as_u64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= 9_007_199_254_740_991.0)
                .map(|f| f as u64)
        })
        .map(Some)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_filter",
                format!("{field}: `{n}` is not a whole number of 0 or more"),
            )
            .field(field)
        })
}

impl DeadFilterBody {
    fn filter(&self) -> Result<DeadFilter, ApiError> {
        Ok(DeadFilter {
            target: self.target.clone(),
            unit: self.unit.clone(),
            reason: self.reason.clone(),
            since_ms: whole("since_ms", &self.since_ms)?,
            after: self.after.clone(),
            limit: match whole("limit", &self.limit)? {
                Some(n) if n > 10_000 => {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_filter",
                        format!("limit: {n}, at most 10000 a page"),
                    )
                    .field("limit"));
                }
                n => n.map(|n| n as usize),
            },
        })
    }
}
