//! The records the outbox stores, one per key kind (see [`super::keys`]). JSON-encoded:
//! small, readable with any key-value dump tool, and tolerant of added fields — except
//! the pending and finished deliveries, of which an outage keeps millions (one per
//! message and target): they have binary forms of their own ([`pending`], [`done`]).

use super::store::StoreError;
use crate::envelope::MessageId;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

mod done;
mod pending;
mod varint;
pub use done::DoneRecord;
pub(crate) use done::has_errors as done_has_errors;
pub use pending::PendingRecord;

/// Whether a stored delivery record carries attempt errors: a binary one (first byte
/// `binary`) says so in its flags byte (`errors` bit), a JSON one of an earlier version
/// has an `"errors"` field.
fn flags_errors(plain: &[u8], binary: u8, errors: u8) -> bool {
    if plain.first() == Some(&binary) {
        return plain.get(1).is_some_and(|f| f & errors != 0);
    }
    let field = b"\"errors\"";
    plain.windows(field.len()).any(|w| w == field)
}
pub(crate) use pending::has_errors as pending_has_errors;

/// A (unit, ordering key) pair as the scheduler sees it (its hash is in key_hash.rs).
pub type KeyHash = u128;

/// A message chunk (`m` record): the messages of one request, whose ids are consecutive
/// from the chunk key's id. One store record per request instead of one per message is
/// what lets batched ingest keep up (the per-insert cost dominates the writer).
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

/// Marks a compressed chunk. As a plain chunk's first four bytes it would be a count of
/// about 22.7 million messages, which no request can carry.
const COMPRESSED: [u8; 4] = [0xE7, b'L', b'Z', 0x01];
/// Largest chunk a compressed record may claim to hold (a request is at most
/// `server.max_body_bytes`, 16 MiB even in the bench).
const MAX_CHUNK_BYTES: usize = 256 * 1024 * 1024;

/// A chunk as stored: LZ4-compressed behind [`COMPRESSED`] (the events of one request
/// share their field names and most values).
pub fn compress_chunk(chunk: &[u8]) -> Vec<u8> {
    let packed = lz4_flex::compress_prepend_size(chunk);
    let mut out = Vec::with_capacity(COMPRESSED.len() + packed.len());
    out.extend_from_slice(&COMPRESSED);
    out.extend_from_slice(&packed);
    out
}

/// A stored chunk made readable by [`chunk_entry`]: decompressed if it was compressed
/// (chunks written before compression are read as they are).
pub fn open_chunk(stored: bytes::Bytes) -> Result<bytes::Bytes, StoreError> {
    let Some(packed) = stored.strip_prefix(&COMPRESSED) else {
        return Ok(stored);
    };
    let claimed = packed
        .get(..4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .ok_or_else(|| StoreError::Corrupt("compressed chunk is truncated".into()))?;
    if claimed > MAX_CHUNK_BYTES {
        return Err(StoreError::Corrupt(format!(
            "compressed chunk claims {claimed} bytes"
        )));
    }
    lz4_flex::decompress_size_prepended(packed)
        .map(bytes::Bytes::from)
        .map_err(|e| StoreError::Corrupt(format!("compressed chunk: {e}")))
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

/// Add an attempt's error to a delivery's history: the first error (often the telling
/// one) and the most recent ones are kept, at most [`MAX_KEPT_ERRORS`]. The single node's
/// outbox and the cluster's workers keep the same history with it.
pub fn push_error(errors: &mut Vec<AttemptError>, e: AttemptError) {
    if errors.len() >= MAX_KEPT_ERRORS {
        errors.remove(1);
    }
    errors.push(e);
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
    pub key_hash: Option<KeyHash>,
    pub block_on_dead: bool,
    pub attempts: u32,
    pub payload_len: u32,
    pub reason: String,
    pub dead_at_ms: u64,
    pub errors: Vec<AttemptError>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tally: Option<u128>,
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
    /// Layout version: 0 (absent) before the per-unit counts below existed; the outbox
    /// counts them once when it opens such a directory. 1 before dossier keys were hashed
    /// with SHA-256 ([`super::key_hash`]); their hashes are rewritten once. 2 before the
    /// KPI totals counted results on their own days ([`super::tally::relayout`]).
    #[serde(default)]
    pub version: u32,
    /// Pending and dead deliveries per target and unit, so that status views never
    /// count records.
    #[serde(default)]
    pub by_unit: UnitCounts,
}

/// The layout [`Meta::version`] this build writes.
pub const META_VERSION: u32 = 3;

/// target → unit → (pending, dead).
pub type UnitCounts =
    std::collections::BTreeMap<String, std::collections::BTreeMap<String, (u64, u64)>>;

/// Change the (pending, dead) count of `unit` at `target`.
pub fn count_unit(counts: &mut UnitCounts, target: &str, unit: &str, pending: i64, dead: i64) {
    let entry = counts
        .entry(target.to_string())
        .or_default()
        .entry(unit.to_string())
        .or_default();
    entry.0 = entry.0.saturating_add_signed(pending);
    entry.1 = entry.1.saturating_add_signed(dead);
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

    #[test]
    fn compressed_chunks_open_to_the_same_bytes_and_plain_ones_stay_readable() {
        let records: Vec<Vec<u8>> = (0..100)
            .map(|i| {
                format!("{{\"dossierCode\":\"NAFOSTED-{i:06}\",\"status\":\"under_review\"}}")
                    .into_bytes()
            })
            .collect();
        let chunk = encode_chunk(&records);
        let stored = compress_chunk(&chunk);
        assert!(
            stored.len() * 3 < chunk.len(),
            "{} of {}",
            stored.len(),
            chunk.len()
        );
        let opened = open_chunk(bytes::Bytes::from(stored.clone())).unwrap();
        assert_eq!(&opened[..], &chunk[..]);
        assert_eq!(chunk_entry(&opened, 42).unwrap(), records[42].as_slice());
        let plain = open_chunk(bytes::Bytes::from(chunk.clone())).unwrap();
        assert_eq!(&plain[..], &chunk[..]);
        // A damaged record is an error, not a panic or a huge allocation.
        let mut bad = stored.clone();
        bad[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(open_chunk(bytes::Bytes::from(bad)).is_err());
        assert!(open_chunk(bytes::Bytes::from(stored[..20].to_vec())).is_err());
    }
}
