//! A mock OAuth 2.0 token endpoint (client credentials) for targets behind a gateway that
//! wants bearer tokens: `POST /oauth/token` with `grant_type=client_credentials`,
//! `client_id`, `client_secret` (form-encoded) → `{"access_token", "token_type", "expires_in"}`.
//! Development client: `lienthong` / `mock-oauth-secret`. `GET /_mock/oauth/tokens` counts
//! the tokens issued.
//!
//! It is also the data-sharing gateway in front of the population and business mocks
//! ([`gateway`]): a call there carrying `Authorization: Bearer …` must carry a token this
//! endpoint issued (401 `invalid_token` otherwise), and one carrying `lgspaccesstoken`
//! next to it must carry the same token there (as provincial gateways want). Calls with
//! no credential at all pass, so the mocks stay usable without a gateway.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub const CLIENT_ID: &str = "lienthong";
pub const CLIENT_SECRET: &str = "mock-oauth-secret";

#[derive(Clone, Default)]
pub struct OAuth {
    issued: Arc<AtomicU64>,
    /// The tokens handed out (the mock's tokens never expire).
    tokens: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

/// Most tokens remembered; past it the memory starts over (clients fetch new ones).
const MAX_TOKENS: usize = 10_000;

impl OAuth {
    pub fn router(&self) -> Router {
        Router::new()
            .route("/oauth/token", post(token))
            .route("/_mock/oauth/tokens", get(count))
            .with_state(self.clone())
    }

    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::Relaxed)
    }
}

/// `a=b&c=d` → pairs (values percent-decoded, `+` as space).
fn form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn token(State(oauth): State<OAuth>, body: String) -> Response {
    let pairs = form(&body);
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("grant_type") != Some("client_credentials") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    if get("client_id") != Some(CLIENT_ID) || get("client_secret") != Some(CLIENT_SECRET) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client", "error_description": "wrong client id or secret"}))).into_response();
    }
    let n = oauth.issued.fetch_add(1, Ordering::Relaxed) + 1;
    let token = format!("mock-token-{n:06}");
    {
        let mut tokens = oauth.tokens.lock().unwrap();
        if tokens.len() >= MAX_TOKENS {
            tokens.clear();
        }
        tokens.insert(token.clone());
    }
    Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600})).into_response()
}

/// The gateway in front of the national databases: a bearer token must be one this
/// endpoint issued, and `lgspaccesstoken`, when sent with it, the same token.
pub async fn gateway(
    State(oauth): State<OAuth>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(refused) = oauth.refuse(request.headers()) {
        return refused;
    }
    next.run(request).await
}

impl OAuth {
    /// Why the gateway refuses a call with these headers, if it does.
    fn refuse(&self, headers: &axum::http::HeaderMap) -> Option<Response> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let bearer = header("authorization")?.strip_prefix("Bearer ")?;
        let known = self.tokens.lock().unwrap().contains(bearer);
        let lgsp_agrees = header("lgspaccesstoken").is_none_or(|t| t == bearer);
        if known && lgsp_agrees {
            return None;
        }
        let why = if known {
            "lgspaccesstoken does not match the bearer token"
        } else {
            "unknown or expired access token"
        };
        Some(
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "invalid_token", "error_description": why})),
            )
                .into_response(),
        )
    }
}

async fn count(State(oauth): State<OAuth>) -> Json<serde_json::Value> {
    Json(json!({ "issued": oauth.issued() }))
}
