//! The dashboard's sign-in sessions, kept on the server. Signing in with an admin token
//! opens a session; the browser holds only a random session id in an HttpOnly cookie, never
//! the token. A session ends when its holder signs out, after `[admin] session_idle`
//! without a request, or `[admin] session_max` after sign-in, whichever comes first; a
//! restart of the bus ends them all (sign in again), and a rotation that removes the token
//! a session was opened with ends that session ([`Sessions::end_unless`]).
//!
//! Sessions are found by the SHA-256 of their id: the ids themselves are not kept.

use crate::config::AdminRole;
use crate::web::key_digest;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// At most this many open sessions; signing in beyond it ends the least recently used one
/// (only holders of admin tokens can sign in, but nothing should grow without bound).
const MAX_SESSIONS: usize = 1_000;

/// Who a session belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionHolder {
    /// The name of the admin token that opened the session.
    pub name: String,
    pub role: AdminRole,
}

struct Session {
    holder: SessionHolder,
    /// The SHA-256 of the admin token it was opened with.
    token: [u8; 32],
    opened: Instant,
    last_seen: Instant,
}

/// The open sessions.
pub struct Sessions {
    open: Mutex<HashMap<[u8; 32], Session>>,
    idle: Duration,
    max_age: Duration,
}

impl Sessions {
    pub fn new(idle: Duration, max_age: Duration) -> Sessions {
        Sessions {
            open: Mutex::new(HashMap::new()),
            idle,
            max_age,
        }
    }

    /// Open a session for `holder`, signed in with the token whose SHA-256 is `token`;
    /// the returned id goes in the cookie.
    pub fn open(&self, holder: SessionHolder, token: [u8; 32]) -> String {
        let id = crate::hex::encode(&rand::random::<[u8; 32]>());
        let now = Instant::now();
        let mut open = self.open.lock().expect("sessions lock");
        open.retain(|_, s| self.alive(s, now));
        if open.len() >= MAX_SESSIONS
            && let Some(oldest) = open
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| *k)
        {
            open.remove(&oldest);
        }
        open.insert(
            key_digest(id.as_bytes()),
            Session {
                holder,
                token,
                opened: now,
                last_seen: now,
            },
        );
        id
    }

    /// The holder of the session `id`, if it is open; counts as activity.
    pub fn find(&self, id: &str) -> Option<SessionHolder> {
        let now = Instant::now();
        let key = key_digest(id.as_bytes());
        let mut open = self.open.lock().expect("sessions lock");
        let session = open.get_mut(&key)?;
        if !self.alive(session, now) {
            open.remove(&key);
            return None;
        }
        session.last_seen = now;
        Some(session.holder.clone())
    }

    /// End every session whose token is no longer configured (`still` says which are):
    /// credentials were rotated, and a session lives no longer than its token. How many
    /// ended.
    pub fn end_unless(&self, still: impl Fn(&[u8; 32]) -> bool) -> usize {
        let mut open = self.open.lock().expect("sessions lock");
        let before = open.len();
        open.retain(|_, s| still(&s.token));
        before - open.len()
    }

    /// End the session `id` (signing out); unknown ids are ignored.
    pub fn close(&self, id: &str) {
        let key = key_digest(id.as_bytes());
        self.open.lock().expect("sessions lock").remove(&key);
    }

    /// Sessions open now (expired ones not counted).
    #[cfg(test)]
    fn count(&self) -> usize {
        let now = Instant::now();
        let open = self.open.lock().expect("sessions lock");
        open.values().filter(|s| self.alive(s, now)).count()
    }

    fn alive(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.last_seen) < self.idle && now.duration_since(s.opened) < self.max_age
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(role: AdminRole) -> SessionHolder {
        SessionHolder {
            name: "it-center".into(),
            role,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_ends_when_idle_too_long_or_too_old() {
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(300));
        let id = sessions.open(holder(AdminRole::Operator), [1; 32]);
        assert_eq!(sessions.find(&id), Some(holder(AdminRole::Operator)));
        // Activity keeps it open past the idle limit...
        for _ in 0..4 {
            tokio::time::advance(Duration::from_secs(50)).await;
            assert!(sessions.find(&id).is_some());
        }
        // ...but not past its maximum age (200 s so far, 350 s now).
        tokio::time::advance(Duration::from_secs(150)).await;
        assert_eq!(sessions.find(&id), None);
        assert_eq!(sessions.count(), 0);

        let idle = sessions.open(holder(AdminRole::Viewer), [2; 32]);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(sessions.find(&idle), None, "idle for longer than 60 s");
    }

    #[tokio::test(start_paused = true)]
    async fn ids_are_random_unguessable_and_signing_out_ends_one() {
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(300));
        let a = sessions.open(holder(AdminRole::Operator), [1; 32]);
        let b = sessions.open(holder(AdminRole::Viewer), [2; 32]);
        assert_ne!(a, b);
        assert_eq!(a.len(), 64, "256 random bits, hex");
        assert_eq!(sessions.find("it-center"), None);
        assert_eq!(sessions.find(&a[..63]), None);
        sessions.close(&a);
        assert_eq!(sessions.find(&a), None);
        assert_eq!(sessions.find(&b), Some(holder(AdminRole::Viewer)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_least_recently_used_session_gives_way_at_the_cap() {
        let sessions = Sessions::new(Duration::from_secs(3600), Duration::from_secs(3600));
        let first = sessions.open(holder(AdminRole::Viewer), [2; 32]);
        tokio::time::advance(Duration::from_millis(1)).await;
        let second = sessions.open(holder(AdminRole::Viewer), [2; 32]);
        for _ in 0..MAX_SESSIONS - 2 {
            tokio::time::advance(Duration::from_millis(1)).await;
            sessions.open(holder(AdminRole::Viewer), [2; 32]);
        }
        // The first is used again: the second is now the least recently used.
        assert!(sessions.find(&first).is_some());
        sessions.open(holder(AdminRole::Operator), [1; 32]);
        assert_eq!(sessions.count(), MAX_SESSIONS);
        assert!(sessions.find(&first).is_some());
        assert_eq!(sessions.find(&second), None);
    }
}
