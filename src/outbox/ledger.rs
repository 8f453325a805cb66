//! The daily reconciliation's running counts: for each unit, day (Vietnam's time, of the
//! event's acceptance) and target, how many deliveries were made and where they stand —
//! the figures a data-exchange platform's operator asks a ministry for.
//!
//! # Design
//! One record per unit, day and target (`l` day(be u32) unit `\0` target), and one per
//! unit and day with an empty target for the events received. The writer moves the counts
//! in the same atomic batch that changes a delivery's state, added up per batch like the
//! KPI tally ([`super::tally`]), so they survive kill -9 exactly as the deliveries do and
//! are never recounted by walking the messages:
//!
//! ```text
//!   accepted ──► deliveries +1 (events +1 on the unit's row)
//!   pending ──► delivered +1 | forwarded +1 | dead +1
//!   forwarded ─► delivered: forwarded −1, delivered +1 (a worker's outcome)
//!   dead ──► pending (replayed): dead −1        dead ──► dropped: dead −1, dropped +1
//! ```
//!
//! So `pending = deliveries − delivered − forwarded − dead − dropped`, and a day's row
//! always adds up. The records outlive the messages' retention: they are the history. In
//! a cluster each ingress node counts what it accepted.

use super::records::{decode, encode};
use super::tally::TallyIo;
use crate::envelope::MessageId;
use std::collections::BTreeMap;

pub const KIND: u8 = b'l';

/// The counts of a record, in this order.
pub const FIELDS: [&str; 6] = [
    "events",
    "deliveries",
    "delivered",
    "forwarded",
    "dead",
    "dropped",
];
pub const EVENTS: usize = 0;
pub const DELIVERIES: usize = 1;
pub const DELIVERED: usize = 2;
pub const FORWARDED: usize = 3;
pub const DEAD: usize = 4;
pub const DROPPED: usize = 5;

type Counts = [u64; 6];

/// The key of the counts of `unit`'s deliveries to `target` accepted on `day`; `target`
/// empty: the unit's events of that day.
pub fn key(day: u32, unit: &str, target: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(7 + unit.len() + target.len());
    k.push(KIND);
    k.extend_from_slice(&day.to_be_bytes());
    k.extend_from_slice(unit.as_bytes());
    k.push(0);
    k.extend_from_slice(target.as_bytes());
    k
}

/// The day a message counts in: the day it was accepted (its id's time).
pub fn day_of(id: &MessageId) -> u32 {
    crate::time::vn_day(id.timestamp_ms())
}

/// One record: a unit's deliveries to a target accepted on a day (target empty: the
/// unit's events of the day, in `counts[EVENTS]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub day: u32,
    pub unit: String,
    pub target: String,
    pub counts: Counts,
}

impl Row {
    /// Deliveries neither delivered, forwarded, dead nor dropped yet.
    pub fn pending(&self) -> u64 {
        let c = &self.counts;
        c[DELIVERIES].saturating_sub(c[DELIVERED] + c[FORWARDED] + c[DEAD] + c[DROPPED])
    }
}

/// A stored record as a row; `None` for another kind of key or a damaged value.
pub fn decode_row(k: &[u8], v: &[u8]) -> Option<Row> {
    let rest = k.strip_prefix(&[KIND])?;
    let day = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
    let names = std::str::from_utf8(rest.get(4..)?).ok()?;
    let (unit, target) = names.split_once('\0')?;
    Some(Row {
        day,
        unit: unit.to_string(),
        target: target.to_string(),
        counts: decode_counts(v)?,
    })
}

/// The counts of a stored value (shorter lists, from an older layout, padded with zeros).
fn decode_counts(v: &[u8]) -> Option<Counts> {
    let list: Vec<u64> = decode(v).ok()?;
    let mut counts = [0; 6];
    for (c, v) in counts.iter_mut().zip(list) {
        *c = v;
    }
    Some(counts)
}

/// One batch's changes, added up and written once at its end.
#[derive(Default)]
pub struct LedgerBatch {
    deltas: BTreeMap<Vec<u8>, [i64; 6]>,
}

impl LedgerBatch {
    /// Add `n` to `field` of the record of `unit`, `day` and `target`.
    pub fn add(&mut self, day: u32, unit: &str, target: &str, field: usize, n: i64) {
        if n == 0 {
            return;
        }
        self.deltas.entry(key(day, unit, target)).or_insert([0; 6])[field] += n;
    }

    /// A delivery of message `id` moved from the count `from` (None: pending) to `to`.
    pub fn moved(
        &mut self,
        id: &MessageId,
        unit: &str,
        target: &str,
        from: Option<usize>,
        to: usize,
    ) {
        if unit.is_empty() {
            return; // Written before deliveries kept their unit: not counted.
        }
        let day = day_of(id);
        if let Some(from) = from {
            self.add(day, unit, target, from, -1);
        }
        self.add(day, unit, target, to, 1);
    }

    /// A dead delivery of message `id` was replayed: pending again.
    pub fn revived(&mut self, id: &MessageId, unit: &str, target: &str) {
        if !unit.is_empty() {
            self.add(day_of(id), unit, target, DEAD, -1);
        }
    }

    /// Write the changed records (read, add, write back).
    pub fn finish(self, io: &mut dyn TallyIo) {
        for (key, delta) in self.deltas {
            if delta.iter().all(|d| *d == 0) {
                continue;
            }
            let mut counts = io
                .read(&key)
                .and_then(|v| decode_counts(&v))
                .unwrap_or([0; 6]);
            for (c, d) in counts.iter_mut().zip(delta) {
                *c = c.saturating_add_signed(d);
            }
            io.put(key, encode(&counts.to_vec()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back_and_pending_is_what_is_left() {
        let k = key(20_000, "nafosted", "portal");
        let row = decode_row(&k, &encode(&vec![0u64, 10, 5, 1, 2, 1])).unwrap();
        assert_eq!(
            (row.day, row.unit.as_str(), row.target.as_str()),
            (20_000, "nafosted", "portal")
        );
        assert_eq!(row.pending(), 1);
        let events = decode_row(&key(20_000, "nafosted", ""), &encode(&vec![7u64])).unwrap();
        assert_eq!((events.target.as_str(), events.counts[EVENTS]), ("", 7));
        assert!(decode_row(b"q123", b"[]").is_none());
    }
}
