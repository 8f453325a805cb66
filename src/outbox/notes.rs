//! Notes: small durable facts kept beside the queue by other parts of the bus (which unit
//! a payment reference belongs to, who dropped a dead letter and why), and their retention.
//!
//! A note is written straight to the store and flushed: notes are few, and must survive a
//! crash like the messages they go with. Each note has an expiry index entry (`e`
//! first-written-ms name) next to it, so the sweep removes notes older than
//! `outbox.note_retention` by reading only the expired index entries, never the notes
//! that stay. A note keeps the time it was first written: rewriting it does not extend its
//! life, so nothing a sender repeats can keep a note alive forever. Notes written before
//! layout version 2 get their index entry once, when such a directory is opened
//! ([`index_unindexed`]).

use super::keys;
use super::store::{Store, StoreError, WriteBatch, for_each_page};
use super::{Outbox, OutboxSettings};

/// Expired notes removed per step of a sweep.
const NOTES_PER_STEP: usize = 10_000;

/// Small durable facts kept beside the queue by other parts of the bus.
pub trait Notes: Send + Sync {
    fn put_note(&self, name: &str, value: &[u8]) -> Result<(), StoreError>;
    fn get_note(&self, name: &str) -> Result<Option<bytes::Bytes>, StoreError>;

    /// Several notes at once: one durable write where the store allows it (the portal
    /// connector keeps a row per dossier of a merged call).
    fn put_notes(&self, notes: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        notes
            .iter()
            .try_for_each(|(name, value)| self.put_note(name, value))
    }

    /// Note `value` under `name` unless the note already holds another value (first come,
    /// first served: a payment reference belongs to the unit that first used it).
    /// `Ok(None)`: noted, or already this value; `Ok(Some(other))`: taken.
    fn claim_note(&self, name: &str, value: &[u8]) -> Result<Option<bytes::Bytes>, StoreError> {
        match self.get_note(name)? {
            Some(existing) if existing.as_ref() != value => Ok(Some(existing)),
            Some(_) => Ok(None),
            None => self.put_note(name, value).map(|()| None),
        }
    }
}

impl Notes for Outbox {
    fn put_note(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        let _one_at_a_time = self.inner.notes_lock.lock().unwrap();
        let store = self.inner.store.as_ref();
        let new = store.get(&keys::note(name))?.is_none();
        write(store, name, value, new)
    }

    /// Atomic on this node: the check and the write happen under one lock.
    fn claim_note(&self, name: &str, value: &[u8]) -> Result<Option<bytes::Bytes>, StoreError> {
        let _one_at_a_time = self.inner.notes_lock.lock().unwrap();
        let store = self.inner.store.as_ref();
        match store.get(&keys::note(name))? {
            Some(existing) if existing.as_ref() != value => Ok(Some(existing)),
            Some(_) => Ok(None),
            None => write(store, name, value, true).map(|()| None),
        }
    }

    fn get_note(&self, name: &str) -> Result<Option<bytes::Bytes>, StoreError> {
        self.inner.store.get(&keys::note(name))
    }

    /// One batch, one commit, for all of `notes`.
    fn put_notes(&self, notes: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        let _one_at_a_time = self.inner.notes_lock.lock().unwrap();
        let store = self.inner.store.as_ref();
        let mut batch = WriteBatch::default();
        let now = crate::time::now_ms();
        for (name, value) in notes {
            if store.get(&keys::note(name))?.is_none() {
                batch.put(keys::note_expiry(now, name), Vec::new());
            }
            batch.put(keys::note(name), value.clone());
        }
        if batch.is_empty() {
            return Ok(());
        }
        store.apply(batch)?;
        store.flush()
    }
}

/// Write a note (with its expiry index entry when it is `new`) and flush.
fn write(store: &dyn Store, name: &str, value: &[u8], new: bool) -> Result<(), StoreError> {
    let mut batch = WriteBatch::default();
    batch.put(keys::note(name), value.to_vec());
    if new {
        batch.put(keys::note_expiry(crate::time::now_ms(), name), Vec::new());
    }
    store.apply(batch)?;
    store.flush()
}

impl Outbox {
    /// Notes whose name starts with `prefix`, in name order (at most `limit`).
    pub fn notes_with_prefix(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let start = keys::note(prefix);
        let mut end = start.clone();
        end.push(0xff);
        let rows = self.inner.store.scan(&start, &end, limit)?;
        Ok(rows
            .into_iter()
            .map(|(k, v)| (String::from_utf8_lossy(&k[1..]).into_owned(), v))
            .collect())
    }

    /// Notes whose name starts with `prefix` and sorts after `after` (from the first with
    /// None), in name order, at most `limit`: a periodic task pages through its notes a
    /// bounded step at a time.
    pub fn notes_after(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut start = keys::note(after.unwrap_or(prefix));
        if after.is_some() {
            start.push(0);
        }
        let mut end = keys::note(prefix);
        end.push(0xff);
        let rows = self.inner.store.scan(&start, &end, limit)?;
        Ok(rows
            .into_iter()
            .map(|(k, v)| (String::from_utf8_lossy(&k[1..]).into_owned(), v))
            .collect())
    }

    /// Remove a note before its retention ends (its expiry index entry stays, and removes
    /// nothing when its time comes).
    pub fn remove_note(&self, name: &str) -> Result<(), StoreError> {
        let _one_at_a_time = self.inner.notes_lock.lock().unwrap();
        let store = self.inner.store.as_ref();
        let mut batch = WriteBatch::default();
        batch.delete(keys::note(name));
        store.apply(batch)?;
        store.flush()
    }

    /// One step of note expiry: up to [`NOTES_PER_STEP`] notes first written before
    /// `now_ms - note_retention` removed with their index entries, under the notes lock so
    /// that no note is written between the look and the removal. Returns how many were
    /// removed and whether more may be left.
    pub(super) fn expire_notes_step(&self, now_ms: u64) -> Result<(u64, bool), StoreError> {
        let _one_at_a_time = self.inner.notes_lock.lock().unwrap();
        let store = self.inner.store.as_ref();
        let (batch, removed, more) = expiry_step(store, &self.inner.settings, now_ms)?;
        if !batch.is_empty() {
            store.apply(batch)?;
            store.flush()?;
        }
        Ok((removed, more))
    }
}

fn expiry_step(
    store: &dyn Store,
    settings: &OutboxSettings,
    now_ms: u64,
) -> Result<(WriteBatch, u64, bool), StoreError> {
    let cutoff = now_ms.saturating_sub(settings.note_retention.as_millis() as u64);
    let start = [keys::NOTE_EXPIRY];
    let mut end = start.to_vec();
    end.extend_from_slice(&cutoff.to_be_bytes());
    let rows = store.scan(&start, &end, NOTES_PER_STEP)?;
    let more = rows.len() == NOTES_PER_STEP;
    let mut batch = WriteBatch::default();
    let mut removed = 0;
    for (k, _) in rows {
        if let Some(name) = k.get(9..) {
            let mut note = vec![keys::NOTE];
            note.extend_from_slice(name);
            batch.delete(note);
            removed += 1;
        }
        batch.delete(k);
    }
    Ok((batch, removed, more))
}

/// Give every note without an expiry index entry (written before layout version 2) one
/// dated `now_ms`: its retention starts at the upgrade. A one-time pass when such a
/// directory is opened.
pub(super) fn index_unindexed(store: &dyn Store, now_ms: u64) -> Result<u64, StoreError> {
    let mut indexed = 0;
    for_each_page(store, &[keys::NOTE], 1024, |rows| {
        let mut batch = WriteBatch::default();
        for (k, _) in rows {
            let name = String::from_utf8_lossy(&k[1..]);
            batch.put(keys::note_expiry(now_ms, &name), Vec::new());
            indexed += 1;
        }
        store.apply(batch)
    })?;
    store.flush()?;
    Ok(indexed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::MemStore;
    use std::sync::Arc;
    use std::time::Duration;

    fn outbox(retention: Duration) -> Outbox {
        let settings = OutboxSettings {
            max_pending: 100,
            max_pending_bytes: 1 << 20,
            retention: Duration::from_secs(3600),
            idempotency_ttl: Duration::from_secs(3600),
            note_retention: retention,
            window: 16,
        };
        Outbox::open(Arc::new(MemStore::default()), settings, &["t".to_string()]).unwrap()
    }

    #[tokio::test]
    async fn notes_go_after_their_retention_counted_from_the_first_write() {
        let day = 24 * 3600 * 1000;
        let outbox = outbox(Duration::from_millis(day));
        outbox.put_note("payment-ref/A", b"naf").unwrap();
        assert_eq!(outbox.claim_note("payment-ref/B", b"ipo").unwrap(), None);
        let now = crate::time::now_ms();
        // Rewriting A does not make it younger.
        outbox.put_note("payment-ref/A", b"naf").unwrap();
        assert_eq!(outbox.expire_notes_step(now).unwrap(), (0, false));
        assert!(outbox.get_note("payment-ref/A").unwrap().is_some());
        assert_eq!(
            outbox.expire_notes_step(now + day + 1000).unwrap(),
            (2, false)
        );
        assert!(outbox.get_note("payment-ref/A").unwrap().is_none());
        assert!(outbox.get_note("payment-ref/B").unwrap().is_none());
        // Nothing is left of them, index entries included.
        let store = &outbox.inner.store;
        let left = store
            .scan(
                &[keys::NOTE_EXPIRY],
                &keys::prefix_end(&[keys::NOTE_EXPIRY]),
                10,
            )
            .unwrap();
        assert!(left.is_empty());
        // A note written again after it expired is a new note, with a new life.
        outbox.put_note("payment-ref/A", b"naf").unwrap();
        assert_eq!(
            outbox.expire_notes_step(crate::time::now_ms()).unwrap(),
            (0, false)
        );
        assert!(outbox.get_note("payment-ref/A").unwrap().is_some());
    }

    #[test]
    fn notes_of_an_earlier_layout_get_an_index_entry_once() {
        let store = MemStore::default();
        let mut batch = WriteBatch::default();
        batch.put(keys::note("payment-ref/OLD"), b"naf".to_vec());
        store.apply(batch).unwrap();
        assert_eq!(index_unindexed(&store, 1_000).unwrap(), 1);
        let settings = OutboxSettings {
            max_pending: 1,
            max_pending_bytes: 1,
            retention: Duration::ZERO,
            idempotency_ttl: Duration::ZERO,
            note_retention: Duration::from_millis(500),
            window: 16,
        };
        let (batch, removed, _) = expiry_step(&store, &settings, 1_400).unwrap();
        assert_eq!((batch.is_empty(), removed), (true, 0));
        let (batch, removed, _) = expiry_step(&store, &settings, 1_600).unwrap();
        assert_eq!(removed, 1);
        store.apply(batch).unwrap();
        assert!(store.get(&keys::note("payment-ref/OLD")).unwrap().is_none());
    }
}
