//! What every request body must keep before a handler runs: the size (the server's, or a
//! route's larger one for the unit whose key checks out), the time to read it, and a
//! budget of bytes read at once over every connection.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// Limits every request body must keep, whichever endpoint it is for.
#[derive(Clone)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub read_timeout: Duration,
    /// Routes that take larger bodies (documents), from units whose key checks out.
    pub larger: Option<std::sync::Arc<LargerBodies>>,
    /// Bytes of request bodies being read at once, in KiB, over every connection: past
    /// it, a request is answered 503 before its body is read.
    pub in_flight: std::sync::Arc<tokio::sync::Semaphore>,
}

impl BodyLimits {
    /// `max_in_flight` bytes of bodies read at once (`server.max_body_bytes_in_flight`).
    pub fn in_flight_budget(max_in_flight: usize) -> std::sync::Arc<tokio::sync::Semaphore> {
        let kib = (max_in_flight / 1024).clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        std::sync::Arc::new(tokio::sync::Semaphore::new(kib))
    }
}

/// Which requests may send more than `server.max_body_bytes`: those to a route with its own
/// `max_body_bytes` (`POST /api/v1/units/{unit}/events/{flow}` or `…/events?flow=…`, or `/soap/{unit}` for the
/// largest of the unit's SOAP routes), and only with the unit's valid key — checked from
/// the headers before any byte beyond the server's limit is read.
pub struct LargerBodies {
    pub keys: std::sync::Arc<crate::web::UnitKeys>,
    pub router: std::sync::Arc<crate::route::Router>,
    /// Per unit: SOAP operation → flow.
    pub soap_operations:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
}

impl LargerBodies {
    /// The limit for this request, if a route allows more than the server's.
    fn limit_for(&self, parts: &axum::http::request::Parts) -> Option<usize> {
        let path = parts.uri.path();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (unit, larger) = match segments.as_slice() {
            ["api", "v1", "units", unit, "events", flow] => (
                *unit,
                self.router
                    .largest_body(unit, std::iter::once(&flow.to_string())),
            ),
            ["api", "v1", "units", unit, "events"] => {
                let flow = parts.uri.query().and_then(|q| {
                    q.split('&')
                        .filter_map(|kv| kv.split_once('='))
                        .find(|(k, _)| *k == "flow")
                        .map(|(_, v)| v.to_string())
                });
                let limit = match &flow {
                    Some(f) => self.router.largest_body(unit, std::iter::once(f)),
                    None => self
                        .router
                        .resolve_for_unit(unit, None)
                        .ok()
                        .and_then(|r| r.max_body_bytes),
                };
                (*unit, limit)
            }
            ["soap", unit] => {
                let flows = self.soap_operations.get(*unit)?;
                (*unit, self.router.largest_body(unit, flows.values()))
            }
            _ => return None,
        };
        let larger = larger?;
        self.keys.identify(unit, &parts.headers).ok()?;
        Some(larger)
    }

    /// A unit's endpoint taking a body (`POST /api/v1/units/{unit}/…`, `/soap/{unit}`)
    /// without that unit's key: refused before a byte of its body is read (and before an
    /// `Expect: 100-continue` is answered).
    fn refuse_unauthenticated(&self, parts: &axum::http::request::Parts) -> Option<Response> {
        if matches!(
            parts.method,
            axum::http::Method::GET | axum::http::Method::HEAD
        ) {
            return None;
        }
        let segments: Vec<&str> = parts.uri.path().trim_matches('/').split('/').collect();
        let unit = match segments.as_slice() {
            ["api", "v1", "units", unit, _, ..] | ["soap", unit] => *unit,
            _ => return None,
        };
        if !self.keys.knows(unit) {
            return None; // the handler says the unit is unknown
        }
        let refused = self.keys.identify(unit, &parts.headers).err()?;
        // A SOAP client gets its refusal as a Fault, as from the endpoint itself.
        Some(if segments[0] == "soap" {
            crate::ingress::soap_fault(&refused)
        } else {
            refused.into_response()
        })
    }
}

/// Middleware: read the whole body within `read_timeout` and `max_bytes` (or a route's
/// larger limit, see [`LargerBodies`]) before any handler runs (408 / 413 with a JSON
/// error otherwise), so no handler waits on a trickling client.
pub async fn buffer_body(State(limits): State<BodyLimits>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    if let Some(refused) = limits
        .larger
        .as_ref()
        .and_then(|l| l.refuse_unauthenticated(&parts))
    {
        return refused;
    }
    let max = limits
        .larger
        .as_ref()
        .and_then(|l| l.limit_for(&parts))
        .map_or(limits.max_bytes, |l| l.max(limits.max_bytes));
    // A declared length over the limit is refused at once, nothing of it read.
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return crate::web::ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is larger than {max} bytes, this endpoint's limit"),
        )
        .into_response();
    }
    // What this body may cost while it is read: its declared length, else the limit.
    let cost = declared.map_or(max, |n| n as usize).div_ceil(1024).max(1);
    let Ok(_reading) = u32::try_from(cost)
        .ok()
        .and_then(|kib| limits.in_flight.clone().try_acquire_many_owned(kib).ok())
        .ok_or(())
    else {
        return crate::web::ApiError::busy(
            "the bus is reading as many request bodies as it takes at once; send again shortly",
        )
        .into_response();
    };
    let read = crate::ingress::read_body(body, max);
    match tokio::time::timeout(limits.read_timeout, read).await {
        Err(_) => crate::web::ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the request body did not arrive within {}; send it in one go",
                humantime::format_duration(limits.read_timeout)
            ),
        )
        .into_response(),
        Ok(Err(e)) => e.into_response(),
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    }
}
