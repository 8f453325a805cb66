//! The OpenAPI 3.1 document of the unit-facing API, built from the configuration and the
//! mappings:
//!
//! * `POST /api/v1/units/{unit}/events/{flow}` for every flow a unit may send, its body
//!   the JSON Schema of what the flow's mappings read ([`lienthong_mapping::Mapping::input_schema`],
//!   merged over the flow's targets, the ordering key required), one event or a batch;
//!   flows that also take XML or CSV list those content types with an example from the
//!   mapping's fixture cases;
//! * the lookups a unit has mappings for, with the reply's fields;
//! * the unit's own message and dossier state; `/soap/{unit}` for SOAP units; the payment
//!   platform's callback;
//! * every error status with the one error body, the security schemes (bearer unit key,
//!   HMAC signature headers for units that sign).
//!
//! Paths are concrete per unit (`/api/v1/units/nafosted/events/dossier_sync`), so a
//! client generated from the document has one call per flow with its own body type.

use crate::config::Config;
use crate::mappings::MappingSet;
use crate::route::{Route, Router};
use lienthong_mapping::codec::csv::TextEncoding;
use lienthong_mapping::{Format, Mapping};
use serde_json::{Map, Value, json};
use std::path::Path;

/// What the document is built from.
pub struct Contract<'a> {
    pub config: &'a Config,
    pub router: &'a Router,
    pub mappings: &'a MappingSet,
}

/// The admin document with every unit's paths added.
pub fn document(c: &Contract<'_>, mut admin: Value) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for unit in c.config.units.keys() {
        unit_paths(c, unit, &mut paths, &mut schemas);
    }
    shared_paths(c, &mut paths);
    admin["openapi"] = json!("3.1.0");
    admin["info"]["title"] = json!("lienthong: unit-facing and admin API");
    let doc_paths = admin["paths"].as_object_mut().expect("admin paths");
    doc_paths.extend(paths);
    let components = admin["components"].as_object_mut().expect("components");
    let mut shared = components_of(c);
    components
        .entry("schemas")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("schemas")
        .extend(std::mem::take(
            shared["schemas"].as_object_mut().expect("s"),
        ));
    components
        .entry("schemas")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("schemas")
        .extend(schemas);
    components
        .entry("securitySchemes")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("security")
        .extend(std::mem::take(
            shared["securitySchemes"].as_object_mut().expect("sec"),
        ));
    admin
}

/// One unit's document (what its IT team needs, nothing of the others'); `None` for a
/// unit that is not configured.
pub fn unit_document(c: &Contract<'_>, unit: &str) -> Option<Value> {
    let cfg = c.config.units.get(unit)?;
    let mut paths = Map::new();
    let mut schemas = Map::new();
    unit_paths(c, unit, &mut paths, &mut schemas);
    let mut components = components_of(c);
    components["schemas"]
        .as_object_mut()
        .expect("schemas")
        .extend(schemas);
    let name = if cfg.name.is_empty() { unit } else { &cfg.name };
    Some(json!({
        "openapi": "3.1.0",
        "info": {
            "title": format!("lienthong: the API for {name}"),
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!(
                "What unit `{unit}` sends to the integration bus and reads back. Every call \
                 carries the unit key (`Authorization: Bearer <key>`). An event is stored \
                 durably before the 202; the bus then translates it for each national \
                 platform and delivers it, in order per dossier where the flow says so. \
                 Errors are JSON: `{{\"error\": {{\"code\", \"message\", \"field\"?}}}}`."
            ),
        },
        "paths": paths,
        "components": components,
    }))
}

fn components_of(c: &Contract<'_>) -> Value {
    let mut security = json!({
        "unitKey": {
            "type": "http", "scheme": "bearer",
            "description": "The unit's key (`units.<unit>.key_env`), one per unit; a key \
                            of another unit is 403."
        },
    });
    if c.config.units.values().any(|u| u.hmac_secret_env.is_some()) {
        security["signature"] = json!({
            "type": "apiKey", "in": "header", "name": "X-Lienthong-Signature",
            "description": "For units that sign (`hmac_secret_env`): `sha256=<hex \
                HMAC-SHA256(secret, \"<timestamp>\\n<METHOD>\\n<path?query>\\n<body>\")>`, \
                with `X-Lienthong-Timestamp: <unix seconds>` within 5 minutes of the \
                bus's clock; a signature is accepted once."
        });
        security["signatureTimestamp"] = json!({
            "type": "apiKey", "in": "header", "name": "X-Lienthong-Timestamp",
            "description": "Unix seconds of the signature."
        });
    }
    json!({
        "schemas": {
            "Error": {
                "type": "object", "required": ["error"],
                "properties": {"error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string", "description": "What went wrong, for programs (see the README's error table)"},
                        "message": {"type": "string", "description": "What went wrong and what to do, for people"},
                        "field": {"type": "string", "description": "The field, header or JSON pointer at fault"},
                        "line": {"type": "integer"}, "column": {"type": "integer"},
                        "problems": {
                            "type": "array",
                            "description": "invalid_event, invalid_lookup: every problem of the request, each at its field; nothing was stored",
                            "items": {
                                "type": "object", "required": ["field", "problem"],
                                "properties": {
                                    "field": {"type": "string", "description": "JSON pointer into the event after its batch index (`[3]/applicant/idNumber`); for a CSV record, the column name"},
                                    "problem": {"type": "string"},
                                    "line": {"type": "integer", "description": "A CSV record's line"}
                                }
                            }
                        }
                    }
                }}
            },
            "Accepted": {
                "type": "object", "required": ["accepted"],
                "properties": {"accepted": {
                    "type": "array",
                    "description": "One entry per event, in the order sent",
                    "items": {
                        "type": "object", "required": ["id", "duplicate"],
                        "properties": {
                            "id": {"type": "string", "format": "uuid", "description": "The message id: ask GET .../messages/{id} where it stands"},
                            "duplicate": {"type": "boolean", "description": "Already accepted under this Idempotency-Key: nothing new was stored"}
                        }
                    }
                }}
            },
            "MessageState": {
                "type": "object", "required": ["id", "unit", "flow", "received_at", "deliveries"],
                "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "unit": {"type": "string"}, "flow": {"type": "string"},
                    "key": {"type": ["string", "null"]},
                    "received_at": {"type": "string"},
                    "trace_id": {"type": "string"},
                    "deliveries": {"type": "array", "items": {
                        "type": "object", "required": ["target", "delivery"],
                        "properties": {"target": {"type": "string"}, "delivery": {"type": "object"}}
                    }}
                }
            },
            "DossierState": {
                "type": "object",
                "description": "A page of a dossier's events from this unit (oldest first) and where its latest event stands on each target",
                "required": ["key", "units", "targets", "events", "next"],
                "properties": {
                    "key": {"type": "string"},
                    "units": {"type": "array", "items": {"type": "string"}},
                    "portal_synced": {"type": ["boolean", "null"]},
                    "summary": {"type": "array", "description": "Per unit, the dossier as the KPI figures count it (the cluster's, whichever node accepted its events): first_seen, procedure, to_portal, portal_outstanding, portal_synced, finished, closed, due", "items": {"type": "object"}},
                    "targets": {"type": "array", "items": {"type": "object"}},
                    "events": {"type": "array", "items": {"type": "object"}},
                    "next": {"type": ["string", "null"], "description": "The cursor of the following page (`after`); null: no more"}
                }
            }
        },
        "securitySchemes": security,
    })
}

/// The error answers of an operation: status → the codes it can carry.
pub(super) fn errors(list: &[(u16, &str)]) -> Map<String, Value> {
    list.iter()
        .map(|(status, codes)| {
            let mut r = json!({
                "description": codes,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
            });
            if matches!(status, 409 | 429 | 503) {
                r["headers"] = json!({"Retry-After": {
                    "description": "Seconds to wait before sending again",
                    "schema": {"type": "integer"}
                }});
            }
            (status.to_string(), r)
        })
        .collect()
}

/// Statuses every unit call can answer before it looks at the body.
pub(super) const AUTH_ERRORS: &[(u16, &str)] = &[
    (
        401,
        "unauthorized: no or wrong unit key; signature_required, stale_signature, \
         bad_signature, replayed_request: for units that sign",
    ),
    (403, "forbidden: the key is another unit's"),
    (404, "unknown_unit: no such unit"),
    (
        408,
        "body_timeout: the body did not arrive within server.body_read_timeout",
    ),
    (
        413,
        "body_too_large: over server.max_body_bytes (or the route's own limit)",
    ),
    (
        429,
        "rate_limited: over the unit's rate_limit; wait Retry-After seconds",
    ),
];

pub(super) fn security_for(c: &Contract<'_>, unit: &str) -> Value {
    let signs = c
        .config
        .units
        .get(unit)
        .is_some_and(|u| u.hmac_secret_env.is_some());
    if signs {
        json!([{"unitKey": [], "signature": [], "signatureTimestamp": []}])
    } else {
        json!([{"unitKey": []}])
    }
}

fn unit_paths(
    c: &Contract<'_>,
    unit: &str,
    paths: &mut Map<String, Value>,
    schemas: &mut Map<String, Value>,
) {
    let tag = format!("unit {unit}");
    for route in c.router.routes_of(unit).iter().filter(|r| !r.internal) {
        let (path, op, schema_name, schema) = event_operation(c, route, &tag);
        schemas.insert(schema_name, schema);
        paths.insert(path, json!({"post": op}));
    }
    for (kind, needs) in [
        ("citizen", "population"),
        ("residence", "population"),
        ("business", "business"),
    ] {
        if let Some(op) = super::operations::lookup_operation(c, unit, kind, needs, &tag) {
            paths.insert(
                format!("/api/v1/units/{unit}/lookup/{kind}"),
                json!({"post": op}),
            );
        }
    }
    super::reads::unit_read_paths(unit, &tag, security_for(c, unit), paths);
    if let Some(op) = super::operations::soap_operation(c, unit, &tag) {
        let wsdl = super::operations::wsdl_operation(unit, &tag);
        paths.insert(format!("/soap/{unit}"), json!({"post": op, "get": wsdl}));
    }
    paths.insert(
        format!("/api/v1/units/{unit}/openapi.json"),
        json!({"get": {
            "operationId": format!("{unit}_openapi"),
            "tags": [tag],
            "summary": "This unit's API document (open: it holds no secret)",
            "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}},
        }}),
    );
}

/// The JSON Schema of one event of `route` ([`crate::route::event_schema`]).
pub(crate) fn event_schema(c: &Contract<'_>, route: &Route) -> Value {
    crate::route::event_schema::event_schema(c.mappings, route)
}

/// `POST /api/v1/units/{unit}/events/{flow}`: (path, operation, schema name, event schema).
fn event_operation(c: &Contract<'_>, route: &Route, tag: &str) -> (String, Value, String, Value) {
    let (unit, flow) = (route.unit.as_str(), route.flow.as_str());
    let mappings: Vec<(String, std::sync::Arc<Mapping>)> = route
        .targets
        .iter()
        .filter_map(|t| {
            c.mappings
                .for_delivery(unit, flow, t)
                .map(|m| (t.clone(), m))
        })
        .collect();
    let event = event_schema(c, route);
    let schema_name = format!("{}_{}_event", ident(unit), ident(flow));
    let description = event_description(route, &mappings);
    let max_batch = c.config.server.max_batch;
    let mut content = json!({
        "application/json": {"schema": {"oneOf": [
            {"$ref": format!("#/components/schemas/{schema_name}")},
            {"type": "array", "minItems": 1, "maxItems": max_batch,
             "description": format!("A batch: all of it is stored or none (at most {max_batch})"),
             "items": {"$ref": format!("#/components/schemas/{schema_name}")}}
        ]}}
    });
    if let Some(decode) = c.mappings.input_for(unit, flow)
        && decode.format != Format::Json
    {
        let media = match decode.format {
            Format::Csv => "text/csv",
            _ => "text/xml",
        };
        let encoding = match decode.format {
            Format::Csv => decode.csv.encoding,
            _ => TextEncoding::Utf8,
        };
        let description = match encoding {
            TextEncoding::Utf8 => format!(
                "The unit's own {} export (UTF-8), read as the mapping says",
                decode.format.name()
            ),
            legacy => format!(
                "The unit's own {} export as its system writes it ({}), or the same text in \
                 UTF-8 (sent with charset=utf-8, or recognised as UTF-8). The example is a real \
                 export shown as text",
                decode.format.name(),
                legacy.option_name()
            ),
        };
        let mut description = description;
        if decode.format == Format::Csv {
            // A CSV body is text whose first line names the columns.
            let columns: Vec<&str> = event["properties"]
                .as_object()
                .into_iter()
                .flat_map(|p| p.keys())
                .map(String::as_str)
                .collect();
            description.push_str(&format!(
                ". The first line is the header naming the columns (separated by `{}`): {}; \
                 one event per line after it (at most {max_batch})",
                decode.csv.delimiter as char,
                columns.join(", ")
            ));
        }
        // The first fixture case, as text: a legacy file decoded as its mapping reads it,
        // which the bus takes back as UTF-8 (never the bytes read as UTF-8: that was 22
        // replacement characters for the IP Office).
        let example = mappings
            .first()
            .and_then(|(_, m)| fixture_bytes(&m.file))
            .and_then(|bytes| lienthong_mapping::codec::csv::to_text(&bytes, encoding).ok());
        // An XML body is described element by element (OpenAPI's `xml` object); a CSV
        // one is text whose header the description names.
        let xml = (decode.format == Format::Xml)
            .then(|| {
                let namespace = example.as_deref().and_then(super::xml_body::namespace_of);
                super::xml_body::xml_body(
                    &event,
                    decode.records.as_deref(),
                    max_batch,
                    namespace.as_deref(),
                )
            })
            .flatten();
        let schema = match xml {
            Some(mut schema) => {
                schema["description"] = json!(format!(
                    "{description}. Element by element as below: `xml.attribute` fields are \
                     attributes, a list is its element repeated, `#text` is an element's own \
                     text, an empty element is a field not given"
                ));
                schema
            }
            None => json!({"type": "string", "minLength": 1, "description": description}),
        };
        let mut body = json!({ "schema": schema });
        if let Some(text) = example {
            body["example"] = json!(text);
        }
        content[media] = body;
    }
    let responses = event_responses();
    let op = json!({
        "operationId": format!("send_{}_{}", ident(unit), ident(flow)),
        "tags": [tag],
        "summary": format!("Send {flow} events"),
        // `traceparent` is told, not a parameter: W3C Trace Context has a malformed one
        // ignored (a new trace starts), so no value of it is ever refused.
        "description": format!("{description}\n\nA W3C Trace Context `traceparent` header \
            (`00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`) makes the message join \
            that trace, every delivery attempt a span of it; one not of that form is ignored."),
        "security": security_for(c, unit),
        "parameters": [
            {"name": "Idempotency-Key", "in": "header", "required": false,
             "description": "Sent again with the same key, the request stores nothing new and answers the same ids (duplicate: true)",
             "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"}},
        ],
        "requestBody": {"required": true, "content": content},
        "responses": responses,
    });
    (
        format!("/api/v1/units/{unit}/events/{flow}"),
        op,
        schema_name,
        event,
    )
}

/// What the operation of a route says: where its events go, in which order, and when
/// they are checked.
fn event_description(route: &Route, mappings: &[(String, std::sync::Arc<Mapping>)]) -> String {
    let (unit, flow) = (route.unit.as_str(), route.flow.as_str());
    let mut description = format!(
        "The `{flow}` events of `{unit}`, delivered to {}. The same as `POST \
         /api/v1/units/{unit}/events?flow={flow}`.",
        route
            .targets
            .iter()
            .map(|t| format!("`{t}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(p) = &route.key_pointer {
        description.push_str(&format!(
            " Events of one `{p}` reach each platform in the order accepted{}.",
            if route.block_on_dead {
                "; one that cannot be delivered holds the ones after it"
            } else {
                ""
            }
        ));
    }
    for (target, m) in mappings {
        description.push_str(&format!("\n\n* to `{target}`: {}", m.description));
    }
    description.push_str(if route.check_at_door {
        "\n\nEach event is checked before it is stored: against this schema, then by the \
         mapping of each platform it goes to, run without sending. An event that cannot be \
         delivered is refused with 400 `invalid_event`, every problem named in `problems`, \
         and nothing of the request is stored. What the platform itself refuses later is a \
         dead letter (ask `GET .../messages/{id}`)."
    } else {
        "\n\nThe body is stored as sent (this flow is checked at delivery, `validate = \
         \"deliver\"`); the mapping runs when each platform is delivered to, and a message \
         it refuses becomes a dead letter the IT Center sees (ask `GET .../messages/{id}`)."
    });
    description
}

/// What sending events can answer: 202, and every error with its codes.
fn event_responses() -> Map<String, Value> {
    let mut responses = errors(&[
        (
            400,
            "invalid_event: an event its targets can never take (every problem listed in \
               `problems`, nothing stored); malformed_json, invalid_utf8, too_deep, not_an_event, \
               empty_body, empty_batch, missing_key, invalid_key, invalid_idempotency_key, \
               malformed_body, body_unreadable, unknown_flow (each names its field and, for \
               syntax, line and column)",
        ),
        (401, AUTH_ERRORS[0].1),
        (
            403,
            "forbidden: the key is another unit's; internal_flow: the bus feeds this flow itself",
        ),
        (404, AUTH_ERRORS[2].1),
        (408, AUTH_ERRORS[3].1),
        (
            409,
            "idempotency_in_progress: another node of the cluster is storing a request with \
               this Idempotency-Key right now; send again after Retry-After",
        ),
        (
            413,
            "body_too_large; batch_too_large: over server.max_batch events",
        ),
        (
            415,
            "unsupported_media_type: this flow takes application/json (and the content types listed)",
        ),
        (429, AUTH_ERRORS[5].1),
        (
            503,
            "busy: the outbox holds too many undelivered messages, or cannot store right now; \
               nothing was stored, send again after Retry-After; replay_check_unavailable; \
               not_replicated (a cluster acknowledging once replicated: stored on the node, \
               not yet confirmed by the broker; send again with the same Idempotency-Key)",
        ),
    ]);
    responses.insert(
        "202".into(),
        json!({
            "description": "Stored durably (on disk) before this answer",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}}
        }),
    );
    responses
}

/// The payment platform's callback: the same for every unit.
fn shared_paths(c: &Contract<'_>, paths: &mut Map<String, Value>) {
    if c.config
        .targets
        .values()
        .all(|t| t.kind != crate::config::TargetKind::Payment)
    {
        return;
    }
    let answer = json!({"type": "object", "required": ["MaLoi", "MoTaLoi"], "properties": {
        "MaLoi": {"type": "string", "description": "00 success, 99 failure"},
        "MoTaLoi": {"type": "string"}
    }});
    let reply = |d: &str| json!({"description": d, "content": {"application/json": {"schema": answer.clone()}}});
    paths.insert("/callbacks/payment".into(), json!({"post": {
        "operationId": "payment_callback",
        "tags": ["national platforms"],
        "summary": "The payment platform's CONFIRM callback",
        "description": "Sent by the payment platform, not by units: authenticated by its MaXacThuc signature over the CONFIRM fields. A confirmed payment goes back to the unit that asked for it.",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {
            "type": "object", "required": ["LoaiBanTin", "MaXacThuc"],
            "properties": {
                "LoaiBanTin": {"const": "CONFIRM"},
                "MaThamChieu": {"type": "string"},
                "MaXacThuc": {"type": "string"}
            }
        }}}},
        "responses": {
            "200": reply("Taken (MaLoi 00)"),
            "400": reply("Not JSON, or not a CONFIRM"),
            "401": reply("Sai chữ ký MaXacThuc: the signature does not check out"),
            "404": reply("MaThamChieu không xác định: no such payment"),
            "408": {"description": "body_timeout", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "413": {"description": "body_too_large", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "429": reply("Too many forged callbacks from this address"),
            "503": reply("thử lại sau: cannot store it now; the platform sends again"),
        },
    }}));
}

/// The input of the first fixture case with an expected output (a valid example), as
/// UTF-8 text (XML and JSON inputs).
pub(crate) fn fixture_example(mapping_file: &Path) -> Option<String> {
    let bytes = fixture_bytes(mapping_file)?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The bytes of the first fixture case with an expected output, in their own encoding.
fn fixture_bytes(mapping_file: &Path) -> Option<Vec<u8>> {
    let cases = lienthong_mapping::fixtures::discover(mapping_file).ok()?;
    let case = cases
        .iter()
        .find(|c| matches!(c.expect, lienthong_mapping::fixtures::Expect::Output(_)))?;
    std::fs::read(&case.input).ok()
}

/// A name usable in operation ids and schema names.
pub(super) fn ident(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}
