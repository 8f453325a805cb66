//! Admin endpoints beside the ingress: liveness (`/healthz`), readiness (`/readyz`),
//! Prometheus `/metrics`, and the admin API under `/api/v1` ([`api`]). All of them read the
//! outbox's and the relay's own state; they keep no second source of truth.

pub mod api;
pub mod auth;
pub mod cli;
mod cli_report;
pub mod dashboard;
pub mod history;
pub mod kpi;
pub mod metrics;
pub mod period;
pub mod reconciliation;
pub mod report;
pub mod report_06a;
pub mod report_pdf;
pub mod session;
pub mod words;

use crate::outbox::Outbox;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub struct AdminState {
    pub outbox: Outbox,
    /// The broker, with `transport = "amqp"` (status shows what waits in its queues).
    pub broker: Option<Arc<crate::transport::broker::Broker>>,
    /// Cleared when shutdown begins, so load balancers stop sending work.
    pub accepting: AtomicBool,
    /// The relay's per-target runtimes (counters, breaker, pause).
    pub targets: Vec<Arc<crate::delivery::TargetRuntime>>,
    pub tokens: auth::AdminTokens,
    /// The dashboard's signed-in sessions.
    pub sessions: session::Sessions,
    /// The listener serves HTTPS: the session cookie is marked `Secure`.
    pub secure_cookies: bool,
    /// Replays, drops and sign-in failures are recorded here.
    pub audit: Arc<crate::audit::AuditLog>,
    /// The configured units, listed in status views even before they send anything.
    pub units: Vec<String>,
    /// Targets of kind `portal`: the national portal, whose sync the KPIs measure.
    pub portal_targets: Vec<String>,
    /// Targets of kind `payment` (fee requests, for the online-payment KPI).
    pub payment_targets: Vec<String>,
    /// The mappings, to read messages as the national platforms receive them.
    pub mappings: Arc<crate::mappings::MappingSet>,
    pub kpis: kpi::KpiBoard,
    /// Each platform's last day, sampled (the dashboard's 24-hour charts).
    pub history: history::History,
    /// Every unit's procedure catalogue (targets 1a, 1b).
    pub procedures: Arc<crate::procedures::Catalogue>,
    /// Forged payment callbacks (shared with the ingress), for `/metrics`.
    pub callbacks: Arc<crate::connector::payment::CallbackGuard>,
    /// Keyed requests this node checked against its own memory only, the cluster's
    /// idempotency guard out of reach (`transport = "amqp"`), for `/metrics`.
    pub keys_checked_locally: Arc<std::sync::atomic::AtomicU64>,
    /// Lookups per unit, officer and day, refusals by reason, the documented exceptions
    /// (shared with the lookups).
    pub lookups: Arc<crate::web::lookup_usage::LookupUsage>,
    /// How long the data directory's disk took to make a write durable, at start (None:
    /// not measured, e.g. a store in memory).
    pub disk_speed: Option<crate::outbox::disk_speed::DiskSpeed>,
    /// Every route as the dashboard's map draws it.
    pub routes: Vec<RouteLine>,
    /// The message log's archive (`None`: `[evidence] mode = "off"`), for the evidence page.
    pub evidence_dir: Option<std::path::PathBuf>,
    /// The message log, for its figures in `/metrics`.
    pub evidence: Arc<crate::evidence::MessageLog>,
}

/// One route of the configuration: a unit's flow, where it goes and through which mapping.
#[derive(Clone, Debug)]
pub struct RouteLine {
    pub unit: String,
    pub flow: String,
    /// (target, mapping file or "" when the event goes as sent).
    pub targets: Vec<(String, String)>,
}

pub fn routes(state: Arc<AdminState>) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::metrics))
        .with_state(Arc::clone(&state))
        .merge(dashboard::routes(Arc::clone(&state)))
        .merge(api::routes(Arc::clone(&state)))
        .layer(axum::middleware::from_fn_with_state(state, refuse_guessers))
}

/// Admin tokens are not guessed: an address that sent [`auth::GUESSES_PER_WINDOW`] wrong
/// tokens (API or dashboard sign-in) gets `429` with `Retry-After` until its window ends,
/// before its token is even looked at; the refusals reach the audit trail within
/// [`auth::FAILURE_RECORD_EVERY`].
async fn refuse_guessers(
    State(s): State<Arc<AdminState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let ip = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(wait) = ip.and_then(|ip| s.tokens.backoff(ip)) {
        return crate::web::ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_wrong_tokens",
            "too many wrong admin tokens from this address; wait, then use the right one",
        )
        .retry_after(wait.as_secs() + 1)
        .into_response();
    }
    let refused_before = s.tokens.refused_total();
    let resp = next.run(req).await;
    if s.tokens.refused_total() > refused_before {
        if let Some(ip) = ip {
            s.tokens.guessed(ip);
        }
        if s.tokens.flush_owed() {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                tokio::time::sleep(auth::FAILURE_RECORD_EVERY).await;
                s.tokens.flush_failures();
            });
        }
    }
    resp
}

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(State(state): State<Arc<AdminState>>) -> impl IntoResponse {
    let stats = state.outbox.stats();
    let mut reasons = Vec::new();
    if !state.accepting.load(Ordering::Relaxed) {
        reasons.push("shutting down".to_string());
    }
    if state.outbox.over_capacity() {
        reasons.push(format!(
            "outbox over capacity ({} deliveries pending)",
            stats.pending
        ));
    }
    let status = if reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "ready": reasons.is_empty(),
        "reasons": reasons,
        "pending": stats.pending,
        "dead": stats.dead,
    });
    (status, Json(body))
}
