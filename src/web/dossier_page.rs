//! The page of a dossier a request asks for (`?after=<event id>&limit=`), shared by the
//! admin's and the units' dossier views: each parameter that is not valid is named.

use super::ApiError;
use crate::envelope::MessageId;
use axum::http::StatusCode;

/// Events per page when the request does not say.
pub const DEFAULT_LIMIT: usize = 500;

/// The cursor and the page size of `?after=&limit=`, read from the whole query (a repeated
/// parameter is its last value, so whatever a client sends is answered with a JSON error
/// naming the field): `after` a message id (a previous page's `next`), `limit` 1 to 1000
/// (500 when absent).
pub fn parse(
    q: &std::collections::HashMap<String, String>,
) -> Result<(Option<MessageId>, usize), ApiError> {
    let bad = |field: &str, message: String| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message).field(field)
    };
    let after = match q.get("after").map(|a| a.trim()).filter(|a| !a.is_empty()) {
        Some(a) => Some(a.parse::<MessageId>().map_err(|_| {
            bad(
                "after",
                format!("`{a}` is not an event id (the previous page's `next`)"),
            )
        })?),
        None => None,
    };
    let limit = match q.get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| bad("limit", format!("`{l}`: ask for 1 to 1000 events")))?,
    };
    Ok((after, limit))
}

/// `after` and `limit` of a dossier's page (the units' and the admin's dossier views).
pub fn parameters() -> Vec<serde_json::Value> {
    vec![
        serde_json::json!({"name": "after", "in": "query", "required": false,
               "description": "The `next` of the previous page (absent or empty: the first page)",
               "schema": {"type": "string", "pattern": "^$|^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"}}),
        serde_json::json!({"name": "limit", "in": "query", "required": false,
               "description": "Events per page (500 when absent)",
               "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}),
    ]
}
