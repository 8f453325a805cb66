//! The numbers a totals bucket keeps, and where each one sits.

use crate::outbox::records::decode;

/// The numbers kept per bucket, in this order (indexes in [`field`]). The first nine
/// keep their places from the first layout, so buckets written before stay readable
/// ([`decode_totals`] pads them).
pub const FIELDS: [&str; FIELD_COUNT] = [
    "dossiers",
    "synced",
    "portal_dossiers",
    "online",
    "channel_known",
    "payments_online",
    "payments",
    "finished_with_digital_results",
    "finished",
    "channel_unknown",
    "intake_digitised",
    "results_synced",
    "unknown_procedure",
    "payments_gateway",
    "finished_early",
    "finished_on_time",
    "finished_late",
    "closed",
    "due",
    "due_settled",
    "paused",
    "fee_dossiers",
    "paid_online_dossiers",
    "reused",
    "rated",
    "satisfied",
];

/// How many numbers a bucket keeps.
pub const FIELD_COUNT: usize = 26;

/// Where each number sits in a [`Totals`].
pub mod field {
    /// Dossiers first seen in the bucket's day.
    pub const DOSSIERS: usize = 0;
    /// Dossiers all of whose portal-bound events were delivered.
    pub const SYNCED: usize = 1;
    /// Dossiers with portal-bound events.
    pub const PORTAL: usize = 2;
    /// Dossiers submitted online (`KenhThucHien` 2).
    pub const ONLINE: usize = 3;
    /// Dossiers whose channel is known (counter, online or postal).
    pub const CHANNEL_KNOWN: usize = 4;
    /// Payment transactions made online on the portal: confirmed by the payment platform,
    /// or reported by the unit as `DuocThanhToanTrucTuyen` 1 (target 3's numerator).
    pub const PAYMENTS_ONLINE: usize = 5;
    /// All payment transactions: on the portal, through the ministry's own gateway, and
    /// at the counter.
    pub const PAYMENTS: usize = 6;
    /// Finished dossiers (status 9, 10) whose results are electronic documents.
    pub const FINISHED_DIGITAL: usize = 7;
    pub const FINISHED: usize = 8;
    /// Dossiers whose channel nobody said (counted apart, never guessed).
    pub const CHANNEL_UNKNOWN: usize = 9;
    /// Dossiers whose intake components are digitised.
    pub const INTAKE_DIGITISED: usize = 10;
    /// Finished dossiers whose electronic results reached the portal (every portal-bound
    /// event, the result one included, delivered).
    pub const RESULTS_SYNCED: usize = 11;
    /// Dossiers whose `MaTTHC` is not in the unit's procedure catalogue.
    pub const UNKNOWN_PROCEDURE: usize = 12;
    /// Payment transactions through the ministry's own gateway (`DuocThanhToanTrucTuyen`
    /// 2): paid online, but not on the portal, which is what target 3 counts; shown apart.
    /// Buckets written before this field read 0 here: those units' code 2 reports stayed
    /// in `PAYMENTS_ONLINE`, as their dossier records still say.
    pub const PAYMENTS_GATEWAY: usize = 13;
    /// Finished dossiers (status 9, 10) whose processing ended (`NgayKetThucXuLy`) before
    /// the day they were due (`NgayHenTra`, as supplements moved it): Decision 766's
    /// progress group. A finished dossier without both dates is in none of the three.
    pub const FINISHED_EARLY: usize = 14;
    /// Finished on the day they were due.
    pub const FINISHED_ON_TIME: usize = 15;
    /// Finished after the day they were due.
    pub const FINISHED_LATE: usize = 16;
    /// Dossiers closed (finished, refused, withdrawn or stopped: 3, 7, 8, 9, 10), in the
    /// bucket of the day they closed: with [`DOSSIERS`] it gives the dossiers open at the
    /// end of any day (received by then, less closed by then).
    pub const CLOSED: usize = 17;
    /// Dossiers with a due day, in the bucket of that day (not while paused: see
    /// [`PAUSED`]).
    pub const DUE: usize = 18;
    /// Closed dossiers with a due day, in the bucket of the later of the two days: the
    /// dossiers open and late at the end of day E are those [`DUE`] by E less those
    /// settled by E.
    pub const DUE_SETTLED: usize = 19;
    /// Open dossiers waiting for the citizen (statuses 5 and 6: supplements asked, fee to
    /// pay): their due day is suspended, so they are never late (Decision 766); counted on
    /// their intake day, as they are now.
    pub const PAUSED: usize = 20;
    /// Dossiers of a fee-charging procedure (a fee in a portal row, or a fee request to
    /// the payment platform): Decision 766's online-payment denominator.
    pub const FEE_DOSSIERS: usize = 21;
    /// Of those, dossiers with a fee paid online on the portal (confirmed by the payment
    /// platform, or reported with `DuocThanhToanTrucTuyen` 1): 766's numerator.
    pub const PAID_ONLINE_DOSSIERS: usize = 22;
    /// Dossiers that reused a document (`TaiLieuNop.DuocTaiSuDung` 1 or 2, or
    /// `DuocLayTuKhoDMQG` 1): the reuse part of digitisation.
    pub const REUSED: usize = 23;
    /// Dossiers the citizen rated on the portal (`LayDanhSachDanhGia`, pulled by the
    /// bus), on the day the dossier closed.
    pub const RATED: usize = 24;
    /// Of those, rated very satisfied or satisfied (`MucDoHaiLong` 1, 2): Decision 766's
    /// satisfaction group.
    pub const SATISFIED: usize = 25;
}

/// The fields the first layout of dossier records kept (all before [`field::CLOSED`]):
/// a record of that layout takes back only these ([`super::relayout`] adds the rest).
pub const FIRST_LAYOUT_FIELDS: usize = field::CLOSED;

/// One dossier's share of the totals, per field of [`FIELDS`].
pub type Contribution = [u64; FIELD_COUNT];

/// Sums of [`Contribution`]s.
pub type Totals = [u64; FIELD_COUNT];

/// Add `from` to `into`, field by field: how buckets, spans and parts are summed.
pub fn add_totals(into: &mut Totals, from: &Totals) {
    for (t, v) in into.iter_mut().zip(from) {
        *t += v;
    }
}

/// A totals record as stored, of this layout or of an earlier, shorter one.
pub fn decode_totals(bytes: &[u8]) -> Option<Totals> {
    let values: Vec<u64> = decode(bytes).ok()?;
    let mut totals = [0u64; FIELD_COUNT];
    for (t, v) in totals.iter_mut().zip(values) {
        *t = v;
    }
    Some(totals)
}
