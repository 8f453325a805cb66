//! Optional HMAC request signatures, per unit (`[units.<id>] hmac_secret_env`): on top of
//! its key, each request of such a unit carries
//!
//! ```text
//! X-Lienthong-Timestamp: <unix seconds>
//! X-Lienthong-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>\n<METHOD>\n<path?query>\n<body>")>
//! ```
//!
//! A request is refused (401, JSON naming the header) when the signature is missing or
//! wrong, when its timestamp is more than [`MAX_SKEW`] away from the bus's clock, or when
//! the same signature was already seen within that window (a replay). A captured request
//! can thus not be sent again, nor altered, even by someone holding the bearer key. In a
//! cluster the window is the cluster's ([`crate::transport::replay_guard`]): a request
//! accepted by one ingress node is a replay at every other; when the guard cannot be
//! asked, signed requests get 503 (`replay_check_unavailable`) rather than less safety.

use super::ApiError;
use crate::transport::replay_guard::{ReplayGuard, SeenSignatures};
use axum::body::Body;
use axum::extract::{RawPathParams, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub const TIMESTAMP_HEADER: &str = "x-lienthong-timestamp";
pub const SIGNATURE_HEADER: &str = "x-lienthong-signature";
/// How far a request's timestamp may be from the bus's clock: the replay guard's.
pub use crate::transport::replay_guard::MAX_SKEW;

/// Each signing unit's secrets (several during a rotation: a request signed with any of
/// them passes), replaced as a whole when credentials are reloaded.
pub type SigningSecrets = BTreeMap<String, Vec<Vec<u8>>>;

/// The signing secrets of the units that sign, and the signatures seen recently.
pub struct Signatures {
    secrets: std::sync::RwLock<Arc<SigningSecrets>>,
    window: ReplayWindow,
}

/// Where the signatures seen recently are remembered.
pub enum ReplayWindow {
    /// In this process (a single node).
    Local(Mutex<SeenSignatures>),
    /// By the cluster's guard, through the broker.
    Cluster(Arc<ReplayGuard>),
}

/// The signature header value for a request (what a unit's system computes).
pub fn sign(
    secret: &[u8],
    timestamp: u64,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> String {
    let mac = mac(secret, timestamp, method, path_and_query, body);
    format!(
        "sha256={}",
        crate::hex::encode(&mac.finalize().into_bytes())
    )
}

fn mac(
    secret: &[u8],
    timestamp: u64,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(format!("{timestamp}\n{method}\n{path_and_query}\n").as_bytes());
    mac.update(body);
    mac
}

impl Signatures {
    /// Signatures remembered in this process (a single node).
    pub fn new(secrets: SigningSecrets) -> Signatures {
        Signatures {
            secrets: std::sync::RwLock::new(Arc::new(secrets)),
            window: ReplayWindow::Local(Mutex::default()),
        }
    }

    /// Signatures remembered by the cluster's replay guard.
    pub fn clustered(secrets: SigningSecrets, guard: Arc<ReplayGuard>) -> Signatures {
        Signatures {
            secrets: std::sync::RwLock::new(Arc::new(secrets)),
            window: ReplayWindow::Cluster(guard),
        }
    }

    /// Whether `unit` signs its requests.
    pub fn signs(&self, unit: &str) -> bool {
        self.secrets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(unit)
    }

    /// Use these secrets from now on (credentials reloaded on SIGHUP).
    pub fn replace(&self, secrets: SigningSecrets) {
        *self.secrets.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(secrets);
    }

    /// Check a request of `unit`; units without a secret pass.
    pub async fn check(
        &self,
        unit: &str,
        method: &str,
        path_and_query: &str,
        headers: &HeaderMap,
        body: &[u8],
        now_secs: u64,
    ) -> Result<(), ApiError> {
        let all = Arc::clone(&self.secrets.read().unwrap_or_else(|p| p.into_inner()));
        let Some(secrets) = all.get(unit) else {
            return Ok(());
        };
        let refuse = |code: &'static str, header: &str, message: String| {
            ApiError::new(StatusCode::UNAUTHORIZED, code, message).field(header.to_string())
        };
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let timestamp: u64 = header(TIMESTAMP_HEADER)
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(|| {
                refuse(
                    "signature_required",
                    TIMESTAMP_HEADER,
                    format!(
                        "unit `{unit}` signs its requests: send {TIMESTAMP_HEADER} (unix seconds) and {SIGNATURE_HEADER}"
                    ),
                )
            })?;
        if timestamp.abs_diff(now_secs) > MAX_SKEW.as_secs() {
            return Err(refuse(
                "stale_signature",
                TIMESTAMP_HEADER,
                format!(
                    "the timestamp is {} s away from the bus's clock (at most {} s): sign the request when sending it, and check the clock",
                    timestamp.abs_diff(now_secs),
                    MAX_SKEW.as_secs()
                ),
            ));
        }
        let given = header(SIGNATURE_HEADER)
            .and_then(|s| s.trim().strip_prefix("sha256="))
            .and_then(crate::hex::decode)
            .ok_or_else(|| {
                refuse(
                    "signature_required",
                    SIGNATURE_HEADER,
                    format!("send {SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256>"),
                )
            })?;
        // Constant-time comparison (Mac::verify_slice), with each of the unit's secrets.
        let verified = secrets.iter().any(|secret| {
            mac(secret, timestamp, method, path_and_query, body)
                .verify_slice(&given)
                .is_ok()
        });
        verified.then_some(()).ok_or(()).map_err(|_| {
            refuse(
                "bad_signature",
                SIGNATURE_HEADER,
                "the signature does not match the request (timestamp, method, path, body)".into(),
            )
        })?;
        let mac: [u8; 32] = given.as_slice().try_into().expect("a verified HMAC-SHA256");
        let forget_at = timestamp + 2 * MAX_SKEW.as_secs();
        let first = match &self.window {
            ReplayWindow::Local(seen) => seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .first_time(mac, forget_at, now_secs),
            ReplayWindow::Cluster(guard) => guard.first_time(mac, forget_at).await.map_err(|e| {
                tracing::warn!(%unit, error = %e, "replay guard unreachable; signed request refused");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "replay_check_unavailable",
                    "the cluster cannot check this signed request against replays right now (broker unreachable); send it again shortly with a new timestamp and signature",
                )
                .retry_after(5)
            })?,
        };
        if !first {
            return Err(refuse(
                "replayed_request",
                SIGNATURE_HEADER,
                "this signed request was already received; a new request needs a new timestamp and signature".into(),
            ));
        }
        Ok(())
    }
}

/// Middleware on the unit routes: the `{unit}` of the path decides whether a signature is
/// needed. Runs after the body was read whole (see [`crate::server::buffer_body`]).
pub async fn verify(
    State(signatures): State<Arc<Signatures>>,
    params: RawPathParams,
    req: Request,
    next: Next,
) -> Response {
    let Some(unit) = params
        .iter()
        .find(|(name, _)| *name == "unit")
        .map(|(_, v)| v.to_string())
    else {
        return next.run(req).await;
    };
    if !signatures.signs(&unit) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::new(StatusCode::BAD_REQUEST, "body_unreadable", e.to_string())
                .into_response();
        }
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let now = crate::time::now_ms() / 1000;
    if let Err(e) = signatures
        .check(
            &unit,
            parts.method.as_str(),
            path,
            &parts.headers,
            &bytes,
            now,
        )
        .await
    {
        tracing::warn!(%unit, code = e.code, "signed request refused");
        // A SOAP unit hears it as a SOAP fault, like its other errors.
        if parts.uri.path().starts_with("/soap/") {
            return super::soap::fault(&e);
        }
        return e.into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(ts: u64, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(TIMESTAMP_HEADER, ts.to_string().parse().unwrap());
        h.insert(SIGNATURE_HEADER, sig.parse().unwrap());
        h
    }

    #[tokio::test]
    async fn a_signed_request_passes_once_and_any_change_is_refused() {
        let s = Signatures::new(BTreeMap::from([(
            "ipo".to_string(),
            vec![b"secret".to_vec()],
        )]));
        let now = 1_800_000_000;
        let sig = sign(
            b"secret",
            now,
            "POST",
            "/api/v1/units/ipo/events?flow=x",
            b"{}",
        );
        let ok = headers(now, &sig);
        s.check(
            "ipo",
            "POST",
            "/api/v1/units/ipo/events?flow=x",
            &ok,
            b"{}",
            now + 10,
        )
        .await
        .unwrap();
        let again = s
            .check(
                "ipo",
                "POST",
                "/api/v1/units/ipo/events?flow=x",
                &ok,
                b"{}",
                now + 11,
            )
            .await
            .unwrap_err();
        assert_eq!(again.code, "replayed_request");
        let altered = s
            .check(
                "ipo",
                "POST",
                "/api/v1/units/ipo/events?flow=x",
                &ok,
                b"{ }",
                now,
            )
            .await
            .unwrap_err();
        assert_eq!(altered.code, "bad_signature");
        let old = sign(b"secret", now - 1000, "POST", "/p", b"");
        let stale = s
            .check("ipo", "POST", "/p", &headers(now - 1000, &old), b"", now)
            .await
            .unwrap_err();
        assert_eq!(stale.code, "stale_signature");
        let none = s
            .check("ipo", "POST", "/p", &HeaderMap::new(), b"", now)
            .await
            .unwrap_err();
        assert_eq!(none.code, "signature_required");
        // Units without a secret are not asked for one.
        s.check("nafosted", "POST", "/p", &HeaderMap::new(), b"", now)
            .await
            .unwrap();
    }
}

#[cfg(test)]
mod rotation {
    use super::*;

    /// During a rotation a unit has two secrets: a request signed with either passes;
    /// once the old is removed (a reload), its signatures are refused.
    #[tokio::test]
    async fn either_secret_of_a_rotation_signs_until_the_old_one_is_removed() {
        let path = "/api/v1/units/ipo/events/x";
        let s = Signatures::new(BTreeMap::from([(
            "ipo".to_string(),
            vec![b"new-secret".to_vec(), b"old-secret".to_vec()],
        )]));
        let now = 1_800_000_000;
        let signed = |secret: &[u8], ts: u64| {
            let mut h = HeaderMap::new();
            h.insert(TIMESTAMP_HEADER, ts.to_string().parse().unwrap());
            h.insert(
                SIGNATURE_HEADER,
                sign(secret, ts, "POST", path, b"{}").parse().unwrap(),
            );
            h
        };
        for (i, secret) in [b"new-secret".as_slice(), b"old-secret"].iter().enumerate() {
            let ts = now + i as u64;
            s.check("ipo", "POST", path, &signed(secret, ts), b"{}", ts)
                .await
                .unwrap();
        }
        s.replace(BTreeMap::from([(
            "ipo".to_string(),
            vec![b"new-secret".to_vec()],
        )]));
        let ts = now + 5;
        let refused = s
            .check("ipo", "POST", path, &signed(b"old-secret", ts), b"{}", ts)
            .await
            .unwrap_err();
        assert_eq!(refused.code, "bad_signature");
        s.check(
            "ipo",
            "POST",
            path,
            &signed(b"new-secret", ts + 1),
            b"{}",
            ts + 1,
        )
        .await
        .unwrap();
    }
}
