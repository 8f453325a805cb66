//! The storage trait the outbox is written against, with two of its implementations: sled
//! (the store of releases before redb, kept to move an older data directory into
//! `outbox.redb` at the first start; the production store is `redb_store.rs`) and an
//! in-memory one whose `crash` forgets everything not yet flushed (for the model test).

use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage I/O error: {0}")]
    Io(String),
    #[error("storage is full: {0}")]
    Full(String),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Io(io) if is_disk_full(&io) => StoreError::Full(io.to_string()),
            other => StoreError::Io(other.to_string()),
        }
    }
}

fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
        || e.kind() == std::io::ErrorKind::StorageFull
}

/// Key-value pairs from a range scan, in key order.
pub type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// A set of writes applied atomically: all of them or none.
#[derive(Default, Debug, Clone)]
pub struct WriteBatch {
    pub ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl WriteBatch {
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push((key, Some(value)));
    }
    pub fn delete(&mut self, key: Vec<u8>) {
        self.ops.push((key, None));
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// An ordered key-value store with atomic batches and an explicit durability point.
///
/// Nothing written is durable until [`Store::flush`] returns; the outbox acknowledges a
/// sender only after that.
pub trait Store: Send + Sync + 'static {
    /// The value at `key`, shared rather than copied (message chunks are large).
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, StoreError>;
    /// The entry with the greatest key in `floor..=key`, if any.
    fn get_at_or_before(
        &self,
        floor: &[u8],
        key: &[u8],
    ) -> Result<Option<(Vec<u8>, Bytes)>, StoreError>;
    /// Apply every write of the batch atomically (visible at once, recovered all or none).
    fn apply(&self, batch: WriteBatch) -> Result<(), StoreError>;
    /// Make everything applied so far durable.
    fn flush(&self) -> Result<(), StoreError>;
    /// Up to `limit` entries with `start <= key < end`, in key order.
    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Rows, StoreError>;
    /// Bytes the store occupies on disk.
    fn size_on_disk(&self) -> u64;
    /// Give the file's free space back when most of it is free and what is live is small
    /// enough to move in a short pause ([`super::redb_store`]); `None`: nothing done
    /// (a store without such a file does nothing).
    fn reclaim(&self) -> Result<Option<Reclaimed>, StoreError> {
        Ok(None)
    }
}

/// What a compaction gave back ([`Store::reclaim`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reclaimed {
    pub file_before: u64,
    pub file_after: u64,
    /// The bytes of keys and values the records hold.
    pub live_bytes: u64,
    pub took: std::time::Duration,
}

/// The store of releases before redb (one sled tree, so that a batch is atomic across
/// record kinds): read once to migrate an older data directory.
pub struct SledStore {
    db: sled::Db,
}

impl SledStore {
    pub fn open(dir: &Path, cache_mb: u64) -> Result<SledStore, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Io(format!("{}: {e}", dir.display())))?;
        restrict_permissions(dir);
        let db = sled::Config::new()
            .path(dir.join("outbox"))
            .cache_capacity(cache_mb * 1024 * 1024)
            // The writer flushes every batch itself; the background flusher only adds load.
            .flush_every_ms(None)
            .open()?;
        Ok(SledStore { db })
    }
}

#[cfg(unix)]
pub(super) fn restrict_permissions(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    // Owner-only: the outbox holds personal data.
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
}

#[cfg(not(unix))]
pub(super) fn restrict_permissions(_dir: &Path) {}

impl Store for SledStore {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, StoreError> {
        Ok(self.db.get(key)?.map(Bytes::from_owner))
    }

    fn get_at_or_before(
        &self,
        floor: &[u8],
        key: &[u8],
    ) -> Result<Option<(Vec<u8>, Bytes)>, StoreError> {
        match self.db.range(floor..=key).next_back() {
            Some(item) => {
                let (k, v) = item?;
                Ok(Some((k.to_vec(), Bytes::from_owner(v))))
            }
            None => Ok(None),
        }
    }

    fn apply(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut b = sled::Batch::default();
        for (k, v) in batch.ops {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        Ok(self.db.apply_batch(b)?)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Rows, StoreError> {
        let mut out = Vec::new();
        for item in self.db.range(start..end).take(limit) {
            let (k, v) = item?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

/// An in-memory store that models durability: `crash` drops every write applied since the
/// last flush. It can also be told to fail, to model a full disk.
#[derive(Default)]
pub struct MemStore {
    inner: Mutex<MemInner>,
}

#[derive(Default)]
struct MemInner {
    live: BTreeMap<Vec<u8>, Vec<u8>>,
    durable: BTreeMap<Vec<u8>, Vec<u8>>,
    fail_flush: bool,
    frozen: bool,
}

impl MemStore {
    /// Forget everything not flushed, as a kill -9 would.
    pub fn crash(&self) {
        let mut g = self.inner.lock().unwrap();
        g.live = g.durable.clone();
    }

    /// While frozen, writes are silently lost: the process they come from is dead.
    pub fn set_frozen(&self, frozen: bool) {
        self.inner.lock().unwrap().frozen = frozen;
    }

    /// Make every following flush fail as on a full disk.
    pub fn set_disk_full(&self, full: bool) {
        self.inner.lock().unwrap().fail_flush = full;
    }

    /// Number of durable keys starting with `prefix`.
    pub fn durable_count(&self, prefix: &[u8]) -> usize {
        let g = self.inner.lock().unwrap();
        g.durable.keys().filter(|k| k.starts_with(prefix)).count()
    }
}

impl Store for MemStore {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, StoreError> {
        Ok(self
            .inner
            .lock()
            .unwrap()
            .live
            .get(key)
            .cloned()
            .map(Bytes::from))
    }

    fn get_at_or_before(
        &self,
        floor: &[u8],
        key: &[u8],
    ) -> Result<Option<(Vec<u8>, Bytes)>, StoreError> {
        let g = self.inner.lock().unwrap();
        Ok(g.live
            .range(floor.to_vec()..=key.to_vec())
            .next_back()
            .map(|(k, v)| (k.clone(), Bytes::from(v.clone()))))
    }

    fn apply(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut g = self.inner.lock().unwrap();
        if g.frozen {
            return Ok(());
        }
        for (k, v) in batch.ops {
            match v {
                Some(v) => g.live.insert(k, v),
                None => g.live.remove(&k),
            };
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        let mut g = self.inner.lock().unwrap();
        if g.fail_flush {
            return Err(StoreError::Full(
                "no space left on device (simulated)".into(),
            ));
        }
        g.durable = g.live.clone();
        Ok(())
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Rows, StoreError> {
        let g = self.inner.lock().unwrap();
        Ok(g.live
            .range(start.to_vec()..end.to_vec())
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn size_on_disk(&self) -> u64 {
        let g = self.inner.lock().unwrap();
        g.durable
            .iter()
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum()
    }
}

impl<S: Store> Store for std::sync::Arc<S> {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, StoreError> {
        (**self).get(key)
    }
    fn get_at_or_before(
        &self,
        floor: &[u8],
        key: &[u8],
    ) -> Result<Option<(Vec<u8>, Bytes)>, StoreError> {
        (**self).get_at_or_before(floor, key)
    }
    fn apply(&self, batch: WriteBatch) -> Result<(), StoreError> {
        (**self).apply(batch)
    }
    fn flush(&self) -> Result<(), StoreError> {
        (**self).flush()
    }
    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Rows, StoreError> {
        (**self).scan(start, end, limit)
    }
    fn size_on_disk(&self) -> u64 {
        (**self).size_on_disk()
    }
    fn reclaim(&self) -> Result<Option<Reclaimed>, StoreError> {
        (**self).reclaim()
    }
}

/// Every record under `prefix`, in key order, handed to `f` a page at a time so memory
/// stays flat however many there are. `f` may write to the store: the walk goes on after
/// the last key of each page.
pub fn for_each_page(
    store: &dyn Store,
    prefix: &[u8],
    page: usize,
    mut f: impl FnMut(&[(Vec<u8>, Vec<u8>)]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let end = super::keys::prefix_end(prefix);
    let mut start = prefix.to_vec();
    loop {
        let rows = store.scan(&start, &end, page)?;
        let Some((last, _)) = rows.last() else {
            return Ok(());
        };
        start = last.clone();
        start.push(0);
        f(&rows)?;
        if rows.len() < page {
            return Ok(());
        }
    }
}
