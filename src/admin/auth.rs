//! Admin API tokens with roles: `viewer` reads; `operator` may also replay, drop and pause.
//! Tokens come from environment variables named in `[admin] tokens`; `dev_token` values are
//! for development and refused in production. Compared in constant time.

use crate::audit::AuditLog;
use crate::config::AdminRole;
use crate::web::ApiError;
use crate::web::{constant_time_eq, digest_of_configured, key_digest};
use axum::http::{HeaderMap, StatusCode, header};
use std::sync::{Arc, Mutex};

/// Refused tokens are written to the audit trail at most once per this window: the first
/// of a window at once, the others counted into the next record. Anyone who can reach
/// the listener can send wrong tokens; what that costs on disk and in fsyncs is bounded.
const FAILURE_RECORD_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// A token as kept: its SHA-256 digest, its holder's name and role.
type TokenEntry = ([u8; 32], String, AdminRole);

/// The configured tokens, kept as SHA-256 digests: (digest, name, role).
#[derive(Default)]
pub struct AdminTokens {
    /// Replaced as a whole when credentials are reloaded (SIGHUP).
    tokens: std::sync::RwLock<Arc<Vec<TokenEntry>>>,
    /// Where refused tokens are recorded.
    audit: Option<Arc<AuditLog>>,
    /// When the last refusal was recorded, and the refusals since, per channel.
    failures: Mutex<FailureTally>,
}

#[derive(Default)]
struct FailureTally {
    last_recorded: Option<tokio::time::Instant>,
    unrecorded: std::collections::BTreeMap<String, u64>,
}

impl AdminTokens {
    pub fn new(tokens: Vec<(String, String, AdminRole)>, audit: Option<Arc<AuditLog>>) -> Self {
        let tokens = Self::digests(tokens);
        AdminTokens {
            tokens: std::sync::RwLock::new(Arc::new(tokens)),
            audit,
            failures: Mutex::default(),
        }
    }

    fn digests(tokens: Vec<(String, String, AdminRole)>) -> Vec<TokenEntry> {
        tokens
            .into_iter()
            .map(|(t, name, role)| (digest_of_configured(&t), name, role))
            .collect()
    }

    /// Accept these tokens from now on (credentials reloaded on SIGHUP); how many.
    pub fn replace(&self, tokens: Vec<(String, String, AdminRole)>) -> usize {
        let tokens = Self::digests(tokens);
        let n = tokens.len();
        *self.tokens.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(tokens);
        n
    }

    /// Record a refused admin token (never the token itself): at most one audit record
    /// and one log line per [`FAILURE_RECORD_EVERY`], carrying how many were refused
    /// (`count`) per channel (`via`) since the last one.
    pub fn login_failed(&self, via: &str) {
        let now = tokio::time::Instant::now();
        let counts = {
            let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            *f.unrecorded.entry(via.to_string()).or_default() += 1;
            if f.last_recorded
                .is_some_and(|t| now.duration_since(t) < FAILURE_RECORD_EVERY)
            {
                return;
            }
            f.last_recorded = Some(now);
            std::mem::take(&mut f.unrecorded)
        };
        tracing::warn!(?counts, "admin sign-in refused: unknown token");
        if let Some(audit) = &self.audit {
            audit.record(
                "admin_login_failed",
                "unknown",
                serde_json::json!({ "via": via, "count": counts.values().sum::<u64>(), "by_channel": counts }),
            );
        }
    }

    /// The holder of `token` (name and role), if it is a configured token.
    pub fn check(&self, token: &str) -> Option<(String, AdminRole)> {
        let given = key_digest(token.as_bytes());
        // Every configured digest is compared, so the time taken does not say which one
        // (or whether an early one) matched.
        let tokens = Arc::clone(&self.tokens.read().unwrap_or_else(|p| p.into_inner()));
        tokens
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

#[cfg(test)]
mod tests {
    use super::*;

    fn records(path: &std::path::Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_of_wrong_tokens_writes_one_audit_record_per_window_with_its_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Arc::new(AuditLog::open(&path).unwrap());
        let tokens = AdminTokens::new(Vec::new(), Some(Arc::clone(&audit)));
        for _ in 0..1000 {
            tokens.login_failed("api");
        }
        tokens.login_failed("dashboard");
        let first = records(&path);
        assert_eq!(first.len(), 1, "one record for the whole burst so far");
        assert_eq!(first[0]["details"]["count"], 1);
        tokio::time::advance(FAILURE_RECORD_EVERY).await;
        tokens.login_failed("api");
        let all = records(&path);
        assert_eq!(all.len(), 2);
        // The refusals of the window are counted, per channel, in the next record.
        assert_eq!(all[1]["details"]["count"], 1001);
        assert_eq!(all[1]["details"]["by_channel"]["api"], 1000);
        assert_eq!(all[1]["details"]["by_channel"]["dashboard"], 1);
    }
}
