//! `GET /api/v1/lookups`: who looked whom up, counted — each unit's lookups of a day by
//! kind and officer, the refusals by reason, and the documented exceptions to the purpose
//! check (running totals since the bus started; the audit trail keeps each lookup).

use super::ApiResult;
use crate::admin::AdminState;
use crate::web::ApiError;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

#[derive(Deserialize)]
pub(super) struct LookupsQuery {
    /// `YYYY-MM-DD` (Asia/Ho_Chi_Minh); today when absent.
    day: Option<String>,
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
pub fn parse_day(text: &str) -> Option<u32> {
    let mut parts = text.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    if text.len() != 10 || !(1970..=9999).contains(&y) || !(1..=12).contains(&m) {
        return None;
    }
    let days = lienthong_mapping::datetime::days_from_civil(y, m, d);
    // 2024-02-30 is not a day: the count must come back to the same date.
    (lienthong_mapping::datetime::civil_from_days(days) == (y, m, d))
        .then(|| u32::try_from(days).ok())
        .flatten()
}

pub use crate::time::day_text;

pub(super) async fn lookups(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Query(q): Query<LookupsQuery>,
) -> ApiResult {
    s.tokens.identify(&headers)?;
    let day = match q.day.as_deref() {
        None | Some("") => crate::outbox::tally::day_of(crate::time::now_ms()),
        Some(text) => parse_day(text).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_day",
                format!(
                    "`{}` is not a day: YYYY-MM-DD",
                    text.chars().take(40).collect::<String>()
                ),
            )
            .field("day")
        })?,
    };
    Ok(Json(json!({
        "day": day_text(day),
        "units": s.lookups.day(day),
        "exceptions": s.lookups.exceptions(),
    })))
}
