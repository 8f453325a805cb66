//! Running totals of the action plan's KPIs, kept by the outbox's writer in the same
//! atomic batch that accepts or finishes a message, so they survive kill -9 exactly as
//! the messages do and are never recomputed by walking the messages.
//!
//! # Design
//! The KPIs are ratios over *dossiers* (a dossier counts once however many events it
//! has), so the writer keeps two kinds of record:
//! - **one record per dossier** (`a` + 16-byte dossier id, see [`dossier_id`]): what its
//!   events said so far (online or at the counter, fee, paid, finished, results) and how
//!   many of its deliveries to the portal are still outstanding;
//! - **totals per unit, day and procedure** (`c` unit `\0` day `\0` MaTTHC): the sum of the
//!   contributions ([`Contribution`]) of the dossiers first seen that day.
//!
//! Each event updates its dossier record and moves the difference between the dossier's
//! contribution before and after into the totals of the dossier's day: O(1) per event, one
//! point read and two writes. Reading a KPI sums the totals of the days asked for:
//! O(days × units × procedures), whatever the outbox holds. The records stay after the
//! messages' retention: they are the history.
//!
//! *What* an event says ([`EventFacts`]) is decided outside the outbox, by a
//! [`FactFinder`] the bus installs (the KPI module renders the event through the
//! mappings as the portal will receive it), and runs off the writer thread when the
//! request is prepared. Changing the KPI definitions changes the finder and
//! [`Contribution`], not this mechanism.

use super::keys;
use super::records::{decode, encode};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// The numbers kept per bucket, in this order.
pub const FIELDS: [&str; 9] = [
    "dossiers",
    "synced",
    "portal_dossiers",
    "online",
    "channel_known",
    "paid_online",
    "with_fee",
    "finished_with_results",
    "finished",
];

/// One dossier's share of the totals: 0 or 1 per field of [`FIELDS`].
pub type Contribution = [u64; 9];

/// Sums of [`Contribution`]s.
pub type Totals = [u64; 9];

/// What one accepted event says about its dossier.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFacts {
    /// The dossier (its `MaHoSo`).
    pub dossier: String,
    /// The procedure's national code (`MaTTHC`), empty when the event does not say.
    pub procedure: String,
    /// Targets of the event whose delivery counts as "synced to the portal".
    pub sync_targets: Vec<String>,
    /// Submitted online (`Some(true)`) or at the counter (`Some(false)`).
    pub online: Option<bool>,
    pub fee: bool,
    pub results: bool,
    /// The event's status finishes the dossier (`Some(true)`) or reopens it.
    pub finished: Option<bool>,
    /// A fee request's payment reference (`MaThamChieu`): its confirmation marks the
    /// dossier paid.
    pub fee_reference: Option<String>,
}

/// What an event means for the KPIs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Facts {
    Dossier(EventFacts),
    /// The payment platform confirmed the fee with this reference as paid online.
    Paid {
        reference: String,
    },
}

/// Reads the facts of an event (installed by the bus; see [`super::Outbox::count_with`]).
pub trait FactFinder: Send + Sync {
    fn facts(
        &self,
        unit: &str,
        flow: &str,
        key: Option<&str>,
        targets: &[String],
        payload: &RawValue,
    ) -> Option<Facts>;
}

/// The stored state of one dossier (`a` record).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct DossierTally {
    pub unit: String,
    pub dossier: String,
    #[serde(default)]
    pub procedure: String,
    /// Day (Asia/Ho_Chi_Minh, days since 1970-01-01) the bus first saw the dossier: its
    /// totals bucket.
    pub day: u32,
    #[serde(default)]
    pub portal: bool,
    /// Deliveries to a sync target not delivered yet (pending or dead).
    #[serde(default)]
    pub outstanding: u32,
    #[serde(default)]
    pub online: Option<bool>,
    #[serde(default)]
    pub fee: bool,
    #[serde(default)]
    pub paid: bool,
    #[serde(default)]
    pub finished: bool,
    #[serde(default)]
    pub results: bool,
}

impl DossierTally {
    pub fn contribution(&self) -> Contribution {
        let b = u64::from;
        let mut c = [0u64; 9];
        c[0] = 1;
        if self.portal {
            c[2] = 1;
            c[1] = b(self.outstanding == 0);
        }
        if let Some(online) = self.online {
            c[4] = 1;
            c[3] = b(online);
        }
        if self.fee {
            c[6] = 1;
            c[5] = b(self.paid);
        }
        if self.finished {
            c[8] = 1;
            c[7] = b(self.results);
        }
        c
    }

    fn apply(&mut self, f: &EventFacts, sync_deliveries: u32) {
        if !f.procedure.is_empty() && self.procedure.is_empty() {
            self.procedure = f.procedure.clone();
        }
        if sync_deliveries > 0 {
            self.portal = true;
            self.outstanding += sync_deliveries;
        }
        if f.online.is_some() {
            self.online = f.online;
        }
        self.fee |= f.fee;
        self.results |= f.results;
        if let Some(finished) = f.finished {
            self.finished = finished;
        }
    }
}

/// The stable 16-byte id of a dossier: SHA-256 of (unit, dossier), so that no unit can
/// craft a code that lands on another unit's dossier.
/// The same hash orders a dossier's deliveries ([`super::key_hash`]).
pub fn dossier_id(unit: &str, dossier: &str) -> u128 {
    super::key_hash::key_hash(unit, dossier)
}

/// The day of `ms` in Asia/Ho_Chi_Minh (UTC+7, no daylight saving), as days since
/// 1970-01-01.
pub fn day_of(ms: u64) -> u32 {
    ((ms / 1000 + 7 * 3600) / 86_400) as u32
}

pub fn dossier_key(id: u128) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(keys::TALLY_DOSSIER);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

pub fn totals_key(unit: &str, day: u32, procedure: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + unit.len() + procedure.len());
    k.push(keys::TALLY_TOTALS);
    k.extend_from_slice(unit.as_bytes());
    k.push(0);
    k.extend_from_slice(&day.to_be_bytes());
    k.extend_from_slice(procedure.as_bytes());
    k
}

pub fn reference_key(reference: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + reference.len());
    k.push(keys::TALLY_REFERENCE);
    k.extend_from_slice(reference.as_bytes());
    k
}

/// A totals bucket as read back: unit, day, procedure and the sums.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub unit: String,
    pub day: u32,
    pub procedure: String,
    pub totals: Totals,
}

pub fn decode_bucket(key: &[u8], value: &[u8]) -> Option<Bucket> {
    let rest = key.strip_prefix(&[keys::TALLY_TOTALS])?;
    let nul = rest.iter().position(|b| *b == 0)?;
    let unit = String::from_utf8_lossy(&rest[..nul]).into_owned();
    let day = u32::from_be_bytes(rest.get(nul + 1..nul + 5)?.try_into().ok()?);
    let procedure = String::from_utf8_lossy(&rest[nul + 5..]).into_owned();
    let totals: Totals = decode(value).ok()?;
    Some(Bucket {
        unit,
        day,
        procedure,
        totals,
    })
}

/// Per-batch working state of the tally: the changes of one batch are added up here and
/// written once at its end (a batch of 1,000 events of one day writes its bucket once).
#[derive(Default)]
pub struct TallyBatch {
    /// Totals buckets changed by this batch: key → signed change per field.
    deltas: BTreeMap<Vec<u8>, [i64; 9]>,
}

/// Reads and writes the writer gives the tally (its overlay-aware read and put).
pub trait TallyIo {
    fn read(&self, key: &[u8]) -> Option<Vec<u8>>;
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>);
}

impl TallyBatch {
    /// An accepted event of `unit` with `sync_deliveries` deliveries to sync targets.
    pub fn on_event(
        &mut self,
        io: &mut dyn TallyIo,
        unit: &str,
        facts: &EventFacts,
        sync_deliveries: u32,
        now_ms: u64,
    ) -> u128 {
        let id = dossier_id(unit, &facts.dossier);
        self.update(io, id, |d| {
            if d.dossier.is_empty() {
                d.unit = unit.to_string();
                d.dossier = facts.dossier.clone();
                d.day = day_of(now_ms);
            }
            d.apply(facts, sync_deliveries)
        });
        if let Some(reference) = &facts.fee_reference {
            io.put(reference_key(reference), id.to_be_bytes().to_vec());
        }
        id
    }

    /// A delivery to a sync target of dossier `id` is delivered (or given up by an
    /// operator): one fewer outstanding.
    pub fn on_sync_finished(&mut self, io: &mut dyn TallyIo, id: u128) {
        self.update(io, id, |d| d.outstanding = d.outstanding.saturating_sub(1));
    }

    /// The fee with this reference was paid online.
    pub fn on_paid(&mut self, io: &mut dyn TallyIo, reference: &str) {
        let Some(v) = io.read(&reference_key(reference)) else {
            return;
        };
        let Ok(bytes) = <[u8; 16]>::try_from(v.as_slice()) else {
            return;
        };
        self.update(io, u128::from_be_bytes(bytes), |d| d.paid = true);
    }

    fn update(&mut self, io: &mut dyn TallyIo, id: u128, change: impl FnOnce(&mut DossierTally)) {
        let key = dossier_key(id);
        let existing: Option<DossierTally> = io.read(&key).and_then(|v| decode(&v).ok());
        let is_new = existing.is_none();
        let mut d = existing.unwrap_or_default();
        let before = if is_new { [0; 9] } else { d.contribution() };
        let procedure_before = d.procedure.clone();
        change(&mut d);
        if d.dossier.is_empty() {
            // A finish for a dossier the tally never saw (accepted before the tally
            // existed): nothing to count.
            return;
        }
        let after = d.contribution();
        if d.procedure != procedure_before && !is_new {
            // The procedure became known: the dossier moves to its procedure's bucket.
            self.add(&totals_key(&d.unit, d.day, &procedure_before), &before, -1);
            self.add(&totals_key(&d.unit, d.day, &d.procedure), &after, 1);
        } else {
            let bucket = totals_key(&d.unit, d.day, &d.procedure);
            self.add(&bucket, &before, -1);
            self.add(&bucket, &after, 1);
        }
        io.put(key, encode(&d));
    }

    fn add(&mut self, bucket: &[u8], c: &Contribution, sign: i64) {
        if c.iter().all(|v| *v == 0) {
            return;
        }
        let d = self.deltas.entry(bucket.to_vec()).or_insert([0; 9]);
        for (d, v) in d.iter_mut().zip(c) {
            *d += sign * *v as i64;
        }
    }

    /// Write the changed buckets (read, add, write back) at the end of the batch.
    pub fn finish(self, io: &mut dyn TallyIo) {
        for (key, delta) in self.deltas {
            if delta.iter().all(|v| *v == 0) {
                continue;
            }
            let mut totals: Totals = io
                .read(&key)
                .and_then(|v| decode(&v).ok())
                .unwrap_or([0; 9]);
            for (t, d) in totals.iter_mut().zip(delta) {
                *t = (*t as i64 + d).max(0) as u64;
            }
            io.put(key, encode(&totals));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Io(HashMap<Vec<u8>, Vec<u8>>);
    impl TallyIo for Io {
        fn read(&self, key: &[u8]) -> Option<Vec<u8>> {
            self.0.get(key).cloned()
        }
        fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
            self.0.insert(key, value);
        }
    }

    fn buckets(io: &Io) -> Vec<Bucket> {
        let mut out: Vec<Bucket> =
            io.0.iter()
                .filter_map(|(k, v)| decode_bucket(k, v))
                .collect();
        out.sort_by(|a, b| (&a.unit, &a.procedure).cmp(&(&b.unit, &b.procedure)));
        out
    }

    #[test]
    fn a_dossier_counts_once_and_its_changes_move_the_totals() {
        let mut io = Io::default();
        let now = 1_732_960_000_000;
        let facts = |online, finished, results| EventFacts {
            dossier: "HS-1".into(),
            procedure: "1.008433".into(),
            sync_targets: vec!["portal".into()],
            online,
            finished,
            results,
            ..EventFacts::default()
        };
        let mut b = TallyBatch::default();
        let id = b.on_event(
            &mut io,
            "naf",
            &facts(Some(true), Some(false), false),
            1,
            now,
        );
        b.on_event(&mut io, "naf", &facts(None, Some(true), true), 1, now);
        b.finish(&mut io);
        let t = buckets(&io)[0].totals;
        // One dossier on the portal, not synced (2 outstanding), online, finished with results.
        assert_eq!(t, [1, 0, 1, 1, 1, 0, 0, 1, 1]);
        let mut b = TallyBatch::default();
        b.on_sync_finished(&mut io, id);
        b.finish(&mut io);
        assert_eq!(
            buckets(&io)[0].totals[1],
            0,
            "one delivery still outstanding"
        );
        let mut b = TallyBatch::default();
        b.on_sync_finished(&mut io, id);
        b.finish(&mut io);
        assert_eq!(buckets(&io)[0].totals, [1, 1, 1, 1, 1, 0, 0, 1, 1]);
    }

    #[test]
    fn a_paid_reference_marks_its_dossier_and_unknown_ones_change_nothing() {
        let mut io = Io::default();
        let mut b = TallyBatch::default();
        b.on_event(
            &mut io,
            "naf",
            &EventFacts {
                dossier: "HS-2".into(),
                fee: true,
                fee_reference: Some("REF-1".into()),
                ..EventFacts::default()
            },
            0,
            0,
        );
        b.on_paid(&mut io, "REF-unknown");
        b.finish(&mut io);
        assert_eq!(buckets(&io)[0].totals, [1, 0, 0, 0, 0, 0, 1, 0, 0]);
        let mut b = TallyBatch::default();
        b.on_paid(&mut io, "REF-1");
        b.finish(&mut io);
        assert_eq!(buckets(&io)[0].totals, [1, 0, 0, 0, 0, 1, 1, 0, 0]);
        // A finish for a dossier never seen leaves no trace.
        let before = io.0.len();
        let mut b = TallyBatch::default();
        b.on_sync_finished(&mut io, dossier_id("naf", "never"));
        b.finish(&mut io);
        assert_eq!(io.0.len(), before);
    }

    #[test]
    fn days_are_counted_in_vietnam_time_and_ids_separate_units() {
        // 2024-03-08 17:30 UTC is already 2024-03-09 in Hà Nội.
        let ms = 1_709_919_000_000;
        assert_eq!(day_of(ms), day_of(ms - 3_600_000) + 1);
        assert_ne!(dossier_id("a", "bc"), dossier_id("ab", "c"));
        let key = totals_key("naf", 20_000, "1.0084");
        let b = decode_bucket(&key, &encode(&[1u64; 9])).unwrap();
        assert_eq!(
            (b.unit.as_str(), b.day, b.procedure.as_str()),
            ("naf", 20_000, "1.0084")
        );
    }
}
