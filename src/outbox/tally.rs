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

mod dossier;
mod fields;
mod relayout;
pub use dossier::{DossierTally, PARTS_LAYOUT, Parts};
pub use fields::{Contribution, FIELD_COUNT, FIELDS, Totals, add_totals, decode_totals, field};
pub use relayout::relayout;

/// How a dossier was submitted (`KenhThucHien`).
pub mod channel {
    pub const COUNTER: u8 = 1;
    pub const ONLINE: u8 = 2;
    pub const POSTAL: u8 = 3;
}

/// What one accepted event says about its dossier. It travels to the cluster's other
/// nodes ([`shared`]) with the people as tags, never their numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventFacts {
    /// The dossier (its `MaHoSo`).
    pub dossier: String,
    /// The procedure's national code (`MaTTHC`), empty when the event does not say.
    pub procedure: String,
    /// Whether the procedure is in the unit's catalogue (None: no catalogue, or no code).
    pub procedure_known: Option<bool>,
    /// Targets of the event whose delivery counts as "synced to the portal".
    pub sync_targets: Vec<String>,
    /// How it was submitted ([`channel`]), when the event says.
    pub channel: Option<u8>,
    /// Its intake components are digitised.
    pub intake_digitised: bool,
    /// A submitted document was reused (`DuocTaiSuDung` 1, 2) or taken from the national
    /// document store (`DuocLayTuKhoDMQG` 1).
    pub reused: bool,
    pub fee: bool,
    /// Electronic results: a result document with its code and file link.
    pub results: bool,
    /// The event's status finishes the dossier (`Some(true)`) or reopens it.
    pub finished: Option<bool>,
    /// Fees the unit reports paid online on the portal (`DuocThanhToanTrucTuyen` 1), one
    /// transaction per fee item.
    pub paid_online_items: Option<u32>,
    /// Fees the unit reports paid through the ministry's own gateway (code 2).
    pub paid_gateway_items: Option<u32>,
    /// Fees the unit reports paid at the counter (`DuocThanhToanTrucTuyen` 0).
    pub paid_counter_items: Option<u32>,
    /// A fee request's payment reference (`MaThamChieu`): its confirmation is an online
    /// payment of the dossier.
    pub fee_reference: Option<String>,
    /// The day the result is due (`NgayHenTra`, Asia/Ho_Chi_Minh days since 1970-01-01).
    pub due_day: Option<u32>,
    /// The day processing ended (`NgayKetThucXuLy`), against which the due day decides
    /// early, on time or late.
    pub end_day: Option<u32>,
    /// The day the dossier was taken in (`NgayTiepNhan`): the dossier's totals bucket, so
    /// that periods follow the dossier's own dates (history loaded at go-live included).
    pub intake_day: Option<u32>,
    /// The event's status pauses the dossier (5, 6: waiting for the citizen) or not.
    pub paused: Option<bool>,
    /// The event's status closes the dossier (result ready or returned, refused,
    /// withdrawn, stopped: 3, 7, 8, 9, 10) or reopens it.
    pub closed: Option<bool>,
    /// The people the event names, by their identity numbers ([`people::normalize`]):
    /// whom a citizen lookup for this dossier may ask about. Never shared.
    #[serde(skip)]
    pub people: Vec<String>,
    /// The same people as their tags in the dossier's record ([`people::tag`]): what
    /// another node's event says ([`shared`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub people_tags: Vec<u64>,
    /// The event is of its dossier only for whom it names (bound elsewhere than the
    /// portal and the payment platform): no KPI counts it.
    pub people_only: bool,
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

/// The stable 16-byte id of a dossier: SHA-256 of (unit, dossier), so that no unit can
/// craft a code that lands on another unit's dossier.
/// The same hash orders a dossier's deliveries ([`super::key_hash`]).
pub fn dossier_id(unit: &str, dossier: &str) -> u128 {
    super::key_hash::key_hash(unit, dossier)
}

/// The day of `ms` in Asia/Ho_Chi_Minh, as days since 1970-01-01 ([`crate::time::vn_day`]).
pub fn day_of(ms: u64) -> u32 {
    crate::time::vn_day(ms)
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

/// The open dossiers of `unit` due on `day`.
pub fn due_key(unit: &str, day: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(6 + unit.len());
    k.push(keys::TALLY_DUE);
    k.extend_from_slice(unit.as_bytes());
    k.push(0);
    k.extend_from_slice(&day.to_be_bytes());
    k
}

/// A due-day record as read back: unit, day, open dossiers due that day.
pub fn decode_due(key: &[u8], value: &[u8]) -> Option<(String, u32, u64)> {
    let rest = key.strip_prefix(&[keys::TALLY_DUE])?;
    let nul = rest.iter().position(|b| *b == 0)?;
    let unit = String::from_utf8_lossy(&rest[..nul]).into_owned();
    let day = u32::from_be_bytes(rest.get(nul + 1..nul + 5)?.try_into().ok()?);
    Some((unit, day, decode(value).ok()?))
}

pub fn reference_key(reference: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + reference.len());
    k.push(keys::TALLY_REFERENCE);
    k.extend_from_slice(reference.as_bytes());
    k
}

/// Marks a payment reference whose Confirm was counted.
pub fn paid_key(reference: &str) -> Vec<u8> {
    let mut k = reference_key(reference);
    k.push(0);
    k.extend_from_slice(b"paid");
    k
}

/// The value of a [`paid_key`] whose Confirm came before its fee request was counted
/// (in a cluster, the two may be accepted by different nodes and reach a third in either
/// order): counted when the fee request comes.
const PAID_EARLY: &[u8] = b"early";

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
    let totals = decode_totals(value)?;
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
    deltas: BTreeMap<Vec<u8>, [i64; FIELD_COUNT]>,
    /// Due-day records changed by this batch: key → change in open dossiers.
    due: BTreeMap<Vec<u8>, i64>,
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
            let is_new = d.dossier.is_empty();
            if is_new {
                d.unit = unit.to_string();
                d.dossier = facts.dossier.clone();
                d.day = day_of(now_ms);
            }
            d.apply(facts, sync_deliveries, day_of(now_ms), is_new)
        });
        if let Some(reference) = &facts.fee_reference {
            io.put(reference_key(reference), id.to_be_bytes().to_vec());
            if io.read(&paid_key(reference)).as_deref() == Some(PAID_EARLY) {
                self.count_paid(io, reference, id);
            }
        }
        id
    }

    /// A delivery to a sync target of dossier `id` is delivered (or given up by an
    /// operator): one fewer outstanding.
    pub fn on_sync_finished(&mut self, io: &mut dyn TallyIo, id: u128) {
        self.update(io, id, |d| d.outstanding = d.outstanding.saturating_sub(1));
    }

    /// The citizen rated dossier `dossier` of `unit` on the portal with `level`; a
    /// dossier the bus never counted is left alone.
    pub fn on_rated(&mut self, io: &mut dyn TallyIo, unit: &str, dossier: &str, level: u8) {
        let id = dossier_id(unit, dossier);
        if io.read(&dossier_key(id)).is_none() {
            return;
        }
        self.update(io, id, |d| d.rating = Some(level));
    }

    /// The fee with this reference was paid online.
    pub fn on_paid(&mut self, io: &mut dyn TallyIo, reference: &str) {
        // Once per reference: the platform may send its Confirm again.
        if io.read(&paid_key(reference)).is_some() {
            return;
        }
        let dossier = io
            .read(&reference_key(reference))
            .and_then(|v| <[u8; 16]>::try_from(v.as_slice()).ok());
        match dossier {
            Some(bytes) => self.count_paid(io, reference, u128::from_be_bytes(bytes)),
            None => io.put(paid_key(reference), PAID_EARLY.to_vec()),
        }
    }

    fn count_paid(&mut self, io: &mut dyn TallyIo, reference: &str, id: u128) {
        io.put(paid_key(reference), Vec::new());
        self.update(io, id, |d| {
            d.confirmed_payments = d.confirmed_payments.max(u32::from(d.paid)) + 1;
            d.paid = false;
        });
    }

    fn update(&mut self, io: &mut dyn TallyIo, id: u128, change: impl FnOnce(&mut DossierTally)) {
        let key = dossier_key(id);
        let existing: Option<DossierTally> = io.read(&key).and_then(|v| decode(&v).ok());
        let is_new = existing.is_none();
        let mut d = existing.unwrap_or_default();
        // Its share before, in the buckets of its procedure and days then: a change of
        // procedure or of a day moves it.
        let before = (!is_new).then(|| (d.procedure.clone(), d.parts()));
        let due_before = d.open_due();
        change(&mut d);
        if d.dossier.is_empty() {
            // A finish for a dossier the tally never saw (accepted before the tally
            // existed): nothing to count.
            return;
        }
        d.layout = PARTS_LAYOUT;
        let due_after = d.open_due();
        if due_before != due_after {
            if let Some(day) = due_before {
                *self.due.entry(due_key(&d.unit, day)).or_default() -= 1;
            }
            if let Some(day) = due_after {
                *self.due.entry(due_key(&d.unit, day)).or_default() += 1;
            }
        }
        if let Some((procedure, parts)) = before {
            for (day, c) in parts {
                self.add(&totals_key(&d.unit, day, &procedure), &c, -1);
            }
        }
        for (day, c) in d.parts() {
            self.add(&totals_key(&d.unit, day, &d.procedure), &c, 1);
        }
        io.put(key, encode(&d));
    }

    /// Move a record of the first layout's share into its parts (the upgrade of
    /// [`relayout`]); a record already split is left as it is.
    fn relayout_record(&mut self, io: &mut dyn TallyIo, id: u128) {
        self.update(io, id, |_| {});
    }

    fn add(&mut self, bucket: &[u8], c: &Contribution, sign: i64) {
        if c.iter().all(|v| *v == 0) {
            return;
        }
        let d = self
            .deltas
            .entry(bucket.to_vec())
            .or_insert([0; FIELD_COUNT]);
        for (d, v) in d.iter_mut().zip(c) {
            *d += sign * *v as i64;
        }
    }

    /// Write the changed buckets (read, add, write back) at the end of the batch.
    pub fn finish(self, io: &mut dyn TallyIo) {
        for (key, delta) in self.due {
            if delta == 0 {
                continue;
            }
            let open: u64 = io.read(&key).and_then(|v| decode(&v).ok()).unwrap_or(0);
            io.put(key, encode(&(open as i64 + delta).max(0)));
        }
        for (key, delta) in self.deltas {
            if delta.iter().all(|v| *v == 0) {
                continue;
            }
            let mut totals: Totals = io
                .read(&key)
                .and_then(|v| decode_totals(&v))
                .unwrap_or([0; FIELD_COUNT]);
            for (t, d) in totals.iter_mut().zip(delta) {
                *t = (*t as i64 + d).max(0) as u64;
            }
            io.put(key, encode(&totals));
        }
    }
}

pub mod people;
pub mod shared;

#[cfg(test)]
mod tests;
