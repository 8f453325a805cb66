//! The production store: one redb table in `<data dir>/outbox.redb`, and the one-time
//! move of an outbox written by earlier versions (a sled directory, `<data dir>/outbox/`).
//!
//! # Why redb and not sled
//! Measured on the 2-core machine with the bench's own traffic (`lienthong bench
//! --scenario pending`, 1,000,000 sealed events of ≈ 632 B): sled 0.34 grew to 3.8 GiB of
//! resident memory while filling and 1.1 GiB within 3 s of a restart, whatever
//! `cache_capacity` said (its page cache keeps the nodes every write materialises), and
//! its log grew to 2.7 GiB on disk. redb keeps its cache to the configured size (the
//! whole bus stays well under 200 MB) and a copy-on-write B-tree in one file whose free
//! pages are reused. Figures in the README's performance table.
//!
//! # Giving space back
//! A copy-on-write file grows to what the outbox once held and keeps its free pages for
//! reuse: after a week-long outage is drained and its records pass retention, most of
//! the file is free. The store keeps a running total of the bytes its records hold (the
//! size of every value inserted, less every value removed or replaced, as redb hands
//! them back; saved in a table of its own at most once a second, so a crash costs the
//! estimate a second of traffic), and [`RedbStore::reclaim`] compacts the file — moves
//! the pages in use to its start and cuts the rest — when at least
//! [`RECLAIM_FREE_FACTOR`] times what is live is free and what must move is small enough
//! for a short pause ([`RECLAIM_MAX_LIVE`]); the retention sweep asks after removing
//! records. Compaction needs the file to itself: every read and write waits on a lock
//! for its duration. Larger files are compacted offline (`lienthong outbox compact`).
//!
//! # Durability
//! Each [`Store::apply`] is one durable redb commit (fsync), all of the batch or none of
//! it; [`Store::flush`] has nothing left to do. The outbox's writer folds everything
//! waiting into one batch, so this is still one fsync per group commit; a second, empty
//! commit per batch only doubled the copy-on-write page churn. Commits save the allocator
//! state (quick-repair), so that reopening after a crash does not walk the whole file.

use super::store::{Reclaimed, Rows, SledStore, Store, StoreError, WriteBatch};
use bytes::Bytes;
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("outbox");
/// The store's own figures (the running total of live bytes), apart from the records.
const STATS: TableDefinition<&str, u64> = TableDefinition::new("store-stats");
const LIVE_BYTES: &str = "live-bytes";
/// How often the running total is saved (in a commit that happens anyway).
const SAVE_LIVE_EVERY: Duration = Duration::from_secs(1);

/// Compact when the file is larger than this many times the live bytes, plus
/// [`RECLAIM_SLACK`]: a B-tree's pages hold about twice the bytes of their records, so
/// a file at three times them has a third or more free.
pub const RECLAIM_FREE_FACTOR: u64 = 3;
/// Files within this of their live bytes are never compacted: not worth a pause.
pub const RECLAIM_SLACK: u64 = 64 << 20;
/// Most live bytes compacted while the bus runs (the pause grows with them).
pub const RECLAIM_MAX_LIVE: u64 = 256 << 20;

/// The file of the outbox inside the data directory.
pub const FILE_NAME: &str = "outbox.redb";
/// Where the sled outbox of earlier versions lives, and where it goes once moved.
const SLED_DIR: &str = "outbox";
const SLED_MOVED: &str = "outbox.sled-migrated";

fn err(e: impl std::fmt::Display) -> StoreError {
    let text = e.to_string();
    if text.contains("No space left") || text.contains("Disk quota") {
        StoreError::Full(text)
    } else {
        StoreError::Io(text)
    }
}

pub struct RedbStore {
    /// Read for every operation; written only to compact ([`RedbStore::reclaim`]).
    db: RwLock<Database>,
    path: PathBuf,
    /// Bytes of keys and values the records hold (a running total).
    live: AtomicI64,
    /// When the running total was last saved (ms since `opened`).
    live_saved_ms: AtomicU64,
    opened: Instant,
}

impl RedbStore {
    /// Open (or create) the outbox of `dir`, moving a sled outbox of an earlier version
    /// into it first. `cache_mb` bounds redb's page cache.
    pub fn open(dir: &Path, cache_mb: u64) -> Result<RedbStore, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Io(format!("{}: {e}", dir.display())))?;
        super::store::restrict_permissions(dir);
        let path = dir.join(FILE_NAME);
        let sled_dir = dir.join(SLED_DIR);
        if !path.exists() && sled_dir.join("conf").exists() {
            migrate_from_sled(dir, cache_mb)?;
        }
        Self::open_file(&path, cache_mb)
    }

    fn open_file(path: &Path, cache_mb: u64) -> Result<RedbStore, StoreError> {
        let db = Database::builder()
            .set_cache_size((cache_mb.max(1) * 1024 * 1024) as usize)
            .create(path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Io(format!(
                    "{} is open in another process (only one bus may use a data directory)",
                    path.display()
                )),
                other => err(format!("{}: {other}", path.display())),
            })?;
        // The tables exist from the start, so that readers never find them missing.
        let mut tx = db.begin_write().map_err(err)?;
        tx.set_quick_repair(true);
        let saved = {
            tx.open_table(TABLE).map_err(err)?;
            let stats = tx.open_table(STATS).map_err(err)?;
            stats.get(LIVE_BYTES).map_err(err)?.map(|v| v.value())
        };
        let live = match saved {
            Some(live) => live,
            None => {
                // A file of an earlier version: its records are counted once.
                let counted = count_live_bytes(&tx)?;
                tx.open_table(STATS)
                    .map_err(err)?
                    .insert(LIVE_BYTES, counted)
                    .map_err(err)?;
                counted
            }
        };
        tx.commit().map_err(err)?;
        Ok(RedbStore {
            db: RwLock::new(db),
            path: path.to_path_buf(),
            live: AtomicI64::new(live as i64),
            live_saved_ms: AtomicU64::new(0),
            opened: Instant::now(),
        })
    }

    fn db(&self) -> RwLockReadGuard<'_, Database> {
        self.db.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes of keys and values the records hold (the running total).
    pub fn live_bytes(&self) -> u64 {
        self.live.load(Ordering::Relaxed).max(0) as u64
    }

    /// Replace the running total of live bytes with a recount (`lienthong outbox check
    /// --repair`: a crash loses up to a second of changes to it).
    pub fn set_live_bytes(&self, bytes: u64) -> Result<(), StoreError> {
        let db = self.db();
        let tx = db.begin_write().map_err(err)?;
        tx.open_table(STATS)
            .map_err(err)?
            .insert(LIVE_BYTES, bytes)
            .map_err(err)?;
        tx.commit().map_err(err)?;
        self.live.store(bytes as i64, Ordering::Relaxed);
        Ok(())
    }

    /// Compact the file when it is over [`RECLAIM_FREE_FACTOR`] times the live bytes plus
    /// `slack`, and what is live is at most `max_live` bytes (see the module docs); `None`
    /// when it is not worth it.
    pub fn reclaim_up_to(
        &self,
        max_live: u64,
        slack: u64,
    ) -> Result<Option<Reclaimed>, StoreError> {
        let file_before = self.size_on_disk();
        let live_bytes = self.live_bytes();
        if file_before <= RECLAIM_FREE_FACTOR * live_bytes + slack || live_bytes > max_live {
            return Ok(None);
        }
        let started = Instant::now();
        {
            let mut db = self.db.write().unwrap_or_else(|e| e.into_inner());
            // compact() runs until nothing more moves.
            db.compact().map_err(err)?;
        }
        Ok(Some(Reclaimed {
            file_before,
            file_after: self.size_on_disk(),
            live_bytes,
            took: started.elapsed(),
        }))
    }

    fn commit(&self, batch: WriteBatch, durability: Durability) -> Result<(), StoreError> {
        let db = self.db();
        let mut tx = db.begin_write().map_err(err)?;
        tx.set_quick_repair(true);
        tx.set_durability(durability).map_err(err)?;
        let mut delta = 0i64;
        {
            let mut table = tx.open_table(TABLE).map_err(err)?;
            for (k, v) in &batch.ops {
                let old = match v {
                    Some(v) => {
                        delta += (k.len() + v.len()) as i64;
                        table.insert(k.as_slice(), v.as_slice()).map_err(err)?
                    }
                    None => table.remove(k.as_slice()).map_err(err)?,
                };
                if let Some(old) = old {
                    delta -= (k.len() + old.value().len()) as i64;
                }
            }
        }
        let live = self.live.load(Ordering::Relaxed) + delta;
        let now_ms = self.opened.elapsed().as_millis() as u64;
        let saved_ms = self.live_saved_ms.load(Ordering::Relaxed);
        let save = now_ms >= saved_ms + SAVE_LIVE_EVERY.as_millis() as u64;
        if save {
            tx.open_table(STATS)
                .map_err(err)?
                .insert(LIVE_BYTES, live.max(0) as u64)
                .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        // One writer at a time (redb's write transaction), so no update is lost.
        self.live.fetch_add(delta, Ordering::Relaxed);
        if save {
            self.live_saved_ms.store(now_ms, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Number of records (for the migration's report).
    pub fn len(&self) -> Result<u64, StoreError> {
        let db = self.db();
        let tx = db.begin_read().map_err(err)?;
        let table = tx.open_table(TABLE).map_err(err)?;
        table.len().map_err(err)
    }

    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// How the file's pages are spent, as redb counts them (a write transaction that is
    /// aborted: nothing changes). For `lienthong outbox usage`.
    pub fn file_stats(&self) -> Result<FileStats, StoreError> {
        let db = self.db();
        let tx = db.begin_write().map_err(err)?;
        let stats = tx.stats().map_err(err)?;
        tx.abort().map_err(err)?;
        let page = stats.page_size() as u64;
        Ok(FileStats {
            file_bytes: self.size_on_disk(),
            allocated_bytes: stats.allocated_pages() * page,
            leaf_bytes: stats.leaf_pages() * page,
            branch_bytes: stats.branch_pages() * page,
            stored_bytes: stats.stored_bytes(),
            fragmented_bytes: stats.fragmented_bytes(),
        })
    }
}

/// The outbox file's pages by use ([`RedbStore::file_stats`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct FileStats {
    /// The file's length.
    pub file_bytes: u64,
    /// Pages in use (records, the tree's branches, redb's own tables).
    pub allocated_bytes: u64,
    /// Leaf pages of the records' tree, and the keys and values they hold.
    pub leaf_bytes: u64,
    pub stored_bytes: u64,
    /// Branch pages of the records' tree.
    pub branch_bytes: u64,
    /// Unused space inside pages and free pages, as redb counts it.
    pub fragmented_bytes: u64,
}

impl Drop for RedbStore {
    /// Save the running total, so that a clean stop loses none of it.
    fn drop(&mut self) {
        let live = self.live_bytes();
        let db = self.db.get_mut().unwrap_or_else(|e| e.into_inner());
        let saved = db.begin_write().map_err(err).and_then(|tx| {
            tx.open_table(STATS)
                .map_err(err)?
                .insert(LIVE_BYTES, live)
                .map_err(err)?;
            tx.commit().map_err(err)
        });
        if let Err(e) = saved {
            tracing::warn!(error = %e, "the outbox's byte count was not saved (it is counted again from the next changes)");
        }
    }
}

impl Store for RedbStore {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, StoreError> {
        let db = self.db();
        let tx = db.begin_read().map_err(err)?;
        let table = tx.open_table(TABLE).map_err(err)?;
        Ok(table
            .get(key)
            .map_err(err)?
            .map(|v| Bytes::copy_from_slice(v.value())))
    }

    fn get_at_or_before(
        &self,
        floor: &[u8],
        key: &[u8],
    ) -> Result<Option<(Vec<u8>, Bytes)>, StoreError> {
        let db = self.db();
        let tx = db.begin_read().map_err(err)?;
        let table = tx.open_table(TABLE).map_err(err)?;
        let mut range = table.range(floor..=key).map_err(err)?;
        match range.next_back() {
            Some(item) => {
                let (k, v) = item.map_err(err)?;
                Ok(Some((
                    k.value().to_vec(),
                    Bytes::copy_from_slice(v.value()),
                )))
            }
            None => Ok(None),
        }
    }

    fn apply(&self, batch: WriteBatch) -> Result<(), StoreError> {
        self.commit(batch, Durability::Immediate)
    }

    fn flush(&self) -> Result<(), StoreError> {
        // Every apply is already durable.
        Ok(())
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Rows, StoreError> {
        if start >= end {
            return Ok(Vec::new());
        }
        let db = self.db();
        let tx = db.begin_read().map_err(err)?;
        let table = tx.open_table(TABLE).map_err(err)?;
        let mut out = Vec::new();
        for item in table.range(start..end).map_err(err)?.take(limit) {
            let (k, v) = item.map_err(err)?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn size_on_disk(&self) -> u64 {
        std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
    }

    fn reclaim(&self) -> Result<Option<Reclaimed>, StoreError> {
        self.reclaim_up_to(RECLAIM_MAX_LIVE, RECLAIM_SLACK)
    }
}

/// The bytes of keys and values of every record, read whole: once, for a file written
/// before the running total was kept.
fn count_live_bytes(tx: &redb::WriteTransaction) -> Result<u64, StoreError> {
    let table = tx.open_table(TABLE).map_err(err)?;
    let mut total = 0u64;
    let mut read = 0u64;
    for item in table.iter().map_err(err)? {
        let (k, v) = item.map_err(err)?;
        total += (k.value().len() + v.value().len()) as u64;
        read += 1;
        if read.is_multiple_of(1_000_000) {
            tracing::info!(records = read, "counting the outbox's bytes once");
        }
    }
    Ok(total)
}

/// Copy every record of the sled outbox in `dir` into a new redb file, then move the sled
/// directory aside. Runs once, at the first start of a version that stores in redb.
/// Records are copied as stored (sealed ones stay sealed: the key is the same). A crash
/// midway leaves only `outbox.redb.partial`, removed and redone at the next start.
fn migrate_from_sled(dir: &Path, cache_mb: u64) -> Result<(), StoreError> {
    const PAGE: usize = 10_000;
    let sled_dir = dir.join(SLED_DIR);
    let partial = dir.join(format!("{FILE_NAME}.partial"));
    let _ = std::fs::remove_file(&partial);
    tracing::info!(from = %sled_dir.display(), "moving the outbox of an earlier version (sled) to redb");
    let old = SledStore::open(dir, cache_mb)?;
    let new = RedbStore::open_file(&partial, cache_mb)?;
    let mut start: Vec<u8> = Vec::new();
    let end = vec![0xff; 16];
    let mut copied = 0u64;
    loop {
        let rows = old.scan(&start, &end, PAGE)?;
        let Some((last, _)) = rows.last() else { break };
        start = last.clone();
        start.push(0);
        let n = rows.len();
        let mut batch = WriteBatch::default();
        for (k, v) in rows {
            batch.put(k, v);
        }
        new.apply(batch)?;
        copied += n as u64;
        if copied.is_multiple_of(100_000) {
            tracing::info!(records = copied, "moving the outbox");
        }
        if n < PAGE {
            break;
        }
    }
    new.flush()?;
    drop(new);
    drop(old);
    std::fs::rename(&partial, dir.join(FILE_NAME))
        .map_err(|e| StoreError::Io(format!("{}: {e}", partial.display())))?;
    let moved = dir.join(SLED_MOVED);
    std::fs::rename(&sled_dir, &moved)
        .map_err(|e| StoreError::Io(format!("{}: {e}", sled_dir.display())))?;
    tracing::warn!(
        records = copied,
        kept = %moved.display(),
        "outbox moved to redb; the old sled files are kept: delete that directory once the bus runs well"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes of keys and values of every record, counted now.
    fn recount(s: &RedbStore) -> u64 {
        s.scan(b"", &[0xff; 8], usize::MAX)
            .unwrap()
            .iter()
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum()
    }

    #[test]
    fn the_live_bytes_follow_every_change_and_outlive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(dir.path(), 4).unwrap();
        let mut b = WriteBatch::default();
        for i in 0..100u32 {
            b.put(i.to_be_bytes().to_vec(), vec![7; 10 + i as usize]);
        }
        s.apply(b).unwrap();
        let mut b = WriteBatch::default();
        b.put(5u32.to_be_bytes().to_vec(), vec![1; 500]); // replaced, longer
        b.put(6u32.to_be_bytes().to_vec(), vec![1; 2]); // replaced, shorter
        b.delete(7u32.to_be_bytes().to_vec());
        b.delete(1000u32.to_be_bytes().to_vec()); // absent: changes nothing
        s.apply(b).unwrap();
        assert_eq!(s.live_bytes(), recount(&s));
        let before = s.live_bytes();
        drop(s);
        let s = RedbStore::open(dir.path(), 4).unwrap();
        assert_eq!(s.live_bytes(), before);
        assert_eq!(recount(&s), before);
    }

    #[test]
    fn a_file_mostly_freed_is_compacted_and_keeps_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(dir.path(), 4).unwrap();
        for batch in 0..40u32 {
            let mut b = WriteBatch::default();
            for i in 0..500u32 {
                b.put(
                    [batch.to_be_bytes(), i.to_be_bytes()].concat(),
                    vec![batch as u8; 1000],
                );
            }
            s.apply(b).unwrap();
        }
        let full = s.size_on_disk();
        assert!(full > 20 << 20, "{full}");
        // Not worth it while the records fill the file.
        assert_eq!(s.reclaim_up_to(u64::MAX, 0).unwrap(), None);
        // Remove all but one batch in twenty (a drained outage past retention).
        for batch in 0..40u32 {
            if batch % 20 == 0 {
                continue;
            }
            let mut b = WriteBatch::default();
            for i in 0..500u32 {
                b.delete([batch.to_be_bytes(), i.to_be_bytes()].concat());
            }
            s.apply(b).unwrap();
        }
        // Too much to move while running: nothing done.
        assert_eq!(s.reclaim_up_to(1000, 0).unwrap(), None);
        let r = s.reclaim_up_to(u64::MAX, 0).unwrap().expect("compacted");
        assert_eq!(r.file_before, full);
        assert!(r.file_after * 4 < full, "{} of {full}", r.file_after);
        assert_eq!(s.size_on_disk(), r.file_after);
        let left = s.scan(b"", &[0xff; 9], usize::MAX).unwrap();
        assert_eq!(left.len(), 1000);
        assert!(left.iter().all(|(k, v)| v.len() == 1000 && v[0] == k[3]));
        assert_eq!(s.live_bytes(), recount(&s));
        // Written to after, and opened again: all there.
        let mut b = WriteBatch::default();
        b.put(b"after".to_vec(), b"compaction".to_vec());
        s.apply(b).unwrap();
        drop(s);
        let s = RedbStore::open(dir.path(), 4).unwrap();
        assert_eq!(s.scan(b"", &[0xff; 9], usize::MAX).unwrap().len(), 1001);
    }

    #[test]
    fn applied_writes_are_visible_and_ranges_come_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(dir.path(), 4).unwrap();
        let mut b = WriteBatch::default();
        for k in [
            b"b2".to_vec(),
            b"a1".to_vec(),
            b"b1".to_vec(),
            b"c".to_vec(),
        ] {
            b.put(k.clone(), k);
        }
        s.apply(b).unwrap();
        let rows = s.scan(b"b", b"c", 10).unwrap();
        let keys: Vec<&[u8]> = rows.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(keys, [b"b1".as_slice(), b"b2".as_slice()]);
        let (k, v) = s.get_at_or_before(b"a", b"b15").unwrap().unwrap();
        assert_eq!((k.as_slice(), &v[..]), (b"b1".as_slice(), b"b1".as_slice()));
        let mut d = WriteBatch::default();
        d.delete(b"b1".to_vec());
        s.apply(d).unwrap();
        s.flush().unwrap();
        assert!(s.get(b"b1").unwrap().is_none());
        assert_eq!(s.scan(b"z", b"a", 10).unwrap().len(), 0);
    }

    #[test]
    fn a_sled_outbox_is_moved_whole_and_only_once() {
        let dir = tempfile::tempdir().unwrap();
        {
            let old = SledStore::open(dir.path(), 4).unwrap();
            let mut b = WriteBatch::default();
            for i in 0..25_000u32 {
                b.put(format!("q{i:08}").into_bytes(), i.to_le_bytes().to_vec());
            }
            old.apply(b).unwrap();
            old.flush().unwrap();
        }
        let s = RedbStore::open(dir.path(), 4).unwrap();
        assert_eq!(s.len().unwrap(), 25_000);
        assert_eq!(
            &s.get(b"q00012345").unwrap().unwrap()[..],
            12345u32.to_le_bytes()
        );
        assert!(!dir.path().join(SLED_DIR).exists());
        assert!(dir.path().join(SLED_MOVED).exists());
        drop(s);
        // The second start opens the redb file and leaves the moved sled files alone.
        let s = RedbStore::open(dir.path(), 4).unwrap();
        assert_eq!(s.len().unwrap(), 25_000);
    }
}
