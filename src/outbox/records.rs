//! The records the outbox stores, one per key kind (see [`super::keys`]). JSON-encoded:
//! small, readable with any sled dump tool, and tolerant of added fields.

use super::store::StoreError;
use crate::envelope::MessageId;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A message chunk (`m` record): the messages of one request, whose ids are consecutive
/// from the chunk key's id. One sled record per request instead of one per message is
/// what lets batched ingest keep up (sled's per-insert cost dominates the writer).
///
/// Layout: `count: u32 LE`, then `count` end offsets (`u32 LE`, relative to the data),
/// then the JSON-encoded [`MessageRecord`]s back to back.
pub fn encode_chunk(records: &[Vec<u8>]) -> Vec<u8> {
    let data: usize = records.iter().map(|r| r.len()).sum();
    let mut out = Vec::with_capacity(4 + 4 * records.len() + data);
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    let mut end = 0u32;
    for r in records {
        end += r.len() as u32;
        out.extend_from_slice(&end.to_le_bytes());
    }
    for r in records {
        out.extend_from_slice(r);
    }
    out
}

/// Number of messages in a chunk.
pub fn chunk_len(chunk: &[u8]) -> usize {
    chunk.get(..4).map_or(0, |b| {
        u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize
    })
}

/// The encoded record of message `index` in a chunk.
pub fn chunk_entry(chunk: &[u8], index: usize) -> Result<&[u8], StoreError> {
    let count = chunk_len(chunk);
    let corrupt = || StoreError::Corrupt("message chunk is truncated".into());
    if index >= count {
        return Err(StoreError::Corrupt(format!(
            "message {index} is not in a chunk of {count}"
        )));
    }
    let offset = |i: usize| -> Result<usize, StoreError> {
        let at = 4 + 4 * i;
        let b = chunk.get(at..at + 4).ok_or_else(corrupt)?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
    };
    let data = 4 + 4 * count;
    let start = if index == 0 { 0 } else { offset(index - 1)? };
    let end = offset(index)?;
    chunk.get(data + start..data + end).ok_or_else(corrupt)
}

/// A message inside an `m` chunk, kept until every delivery of every message in the chunk
/// is finished and retention has passed.
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
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
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
    /// The unit that sent the message, for per-unit status (empty in older records).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unit: String,
}

/// `d`: a finished delivery, kept for sync-status queries until retention removes it.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct DoneRecord {
    pub outcome: DoneOutcome,
    pub at_ms: u64,
    pub attempts: u32,
    /// The failed attempts before the one that succeeded (the message's journey).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<AttemptError>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DoneOutcome {
    Delivered,
    /// Handed to the broker (`transport = "amqp"`), confirmed by it; a worker delivers it.
    /// Becomes `Delivered` when the worker's outcome comes back.
    Forwarded,
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
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unit: String,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_give_back_each_record() {
        let records = vec![b"{\"a\":1}".to_vec(), Vec::new(), b"[2]".to_vec()];
        let chunk = encode_chunk(&records);
        assert_eq!(chunk_len(&chunk), 3);
        for (i, r) in records.iter().enumerate() {
            assert_eq!(chunk_entry(&chunk, i).unwrap(), r.as_slice());
        }
        assert!(chunk_entry(&chunk, 3).is_err());
        assert!(chunk_entry(&chunk[..10], 2).is_err());
    }
}
