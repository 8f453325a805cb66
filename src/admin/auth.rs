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
/// of a window at once, the others counted into a record at the window's end. Anyone who
/// can reach the listener can send wrong tokens; what that costs on disk and in fsyncs is
/// bounded.
pub const FAILURE_RECORD_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Wrong tokens one address may send per [`GUESS_WINDOW`]; past them it gets 429 until
/// the window ends (guessing a token costs time, not just requests).
pub const GUESSES_PER_WINDOW: u32 = 10;
pub const GUESS_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
/// Addresses whose refusals are counted at once (the oldest window makes way).
const ADDRESSES_COUNTED: usize = 10_000;

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
    /// Wrong tokens since start (the guard reads it around each request).
    refused_total: std::sync::atomic::AtomicU64,
    /// Refusals per address in its current window (start, count).
    guesses: Mutex<std::collections::HashMap<std::net::IpAddr, (tokio::time::Instant, u32)>>,
}

#[derive(Default)]
struct FailureTally {
    last_recorded: Option<tokio::time::Instant>,
    unrecorded: std::collections::BTreeMap<String, u64>,
    /// A task will write the unrecorded refusals at the window's end.
    flush_scheduled: bool,
}

impl AdminTokens {
    pub fn new(tokens: Vec<(String, String, AdminRole)>, audit: Option<Arc<AuditLog>>) -> Self {
        let tokens = Self::digests(tokens);
        AdminTokens {
            tokens: std::sync::RwLock::new(Arc::new(tokens)),
            audit,
            failures: Mutex::default(),
            refused_total: Default::default(),
            guesses: Mutex::default(),
        }
    }

    /// Wrong tokens since start.
    pub fn refused_total(&self) -> u64 {
        self.refused_total
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How long `ip` must wait before its next token is even looked at: `Some` once it
    /// sent [`GUESSES_PER_WINDOW`] wrong ones in the current window.
    pub fn backoff(&self, ip: std::net::IpAddr) -> Option<std::time::Duration> {
        let now = tokio::time::Instant::now();
        let guesses = self.guesses.lock().unwrap_or_else(|p| p.into_inner());
        let (start, count) = guesses.get(&ip)?;
        let left = GUESS_WINDOW.checked_sub(now.duration_since(*start))?;
        (*count >= GUESSES_PER_WINDOW && !left.is_zero()).then_some(left)
    }

    /// Count a wrong token from `ip` against its window.
    pub fn guessed(&self, ip: std::net::IpAddr) {
        let now = tokio::time::Instant::now();
        let mut guesses = self.guesses.lock().unwrap_or_else(|p| p.into_inner());
        if guesses.len() >= ADDRESSES_COUNTED && !guesses.contains_key(&ip) {
            guesses.retain(|_, (start, _)| now.duration_since(*start) < GUESS_WINDOW);
            if guesses.len() >= ADDRESSES_COUNTED
                && let Some(oldest) = guesses.iter().min_by_key(|(_, (s, _))| *s).map(|(k, _)| *k)
            {
                guesses.remove(&oldest);
            }
        }
        let entry = guesses.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= GUESS_WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    /// Whether refusals wait to be recorded and no task will write them yet: the caller
    /// then runs [`AdminTokens::flush_failures`] after [`FAILURE_RECORD_EVERY`] (a burst's
    /// count reaches the audit trail within seconds, not at the next refusal, whenever).
    pub fn flush_owed(&self) -> bool {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let owed = !f.unrecorded.is_empty() && !f.flush_scheduled;
        f.flush_scheduled |= owed;
        owed
    }

    /// Write the refusals not yet recorded, if any.
    pub fn flush_failures(&self) {
        let counts = {
            let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            f.flush_scheduled = false;
            if f.unrecorded.is_empty() {
                return;
            }
            f.last_recorded = Some(tokio::time::Instant::now());
            std::mem::take(&mut f.unrecorded)
        };
        self.record_failures(counts);
    }

    fn record_failures(&self, counts: std::collections::BTreeMap<String, u64>) {
        tracing::warn!(?counts, "admin sign-in refused: unknown token");
        if let Some(audit) = &self.audit {
            let via = counts.keys().next().cloned().unwrap_or_default();
            audit.record(
                "admin_login_failed",
                "unknown",
                serde_json::json!({ "via": via, "count": counts.values().sum::<u64>(), "by_channel": counts }),
            );
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
        self.refused_total
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
        self.record_failures(counts);
    }

    /// Whether the token whose SHA-256 is `digest` is still configured.
    pub fn holds(&self, digest: &[u8; 32]) -> bool {
        let tokens = Arc::clone(&self.tokens.read().unwrap_or_else(|p| p.into_inner()));
        tokens.iter().any(|(t, _, _)| constant_time_eq(t, digest))
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
        // The window's end writes the rest, per channel, with no further refusal.
        assert!(tokens.flush_owed());
        assert!(!tokens.flush_owed(), "one flush scheduled at a time");
        tokio::time::advance(FAILURE_RECORD_EVERY).await;
        tokens.flush_failures();
        let all = records(&path);
        assert_eq!(all.len(), 2);
        assert_eq!(all[1]["details"]["count"], 1000);
        assert_eq!(all[1]["details"]["by_channel"]["api"], 999);
        assert_eq!(all[1]["details"]["by_channel"]["dashboard"], 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_address_that_guesses_waits_out_its_window_and_others_do_not() {
        let tokens = AdminTokens::new(Vec::new(), None);
        let (guesser, other): (std::net::IpAddr, std::net::IpAddr) =
            ("10.0.0.9".parse().unwrap(), "10.0.0.10".parse().unwrap());
        for _ in 0..GUESSES_PER_WINDOW - 1 {
            tokens.guessed(guesser);
        }
        assert_eq!(tokens.backoff(guesser), None);
        tokens.guessed(guesser);
        assert_eq!(tokens.backoff(guesser), Some(GUESS_WINDOW));
        assert_eq!(tokens.backoff(other), None);
        tokio::time::advance(GUESS_WINDOW).await;
        assert_eq!(tokens.backoff(guesser), None, "a new window");
    }
}
