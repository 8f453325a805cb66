//! What the outbox takes and answers: its settings, a request's events, what was
//! accepted, its errors and its totals.

use super::QueueCounts;
use crate::envelope::MessageId;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::time::Duration;

/// Settings the outbox takes from `[outbox]`.
#[derive(Clone, Debug)]
pub struct OutboxSettings {
    pub max_pending: u64,
    pub max_pending_bytes: u64,
    pub retention: Duration,
    pub idempotency_ttl: Duration,
    /// How long a note ([`super::Notes`]) is kept after it was first written.
    pub note_retention: Duration,
    pub window: usize,
}

impl From<&crate::config::OutboxConfig> for OutboxSettings {
    fn from(c: &crate::config::OutboxConfig) -> Self {
        OutboxSettings {
            max_pending: c.max_pending,
            max_pending_bytes: c.max_pending_bytes,
            retention: c.retention,
            idempotency_ttl: c.idempotency_ttl,
            note_retention: c.note_retention,
            window: c.window,
        }
    }
}

/// One event to enqueue: its ordering key and its payload.
pub struct NewEvent {
    pub key: Option<String>,
    pub payload: Box<RawValue>,
    /// The targets this event goes to when they are fewer than the request's (a route's
    /// `deliver_when` left some out); `None`: all of [`EnqueueRequest::targets`].
    pub targets: Option<Vec<String>>,
}

/// Events from one request: stored all together or not at all.
pub struct EnqueueRequest {
    pub unit: String,
    pub flow: String,
    pub trace_id: String,
    pub idempotency_key: Option<String>,
    pub targets: Vec<String>,
    pub ordered: bool,
    pub block_on_dead: bool,
    pub events: Vec<NewEvent>,
    /// Made by the bus itself from what a target answered (a route's `replies`): taken
    /// even over the pending cap, since refusing it would mean sending the message that
    /// caused it again.
    pub from_reply: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Accepted {
    pub id: MessageId,
    pub duplicate: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnqueueError {
    #[error(
        "the outbox is full ({pending} deliveries, {pending_bytes} bytes pending); retry later"
    )]
    Backpressure { pending: u64, pending_bytes: u64 },
    #[error("the outbox cannot store messages right now: {0}")]
    Storage(String),
    #[error("the outbox is shut down")]
    Closed,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpError {
    #[error("no such dead letter")]
    NotFound,
    #[error("storage error: {0}")]
    Storage(String),
    #[error("the outbox is shut down")]
    Closed,
}

/// Totals for status views and metrics.
#[derive(Clone, Debug, serde::Serialize)]
pub struct OutboxStats {
    pub pending: u64,
    pub pending_bytes: u64,
    pub dead: u64,
    pub accepted_since_start: u64,
    pub flushes_since_start: u64,
    pub disk_bytes: u64,
    pub targets: HashMap<String, QueueCounts>,
}
