//! A message's journey (`/messages/{id}`), a dossier's (`/dossiers/{key}`) and the KPI
//! snapshot (`/kpis`).

use super::{ApiResult, parse_id, storage};
use crate::admin::AdminState;
use crate::envelope::MessageId;
use crate::web::ApiError;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Deserialize, Default)]
pub(super) struct MessageQuery {
    /// Also show the message as each target receives it (after mapping).
    #[serde(default)]
    mapped: bool,
}

/// A message's journey: received, (mapped,) and each delivery's attempts and outcome.
pub(super) async fn message(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<MessageQuery>,
) -> ApiResult {
    s.tokens.identify(&headers)?;
    let id = parse_id(&id)?;
    let doc = message_document(&s, id, q.mapped)
        .map_err(storage)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no message {id} (never accepted, or removed after the retention period)"),
            )
        })?;
    Ok(Json(doc))
}

/// The message document (the dashboard's search by message id renders the same): each
/// delivery's state, what a pending one waits behind, and with `mapped` the body each
/// target receives. None: no such message (never accepted, or past retention).
pub fn message_document(
    s: &AdminState,
    id: MessageId,
    mapped: bool,
) -> Result<Option<Value>, crate::outbox::StoreError> {
    let Some(env) = s.outbox.message(id)? else {
        return Ok(None);
    };
    // A pending delivery says what it waits behind (an older message of the dossier).
    let deliveries: Vec<Value> = s
        .outbox
        .delivery_states_explained(&env)?
        .into_iter()
        .map(|(target, state, waiting)| {
            let mut d = json!({"target": target, "delivery": state, "waiting_behind": waiting});
            if mapped {
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
    Ok(Some(json!({
        "id": env.id, "unit": env.unit, "flow": env.flow, "key": env.key,
        "received_ms": env.received_ms, "received_at": crate::time::rfc3339_ms(env.received_ms),
        "trace_id": env.trace_id,
        "idempotency_key": env.idempotency_key, "deliveries": deliveries,
    })))
}

/// A dossier by its ordering key (`MaHoSo`): a page of its events (every unit's), and
/// where the latest event bound for each target stands. `portal_synced` answers the IT
/// Center's question: has the dossier's latest status reached the national portal? Read
/// off the serving threads.
pub(super) async fn dossier(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Path(key): Path<String>,
    Query(page): Query<std::collections::HashMap<String, String>>,
) -> ApiResult {
    s.tokens.identify(&headers)?;
    let (after, limit) = crate::web::dossier_page::parse(&page)?;
    let key = key.trim().to_string();
    let doc = {
        let (s, key) = (s.clone(), key.clone());
        tokio::task::spawn_blocking(move || dossier_document(&s, &key, after, limit))
            .await
            .map_err(storage)?
            .map_err(storage)?
    };
    if !crate::outbox::dossier_found(&doc) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no dossier `{key}` (no event with this key was accepted, or retention removed them)"
            ),
        )
        .field("key"));
    }
    Ok(Json(doc))
}

/// The dossier document, every unit's events (the dashboard's search renders the same):
/// the configured units' and any other the outbox still counts.
pub fn dossier_document(
    s: &AdminState,
    key: &str,
    after: Option<MessageId>,
    limit: usize,
) -> Result<Value, crate::outbox::StoreError> {
    let mut units: std::collections::BTreeSet<String> = s.units.iter().cloned().collect();
    units.extend(s.outbox.units_counted());
    let units: Vec<String> = units.into_iter().collect();
    crate::outbox::dossier_document(
        &s.outbox,
        &s.portal_targets,
        &crate::outbox::DossierQuery {
            key,
            units: &units,
            after,
            limit,
        },
    )
}

#[derive(Deserialize, Default)]
pub(super) struct KpiQuery {
    #[serde(default)]
    refresh: bool,
    /// `2024-07`, `2024-Q3`, `2024`, `ytd` or `all` (the default).
    period: Option<String>,
    /// Only this unit's row (the overall row stays).
    unit: Option<String>,
}

/// The KPI snapshot: all time from the kept snapshot (computed now when asked or when
/// none exists yet), another period computed now from the running totals.
pub(super) async fn kpis(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Query(q): Query<KpiQuery>,
) -> ApiResult {
    s.tokens.identify(&headers)?;
    let period = crate::admin::period::Period::parse(q.period.as_deref().unwrap_or("all"))
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_period", e).field("period"))?;
    if let Some(unit) = &q.unit
        && !s.units.contains(unit)
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_unit",
            format!("no unit `{unit}`"),
        )
        .field("unit"));
    }
    let snapshot = crate::admin::kpi::snapshot_for(&s, period, q.refresh)
        .await
        .map_err(storage)?;
    let mut doc = serde_json::to_value(&*snapshot).expect("snapshots serialize");
    if let Some(unit) = &q.unit
        && let Some(units) = doc["units"].as_array_mut()
    {
        units.retain(|u| u["unit"] == unit.as_str());
    }
    Ok(Json(doc))
}
