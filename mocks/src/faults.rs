//! Fault injection and request inspection shared by every bundled mock, as an axum
//! middleware in front of them all.
//!
//! Rules are set at runtime with `POST /_mock/faults` (a JSON array, replacing the current
//! rules; `GET` shows them). A rule applies to one service — the first path segment:
//! `portal`, `population`, `business`, `payment`, `datastore`, `notify`, `sink` — and
//! optionally to one operation, the JSON body's `service` or `LoaiBanTin` field (e.g.
//! `DongBoHoSoMC`, `Init`). Each request draws once from a generator seeded with the
//! mocks' seed, so a scenario replays the same way:
//!
//! ```json
//! [{"service": "portal", "operation": "DongBoHoSoMC", "error_rate": 0.2,
//!   "too_many_rate": 0.1, "retry_after_secs": 2, "latency_ms": [5, 50]},
//!  {"service": "population", "hang_rate": 0.05, "malformed_rate": 0.05}]
//! ```
//!
//! Faults: `error_rate` (503), `too_many_rate` (429 + `Retry-After`), `hang_rate` (no
//! answer), `malformed_rate` (200 with a broken body), `reset_rate` (connection dropped),
//! `business_error_rate` (the service's own error reply, `business_code` to choose it),
//! `latency_ms`.
//!
//! Every request is recorded with its headers and body: `GET /_mock/{service}/requests`.
//! `POST /_mock/reset` clears the records, the rules and every service's state (portal
//! dossiers, payment transactions, stored documents, notifications, sink records).

use axum::body::{Body, to_bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The services a rule can name: the first path segment of each mock.
pub const SERVICES: &[&str] = &[
    "portal",
    "bo-tthc",
    "population",
    "business",
    "payment",
    "datastore",
    "notify",
    "sink",
    "units",
    "oauth",
];

/// Largest body the middleware reads (and records): the data store takes scanned results of
/// up to 32 MiB (64 MiB with their JSON), as the bus's result routes allow.
const MAX_BODY: usize = 64 * 1024 * 1024;

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FaultRule {
    /// The mock service the rule applies to: `portal`, `ministry`, `population`, `business`, `payment`, `datastore`, `notify` or `sink`.
    pub service: String,
    /// The operation within the service (e.g. `DongBoHoSoMC`); every operation when absent.
    pub operation: Option<String>,
    /// Share answered 503.
    pub error_rate: f64,
    /// Share answered 429 with `Retry-After: retry_after_secs`.
    pub too_many_rate: f64,
    /// The `Retry-After` of the 429 answers of `too_many_rate`.
    pub retry_after_secs: u64,
    /// Share that never answers (the client's timeout fires).
    pub hang_rate: f64,
    /// Share answered 200 with a body that is not what the client expects.
    pub malformed_rate: f64,
    /// Share whose connection is dropped without an answer (the client sees a reset /
    /// "connection closed before message completed").
    pub reset_rate: f64,
    /// Share answered with the service's own business error (portal `error_code`, payment
    /// `MaLoi`, business registry `Status: ERROR`, population SOAP Fault, data store and
    /// notify 422), with `business_code` when given.
    pub business_error_rate: f64,
    /// The service's own error code for `business_error_rate` (portal `error_code`, payment `MaLoi`, ...); the service's usual one when absent.
    pub business_code: Option<Value>,
    /// Extra latency, uniformly drawn in [min, max] milliseconds.
    pub latency_ms: Option<(u64, u64)>,
}

impl FaultRule {
    /// Every problem of the rule: the field (None: the rule as a whole) and what is wrong.
    /// The config's `[[mocks.faults]]`, scenario files and `POST /_mock/faults` all use it,
    /// so a typo (`"portl"`, `error_rate = 2`) is refused wherever a rule comes from.
    pub fn problems(&self) -> Vec<(Option<&'static str>, String)> {
        let mut problems = Vec::new();
        if !SERVICES.contains(&self.service.as_str()) {
            problems.push((
                Some("service"),
                format!(
                    "unknown mock `{}` (one of: {})",
                    self.service,
                    SERVICES.join(", ")
                ),
            ));
        }
        let rates = [
            ("error_rate", self.error_rate),
            ("too_many_rate", self.too_many_rate),
            ("hang_rate", self.hang_rate),
            ("malformed_rate", self.malformed_rate),
            ("reset_rate", self.reset_rate),
            ("business_error_rate", self.business_error_rate),
        ];
        for (name, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                problems.push((Some(name), "must be between 0 and 1".to_string()));
            }
        }
        if rates.iter().map(|(_, r)| r).sum::<f64>() > 1.0 {
            problems.push((None, "the rates add up to more than 1".to_string()));
        }
        if self.latency_ms.is_some_and(|(lo, hi)| lo > hi) {
            problems.push((Some("latency_ms"), "write it as [min, max]".to_string()));
        }
        problems
    }
}

/// One recorded request.
#[derive(Clone, Debug, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    /// The fault injected, if any.
    pub fault: Option<String>,
}

struct Inner {
    rules: Vec<FaultRule>,
    rng: StdRng,
    requests: BTreeMap<String, Vec<RecordedRequest>>,
}

/// Called by `POST /_mock/reset` so each service clears its own state.
type ResetHook = Arc<dyn Fn() + Send + Sync>;

#[derive(Clone)]
pub struct Chaos {
    inner: Arc<Mutex<Inner>>,
    resets: Arc<Mutex<Vec<ResetHook>>>,
}

enum Fault {
    Error,
    TooMany(u64),
    Hang,
    Malformed,
    Reset,
    Business(Option<Value>),
}

impl Fault {
    fn name(&self) -> &'static str {
        match self {
            Fault::Error => "error",
            Fault::TooMany(_) => "too_many",
            Fault::Hang => "hang",
            Fault::Malformed => "malformed",
            Fault::Reset => "reset",
            Fault::Business(_) => "business_error",
        }
    }
}

impl Chaos {
    pub fn new(seed: u64) -> Chaos {
        Chaos {
            inner: Arc::new(Mutex::new(Inner {
                rules: Vec::new(),
                rng: StdRng::seed_from_u64(seed),
                requests: BTreeMap::new(),
            })),
            resets: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Run `hook` on `POST /_mock/reset` (a service clearing its dossiers, files, ...).
    pub fn on_reset(&self, hook: impl Fn() + Send + Sync + 'static) {
        self.resets.lock().unwrap().push(Arc::new(hook));
    }

    /// Put the fault layer in front of `mocks` and add the `/_mock` control routes.
    pub fn wrap(&self, mocks: Router) -> Router {
        let control = Router::new()
            .route("/_mock/faults", post(set_rules).get(get_rules))
            .route("/_mock/reset", post(reset))
            .route("/_mock/{service}/requests", get(requests))
            .with_state(self.clone());
        mocks
            .layer(axum::middleware::from_fn_with_state(self.clone(), layer))
            .merge(control)
    }

    pub fn set_rules(&self, rules: Vec<FaultRule>) {
        self.inner.lock().unwrap().rules = rules;
    }

    pub fn requests(&self, service: &str) -> Vec<RecordedRequest> {
        self.inner
            .lock()
            .unwrap()
            .requests
            .get(service)
            .cloned()
            .unwrap_or_default()
    }

    /// Draw this request's fault and latency under the matching rule.
    fn draw(&self, service: &str, operation: Option<&str>) -> (Option<Fault>, Duration) {
        let mut g = self.inner.lock().unwrap();
        let Some(rule) = g
            .rules
            .iter()
            .find(|r| {
                r.service == service
                    && r.operation
                        .as_deref()
                        .is_none_or(|op| Some(op) == operation)
            })
            .cloned()
        else {
            return (None, Duration::ZERO);
        };
        let roll: f64 = g.rng.random();
        let latency = match rule.latency_ms {
            Some((lo, hi)) if hi >= lo => Duration::from_millis(g.rng.random_range(lo..=hi)),
            _ => Duration::ZERO,
        };
        let mut edge = rule.error_rate;
        let fault = if roll < edge {
            Some(Fault::Error)
        } else if roll < {
            edge += rule.too_many_rate;
            edge
        } {
            Some(Fault::TooMany(rule.retry_after_secs))
        } else if roll < {
            edge += rule.hang_rate;
            edge
        } {
            Some(Fault::Hang)
        } else if roll < {
            edge += rule.malformed_rate;
            edge
        } {
            Some(Fault::Malformed)
        } else if roll < {
            edge += rule.reset_rate;
            edge
        } {
            Some(Fault::Reset)
        } else if roll < edge + rule.business_error_rate {
            Some(Fault::Business(rule.business_code.clone()))
        } else {
            None
        };
        (fault, latency)
    }
}

async fn layer(State(chaos): State<Chaos>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let service = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let method = request.method().to_string();
    let headers: BTreeMap<String, String> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("<binary>").to_string()))
        .collect();
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return (StatusCode::PAYLOAD_TOO_LARGE, "body too large for the mock").into_response();
        }
    };
    let operation = serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| {
        v.get("service")
            .or_else(|| v.get("LoaiBanTin"))
            .and_then(|o| o.as_str())
            .map(str::to_string)
    });
    let (fault, latency) = chaos.draw(&service, operation.as_deref());
    let fault_name = fault.as_ref().map(|f| f.name().to_string());
    chaos
        .inner
        .lock()
        .unwrap()
        .requests
        .entry(service.clone())
        .or_default()
        .push(RecordedRequest {
            method,
            path,
            headers,
            body: String::from_utf8_lossy(&bytes)
                .chars()
                .take(65_536)
                .collect(),
            fault: fault_name,
        });
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fault {
        Some(Fault::Error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "injected fault: service unavailable",
        )
            .into_response(),
        Some(Fault::TooMany(secs)) => {
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                "injected fault: too many requests",
            )
                .into_response();
            r.headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
            r
        }
        Some(Fault::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Some(Fault::Malformed) => (
            StatusCode::OK,
            [("content-type", "application/json")],
            "{\"error_code\": ",
        )
            .into_response(),
        Some(Fault::Reset) => {
            // Unwinding out of the connection's task drops the socket without a byte of
            // answer, which is what a reset looks like to the client. `resume_unwind`
            // skips the panic hook, so nothing is printed.
            std::panic::resume_unwind(Box::new("injected fault: connection reset"))
        }
        Some(Fault::Business(code)) => business_error(&service, code),
        None => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    }
}

/// The business error a service reports in its own way.
fn business_error(service: &str, code: Option<Value>) -> Response {
    let message = "injected fault: business rule rejected the request";
    match service {
        "portal" => Json(json!({ "error_code": code.unwrap_or(json!(5)), "message": message }))
            .into_response(),
        "payment" => Json(json!({ "MaLoi": code.unwrap_or(json!("99")), "MoTaLoi": message }))
            .into_response(),
        "business" => Json(json!({
            "StatusCode": code.unwrap_or(json!(500)), "Status": "ERROR",
            "ThrowException": true, "Description": message, "ResultObject": null
        }))
        .into_response(),
        "population" => {
            let faultcode = code
                .as_ref()
                .and_then(Value::as_str)
                .unwrap_or("soap:Server")
                .to_string();
            let body = format!(
                r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>{faultcode}</faultcode><faultstring>{message}</faultstring></soap:Fault></soap:Body></soap:Envelope>"#
            );
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [("content-type", "text/xml; charset=utf-8")],
                body,
            )
                .into_response()
        }
        _ => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "error": { "code": code.unwrap_or(json!("REJECTED")), "message": message } })),
        )
            .into_response(),
    }
}

/// Replace the rules; a rule with a problem refuses the whole request (400 naming every
/// problem with its rule's index and field), and the rules in force stay.
async fn set_rules(State(chaos): State<Chaos>, Json(rules): Json<Vec<FaultRule>>) -> Response {
    let problems: Vec<Value> = rules
        .iter()
        .enumerate()
        .flat_map(|(i, rule)| {
            rule.problems().into_iter().map(move |(field, message)| {
                let field = match field {
                    Some(f) => format!("[{i}].{f}"),
                    None => format!("[{i}]"),
                };
                json!({ "field": field, "message": message })
            })
        })
        .collect();
    if !problems.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": {
                "code": "invalid_fault_rules",
                "message": "no rule was changed; fix these and send the rules again",
                "problems": problems,
            } })),
        )
            .into_response();
    }
    let n = rules.len();
    chaos.set_rules(rules);
    Json(json!({ "rules": n })).into_response()
}

async fn get_rules(State(chaos): State<Chaos>) -> Json<Value> {
    Json(json!({ "rules": chaos.inner.lock().unwrap().rules }))
}

async fn reset(State(chaos): State<Chaos>) -> Json<Value> {
    {
        let mut g = chaos.inner.lock().unwrap();
        g.rules.clear();
        g.requests.clear();
    }
    let hooks: Vec<ResetHook> = chaos.resets.lock().unwrap().clone();
    for hook in &hooks {
        hook();
    }
    Json(json!({ "reset": true, "services_cleared": hooks.len() }))
}

async fn requests(State(chaos): State<Chaos>, Path(service): Path<String>) -> Json<Value> {
    Json(json!({ "service": service, "requests": chaos.requests(&service) }))
}
