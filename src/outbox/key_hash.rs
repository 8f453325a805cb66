//! The hash that stands for a (unit, ordering key) pair in the scheduler and on disk.
//!
//! Ordering, blocking (`on_dead = "block"`) and the cluster's parked dossiers all compare
//! keys by this hash, never by the key itself, so a collision makes two dossiers one: one
//! unit could craft a `MaHoSo` whose hash equals another unit's dossier, let it die and
//! stall that dossier. The hash was FNV-1a (64 bits) until layout version 2: not keyed, and
//! collisions between two units' keys can be found in about a minute on one core (the
//! test `tests/it/outbox_layout.rs` carries one). It is now SHA-256 truncated to 128 bits,
//! where finding a collision is out of reach.
//!
//! An outbox written before version 2 holds FNV values in its pending (`q`) and dead
//! (`x`) records; [`rehash_records`] rewrites them once when such a directory is opened,
//! reading each message for its unit and key (a one-time pass, logged with progress).

use super::keys;
use super::records::{self, DeadRecord, MessageRecord, PendingRecord, decode, encode};
use super::store::{Store, StoreError, WriteBatch, for_each_page};
use crate::envelope::MessageId;
use sha2::Digest;

pub use super::records::KeyHash;

/// SHA-256 of `unit \0 key`, truncated to 128 bits. Stable across builds: it is stored.
pub fn key_hash(unit: &str, key: &str) -> KeyHash {
    let mut h = sha2::Sha256::new();
    h.update(unit.as_bytes());
    h.update([0u8]);
    h.update(key.as_bytes());
    let digest = h.finalize();
    u128::from_be_bytes(digest[..16].try_into().expect("16 bytes"))
}

/// The hash of layout versions 0 and 1 (FNV-1a 64 over `unit \0 key`): read only to
/// recognise what older records and older cluster snapshots mean.
pub fn legacy_key_hash(unit: &str, key: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in unit.bytes().chain([0u8]).chain(key.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Rewrite the key hash of every pending and dead record (of any target, configured or
/// not) from the legacy FNV value to [`key_hash`]. A record whose message is gone keeps no
/// hash: nothing of its key can be known, and a delivery without a message dies anyway.
/// Returns how many records were rewritten.
pub fn rehash_records(store: &dyn Store) -> Result<u64, StoreError> {
    const PAGE: usize = 1024;
    let started = std::time::Instant::now();
    let mut messages = MessageReader::default();
    let mut rewritten = 0u64;
    let mut last_report = started;
    for kind in [keys::PENDING, keys::DEAD] {
        for_each_page(store, &[kind], PAGE, |rows| {
            let mut batch = WriteBatch::default();
            for (k, v) in rows {
                let Some(id) = keys::id_suffix(k) else {
                    continue;
                };
                let value = if kind == keys::PENDING {
                    let mut rec = PendingRecord::from_bytes(v)?;
                    if rec.key_hash.is_none() {
                        continue;
                    }
                    rec.key_hash = messages.new_hash(store, id)?;
                    rec.to_bytes()
                } else {
                    let mut rec: DeadRecord = decode(v)?;
                    if rec.key_hash.is_none() {
                        continue;
                    }
                    rec.key_hash = messages.new_hash(store, id)?;
                    encode(&rec)
                };
                batch.put(k.clone(), value);
                rewritten += 1;
            }
            if !batch.is_empty() {
                store.apply(batch)?;
            }
            if last_report.elapsed().as_secs() >= 5 {
                last_report = std::time::Instant::now();
                tracing::info!(
                    rewritten,
                    "outbox: rewriting dossier key hashes (layout version 2)…"
                );
            }
            Ok(())
        })?;
    }
    store.flush()?;
    tracing::info!(
        rewritten,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "outbox: dossier key hashes rewritten once (SHA-256 instead of FNV-1a)"
    );
    Ok(rewritten)
}

/// Reads messages by id, keeping the last chunk: pending records come in id order, so
/// consecutive ones mostly share a chunk of a hundred messages.
#[derive(Default)]
struct MessageReader {
    chunk: Option<(MessageId, bytes::Bytes)>,
}

impl MessageReader {
    fn new_hash(
        &mut self,
        store: &dyn Store,
        id: MessageId,
    ) -> Result<Option<KeyHash>, StoreError> {
        Ok(self
            .record(store, id)?
            .and_then(|m| m.key.map(|key| key_hash(&m.unit, &key))))
    }

    fn record(
        &mut self,
        store: &dyn Store,
        id: MessageId,
    ) -> Result<Option<MessageRecord>, StoreError> {
        let hit = matches!(&self.chunk, Some((first, chunk))
            if first.0.as_u128() <= id.0.as_u128()
                && id.0.as_u128() - first.0.as_u128() < records::chunk_len(chunk) as u128);
        if !hit {
            let Some((key, stored)) =
                store.get_at_or_before(&[keys::MESSAGE], &keys::message(&id))?
            else {
                return Ok(None);
            };
            let Some(first) = keys::id_suffix(&key) else {
                return Ok(None);
            };
            self.chunk = Some((first, records::open_chunk(stored)?));
        }
        let (first, chunk) = self.chunk.as_ref().expect("just read");
        let index = id.0.as_u128().wrapping_sub(first.0.as_u128());
        if index >= records::chunk_len(chunk) as u128 {
            return Ok(None);
        }
        Ok(Some(decode(records::chunk_entry(chunk, index as usize)?)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_sha256_of_unit_and_key_truncated() {
        // sha256("nafosted\0HS-1") starts with these 16 bytes.
        let mut h = sha2::Sha256::new();
        h.update(b"nafosted\0HS-1");
        let d = h.finalize();
        assert_eq!(
            key_hash("nafosted", "HS-1"),
            u128::from_be_bytes(d[..16].try_into().unwrap())
        );
        // The separator keeps (unit, key) pairs apart.
        assert_ne!(key_hash("ab", "c"), key_hash("a", "bc"));
        assert_ne!(key_hash("stameq", "HS-1"), key_hash("nafosted", "HS-1"));
    }
}
