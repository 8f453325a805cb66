//! The stored state of one dossier, and its share of the totals: which numbers it adds
//! to which day's bucket.
//!
//! A dossier's share comes in parts, each in the bucket of the day it is about (Decision
//! 766 and the report form 06a count each figure in the period of its own date):
//! - its **intake** (received, channel, payments, digitised intake, synced) on the day it
//!   was taken in (`NgayTiepNhan`);
//! - its **close** (finished, early / on time / late, results, and closed at all) on the
//!   day processing ended (`NgayKetThucXuLy`, else the day the bus saw it close);
//! - its **due date** (`NgayHenTra`, as supplements moved it) on that day, and once it
//!   closed its **settling** on the later of its due and close days: the open dossiers
//!   late at the end of a day E are those due by E less those settled by E, a sum over
//!   buckets ([`crate::admin::kpi`] reads it).

use super::fields::{Contribution, FIELD_COUNT, FIRST_LAYOUT_FIELDS, field};
use super::{EventFacts, channel};
use serde::{Deserialize, Serialize};

/// The layout of a dossier's share: 0 (records written before it was split) holds every
/// number in the intake day's bucket; 1 puts each part in its own day's bucket.
pub const PARTS_LAYOUT: u8 = 1;

/// A dossier's share of the totals: (bucket day, numbers) per part; parts of zeros add
/// nothing.
pub type Parts = [(u32, Contribution); 4];

/// The stored state of one dossier (`a` record).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct DossierTally {
    pub unit: String,
    pub dossier: String,
    #[serde(default)]
    pub procedure: String,
    #[serde(default)]
    pub procedure_known: Option<bool>,
    /// The dossier's totals bucket (Asia/Ho_Chi_Minh, days since 1970-01-01): its intake
    /// day (`NgayTiepNhan`) once an event said it, else the day the bus first saw it.
    pub day: u32,
    #[serde(default)]
    pub portal: bool,
    /// Deliveries to a sync target not delivered yet (pending or dead).
    #[serde(default)]
    pub outstanding: u32,
    #[serde(default)]
    pub channel: Option<u8>,
    /// The first layout's channel (online or not), read when `channel` is absent.
    #[serde(default, skip_serializing)]
    pub online: Option<bool>,
    #[serde(default)]
    pub intake_digitised: bool,
    /// Reused a document, or took one from the national document store.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reused: bool,
    #[serde(default)]
    pub fee: bool,
    /// Online payments confirmed by the payment platform (distinct references).
    #[serde(default)]
    pub confirmed_payments: u32,
    /// The first layout's "paid online" flag: one confirmed payment.
    #[serde(default, skip_serializing)]
    pub paid: bool,
    /// Fees the unit reports paid online, and at the counter (the latest report).
    #[serde(default)]
    pub reported_online: u32,
    #[serde(default)]
    pub reported_counter: u32,
    /// Fees the unit reports paid through the ministry's own gateway (the latest report;
    /// records written before this was kept counted them in `reported_online`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reported_gateway: u32,
    #[serde(default)]
    pub finished: bool,
    #[serde(default)]
    pub results: bool,
    #[serde(default)]
    pub due_day: Option<u32>,
    /// The day processing ended (`NgayKetThucXuLy`), once an event said it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_day: Option<u32>,
    #[serde(default)]
    pub closed: bool,
    /// The day the dossier closed (None while open, or closed before this was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_day: Option<u32>,
    /// The people its events named, as [`people::tag`]s (never the numbers themselves),
    /// at most [`people::MAX_PEOPLE`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub people: Vec<u64>,
    /// Kept only for whom its events name (none of them was bound for the portal or the
    /// payment platform): not a KPI dossier until one is.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub people_only: bool,
    /// Waiting for the citizen now (status 5 or 6): its due day is suspended.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// The citizen's rating on the portal (`MucDoHaiLong`: 1 very satisfied, 2 satisfied,
    /// 3 not satisfied), once pulled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<u8>,
    /// How its share sits in the buckets ([`PARTS_LAYOUT`]).
    #[serde(default)]
    pub layout: u8,
}

impl DossierTally {
    /// The day an open dossier is due, counted in the overdue totals (None: closed,
    /// paused, or no due date).
    pub(super) fn open_due(&self) -> Option<u32> {
        self.due_day.filter(|_| !self.closed && !self.paused)
    }

    fn channel(&self) -> Option<u8> {
        self.channel.or(self
            .online
            .map(|o| if o { channel::ONLINE } else { channel::COUNTER }))
    }

    /// The day it closed: processing ended (`NgayKetThucXuLy`), else the day the bus saw
    /// it close, else (closed before either was kept) its intake day.
    pub fn close_day(&self) -> u32 {
        self.end_day.or(self.closed_day).unwrap_or(self.day)
    }

    /// Its whole share, all parts added (whatever their days).
    pub fn contribution(&self) -> Contribution {
        let mut c = [0u64; FIELD_COUNT];
        for (_, part) in self.parts() {
            super::fields::add_totals(&mut c, &part);
        }
        c
    }

    /// Its share, part by part, each with the day of its bucket (see the module's docs).
    pub fn parts(&self) -> Parts {
        use field::*;
        let mut parts = [(self.day, [0u64; FIELD_COUNT]); 4];
        if self.people_only {
            return parts;
        }
        let b = u64::from;
        let intake = &mut parts[0].1;
        intake[DOSSIERS] = 1;
        let delivered = self.outstanding == 0;
        if self.portal {
            intake[PORTAL] = 1;
            intake[SYNCED] = b(delivered);
        }
        match self.channel() {
            Some(ch) => {
                intake[CHANNEL_KNOWN] = 1;
                intake[ONLINE] = b(ch == channel::ONLINE);
            }
            None => intake[CHANNEL_UNKNOWN] = 1,
        }
        // A payment the platform confirmed may also be reported by the unit: the larger
        // count is the number of online transactions, never their sum.
        let confirmed = self.confirmed_payments.max(u32::from(self.paid));
        let online = u64::from(confirmed.max(self.reported_online));
        let gateway = u64::from(self.reported_gateway);
        intake[PAYMENTS_ONLINE] = online;
        intake[PAYMENTS_GATEWAY] = gateway;
        intake[PAYMENTS] = online + gateway + u64::from(self.reported_counter);
        intake[INTAKE_DIGITISED] = b(self.intake_digitised);
        intake[UNKNOWN_PROCEDURE] = b(self.procedure_known == Some(false));
        if self.layout < PARTS_LAYOUT {
            // The first layout kept the results in the intake day's bucket, and none of the
            // later fields: its share is taken back as it was added.
            self.results_part(&mut parts[0].1);
            parts[0].1[FIRST_LAYOUT_FIELDS..].fill(0);
            return parts;
        }
        intake[FEE_DOSSIERS] = b(self.fee);
        intake[PAID_ONLINE_DOSSIERS] = b(self.fee && online > 0);
        intake[REUSED] = b(self.reused);
        intake[PAUSED] = b(self.paused && !self.closed);
        parts[1].0 = self.close_day();
        self.results_part(&mut parts[1].1);
        parts[1].1[CLOSED] = b(self.closed);
        parts[1].1[RATED] = b(self.rating.is_some());
        parts[1].1[SATISFIED] = b(matches!(self.rating, Some(1 | 2)));
        if let Some(due) = self.due_day.filter(|_| self.closed || !self.paused) {
            parts[2] = (due, [0; FIELD_COUNT]);
            parts[2].1[DUE] = 1;
            if self.closed {
                parts[3] = (due.max(self.close_day()), [0; FIELD_COUNT]);
                parts[3].1[DUE_SETTLED] = 1;
            }
        }
        parts
    }

    /// The numbers a finished dossier adds: finished, early / on time / late, results.
    fn results_part(&self, c: &mut Contribution) {
        use field::*;
        if !self.finished {
            return;
        }
        c[FINISHED] = 1;
        if let (Some(end), Some(due)) = (self.end_day, self.due_day) {
            let at = match end.cmp(&due) {
                std::cmp::Ordering::Less => FINISHED_EARLY,
                std::cmp::Ordering::Equal => FINISHED_ON_TIME,
                std::cmp::Ordering::Greater => FINISHED_LATE,
            };
            c[at] = 1;
        }
        let delivered = self.outstanding == 0;
        c[FINISHED_DIGITAL] = u64::from(self.results);
        c[RESULTS_SYNCED] = u64::from(self.results && self.portal && delivered);
    }

    pub(super) fn apply(&mut self, f: &EventFacts, sync_deliveries: u32, today: u32, is_new: bool) {
        // A KPI event makes a people-only record a KPI dossier; a people-only event never
        // makes a KPI dossier people-only.
        self.people_only = f.people_only && (is_new || self.people_only);
        if !f.procedure.is_empty() && self.procedure.is_empty() {
            self.procedure = f.procedure.clone();
        }
        if f.procedure_known.is_some() {
            self.procedure_known = f.procedure_known;
        }
        if sync_deliveries > 0 {
            self.portal = true;
            self.outstanding += sync_deliveries;
        }
        if f.channel.is_some() {
            self.channel = f.channel;
        }
        self.intake_digitised |= f.intake_digitised;
        self.reused |= f.reused;
        self.fee |= f.fee;
        self.results |= f.results;
        if let Some(n) = f.paid_online_items {
            self.reported_online = n;
        }
        if let Some(n) = f.paid_counter_items {
            self.reported_counter = n;
        }
        if let Some(n) = f.paid_gateway_items {
            self.reported_gateway = n;
        }
        if let Some(finished) = f.finished {
            self.finished = finished;
        }
        if f.due_day.is_some() {
            self.due_day = f.due_day;
        }
        if let Some(day) = f.intake_day {
            self.day = day;
        }
        if f.end_day.is_some() {
            self.end_day = f.end_day;
        }
        if let Some(paused) = f.paused {
            self.paused = paused;
        }
        if let Some(closed) = f.closed {
            if closed && !self.closed {
                self.closed_day = Some(today);
            } else if !closed {
                self.closed_day = None;
            }
            self.closed = closed;
        }
        self.add_people(&f.people);
        self.add_tags(&f.people_tags);
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
