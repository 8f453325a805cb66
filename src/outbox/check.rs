//! Checking a whole outbox offline (`lienthong outbox check`), and repairing what can be
//! repaired (`--repair`), with the bus stopped.
//!
//! The check reads every record of the raw store a page at a time: each sealed record must
//! open with the keyring, each record of a known kind must decode (message chunks,
//! pending, finished and dead deliveries, idempotency keys, dossier records, KPI totals,
//! the counters), and the running totals the counters hold (pending and dead deliveries,
//! per target and unit) must equal a recount. The repair moves every unreadable record to
//! a quarantine file (its key and stored bytes, in hex, with the problem) and deletes it,
//! then writes the recounted totals; no readable record is touched.

use super::encryption::{Keyring, open_stored};
use super::keys;
use super::records::{self, DeadRecord, DoneRecord, IdempotencyRecord, Meta, PendingRecord};
use super::store::{Store, StoreError, WriteBatch};
use super::tally::{DossierTally, decode_totals};

/// Rows read per page.
const PAGE: usize = 5_000;
/// Unreadable records listed in a report at most (all are quarantined by the repair).
const MOST_LISTED: usize = 1_000;

/// A record that cannot be read, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    pub key: Vec<u8>,
    pub stored: Vec<u8>,
    pub problem: String,
}

/// What the check found.
#[derive(Debug, Default)]
pub struct Checked {
    pub records: u64,
    /// Bytes of keys and values as stored, over every record (the store's running total
    /// of them decides when the file gives space back: [`super::redb_store`]).
    pub bytes: u64,
    pub unreadable: Vec<Unreadable>,
    /// Unreadable records beyond [`MOST_LISTED`] (counted, not kept).
    pub unreadable_not_listed: u64,
    /// The counters as stored (None: missing or unreadable).
    pub meta: Option<Meta>,
    /// The totals recounted from the records.
    pub pending: u64,
    pub dead: u64,
    pub by_unit: records::UnitCounts,
    /// A running bus met a record it could not read and left its mark
    /// ([`super::start_check::DAMAGE_NOTE`]): the bus will not start until the repair.
    pub damage_noted: bool,
}

impl Checked {
    /// The running totals that differ from the recount, in words.
    pub fn totals_out_of_step(&self) -> Vec<String> {
        let Some(meta) = &self.meta else {
            return vec!["the counters record (zmeta) is missing or unreadable".into()];
        };
        let mut out = Vec::new();
        if meta.pending != self.pending {
            out.push(format!(
                "pending deliveries: the counters say {}, the records are {}",
                meta.pending, self.pending
            ));
        }
        if meta.dead != self.dead {
            out.push(format!(
                "dead letters: the counters say {}, the records are {}",
                meta.dead, self.dead
            ));
        }
        if meta.by_unit != self.by_unit {
            out.push(
                "pending and dead deliveries per target and unit differ from a recount".into(),
            );
        }
        out
    }

    /// Whether nothing is wrong.
    pub fn is_sound(&self) -> bool {
        self.unreadable.is_empty() && self.totals_out_of_step().is_empty() && !self.damage_noted
    }
}

/// Read every record of `raw` (the store as on disk, not unsealed); `progress` is told the
/// records read after each page.
pub fn check(
    raw: &dyn Store,
    ring: Option<&Keyring>,
    mut progress: impl FnMut(u64),
) -> Result<Checked, StoreError> {
    let mut checked = Checked::default();
    let mut start: Vec<u8> = Vec::new();
    let end = vec![0xff; 64];
    loop {
        let rows = raw.scan(&start, &end, PAGE)?;
        for (key, stored) in &rows {
            checked.records += 1;
            checked.bytes += (key.len() + stored.len()) as u64;
            if let Err(e) = read_record(&mut checked, ring, key, stored) {
                if checked.unreadable.len() < MOST_LISTED {
                    checked.unreadable.push(Unreadable {
                        key: key.to_vec(),
                        stored: stored.to_vec(),
                        problem: e.to_string(),
                    });
                } else {
                    checked.unreadable_not_listed += 1;
                }
            }
        }
        progress(checked.records);
        match rows.last() {
            Some((last, _)) if rows.len() == PAGE => {
                start = last.to_vec();
                start.push(0);
            }
            _ => return Ok(checked),
        }
    }
}

/// Open and decode one record by its kind, counting what the totals count.
fn read_record(
    checked: &mut Checked,
    ring: Option<&Keyring>,
    key: &[u8],
    stored: &[u8],
) -> Result<(), StoreError> {
    let value = open_stored(ring, key, stored)?;
    let target = || -> String {
        let rest = &key[1..];
        let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
        String::from_utf8_lossy(&rest[..end]).into_owned()
    };
    match key.first().copied() {
        Some(keys::MESSAGE) => {
            let chunk = records::open_chunk(bytes::Bytes::from(value))?;
            for i in 0..records::chunk_len(&chunk) {
                records::decode::<records::MessageRecord>(records::chunk_entry(&chunk, i)?)?;
            }
        }
        Some(keys::PENDING) => {
            let r = PendingRecord::from_bytes(&value)?;
            checked.pending += 1;
            records::count_unit(&mut checked.by_unit, &target(), &r.unit, 1, 0);
        }
        Some(keys::DEAD) => {
            let r: DeadRecord = records::decode(&value)?;
            checked.dead += 1;
            records::count_unit(&mut checked.by_unit, &target(), &r.unit, 0, 1);
        }
        Some(keys::DONE) => {
            DoneRecord::from_bytes(&value)?;
        }
        Some(keys::IDEMPOTENCY) => {
            records::decode::<IdempotencyRecord>(&value)?;
        }
        Some(keys::TALLY_DOSSIER) => {
            records::decode::<DossierTally>(&value)?;
        }
        Some(keys::TALLY_TOTALS) => {
            decode_totals(&value)
                .ok_or_else(|| StoreError::Corrupt("KPI totals do not decode".into()))?;
        }
        Some(super::ledger::KIND) => {
            super::ledger::decode_row(key, &value)
                .ok_or_else(|| StoreError::Corrupt("reconciliation counts do not decode".into()))?;
        }
        Some(keys::NOTE) if key == keys::note(super::start_check::DAMAGE_NOTE) => {
            checked.damage_noted = true;
        }
        _ if key == keys::META => checked.meta = Some(records::decode(&value)?),
        _ => {}
    }
    Ok(())
}

/// What the repair did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Repaired {
    pub quarantined: usize,
    pub totals_rewritten: bool,
}

/// Quarantine the unreadable records of `checked` into `quarantine` (JSON lines: key and
/// stored bytes in hex, the problem), delete them, and write the recounted totals. The
/// file is written and synced before anything is deleted.
pub fn repair(
    raw: &dyn Store,
    checked: &Checked,
    quarantine: &std::path::Path,
) -> Result<Repaired, StoreError> {
    use std::io::Write;
    let mut batch = WriteBatch::default();
    if !checked.unreadable.is_empty() {
        let io = |e: std::io::Error| {
            StoreError::Io(format!("quarantine file {}: {e}", quarantine.display()))
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(quarantine)
            .map_err(io)?;
        for u in &checked.unreadable {
            let line = serde_json::json!({
                "key": crate::hex::encode(&u.key),
                "stored": crate::hex::encode(&u.stored),
                "problem": u.problem,
            });
            writeln!(file, "{line}").map_err(io)?;
            batch.delete(u.key.clone());
        }
        file.sync_all().map_err(io)?;
    }
    let out_of_step = !checked.totals_out_of_step().is_empty();
    let meta_unreadable = checked
        .unreadable
        .iter()
        .any(|u| u.key.as_slice() == keys::META);
    if out_of_step || meta_unreadable {
        let mut meta = checked.meta.clone().unwrap_or(Meta {
            version: records::META_VERSION,
            ..Meta::default()
        });
        meta.pending = checked.pending;
        meta.dead = checked.dead;
        meta.by_unit = checked.by_unit.clone();
        batch.put(keys::META.to_vec(), records::encode(&meta));
    }
    // The mark a running bus left when it met an unreadable record: dealt with now.
    batch.delete(keys::note(super::start_check::DAMAGE_NOTE));
    let repaired = Repaired {
        quarantined: checked.unreadable.len(),
        totals_rewritten: out_of_step || meta_unreadable,
    };
    raw.apply(batch)?;
    raw.flush()?;
    Ok(repaired)
}

#[cfg(test)]
mod tests;
