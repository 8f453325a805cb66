//! How far the dossiers got, as the government scores it: Decision 766's progress group
//! over the finished dossiers, and the report form 06a (Biểu số 06a: carried over,
//! received online or directly, finished early / on time / late, open in time / late).
//!
//! Every figure is a sum of the totals' buckets ([`crate::outbox::tally`]), each number
//! kept on the day it is about: a period's received dossiers on their intake days, its
//! finished ones on the days processing ended. What is open at the end of a day E is what
//! was received by E less what closed by E; what is late among it is what was due by E
//! less what settled (closed, on the later of its due and close days) by E. So the report
//! of any past period reads the same totals as today's, never the dossiers.

use super::Ratio;
use crate::outbox::tally::{Totals, add_totals, field};
use serde::{Deserialize, Serialize};

/// Decision 766's progress group ("tiến độ giải quyết") over the dossiers finished in a
/// period: processing ended (`NgayKetThucXuLy`) before, on or after the day due
/// (`NgayHenTra`, as supplements moved it); a finished dossier without both dates is
/// `undated`, in no share.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct Progress {
    pub early: u64,
    pub on_time: u64,
    pub late: u64,
    pub undated: u64,
    /// Finished early or on time, of those dated.
    pub in_time: Ratio,
}

impl Progress {
    pub(super) fn of(c: &Totals) -> Progress {
        use field::*;
        let (early, on_time, late) = (c[FINISHED_EARLY], c[FINISHED_ON_TIME], c[FINISHED_LATE]);
        Progress {
            early,
            on_time,
            late,
            undated: c[FINISHED].saturating_sub(early + on_time + late),
            in_time: Ratio::new(early + on_time, early + on_time + late),
        }
    }
}

/// The groups of Decision 766's service index that the traffic shows, as 766 defines
/// them, beside the plan's targets (1205 is the ministry's plan, 766 how the government
/// scores it). Publicity is not seen by the bus; satisfaction is the portal's ratings,
/// which the bus pulls (`[targets.portal.portal] ratings_every`).
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct Index766 {
    /// Dịch vụ trực tuyến: dossiers submitted online / dossiers whose channel is known.
    pub online: Ratio,
    /// Thanh toán trực tuyến: dossiers of fee-charging procedures with a fee paid online on
    /// the portal / dossiers of fee-charging procedures (the plan's target 3 counts
    /// transactions instead).
    pub payment: Ratio,
    /// Số hóa, its parts: dossiers whose intake was digitised / dossiers received…
    pub digitised_intake: Ratio,
    /// …finished dossiers with electronic results / finished dossiers…
    pub digitised_results: Ratio,
    /// …and dossiers that reused a document or took one from the national document store
    /// / dossiers received.
    pub reuse: Ratio,
    /// Tiến độ giải quyết: finished early or on time / finished with both dates.
    pub progress: Ratio,
    /// Mức độ hài lòng: dossiers rated very satisfied or satisfied on the portal / dossiers
    /// rated, on the days they closed.
    pub satisfaction: Ratio,
}

/// Decision 766's groups, in the order the dashboard and the reports show them: (field of
/// [`Index766`], name).
pub const INDEX_766: [(&str, &str); 7] = [
    ("online", "Dịch vụ trực tuyến"),
    ("payment", "Thanh toán trực tuyến (hồ sơ có thu phí)"),
    ("digitised_intake", "Số hóa hồ sơ khi tiếp nhận"),
    ("digitised_results", "Số hóa kết quả"),
    ("reuse", "Tái sử dụng giấy tờ, dữ liệu"),
    ("progress", "Tiến độ: giải quyết đúng hạn"),
    ("satisfaction", "Mức độ hài lòng (đánh giá trên Cổng)"),
];

impl Index766 {
    /// The groups' figures in the order of [`INDEX_766`].
    pub fn ratios(&self) -> [Ratio; 7] {
        [
            self.online,
            self.payment,
            self.digitised_intake,
            self.digitised_results,
            self.reuse,
            self.progress,
            self.satisfaction,
        ]
    }

    pub(super) fn of(c: &Totals) -> Index766 {
        use field::*;
        Index766 {
            online: Ratio::new(c[ONLINE], c[CHANNEL_KNOWN]),
            payment: Ratio::new(c[PAID_ONLINE_DOSSIERS], c[FEE_DOSSIERS]),
            digitised_intake: Ratio::new(c[INTAKE_DIGITISED], c[DOSSIERS]),
            digitised_results: Ratio::new(c[FINISHED_DIGITAL], c[FINISHED]),
            reuse: Ratio::new(c[REUSED], c[DOSSIERS]),
            progress: Progress::of(c).in_time,
            satisfaction: Ratio::new(c[SATISFIED], c[RATED]),
        }
    }
}

/// The report form 06a's figures of one unit (or the ministry) for a period.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Form06a {
    /// Open at the end of the day before the period ("số kỳ trước chuyển qua").
    pub carried_over: u64,
    /// Received in the period online (`KenhThucHien` 2).
    pub received_online: u64,
    /// Received in the period at the counter or by post ("trực tiếp, dịch vụ bưu chính").
    pub received_direct: u64,
    /// Received in the period through a channel no event said (a data-quality warning:
    /// the portal counts them as direct).
    pub received_channel_unknown: u64,
    /// Carried over and received: what the unit had to handle ("tổng số hồ sơ").
    pub total: u64,
    /// Finished in the period (status 9, 10, on the day processing ended).
    pub finished: u64,
    pub finished_early: u64,
    pub finished_on_time: u64,
    pub finished_late: u64,
    /// Finished without both an end and a due date: in none of the three.
    pub finished_undated: u64,
    /// Closed in the period otherwise: refused, withdrawn or stopped (3, 7, 8).
    pub closed_otherwise: u64,
    /// Open at the end of the period, not past their due day (paused ones included).
    pub open_in_time: u64,
    /// Open at the end of the period and past their due day.
    pub open_late: u64,
    /// Of the dossiers received by the period's end, those waiting for the citizen now
    /// (statuses 5, 6): never late while they wait.
    pub paused_now: u64,
}

/// The totals of one unit (or all) over three spans of days, for [`Form06a::of`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Spans {
    /// The days before the period.
    pub before: Totals,
    /// The period's days.
    pub during: Totals,
    /// Every day up to the period's end.
    pub through: Totals,
}

impl Spans {
    /// Add a bucket of `day` to the spans of a period of days `first..=last`.
    pub fn add(&mut self, day: u32, first: u32, last: u32, totals: &Totals) {
        if day < first {
            add_totals(&mut self.before, totals);
        } else if day <= last {
            add_totals(&mut self.during, totals);
        }
        if day <= last {
            add_totals(&mut self.through, totals);
        }
    }

    /// Every field of `other` added.
    pub fn merge(&mut self, other: &Spans) {
        add_totals(&mut self.before, &other.before);
        add_totals(&mut self.during, &other.during);
        add_totals(&mut self.through, &other.through);
    }
}

impl Form06a {
    /// The form's figures from the spans' totals. `late_now`: the open dossiers past
    /// their due day today, when the period reaches today (its end is now, and the
    /// overdue index says it exactly); None for a period that ended.
    pub fn of(s: &Spans, late_now: Option<u64>) -> Form06a {
        use field::*;
        let (b, d, t) = (&s.before, &s.during, &s.through);
        let carried_over = b[DOSSIERS].saturating_sub(b[CLOSED]);
        let received = d[DOSSIERS];
        let open = t[DOSSIERS].saturating_sub(t[CLOSED]);
        let open_late = late_now
            .unwrap_or(t[DUE].saturating_sub(t[DUE_SETTLED]))
            .min(open);
        let progress = Progress::of(d);
        Form06a {
            carried_over,
            received_online: d[ONLINE],
            received_direct: d[CHANNEL_KNOWN].saturating_sub(d[ONLINE]),
            received_channel_unknown: d[CHANNEL_UNKNOWN],
            total: carried_over + received,
            finished: d[FINISHED],
            finished_early: progress.early,
            finished_on_time: progress.on_time,
            finished_late: progress.late,
            finished_undated: progress.undated,
            closed_otherwise: d[CLOSED].saturating_sub(d[FINISHED]),
            open_in_time: open - open_late,
            open_late,
            paused_now: t[PAUSED],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::period::days_from_civil;
    use crate::outbox::tally::{EventFacts, TallyBatch, TallyIo, channel, decode_bucket};
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

    fn day(m: u32, d: u32) -> u32 {
        days_from_civil(2024, m, d)
    }

    /// A status event of a dossier: taken in on `intake`, seen by the bus on `seen`.
    struct Event {
        dossier: &'static str,
        intake: (u32, u32),
        channel: Option<u8>,
        status: u8,
        due: Option<(u32, u32)>,
        end: Option<(u32, u32)>,
        seen: (u32, u32),
    }

    fn take(io: &mut Io, e: &Event) {
        let facts = EventFacts {
            dossier: e.dossier.into(),
            procedure: "1.008433".into(),
            channel: e.channel,
            intake_day: Some(day(e.intake.0, e.intake.1)),
            due_day: e.due.map(|(m, d)| day(m, d)),
            end_day: e.end.map(|(m, d)| day(m, d)),
            finished: Some(matches!(e.status, 9 | 10)),
            closed: Some(matches!(e.status, 3 | 7 | 8 | 9 | 10)),
            paused: Some(matches!(e.status, 5 | 6)),
            ..EventFacts::default()
        };
        let seen_ms = u64::from(day(e.seen.0, e.seen.1)) * 86_400_000 + 3_600_000;
        let mut b = TallyBatch::default();
        b.on_event(io, "naf", &facts, 0, seen_ms);
        b.finish(io);
    }

    fn form(io: &Io, month: u32) -> Form06a {
        let (first, last) = (day(month, 1), day(month + 1, 1) - 1);
        let mut spans = Spans::default();
        for b in io.0.iter().filter_map(|(k, v)| decode_bucket(k, v)) {
            spans.add(b.day, first, last, &b.totals);
        }
        Form06a::of(&spans, None)
    }

    #[test]
    fn the_766_groups_count_dossiers_of_their_own_denominators() {
        use crate::outbox::tally::{FIELD_COUNT, field::*};
        let mut c = [0u64; FIELD_COUNT];
        for (f, v) in [
            (DOSSIERS, 10),
            (ONLINE, 4),
            (CHANNEL_KNOWN, 8),
            (FEE_DOSSIERS, 5),
            (PAID_ONLINE_DOSSIERS, 2),
            (INTAKE_DIGITISED, 6),
            (FINISHED, 4),
            (FINISHED_DIGITAL, 3),
            (REUSED, 1),
            (FINISHED_EARLY, 1),
            (FINISHED_LATE, 1),
        ] {
            c[f] = v;
        }
        let i = Index766::of(&c);
        let parts = |r: Ratio| (r.numerator, r.denominator);
        assert_eq!(parts(i.online), (4, 8));
        assert_eq!(parts(i.payment), (2, 5), "dossiers, not transactions");
        assert_eq!(parts(i.digitised_intake), (6, 10));
        assert_eq!(parts(i.digitised_results), (3, 4));
        assert_eq!(parts(i.reuse), (1, 10));
        assert_eq!(i.progress.percent, Some(50.0));
    }

    /// Ten dossiers around March 2024, each figure of the form computed by hand.
    #[test]
    fn the_form_06a_counts_each_dossier_in_the_period_of_its_own_dates() {
        let (c, o, p) = (
            Some(channel::COUNTER),
            Some(channel::ONLINE),
            Some(channel::POSTAL),
        );
        #[rustfmt::skip]
        let events = [
            // Carried over from February: A finishes early in March, B stays open, late.
            Event { dossier: "A", intake: (2, 20), channel: c, status: 2, due: Some((3, 5)), end: None, seen: (2, 20) },
            Event { dossier: "A", intake: (2, 20), channel: c, status: 10, due: Some((3, 5)), end: Some((3, 4)), seen: (3, 4) },
            Event { dossier: "B", intake: (2, 25), channel: o, status: 4, due: Some((2, 28)), end: None, seen: (2, 25) },
            // Closed in February: not carried over.
            Event { dossier: "C", intake: (2, 10), channel: c, status: 10, due: None, end: Some((2, 15)), seen: (2, 15) },
            // Received in March: D on time (online), E late, F refused (by post).
            Event { dossier: "D", intake: (3, 3), channel: o, status: 9, due: Some((3, 20)), end: Some((3, 20)), seen: (3, 20) },
            Event { dossier: "E", intake: (3, 5), channel: c, status: 10, due: Some((3, 10)), end: Some((3, 12)), seen: (3, 12) },
            Event { dossier: "F", intake: (3, 8), channel: p, status: 3, due: None, end: None, seen: (3, 8) },
            // Open at the end of March: G in time (channel unknown), H paused for
            // supplements (past its due day, never late while it waits), I late — it
            // finishes in April, late.
            Event { dossier: "G", intake: (3, 15), channel: None, status: 4, due: Some((4, 10)), end: None, seen: (3, 15) },
            Event { dossier: "H", intake: (3, 20), channel: o, status: 5, due: Some((3, 25)), end: None, seen: (3, 21) },
            Event { dossier: "I", intake: (3, 28), channel: c, status: 4, due: Some((3, 30)), end: None, seen: (3, 28) },
            Event { dossier: "I", intake: (3, 28), channel: c, status: 10, due: Some((3, 30)), end: Some((4, 2)), seen: (4, 2) },
            // Received in April.
            Event { dossier: "J", intake: (4, 1), channel: o, status: 2, due: Some((4, 20)), end: None, seen: (4, 1) },
        ];
        let mut io = Io::default();
        for e in &events {
            take(&mut io, e);
        }
        let march = form(&io, 3);
        assert_eq!(
            march,
            Form06a {
                carried_over: 2,
                received_online: 2,
                received_direct: 3,
                received_channel_unknown: 1,
                total: 8,
                finished: 3,
                finished_early: 1,
                finished_on_time: 1,
                finished_late: 1,
                finished_undated: 0,
                closed_otherwise: 1,
                open_in_time: 2,
                open_late: 2,
                paused_now: 1,
            }
        );
        // Everything handled is finished, closed otherwise or still open.
        let open = march.open_in_time + march.open_late;
        assert_eq!(march.total, march.finished + march.closed_otherwise + open);
        // April takes over what March left open, and counts I's late result in April.
        let april = form(&io, 4);
        assert_eq!(
            (
                april.carried_over,
                april.received_online,
                april.finished,
                april.finished_late
            ),
            (4, 1, 1, 1)
        );
        // At the end of April B, G and J are past their due days; H still waits.
        assert_eq!((april.open_in_time, april.open_late), (1, 3), "{april:?}");
    }
}
