//! The admin API (`/api/v1`, JSON) for the IT Center: overall and per-target status, a
//! message's journey, dead letters (list with filters, show, replay one or a filtered set,
//! drop with a recorded reason), pause and resume a target. Viewers read; operators act.

use super::AdminState;
use crate::envelope::MessageId;
use crate::outbox::Notes;
use crate::web::ApiError;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::sync::Arc;

mod dead_letters;
mod journey;
pub mod lookups;
pub(crate) mod reconciliation;
mod status;

pub use dead_letters::{DeadFilter, drop_with_reason, select, select_page};
use dead_letters::{dead_letter, dead_letters, drop_one, drop_set, replay_one, replay_set};
use journey::{dossier, kpis, message};
pub use journey::{dossier_document, message_document};
use status::status;
pub use status::status_document;

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
        "/api/v1/lookups",
        "viewer",
        "Lookups of a day (`day`=YYYY-MM-DD, today when absent) per unit by kind and officer, refusals by reason, and the documented exceptions to the purpose check",
    ),
    (
        "get",
        "/api/v1/reconciliation",
        "viewer",
        "The daily reconciliation per unit for the days `from` to `to` (YYYY-MM-DD; today when absent; cut at 92 days, the document's `to` says where): events received and, per target, deliveries made, delivered, forwarded, dead, dropped and pending, with the message log's chain head of each day",
    ),
    (
        "get",
        "/api/v1/dead-letters",
        "viewer",
        "Dead letters, filtered by target, unit, reason, since_ms; a page of limit (100) after the cursor `after` (the previous page's `next`)",
    ),
    (
        "post",
        "/api/v1/dead-letters/replay",
        "operator",
        "Replay a page of the dead letters matching a filter (JSON: target, unit, reason, since_ms, after, limit); `next` starts the following page",
    ),
    (
        "post",
        "/api/v1/dead-letters/drop",
        "operator",
        "Drop a page of the dead letters matching a filter, with `why` recorded; `next` starts the following page",
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
        let mut params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                let schema = match name {
                    "id" => json!({"type": "string", "format": "uuid"}),
                    _ => json!({"type": "string", "minLength": 1}),
                };
                json!({"name": name, "in": "path", "required": true, "schema": schema})
            })
            .collect();
        if *path == "/api/v1/dossiers/{key}" {
            params.extend(crate::web::dossier_page::parameters());
        }
        if *path == "/api/v1/reconciliation" {
            for (name, what) in [
                ("from", "The first day (today when absent)"),
                ("to", "The last day (`from` when absent)"),
            ] {
                params.push(
                    json!({"name": name, "in": "query", "required": false, "description": what,
                    "schema": {"type": "string", "format": "date"}}),
                );
            }
        }
        let error = |d: &str| {
            json!({"description": d, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Error"}}}})
        };
        let mut responses = json!({
            "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
            "401": error("unauthorized: no or unknown token"),
            "403": error("forbidden: the token's role may not do this"),
            "404": error("not_found, unknown_target: no such message, dossier, dead letter or target"),
            "429": error("too_many_wrong_tokens: this address sent 10 wrong tokens within a minute; wait `Retry-After` seconds"),
            "503": error("storage: the outbox cannot be read right now"),
        });
        if path.contains("{id}")
            || path.ends_with("/replay")
            || *path == "/api/v1/dead-letters"
            || path.ends_with("/drop")
            || *path == "/api/v1/kpis"
            || *path == "/api/v1/lookups"
            || *path == "/api/v1/reconciliation"
            || *path == "/api/v1/dossiers/{key}"
        {
            responses["400"] = error(
                "invalid_id (not a UUID), or a query or body field that is not valid (named in `field`)",
            );
        }
        if *role == "anyone" {
            responses = json!({"200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}});
        }
        let mut op = json!({
            "operationId": format!("{method}_{}", path.trim_start_matches("/api/v1/").replace(['/', '{', '}', '-', '.'], "_")),
            "tags": ["admin"],
            "summary": summary,
            "parameters": params,
            "responses": responses,
        });
        if *path == "/api/v1/dead-letters/drop" {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {
                "type": "object", "required": ["why"], "additionalProperties": false,
                "properties": {
                    "why": {"type": "string", "pattern": "[0-9A-Za-z]",
                        "description": "Why these are dropped (kept in the audit trail)"},
                    "target": {"type": ["string", "null"]}, "unit": {"type": ["string", "null"]},
                    "reason": {"type": ["string", "null"], "description": "Text the dead letters' reason contains"},
                    "since_ms": {"type": ["integer", "null"], "minimum": 0, "maximum": 9007199254740991u64},
                    "after": {"type": ["string", "null"], "pattern": "^$|^[^/]+/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
                        "description": "The previous page's `next` (empty or null: from the start)"},
                    "limit": {"type": ["integer", "null"], "minimum": 0, "maximum": 10000}}
            }}}});
        } else if path.ends_with("/drop") {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {
                "type": "object", "required": ["reason"],
                "properties": {"reason": {"type": "string", "pattern": "[0-9A-Za-z]",
                    "description": "Why it is dropped (kept in the audit trail)"}}
            }}}});
        }
        if *role != "anyone" {
            op["security"] = json!([{ "bearer": [] }]);
            op["x-role"] = json!(role);
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "lienthong admin API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Sync status, dead letters and targets of the integration bus. Viewer tokens read; operator tokens also replay, drop and pause."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {
                "type": "object", "required": ["error"],
                "properties": {"error": {"type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                                   "field": {"type": "string"}}}}
            }},
        },
        "paths": paths,
    })
}

async fn openapi_json() -> Json<Value> {
    Json(openapi())
}

/// `/api/v1/openapi.json` on a node that takes no unit traffic (a worker): the admin API
/// alone. Unit-facing nodes serve the whole document ([`crate::contract`]).
pub fn openapi_routes() -> axum::Router {
    axum::Router::new().route("/api/v1/openapi.json", get(openapi_json))
}

pub fn routes(state: Arc<AdminState>) -> axum::Router {
    axum::Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/messages/{id}", get(message))
        .route("/api/v1/dossiers/{key}", get(dossier))
        .route("/api/v1/kpis", get(kpis))
        .route("/api/v1/lookups", get(lookups::lookups))
        .route(
            "/api/v1/reconciliation",
            get(reconciliation::reconciliation),
        )
        .route("/api/v1/dead-letters", get(dead_letters))
        .route("/api/v1/dead-letters/replay", post(replay_set))
        .route("/api/v1/dead-letters/drop", post(drop_set))
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

pub(super) type ApiResult = Result<Json<Value>, ApiError>;

pub(super) fn storage(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage",
        format!("the outbox cannot be read: {e}"),
    )
}

pub(super) fn parse_id(id: &str) -> Result<MessageId, ApiError> {
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
pub(super) fn age_s(id: Option<MessageId>, now_ms: u64) -> Option<u64> {
    id.map(|id| now_ms.saturating_sub(id.timestamp_ms()) / 1000)
}

pub(super) fn runtime<'a>(
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
    let t = runtime(&s, &target)?;
    // Kept in the outbox: a pause outlives a restart until an operator resumes.
    s.outbox
        .put_note(&crate::delivery::paused_note(&target), b"1")
        .map_err(storage)?;
    t.pause();
    tracing::warn!(operator = %who, %target, "target paused");
    s.audit
        .record("target_pause", &who, json!({"target": target}));
    Ok(Json(json!({ "target": target, "paused": true })))
}

async fn resume(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Path(target): Path<String>,
) -> ApiResult {
    let who = s.tokens.operator(&headers)?;
    let t = runtime(&s, &target)?;
    s.outbox
        .remove_note(&crate::delivery::paused_note(&target))
        .map_err(storage)?;
    t.resume();
    tracing::info!(operator = %who, %target, "target resumed");
    s.audit
        .record("target_resume", &who, json!({"target": target}));
    Ok(Json(json!({ "target": target, "paused": false })))
}
