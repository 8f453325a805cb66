//! The paths a unit reads its own state from, in its OpenAPI document: a message, a
//! dossier, and its dead letters a page at a time.

use super::openapi::errors;
use serde_json::{Map, Value, json};

/// Add the unit's read paths to `paths`.
pub(super) fn unit_read_paths(
    unit: &str,
    tag: &str,
    security: Value,
    paths: &mut Map<String, Value>,
) {
    let mut read_errors = errors(&[
        (400, "invalid_id: not a message id (a UUID)"),
        (401, "unauthorized: no or wrong unit key"),
        (403, "forbidden: the key is another unit's"),
        (
            404,
            "not_found: no such message of this unit (another unit's is not found either); unknown_unit",
        ),
        (429, "rate_limited: over the unit's rate_limit"),
        (503, "storage: the outbox cannot be read right now"),
    ]);
    read_errors.insert("200".into(), json!({"description": "Where each delivery stands",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MessageState"}}}}));
    paths.insert(
        format!("/api/v1/units/{unit}/messages/{{id}}"),
        json!({"get": {
            "operationId": format!("{unit}_message"),
            "tags": [tag], "security": security,
            "summary": "Where a message of this unit stands on each target",
            "parameters": [{"name": "id", "in": "path", "required": true,
                            "description": "The id the bus answered with on 202",
                            "schema": {"type": "string", "format": "uuid"}}],
            "responses": read_errors,
        }}),
    );
    let mut dossier_responses = errors(&[
        (
            400,
            "invalid_query: `after` is not an event id, or `limit` is not 1 to 1000 (named in `field`)",
        ),
        (401, "unauthorized: no or wrong unit key"),
        (403, "forbidden: the key is another unit's"),
        (
            404,
            "not_found: no event of this dossier from this unit; unknown_unit",
        ),
        (429, "rate_limited: over the unit's rate_limit"),
        (503, "storage: the outbox cannot be read right now"),
    ]);
    dossier_responses.insert("200".into(), json!({"description": "The dossier's events from this unit, and whether its latest status reached each target",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DossierState"}}}}));
    let mut dossier_parameters = vec![json!({"name": "code", "in": "path", "required": true,
        "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[0-9A-Za-z][0-9A-Za-z._-]*$"}})];
    dossier_parameters.extend(crate::web::dossier_page::parameters());
    paths.insert(
        format!("/api/v1/units/{unit}/dossiers/{{code}}"),
        json!({"get": {
            "operationId": format!("{unit}_dossier"),
            "tags": [tag], "security": security,
            "summary": "A dossier of this unit (by its code, MaHoSo): a page of its events and where its latest ones stand",
            "parameters": dossier_parameters,
            "responses": dossier_responses,
        }}),
    );
    let mut dead_responses = errors(&[
        (
            400,
            "invalid_query (a parameter named in `field` is not valid), invalid_cursor: `after` is not the `next` of a page",
        ),
        (401, "unauthorized: no or wrong unit key"),
        (403, "forbidden: the key is another unit's"),
        (404, "unknown_unit"),
        (429, "rate_limited: over the unit's rate_limit"),
        (503, "storage: the outbox cannot be read right now"),
    ]);
    dead_responses.insert("200".into(), json!({"description": "A page of this unit's dead letters, oldest first; `next` is the cursor of the following page (null: no more)",
        "content": {"application/json": {"schema": {"type": "object",
            "required": ["count", "dead_letters", "next"],
            "properties": {
                "count": {"type": "integer"},
                "dead_letters": {"type": "array", "items": {"type": "object"}},
                "next": {"type": ["string", "null"]}}}}}}));
    paths.insert(
        format!("/api/v1/units/{unit}/dead-letters"),
        json!({"get": {
            "operationId": format!("{unit}_dead_letters"),
            "tags": [tag], "security": security,
            "summary": "This unit's dead letters (messages a platform refused for good, or that could not be mapped), a page at a time",
            "parameters": [
                {"name": "target", "in": "query", "required": false, "schema": {"type": "string"}},
                {"name": "reason", "in": "query", "required": false, "description": "Text the reason contains", "schema": {"type": "string"}},
                {"name": "since_ms", "in": "query", "required": false, "description": "Dead or accepted at or after this time (ms since 1970)", "schema": {"type": "integer", "minimum": 0, "maximum": 9007199254740991u64}},
                {"name": "after", "in": "query", "required": false, "description": "The `next` of the previous page (target/message id; absent or empty: the first page)",
                 "schema": {"type": "string", "pattern": "^$|^[^/]+/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"}},
                {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
            ],
            "responses": dead_responses,
        }}),
    );
    let mut feed_responses = errors(&[
        (
            400,
            "invalid_cursor: `after` is not a `next` of this feed; invalid_query: `limit`",
        ),
        (401, "unauthorized: no or wrong unit key"),
        (403, "forbidden: the key is another unit's"),
        (404, "unknown_unit"),
        (429, "rate_limited: over the unit's rate_limit"),
        (503, "storage: the outbox cannot be read right now"),
    ]);
    feed_responses.insert("200".into(), json!({"description": "This unit's new dead letters in the order they died, after the cursor; keep `next` for the next poll",
        "content": {"application/json": {"schema": {"type": "object",
            "required": ["events", "next"],
            "properties": {
                "events": {"type": "array", "items": {"type": "object"}},
                "next": {"type": ["string", "null"]}}}}}}));
    paths.insert(
        format!("/api/v1/units/{unit}/dead-letters/feed"),
        json!({"get": {
            "operationId": format!("{unit}_dead_letter_feed"),
            "tags": [tag], "security": security,
            "summary": "New dead letters of this unit since the last poll (a feed read by cursor)",
            "parameters": [
                {"name": "after", "in": "query", "required": false, "description": "The `next` of the last answer (absent or empty: from the oldest kept)",
                 "schema": {"type": "string", "pattern": "^$|^[0-9]{20}/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/.+$"}},
                {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
            ],
            "responses": feed_responses,
        }}),
    );
}
