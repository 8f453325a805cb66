//! The upgrade of the KPI totals to dossiers' shares in parts ([`super::PARTS_LAYOUT`]):
//! once, when an outbox written before it is opened, every dossier record of the first
//! layout moves its results from its intake day's bucket to its close day's, and adds its
//! close and due days. O(dossiers) once, a page at a time, with progress in the log; a
//! crash part-way leaves each page either moved or not, and the next start goes on.

use super::{DossierTally, PARTS_LAYOUT, TallyBatch, TallyIo};
use crate::outbox::keys;
use crate::outbox::records::decode;
use crate::outbox::store::{Store, StoreError, WriteBatch, for_each_page};
use std::collections::HashMap;

/// Records read per page.
const PAGE: usize = 2_000;

/// The store's records with one page's writes laid over them.
struct PageIo<'s> {
    store: &'s dyn Store,
    written: HashMap<Vec<u8>, Vec<u8>>,
}

impl TallyIo for PageIo<'_> {
    fn read(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.written.get(key) {
            Some(v) => Some(v.clone()),
            None => self.store.get(key).ok().flatten().map(|v| v.to_vec()),
        }
    }
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.written.insert(key, value);
    }
}

/// Move every dossier record of the first layout into parts; the number moved.
pub fn relayout(store: &dyn Store) -> Result<u64, StoreError> {
    let started = std::time::Instant::now();
    let mut last_report = started;
    let mut moved = 0u64;
    for_each_page(store, &[keys::TALLY_DOSSIER], PAGE, |rows| {
        let mut io = PageIo {
            store,
            written: HashMap::new(),
        };
        let mut batch = TallyBatch::default();
        for (k, v) in rows {
            let Ok(record) = decode::<DossierTally>(v) else {
                // Unreadable: `lienthong outbox check` names it; nothing to move.
                continue;
            };
            let Some(id) = k.get(1..17).and_then(|b| <[u8; 16]>::try_from(b).ok()) else {
                continue;
            };
            if record.layout < PARTS_LAYOUT {
                batch.relayout_record(&mut io, u128::from_be_bytes(id));
                moved += 1;
            }
        }
        batch.finish(&mut io);
        if !io.written.is_empty() {
            let mut write = WriteBatch::default();
            for (k, v) in io.written {
                write.put(k, v);
            }
            store.apply(write)?;
        }
        if last_report.elapsed().as_secs() >= 5 {
            last_report = std::time::Instant::now();
            tracing::info!(
                moved,
                "outbox: counting KPI results on their own days (layout version 3)…"
            );
        }
        Ok(())
    })?;
    if moved > 0 {
        tracing::info!(
            moved,
            seconds = started.elapsed().as_secs_f64(),
            "outbox: KPI results now counted on their own days"
        );
    }
    Ok(moved)
}
