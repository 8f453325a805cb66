//! The records the outbox stores, one per key kind (see [`super::keys`]). JSON-encoded:
//! small, readable with any sled dump tool, and tolerant of added fields.

use super::store::StoreError;
use crate::envelope::MessageId;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// `m`: the message itself, kept until every delivery is finished and retention has passed.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct MessageRecord {
    pub unit: String,
    pub flow: String,
    pub key: Option<String>,
    pub trace_id: String,
    pub idempotency_key: Option<String>,
    pub targets: Vec<String>,
    pub payload: Box<RawValue>,
}

/// One failed attempt, as kept in the history of a delivery.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AttemptError {
    pub at_ms: u64,
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// Attempts kept per delivery; older ones are summarised by the attempt count.
pub const MAX_KEPT_ERRORS: usize = 20;

/// `q`: a delivery not finished yet: pending, or waiting for a retry at `next_due_ms`.
/// Whether it is in flight is known only to the process holding its lease (in memory), so
/// a crash returns every lease to pending by construction.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PendingRecord {
    /// Hash of (unit, ordering key) when the route orders per key.
    #[serde(default)]
    pub key_hash: Option<u64>,
    /// A dead message blocks its key (route `on_dead = "block"`).
    pub block_on_dead: bool,
    pub attempts: u32,
    #[serde(default)]
    pub next_due_ms: u64,
    pub payload_len: u32,
    #[serde(default)]
    pub errors: Vec<AttemptError>,
}

/// `d`: a finished delivery, kept for sync-status queries until retention removes it.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct DoneRecord {
    pub outcome: DoneOutcome,
    pub at_ms: u64,
    pub attempts: u32,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DoneOutcome {
    Delivered,
    /// A dead letter an operator chose to drop.
    Dropped,
}

/// `x`: a dead letter: the reason, every attempt's error, and what is needed to replay it.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct DeadRecord {
    pub key_hash: Option<u64>,
    pub block_on_dead: bool,
    pub attempts: u32,
    pub payload_len: u32,
    pub reason: String,
    pub dead_at_ms: u64,
    pub errors: Vec<AttemptError>,
}

/// `i`: what an idempotency key produced.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct IdempotencyRecord {
    pub ids: Vec<MessageId>,
    pub created_ms: u64,
}

/// `zmeta`: counters kept exact by the single writer, in the same batch as the records.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Meta {
    pub pending: u64,
    pub pending_bytes: u64,
    pub dead: u64,
    pub last_id: Option<MessageId>,
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records always serialize")
}

pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}
