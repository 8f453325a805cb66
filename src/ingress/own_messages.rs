//! What a unit reads about its own messages with its own key, instead of asking the IT
//! Center: where each delivery of a message stands (`GET /api/v1/units/{unit}/messages/{id}`)
//! and a dossier's events with where its latest event stands on each target
//! (`GET /api/v1/units/{unit}/dossiers/{code}`, `portal_synced` included).
//!
//! Never another unit's: a message of another unit is "not found", the same answer as an
//! id that never existed, and a dossier shows the asking unit's events only. What the
//! target received (the mapped body) is the IT Center's to see, not here.

use super::{ApiError, IngressState, authenticate};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

fn storage(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage",
        format!("the outbox cannot be read right now: {e}; try again shortly"),
    )
}

/// `GET /api/v1/units/{unit}/messages/{id}`.
pub async fn message(
    State(state): State<Arc<IngressState>>,
    Path((unit, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authenticate(&state, &unit, &headers)?;
    let parsed: crate::envelope::MessageId = id.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            format!("`{id}` is not a message id (the UUID the bus answered with on 202)"),
        )
        .field("id")
    })?;
    let env = state
        .outbox
        .message(parsed)
        .map_err(storage)?
        .filter(|env| env.unit == unit)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!(
                    "no message {id} of unit `{unit}` (never accepted, or removed after the \
                     retention period)"
                ),
            )
            .field("id")
        })?;
    // A pending delivery says what it waits behind (an older message of the dossier).
    let deliveries: Vec<Value> = state
        .outbox
        .delivery_states_explained(&env)
        .map_err(storage)?
        .into_iter()
        .map(|(target, delivery, waiting)| {
            json!({"target": target, "delivery": delivery, "waiting_behind": waiting})
        })
        .collect();
    Ok(Json(json!({
        "id": env.id, "unit": env.unit, "flow": env.flow, "key": env.key,
        "received_at": crate::time::rfc3339_ms(env.received_ms), "trace_id": env.trace_id,
        "deliveries": deliveries,
    })))
}

/// `GET /api/v1/units/{unit}/dossiers/{code}?after=&limit=`: the unit's own events of
/// its dossier, a page at a time, read off the serving threads.
pub async fn dossier(
    State(state): State<Arc<IngressState>>,
    Path((unit, code)): Path<(String, String)>,
    axum::extract::Query(page): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authenticate(&state, &unit, &headers)?;
    let (after, limit) = crate::web::dossier_page::parse(&page)?;
    let code = code.trim().to_string();
    let doc = {
        let (outbox, portal) = (state.outbox.clone(), state.portal_targets.clone());
        let (unit, code) = (unit.clone(), code.clone());
        tokio::task::spawn_blocking(move || {
            let units = [unit];
            crate::outbox::dossier_document(
                &outbox,
                &portal,
                &crate::outbox::DossierQuery {
                    key: &code,
                    units: &units,
                    after,
                    limit,
                },
            )
        })
        .await
        .map_err(storage)?
        .map_err(storage)?
    };
    if !crate::outbox::dossier_found(&doc) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("unit `{unit}` sent no event of dossier `{code}` (or retention removed them)"),
        )
        .field("code"));
    }
    Ok(Json(doc))
}

/// `GET /api/v1/units/{unit}/dead-letters`: the unit's own dead letters, a page at a
/// time (oldest first; `next` is the following page's cursor), so its system can learn of
/// refusals without polling each message. Never another unit's.
pub async fn dead_letters(
    State(state): State<Arc<IngressState>>,
    Path(unit): Path<String>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authenticate(&state, &unit, &headers)?;
    let query = own_dead_query(&unit, &q)?;
    let outbox = state.outbox.clone();
    let (list, next) = tokio::task::spawn_blocking(move || outbox.dead_letter_page(&query))
        .await
        .map_err(storage)?
        .map_err(storage)?;
    Ok(Json(json!({
        "count": list.len(),
        "dead_letters": list,
        "next": next.map(|c| c.to_string()),
    })))
}

/// The page a unit asks for; each parameter that is not valid is named.
fn own_dead_query(
    unit: &str,
    q: &std::collections::HashMap<String, String>,
) -> Result<crate::outbox::DeadQuery, ApiError> {
    // An empty text parameter (`after=` from a form) is an absent one; an empty number
    // is no number, and is refused as the document's `integer` says.
    let q: std::collections::HashMap<&str, &str> = q
        .iter()
        .filter(|(k, v)| !v.is_empty() || matches!(k.as_str(), "limit" | "since_ms"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let bad = |field: &str, message: String| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message).field(field)
    };
    // At most 2^53 - 1, the contract's bound: the largest whole number JSON keeps exactly.
    let number = |field: &str| -> Result<Option<u64>, ApiError> {
        q.get(field)
            .map(|v| {
                v.parse::<u64>()
                    .ok()
                    .filter(|n| *n <= 9_007_199_254_740_991)
                    .ok_or_else(|| {
                        bad(
                            field,
                            format!("`{v}` is not a whole number from 0 to 2^53 - 1"),
                        )
                    })
            })
            .transpose()
    };
    let after = match q.get("after") {
        Some(a) => Some(a.parse::<crate::outbox::DeadCursor>().map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_cursor", e).field("after")
        })?),
        None => None,
    };
    let limit = number("limit")?.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(bad("limit", format!("{limit}: ask for 1 to 1000")));
    }
    Ok(crate::outbox::DeadQuery {
        target: q.get("target").map(|t| t.to_string()),
        unit: Some(unit.to_string()),
        reason: q.get("reason").map(|r| r.to_string()),
        since_ms: number("since_ms")?,
        after,
        limit: limit as usize,
    })
}

/// `GET /api/v1/units/{unit}/dead-letters/feed?after=&limit=`: the unit's new dead
/// letters in the order they died, after the cursor its system kept from the last poll;
/// `next` is the cursor to keep (the same as `after` when nothing is new). Each entry says
/// whether it is still a dead letter (a replayed or dropped one is not) and, if so, why.
pub async fn dead_letter_feed(
    State(state): State<Arc<IngressState>>,
    Path(unit): Path<String>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authenticate(&state, &unit, &headers)?;
    let after = q.get("after").filter(|a| !a.is_empty()).cloned();
    if let Some(a) = &after
        && !valid_feed_cursor(a)
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
            format!("`{a}` is not a cursor of this feed (keep the `next` of the last answer)"),
        )
        .field("after"));
    }
    // An empty `limit=` is no number: refused, as the document's `integer` says.
    let limit = match q.get("limit") {
        None => 100,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    format!("`{l}`: ask for 1 to 1000"),
                )
                .field("limit")
            })?,
    };
    let outbox = state.outbox.clone();
    let unit2 = unit.clone();
    let after2 = after.clone();
    let entries = tokio::task::spawn_blocking(move || {
        let entries = outbox.dead_feed(&unit2, after2.as_deref(), limit)?;
        entries
            .into_iter()
            .map(|e| {
                let now = outbox.dead_letter(&e.target, e.id)?;
                Ok(json!({
                    "cursor": e.cursor, "id": e.id, "target": e.target,
                    "dead_at": crate::time::rfc3339_ms(e.dead_at_ms),
                    "still_dead": now.is_some(),
                    "reason": now.map(|d| d.reason),
                }))
            })
            .collect::<Result<Vec<Value>, crate::outbox::StoreError>>()
    })
    .await
    .map_err(storage)?
    .map_err(storage)?;
    let next = entries
        .last()
        .and_then(|e| e["cursor"].as_str().map(str::to_string))
        .or(after);
    Ok(Json(json!({ "events": entries, "next": next })))
}

/// `<20 digits>/<message id>/<target>`, as the feed hands them out.
fn valid_feed_cursor(c: &str) -> bool {
    let mut parts = c.splitn(3, '/');
    let (Some(ms), Some(id), Some(target)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    ms.len() == 20
        && ms.bytes().all(|b| b.is_ascii_digit())
        && id.parse::<crate::envelope::MessageId>().is_ok()
        && !target.is_empty()
}
