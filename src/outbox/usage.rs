//! What the outbox's disk is spent on: records and bytes (keys and values as stored,
//! sealed when the outbox is) per record kind, read from the whole store a page at a time.
//! For `lienthong outbox usage`, run with the bus stopped: it costs a read of everything,
//! which no request or periodic task of the running bus may.

use super::Store;
use super::store::StoreError;

/// Rows read per page of the scan.
const PAGE: usize = 10_000;

/// One record kind's share of the store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KindUsage {
    pub kind: u8,
    pub records: u64,
    pub key_bytes: u64,
    pub value_bytes: u64,
}

/// What a record kind holds (the key layout in [`super::keys`]).
pub fn kind_name(kind: u8) -> &'static str {
    match kind {
        b'm' => "messages (chunks of a request's events)",
        b'q' => "pending deliveries",
        b'd' => "finished deliveries (kept for retention)",
        b'x' => "dead letters",
        b'i' => "idempotency keys",
        b't' => "idempotency key expiry index",
        b'j' => "dossier index",
        b'k' => "dossier index (before it was kept per unit)",
        b'n' => "notes",
        b'e' => "note expiry index",
        b'a' => "dossier records (KPIs, whom a dossier names)",
        b'c' => "KPI totals",
        b'r' => "payment references",
        b'u' => "open dossiers by due day",
        b'l' => "reconciliation counts by unit, day and target",
        b's' => "KPI changes not yet shared with the cluster",
        b'z' => "counters",
        _ => "other",
    }
}

/// Every record of `store` counted by kind (first key byte), in key order; `progress` is
/// told the records read so far after each page.
pub fn by_kind(
    store: &dyn Store,
    mut progress: impl FnMut(u64),
) -> Result<Vec<KindUsage>, StoreError> {
    let mut kinds: std::collections::BTreeMap<u8, KindUsage> = Default::default();
    let mut start: Vec<u8> = Vec::new();
    let end = vec![0xff; 64];
    let mut read = 0u64;
    loop {
        let rows = store.scan(&start, &end, PAGE)?;
        for (key, value) in &rows {
            let Some(&kind) = key.first() else { continue };
            let usage = kinds.entry(kind).or_insert(KindUsage {
                kind,
                ..Default::default()
            });
            usage.records += 1;
            usage.key_bytes += key.len() as u64;
            usage.value_bytes += value.len() as u64;
        }
        read += rows.len() as u64;
        progress(read);
        match rows.last() {
            Some((last, _)) if rows.len() == PAGE => {
                // The next page starts just after the last key read.
                start = last.to_vec();
                start.push(0);
            }
            _ => return Ok(kinds.into_values().collect()),
        }
    }
}

/// The table `lienthong outbox usage` prints: a line per record kind, the sum, and the
/// file's pages by use when the store can say (redb).
pub fn render(kinds: &[KindUsage], file: u64, pages: Option<&super::FileStats>) -> String {
    use std::fmt::Write;
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let mut out = format!(
        "{:<4} {:<46} {:>12} {:>12} {:>12}\n",
        "kind", "what", "records", "key MiB", "value MiB"
    );
    let (mut records, mut bytes) = (0u64, 0u64);
    for k in kinds {
        let _ = writeln!(
            out,
            "{:<4} {:<46} {:>12} {:>12.2} {:>12.2}",
            k.kind as char,
            kind_name(k.kind),
            k.records,
            mib(k.key_bytes),
            mib(k.value_bytes)
        );
        records += k.records;
        bytes += k.key_bytes + k.value_bytes;
    }
    let _ = writeln!(
        out,
        "all: {records} records, {:.2} MiB of keys and values; the file: {:.2} MiB",
        mib(bytes),
        mib(file)
    );
    if let Some(f) = pages {
        let _ = writeln!(
            out,
            "the file's pages: {:.2} MiB in use ({:.2} MiB of leaves holding {:.2} MiB of \
             records, {:.2} MiB of branches), {:.2} MiB free or unused inside pages",
            mib(f.allocated_bytes),
            mib(f.leaf_bytes),
            mib(f.stored_bytes),
            mib(f.branch_bytes),
            mib(f.fragmented_bytes)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::{MemStore, WriteBatch};

    #[test]
    fn every_record_is_counted_once_under_its_kind_across_pages() {
        let store = MemStore::default();
        let mut batch = WriteBatch::default();
        for i in 0..(PAGE as u32 + 5) {
            let mut key = vec![b'q'];
            key.extend_from_slice(&i.to_be_bytes());
            batch.put(key, vec![0; 10]);
        }
        batch.put(b"zmeta".to_vec(), vec![1, 2, 3]);
        store.apply(batch).unwrap();
        let mut pages = 0;
        let usage = by_kind(&store, |_| pages += 1).unwrap();
        assert_eq!(pages, 2);
        assert_eq!(
            usage,
            [
                KindUsage {
                    kind: b'q',
                    records: PAGE as u64 + 5,
                    key_bytes: 5 * (PAGE as u64 + 5),
                    value_bytes: 10 * (PAGE as u64 + 5),
                },
                KindUsage {
                    kind: b'z',
                    records: 1,
                    key_bytes: 5,
                    value_bytes: 3,
                },
            ]
        );
        assert_eq!(kind_name(b'd'), "finished deliveries (kept for retention)");
        let table = render(&usage, 2 << 20, None);
        assert!(table.contains("pending deliveries"), "{table}");
        assert!(
            table.contains(&format!("all: {} records", PAGE + 6)),
            "{table}"
        );
        assert!(table.contains("the file: 2.00 MiB"), "{table}");
    }
}
