//! `POST /soap/{unit}`: a SOAP 1.1 endpoint for unit systems that speak SOAP (STAMEQ).
//! The operation — the first element of the Body, found by namespace — picks the flow
//! (`[units.<unit>] soap_operations = { GuiHoSo = "dossier_sync", ... }`); the envelope is
//! then taken exactly like an XML body posted to that flow. The answer is a SOAP envelope
//! with `<Operation>Response` (`KetQua`, one `MaTiepNhan` per stored event, `TrungLap` when
//! it was a resend); any problem is a SOAP Fault (`soap:Client` for the sender's mistakes,
//! `soap:Server` for ours) whose `faultstring` says what to do and whose `detail` names
//! the code, field and line (and, for a refused event, one `problem` per field). Faults
//! are HTTP 500, as WS-I Basic Profile 1.1 R1126 requires of SOAP 1.1 over HTTP: the SOAP
//! toolkits of unit systems (WCF, JAX-WS, Axis, zeep) turn a 500 with a Fault into the
//! fault with its detail, and a 400 into a bare transport error that loses it. The
//! `faultcode` tells whose fault it is: `soap:Client` (correct the request and send again)
//! or `soap:Server` (the bus's; send again later). Exceptions: an empty body (400: no
//! SOAP message at all), a missing or wrong key (401/403) and a busy bus (503).

use super::{ApiError, IngressState, accept, authenticate, read_body};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lienthong_mapping::Format;
use std::sync::Arc;

const ENVELOPE_OPEN: &str = r#"<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>"#;
const ENVELOPE_CLOSE: &str = "</soap:Body></soap:Envelope>";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn xml_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

/// A SOAP Fault for an API error (SOAP 1.1 answers faults with HTTP 500; a missing or
/// wrong key keeps its 401/403 so HTTP tooling sees it).
pub(crate) fn fault(e: &ApiError) -> Response {
    let side = if e.status.is_server_error() {
        "soap:Server"
    } else {
        "soap:Client"
    };
    let mut detail = format!("<code>{}</code>", e.code);
    if let Some(f) = &e.field {
        detail.push_str(&format!("<field>{}</field>", escape(f)));
    }
    if let (Some(l), Some(c)) = (e.line, e.column) {
        detail.push_str(&format!("<line>{l}</line><column>{c}</column>"));
    }
    // A refused event: one <problem> per field, every one of the request.
    for p in &e.problems {
        detail.push_str(&format!("<problem><field>{}</field>", escape(&p.field)));
        if let Some(l) = p.line {
            detail.push_str(&format!("<line>{l}</line>"));
        }
        detail.push_str(&format!("<text>{}</text></problem>", escape(&p.problem)));
    }
    let body = format!(
        "{ENVELOPE_OPEN}<soap:Fault><faultcode>{side}</faultcode><faultstring>{}</faultstring><detail>{detail}</detail></soap:Fault>{ENVELOPE_CLOSE}",
        escape(&e.message)
    );
    let status = match e.status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::SERVICE_UNAVAILABLE => {
            e.status
        }
        // No body at all: not a SOAP exchange, so plain HTTP's 400.
        _ if matches!(e.code, "empty_body" | "body_unreadable") => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    xml_response(status, body)
}

pub async fn soap_endpoint(
    State(state): State<Arc<IngressState>>,
    Path(unit): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match handle(&state, &unit, &headers, body).await {
        Ok(xml) => xml_response(StatusCode::OK, xml),
        Err(e) => fault(&e),
    }
}

async fn handle(
    state: &IngressState,
    unit: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<String, ApiError> {
    authenticate(state, unit, headers)?;
    // The largest of the unit's SOAP routes' limits; the operation's own is checked below.
    let largest = state
        .soap_operations
        .get(unit)
        .and_then(|ops| {
            ops.values()
                .filter_map(|f| state.router.resolve(unit, Some(f)).ok())
                .map(|r| super::body_limit(state, r))
                .max()
        })
        .unwrap_or(state.max_body_bytes);
    let bytes = read_body(body, largest).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "empty_body",
            "the request has no body; send a SOAP 1.1 envelope",
        ));
    }
    // Read as a stream, off the serving threads: a large envelope costs them nothing.
    let scanned = bytes.clone();
    let operation =
        tokio::task::spawn_blocking(move || super::soap_operation::operation_of(&scanned))
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "decode_failed",
                    format!("reading the envelope failed: {e}"),
                )
            })?
            .map_err(|refused| {
                let (line, column) = super::soap_operation::line_and_column(&bytes, refused.at);
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_body",
                    refused.why.to_string(),
                )
                .position(line, column)
            })?;
    let operations = state.soap_operations.get(unit);
    let flow = operations
        .and_then(|ops| ops.get(&operation))
        .ok_or_else(|| {
            let known: Vec<String> = operations
                .map(|ops| ops.keys().cloned().collect())
                .unwrap_or_default();
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "unknown_operation",
                format!(
                    "unit `{unit}` has no SOAP operation `{operation}` (configured: {})",
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ),
            )
            .field("Body")
        })?;
    let route = state
        .router
        .resolve_for_unit(unit, Some(flow))
        .map_err(|e| match e {
            crate::route::RouteError::Internal { .. } => super::route_error(e),
            // The operation is configured but its flow has no route: the bus's config.
            _ => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "unknown_flow",
                e.to_string(),
            ),
        })?;
    let limit = super::body_limit(state, route);
    if bytes.len() > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is larger than {limit} bytes, the limit of operation `{operation}`"),
        ));
    }
    let accepted = accept(state, route, Format::Xml, bytes, headers).await?;
    let mut out = format!(
        "{ENVELOPE_OPEN}<{operation}Response xmlns=\"urn:lienthong:1.0\"><KetQua>DA_NHAN</KetQua>"
    );
    for a in &accepted {
        out.push_str(&format!("<MaTiepNhan>{}</MaTiepNhan>", a.id));
    }
    out.push_str(&format!(
        "<TrungLap>{}</TrungLap></{operation}Response>{ENVELOPE_CLOSE}",
        accepted.iter().all(|a| a.duplicate)
    ));
    Ok(out)
}
