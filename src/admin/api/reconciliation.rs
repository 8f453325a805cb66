//! `GET /api/v1/reconciliation?from=YYYY-MM-DD&to=YYYY-MM-DD`: the daily reconciliation
//! per unit ([`crate::admin::reconciliation`]), read off the serving threads.

use super::{ApiResult, storage};
use crate::admin::AdminState;
use crate::admin::reconciliation::{MAX_DAYS, document};
use crate::web::ApiError;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use std::collections::HashMap;
use std::sync::Arc;

/// A `YYYY-MM-DD` date as a day count; days before 1970 are day 0 (nothing is there).
fn day_of_date(text: &str) -> Option<u32> {
    let b = text.as_bytes();
    let shape = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shape {
        return None;
    }
    let (y, m, d) = (
        text[..4].parse::<i64>().ok()?,
        text[5..7].parse::<u32>().ok()?,
        text[8..].parse::<u32>().ok()?,
    );
    if !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let days = lienthong_mapping::datetime::days_from_civil(y, m, d);
    // 2024-02-30 is not a day: the count must come back to the same date.
    (lienthong_mapping::datetime::civil_from_days(days) == (y, m, d))
        .then(|| u32::try_from(days.max(0)).unwrap_or(u32::MAX))
}

/// The days a query asks for: `from` (today when absent) to `to` (`from` when absent),
/// cut at [`MAX_DAYS`] days from `from`. A `to` before `from` is an empty range.
pub(crate) fn range(from: Option<&str>, to: Option<&str>) -> Result<(u32, u32), ApiError> {
    let day = |text: Option<&str>, field: &str, default: u32| match text {
        None => Ok(default),
        Some(t) => day_of_date(t).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_day",
                format!(
                    "`{}` is not a day: YYYY-MM-DD",
                    t.chars().take(40).collect::<String>()
                ),
            )
            .field(field)
        }),
    };
    let today = crate::time::vn_day(crate::time::now_ms());
    let from = day(from, "from", today)?;
    let to = day(to, "to", from)?;
    Ok((from, to.min(from.saturating_add(MAX_DAYS - 1))))
}

pub(super) async fn reconciliation(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    s.tokens.identify(&headers)?;
    let (from, to) = range(
        q.get("from").map(String::as_str),
        q.get("to").map(String::as_str),
    )?;
    let state = Arc::clone(&s);
    let doc = tokio::task::spawn_blocking(move || {
        let rows = state.outbox.ledger_rows(from, to)?;
        Ok::<_, crate::outbox::StoreError>(document(&rows, from, to, state.evidence_dir.as_deref()))
    })
    .await
    .map_err(storage)?
    .map_err(storage)?;
    Ok(Json(doc))
}
