//! HTTP ingress for unit systems: `POST /api/v1/units/{unit}/events/{flow}` (or
//! `.../events?flow=`, the same).
//!
//! A request carries one JSON event (an object) or a batch (an array of objects). It is
//! authenticated with the unit's bearer key, routed, validated as a whole, and stored in
//! the outbox in one atomic write; the 202 comes after the flush to disk.

pub mod callback;
mod charset;
pub mod cluster_keys;
mod door;
mod evidence;
pub mod inbox;
mod own_messages;
mod replicated;
pub mod signature;
mod soap;
pub(crate) use soap::fault as soap_fault;
mod soap_operation;

use crate::web::{ApiError, FieldProblem, UnitKeys};

use crate::mappings::MappingSet;
use crate::outbox::{EnqueueError, EnqueueRequest, NewEvent, Outbox};
use crate::route::{Route, Router};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use lienthong_mapping::codec::DecodeOptions;
use lienthong_mapping::{DecodeError, Format};
use serde::Deserialize;
use std::sync::Arc;

/// What the ingress handlers share.
pub struct IngressState {
    /// Shared with the lookups: one rate allowance per unit across its requests.
    pub keys: Arc<UnitKeys>,
    pub router: Arc<Router>,
    /// Tells how a route's XML or CSV bodies are decoded.
    pub mappings: Arc<MappingSet>,
    /// Per unit: SOAP operation (first element of the Body) → flow, for `/soap/{unit}`.
    pub soap_operations:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    /// The payment platform's partner and key, to verify its callbacks.
    pub payment: Option<crate::connector::PaymentCredentials>,
    pub outbox: Outbox,
    /// Payment marks a callback writes: the cluster's notes in a cluster (the payment's
    /// reconciler may run on another node), the outbox's otherwise.
    pub notes: Arc<dyn crate::outbox::Notes>,
    pub max_body_bytes: usize,
    pub max_batch: usize,
    /// The portal targets, for a dossier's `portal_synced` ([`own_messages`]).
    pub portal_targets: Vec<String>,
    /// Forged payment callbacks: counted, and refused per source address beyond a limit.
    pub callbacks: Arc<crate::connector::payment::CallbackGuard>,
    /// Spans of accepted requests (`[telemetry]`).
    pub spans: Arc<crate::otlp::Spans>,
    /// The targets this node delivers to, by name: the door hands them the bodies it
    /// rendered (empty on a cluster's ingress, whose workers map).
    pub delivering: std::collections::HashMap<String, Arc<crate::delivery::TargetRuntime>>,
    /// `[amqp] acknowledge = "replicated"`: a request is answered once the broker has
    /// confirmed its events ([`replicated`]).
    pub replication: Option<Replication>,
    /// In a cluster: idempotency keys are the cluster's ([`cluster_keys`]).
    pub cluster_keys: Option<cluster_keys::ClusterKeys>,
    /// Where each stored event is logged (`[evidence]`).
    pub evidence: Arc<crate::evidence::MessageLog>,
}

pub use replicated::Replication;

pub fn routes(state: Arc<IngressState>) -> axum::Router {
    axum::Router::new()
        .route("/api/v1/units/{unit}/events", post(post_events))
        .route("/api/v1/units/{unit}/events/{flow}", post(post_flow_events))
        .route("/callbacks/payment", post(callback::payment_callback))
        .route("/soap/{unit}", post(soap::soap_endpoint))
        .route(
            "/api/v1/units/{unit}/messages/{id}",
            axum::routing::get(own_messages::message),
        )
        .route(
            "/api/v1/units/{unit}/dossiers/{code}",
            axum::routing::get(own_messages::dossier),
        )
        .route(
            "/api/v1/units/{unit}/dead-letters",
            axum::routing::get(own_messages::dead_letters),
        )
        .route(
            "/api/v1/units/{unit}/dead-letters/feed",
            axum::routing::get(own_messages::dead_letter_feed),
        )
        .with_state(state)
}

#[derive(Deserialize)]
struct EventsQuery {
    flow: Option<String>,
}

/// Longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;
/// Deepest nesting of arrays and objects accepted in a JSON body (a batch counts one).
const MAX_JSON_DEPTH: usize = 64;

async fn post_events(
    State(state): State<Arc<IngressState>>,
    Path(unit): Path<String>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    take_events(&state, &unit, query.flow.as_deref(), &headers, body).await
}

/// `POST /api/v1/units/{unit}/events/{flow}`: the flow in the path, one operation per flow
/// in the API document.
async fn post_flow_events(
    State(state): State<Arc<IngressState>>,
    Path((unit, flow)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    take_events(&state, &unit, Some(&flow), &headers, body).await
}

async fn take_events(
    state: &Arc<IngressState>,
    unit: &str,
    flow: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let state = state.as_ref();
    authenticate(state, unit, headers)?;
    let route = state
        .router
        .resolve_for_unit(unit, flow)
        .map_err(route_error)?;
    let decode = state.mappings.input_for(&route.unit, &route.flow);
    let format = check_content_type(headers, decode.as_ref().map(|d| d.format))?;
    let bytes = read_body(body, body_limit(state, route)).await?;
    let accepted = accept(state, route, format, bytes, headers).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "accepted": accepted })),
    )
        .into_response())
}

/// The largest body `route` takes: its own `max_body_bytes`, or the server's.
pub(crate) fn body_limit(state: &IngressState, route: &Route) -> usize {
    route
        .max_body_bytes
        .map_or(state.max_body_bytes, |m| m.max(state.max_body_bytes))
}

/// A route a unit may not use is 403 `internal_flow`; one it does not have, 400.
pub(crate) fn route_error(e: crate::route::RouteError) -> ApiError {
    let code = match e {
        crate::route::RouteError::Internal { .. } => {
            return ApiError::new(StatusCode::FORBIDDEN, "internal_flow", e.to_string())
                .field("flow");
        }
        _ => "unknown_flow",
    };
    ApiError::new(StatusCode::BAD_REQUEST, code, e.to_string()).field("flow")
}

/// The unit exists and the request carries its key.
fn authenticate(state: &IngressState, unit: &str, headers: &HeaderMap) -> Result<(), ApiError> {
    if !state.keys.knows(unit) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_unit",
            format!("no unit `{unit}` is configured"),
        )
        .field("unit"));
    }
    state.keys.authorize(unit, headers)
}

/// Store a body of `format` as events of `route`: all of them or none.
async fn accept(
    state: &IngressState,
    route: &Route,
    format: Format,
    bytes: bytes::Bytes,
    headers: &HeaderMap,
) -> Result<Vec<crate::outbox::Accepted>, ApiError> {
    let idempotency_key = idempotency_key(headers)?;
    if state.outbox.over_capacity() {
        return Err(ApiError::busy(
            "the bus is holding too many undelivered messages; retry later",
        ));
    }
    // JSON is split into its events; XML and CSV are decoded once into their records,
    // which go on as events without being written out and read back.
    let (body, decode) = if format == Format::Json {
        (split_body(&bytes)?, None)
    } else {
        let mut opts = state
            .mappings
            .input_for(&route.unit, &route.flow)
            .filter(|o| o.format == format)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    format!("flow `{}` does not take {}", route.flow, format.name()),
                )
            })?;
        if format == Format::Csv {
            opts.csv.encoding = charset::csv_encoding(headers, opts.csv.encoding, &bytes)?;
        }
        let records = if bytes.len() > DECODE_OFF_THREAD_BYTES {
            // A large XML or CSV body is decoded on a blocking thread, so the async threads
            // keep serving everyone else meanwhile.
            let (bytes, opts) = (bytes.clone(), opts.clone());
            tokio::task::spawn_blocking(move || decode_records(&bytes, &opts))
                .await
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "decode_failed",
                        format!("decoding the body failed: {e}"),
                    )
                })??
        } else {
            decode_records(&bytes, &opts)?
        };
        (records, Some(opts))
    };
    let batch = body.batch;
    let events = events_of(body, route, state.max_batch)?;
    let (events, passed) =
        door::check_at_door(state, route, events, format, batch, bytes, decode).await?;
    // The unit's W3C trace (`traceparent`), else its own `X-Trace-Id`, else a new trace.
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let trace_id = header("traceparent")
        .and_then(crate::tracecontext::trace_id_of)
        .or_else(|| {
            header("x-trace-id")
                .filter(|v| !v.is_empty() && v.len() <= 128)
                .map(str::to_string)
        })
        .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    let span = if !state.spans.enabled() {
        crate::otlp::SpanHandle::none()
    } else {
        state.spans.start_span(
            "ingress.accept",
            opentelemetry::trace::SpanKind::Server,
            &trace_id,
            header("traceparent").and_then(crate::tracecontext::parent_id_of),
            vec![
                opentelemetry::KeyValue::new("lienthong.unit", route.unit.clone()),
                opentelemetry::KeyValue::new("lienthong.flow", route.flow.clone()),
                opentelemetry::KeyValue::new("lienthong.events", events.len() as i64),
            ],
        )
    };
    let ticket = match (&state.cluster_keys, &idempotency_key) {
        (Some(keys), Some(key)) => {
            // The flow's key, as the outbox keeps it: a key is its flow's across the cluster too.
            let key = crate::outbox::keys::scoped_idempotency(&route.flow, key);
            match keys.before_store(&state.outbox, &route.unit, &key).await? {
                cluster_keys::Decision::Answered(accepted) => return Ok(accepted),
                cluster_keys::Decision::Store(ticket) => ticket,
            }
        }
        _ => None,
    };
    let write = state.spans.child(&span, "outbox.write", Vec::new());
    // Before the events are stored: delivery may claim them at once. Bodies of a request
    // refused as busy stay until pushed out, ready for the unit's retry of it.
    door::hand_on(state, route, &passed, &events);
    let logged = evidence::before_store(&state.evidence, &events);
    let request = EnqueueRequest {
        from_reply: false,
        unit: route.unit.clone(),
        flow: route.flow.clone(),
        trace_id: trace_id.clone(),
        idempotency_key,
        targets: route.targets.clone(),
        ordered: route.ordered,
        block_on_dead: route.block_on_dead,
        events,
    };
    let stored = state.outbox.enqueue(request).await;
    if let Err(e) = &stored {
        write.fail(e.to_string());
        span.fail("nothing stored");
    }
    drop(write);
    let keys = state.cluster_keys.as_ref().zip(ticket.as_ref());
    match stored {
        Ok(accepted) => {
            evidence::stored(&state.evidence, route, &trace_id, logged, &accepted);
            let replicated = match &state.replication {
                Some(replication) => replication.confirmed(&state.outbox, route, &accepted).await,
                None => Ok(()),
            };
            if let Some((keys, ticket)) = keys {
                let confirmed = state.replication.is_some() && replicated.is_ok();
                keys.stored(ticket, &accepted, confirmed).await;
            }
            replicated.map(|()| accepted)
        }
        Err(e) => {
            if let Some((keys, ticket)) = keys {
                keys.not_stored(ticket).await;
            }
            Err(match e {
                EnqueueError::Backpressure { .. } => {
                    ApiError::busy("the bus is holding too many undelivered messages; retry later")
                }
                e @ (EnqueueError::Storage(_) | EnqueueError::Closed) => {
                    tracing::error!(unit = %route.unit, error = %e, "cannot store events");
                    ApiError::busy(
                        "the bus cannot store messages right now; nothing was stored, retry later",
                    )
                }
            })
        }
    }
}

/// The body's format: JSON always, XML or CSV when the route's mappings read it.
fn check_content_type(
    headers: &HeaderMap,
    route_input: Option<Format>,
) -> Result<Format, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match Format::from_content_type(ct) {
        Some(Format::Json) => Ok(Format::Json),
        Some(f) if Some(f) == route_input => Ok(f),
        _ => {
            let accepted = match route_input {
                Some(Format::Xml) => "application/json or text/xml",
                Some(Format::Csv) => "application/json or text/csv",
                _ => "application/json",
            };
            Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("this flow takes {accepted} (got `{ct}`)"),
            )
            .field("content-type"))
        }
    }
}

/// Bodies above this size are decoded off the async threads.
const DECODE_OFF_THREAD_BYTES: usize = 64 * 1024;

/// Decode an XML or CSV body into its records, each an event, which then go the way of
/// any JSON batch (all or nothing).
fn decode_records(
    bytes: &[u8],
    opts: &DecodeOptions,
) -> Result<lienthong_mapping::codec::json::EventsBody, ApiError> {
    let records = lienthong_mapping::codec::decode_records(bytes, opts).map_err(|e| {
        let mut err = ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_body",
            format!("the {} body cannot be read: {e}", opts.format.name()),
        );
        if let DecodeError::Syntax { line, column, .. } = e {
            err = err.position(line, column);
        }
        err
    })?;
    if records.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "empty_batch",
            "the body holds no records",
        ));
    }
    let events = records
        .iter()
        .map(|r| {
            serde_json::value::to_raw_value(r).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_body",
                    format!("a record cannot be stored: {e}"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(lienthong_mapping::codec::json::EventsBody {
        events,
        batch: true,
    })
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bad = |why: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
            format!("Idempotency-Key {why}"),
        )
        .field("Idempotency-Key")
    };
    let s = v.to_str().map_err(|_| bad("must be visible ASCII"))?;
    if s.is_empty() || s.len() > MAX_IDEMPOTENCY_KEY {
        return Err(bad(&format!(
            "must be 1 to {MAX_IDEMPOTENCY_KEY} characters"
        )));
    }
    if !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("must be visible ASCII without spaces"));
    }
    Ok(Some(s.to_string()))
}

pub(crate) async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            || e.to_string().contains("length limit");
        if too_large {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body is larger than {limit} bytes; split the batch"),
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "body_unreadable",
                format!("cannot read the body: {e}"),
            )
        }
    })
}

/// Split a JSON body into its events (one object, or a batch of them).
fn split_body(bytes: &[u8]) -> Result<lienthong_mapping::codec::json::EventsBody, ApiError> {
    use lienthong_mapping::codec::json::{self, JsonBodyError};
    json::split_events(bytes, MAX_JSON_DEPTH).map_err(|e| {
        let (status, code) = match &e {
            JsonBodyError::NotUtf8 { .. } => (StatusCode::BAD_REQUEST, "invalid_utf8"),
            JsonBodyError::TooDeep { .. } => (StatusCode::BAD_REQUEST, "too_deep"),
            JsonBodyError::Malformed { .. } => (StatusCode::BAD_REQUEST, "malformed_json"),
            JsonBodyError::Empty => (StatusCode::BAD_REQUEST, "empty_body"),
            JsonBodyError::NotAnEvent | JsonBodyError::EventNotAnObject { .. } => {
                (StatusCode::BAD_REQUEST, "not_an_event")
            }
            JsonBodyError::EmptyBatch => (StatusCode::BAD_REQUEST, "empty_batch"),
        };
        let mut err = ApiError::new(status, code, e.to_string());
        match e {
            JsonBodyError::Malformed { line, column, .. } => err = err.position(line, column),
            JsonBodyError::EventNotAnObject { index } => {
                err = err.field(index.map_or("/".to_string(), |i| format!("[{i}]")));
            }
            _ => {}
        }
        err
    })
}

/// Validate the whole request before anything is stored: a batch is all-or-nothing.
fn events_of(
    body: lienthong_mapping::codec::json::EventsBody,
    route: &Route,
    max_batch: usize,
) -> Result<Vec<NewEvent>, ApiError> {
    let (raws, batch) = (body.events, body.batch);
    if raws.len() > max_batch {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!(
                "the batch holds {} events; at most {max_batch} are accepted per request",
                raws.len()
            ),
        ));
    }
    raws.into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let at = if batch {
                format!("[{i}]")
            } else {
                String::new()
            };
            let key = match &route.key_pointer {
                Some(pointer) => crate::route::extract_key(&raw, pointer, route.ordered).map_err(
                    |(code, msg)| {
                        ApiError::new(StatusCode::BAD_REQUEST, code, msg)
                            .field(format!("{at}{pointer}"))
                    },
                )?,
                None => None,
            };
            let targets = route.targets_for_event(&raw);
            Ok(NewEvent {
                key,
                payload: raw,
                targets,
            })
        })
        .collect()
}
