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
//! # Durability
//! Each [`Store::apply`] is one durable redb commit (fsync), all of the batch or none of
//! it; [`Store::flush`] has nothing left to do. The outbox's writer folds everything
//! waiting into one batch, so this is still one fsync per group commit; a second, empty
//! commit per batch only doubled the copy-on-write page churn. Commits save the allocator
//! state (quick-repair), so that reopening after a crash does not walk the whole file.

use super::store::{Rows, SledStore, Store, StoreError, WriteBatch};
use bytes::Bytes;
use redb::{Database, Durability, ReadableDatabase, ReadableTableMetadata, TableDefinition};
use std::path::{Path, PathBuf};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("outbox");

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
    db: Database,
    path: PathBuf,
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
        // The table exists from the start, so that readers never find it missing.
        let mut tx = db.begin_write().map_err(err)?;
        tx.set_quick_repair(true);
        tx.open_table(TABLE).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(RedbStore {
            db,
            path: path.to_path_buf(),
        })
    }

    fn commit(&self, batch: WriteBatch, durability: Durability) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().map_err(err)?;
        tx.set_quick_repair(true);
        tx.set_durability(durability).map_err(err)?;
        {
            let mut table = tx.open_table(TABLE).map_err(err)?;
            for (k, v) in &batch.ops {
                match v {
                    Some(v) => {
                        table.insert(k.as_slice(), v.as_slice()).map_err(err)?;
                    }
                    None => {
                        table.remove(k.as_slice()).map_err(err)?;
                    }
                }
            }
        }
        tx.commit().map_err(err)
    }

    /// Number of records (for the migration's report).
    pub fn len(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read().map_err(err)?;
        let table = tx.open_table(TABLE).map_err(err)?;
        table.len().map_err(err)
    }

    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// How the file's pages are spent, as redb counts them (a write transaction that is
    /// aborted: nothing changes). For `lienthong outbox usage`.
    pub fn file_stats(&self) -> Result<FileStats, StoreError> {
        let tx = self.db.begin_write().map_err(err)?;
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

impl Store for RedbStore {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, StoreError> {
        let tx = self.db.begin_read().map_err(err)?;
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
        let tx = self.db.begin_read().map_err(err)?;
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
        let tx = self.db.begin_read().map_err(err)?;
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
