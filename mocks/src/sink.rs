//! A recording HTTP receiver: `POST /sink/{target}` takes any JSON body (or a CSV or XML one, said so by its `Content-Type`), remembers it with
//! the `X-Message-Id`, `X-Attempt` and `X-Ordering-Key` headers, and answers 200 — or,
//! with fault injection, 500, 429 with `Retry-After`, 400, or a slow reply.
//! `GET /sink/{target}` lists what was received.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Fault injection for the sink. Ratios are in [0, 1] and drawn per request.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Share of requests answered 500.
    pub error_ratio: f64,
    /// Share of requests answered 429 with `Retry-After: retry_after_secs`.
    pub too_many_ratio: f64,
    pub retry_after_secs: u64,
    /// Every request is delayed this long.
    pub delay: Duration,
    /// Requests whose body contains this text are answered 400 (permanent failure).
    pub reject_containing: Option<String>,
    /// Answer everything with 503 (target down).
    pub down: bool,
}

/// One request the sink answered.
#[derive(Clone, Debug, Serialize)]
pub struct Received {
    pub target: String,
    pub message_id: String,
    pub attempt: u32,
    pub key: Option<String>,
    /// The W3C `traceparent` header, if any.
    pub traceparent: Option<String>,
    /// The body as received; [`Received::json`] parses it.
    #[serde(serialize_with = "as_json")]
    pub body: Bytes,
    /// What the sink answered.
    pub status: u16,
    #[serde(skip)]
    pub at: Instant,
}

impl Received {
    /// The body as JSON (`null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

fn as_json<S: serde::Serializer>(body: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    use serde::Serialize;
    serde_json::from_slice::<serde_json::Value>(body)
        .unwrap_or(serde_json::Value::Null)
        .serialize(s)
}

#[derive(Default)]
struct Inner {
    faults: Faults,
    /// Faults for one target path, overriding `faults`.
    target_faults: std::collections::HashMap<String, Faults>,
    log: Vec<Received>,
    delivered: usize,
}

/// The sink's shared state; clone it to inspect what arrived while it serves.
#[derive(Clone)]
pub struct Sink {
    inner: Arc<Mutex<Inner>>,
}

impl Sink {
    pub fn new(faults: Faults) -> Sink {
        Sink {
            inner: Arc::new(Mutex::new(Inner {
                faults,
                ..Inner::default()
            })),
        }
    }

    /// Forget what was received (`POST /_mock/reset`); faults set on the sink stay.
    pub fn reset(&self) {
        let mut g = self.inner.lock().unwrap();
        g.log.clear();
        g.delivered = 0;
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/sink/{target}", post(receive).get(list))
            .with_state(self.clone())
    }

    /// Serve on `addr` (use port 0 in tests) in a background task.
    pub async fn start(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let router = self.router();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(local)
    }

    /// Faults for every target without faults of its own.
    pub fn set_faults(&self, faults: Faults) {
        self.inner.lock().unwrap().faults = faults;
    }

    /// Faults for `/sink/{target}` only.
    pub fn set_target_faults(&self, target: &str, faults: Faults) {
        self.inner
            .lock()
            .unwrap()
            .target_faults
            .insert(target.to_string(), faults);
    }

    /// Every request answered so far, in arrival order (failed ones included).
    pub fn requests(&self) -> Vec<Received> {
        self.inner.lock().unwrap().log.clone()
    }

    /// Requests answered 2xx, in arrival order.
    pub fn delivered(&self) -> Vec<Received> {
        self.inner
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|r| r.status < 300)
            .cloned()
            .collect()
    }

    pub fn delivered_count(&self) -> usize {
        self.inner.lock().unwrap().delivered
    }
}

async fn receive(
    State(sink): State<Sink>,
    Path(target): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let faults = {
        let g = sink.inner.lock().unwrap();
        g.target_faults.get(&target).unwrap_or(&g.faults).clone()
    };
    if !faults.delay.is_zero() {
        tokio::time::sleep(faults.delay).await;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    // Checked, not kept parsed: the sink must stay cheap under benchmark load. A body
    // said to be CSV or XML (a unit's own format) is taken as it is.
    let json = header("content-type").is_none_or(|ct| ct.contains("json"));
    if json && let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
        return (StatusCode::BAD_REQUEST, format!("body is not JSON: {e}")).into_response();
    }
    let roll: f64 = rand::random();
    let (status, retry_after) = if faults.down {
        (StatusCode::SERVICE_UNAVAILABLE, None)
    } else if faults
        .reject_containing
        .as_ref()
        .is_some_and(|needle| String::from_utf8_lossy(&body).contains(needle.as_str()))
    {
        (StatusCode::BAD_REQUEST, None)
    } else if roll < faults.error_ratio {
        (StatusCode::INTERNAL_SERVER_ERROR, None)
    } else if roll < faults.error_ratio + faults.too_many_ratio {
        (StatusCode::TOO_MANY_REQUESTS, Some(faults.retry_after_secs))
    } else {
        (StatusCode::OK, None)
    };
    let mut g = sink.inner.lock().unwrap();
    if status.is_success() {
        g.delivered += 1;
    }
    g.log.push(Received {
        target,
        message_id: header("x-message-id").unwrap_or_default(),
        attempt: header("x-attempt")
            .and_then(|a| a.parse().ok())
            .unwrap_or(0),
        key: header("x-ordering-key"),
        traceparent: header("traceparent"),
        body,
        status: status.as_u16(),
        at: Instant::now(),
    });
    drop(g);
    let mut resp = (
        status,
        Json(serde_json::json!({ "status": status.as_u16() })),
    )
        .into_response();
    if let Some(secs) = retry_after {
        resp.headers_mut().insert("retry-after", secs.into());
    }
    resp
}

async fn list(State(sink): State<Sink>, Path(target): Path<String>) -> Json<serde_json::Value> {
    let g = sink.inner.lock().unwrap();
    let items: Vec<&Received> = g.log.iter().filter(|r| r.target == target).collect();
    let delivered = items.iter().filter(|r| r.status < 300).count();
    Json(
        serde_json::json!({ "target": target, "requests": items.len(), "delivered": delivered, "last": items.iter().rev().take(20).collect::<Vec<_>>() }),
    )
}
