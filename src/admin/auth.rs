//! Admin API tokens with roles: `viewer` reads; `operator` may also replay, drop and pause.
//! Tokens come from environment variables named in `[admin] tokens`; `dev_token` values are
//! for development and refused in production. Compared in constant time.

use crate::audit::AuditLog;
use crate::config::AdminRole;
use crate::ingress::ApiError;
use crate::ingress::{constant_time_eq, digest_of_configured, key_digest};
use axum::http::{HeaderMap, StatusCode, header};
use std::sync::Arc;

/// The configured tokens, kept as SHA-256 digests: (digest, name, role).
#[derive(Default)]
pub struct AdminTokens {
    tokens: Vec<([u8; 32], String, AdminRole)>,
    /// Where refused tokens are recorded.
    audit: Option<Arc<AuditLog>>,
}

impl AdminTokens {
    pub fn new(tokens: Vec<(String, String, AdminRole)>, audit: Option<Arc<AuditLog>>) -> Self {
        let tokens = tokens
            .into_iter()
            .map(|(t, name, role)| (digest_of_configured(&t), name, role))
            .collect();
        AdminTokens { tokens, audit }
    }

    /// Record a refused admin token (never the token itself).
    pub fn login_failed(&self, via: &str) {
        tracing::warn!(via, "admin sign-in refused: unknown token");
        if let Some(audit) = &self.audit {
            audit.record(
                "admin_login_failed",
                "unknown",
                serde_json::json!({ "via": via }),
            );
        }
    }

    /// The holder of `token` (name and role), if it is a configured token.
    pub fn check(&self, token: &str) -> Option<(String, AdminRole)> {
        let given = key_digest(token.as_bytes());
        // Every configured digest is compared, so the time taken does not say which one
        // (or whether an early one) matched.
        self.tokens
            .iter()
            .fold(None, |found, (t, name, role)| {
                let matches = constant_time_eq(t, &given);
                found.or(matches.then_some((name, role)))
            })
            .map(|(name, role)| (name.clone(), *role))
    }

    /// Who is asking (name and role), or 401 with what to send.
    pub fn identify(&self, headers: &HeaderMap) -> Result<(String, AdminRole), ApiError> {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "send Authorization: Bearer <admin token> (configured in [admin] tokens)",
                )
            })?;
        self.check(given).ok_or_else(|| {
            self.login_failed("api");
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "unknown admin token",
            )
        })
    }

    /// As [`AdminTokens::identify`], and the role must allow changes.
    pub fn operator(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        let (name, role) = self.identify(headers)?;
        if role == AdminRole::Operator {
            Ok(name)
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this token may only read; replaying, dropping and pausing need an operator token",
            ))
        }
    }
}
