//! The running totals: what each event adds, and settling.

use super::*;
use std::collections::HashMap;

/// The writer's reads and writes, in memory (also for [`super::shared`]'s tests).
#[derive(Default)]
pub(super) struct Io(pub(super) HashMap<Vec<u8>, Vec<u8>>);
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

/// The named fields of a bucket that are not zero.
fn named(t: &Totals) -> Vec<(&'static str, u64)> {
    FIELDS
        .iter()
        .zip(t)
        .filter(|(_, v)| **v > 0)
        .map(|(n, v)| (*n, *v))
        .collect()
}

#[test]
fn a_dossier_counts_once_and_its_changes_move_the_totals() {
    let mut io = Io::default();
    let now = 1_732_960_000_000;
    let facts = |channel, finished, results| EventFacts {
        dossier: "HS-1".into(),
        procedure: "1.008433".into(),
        sync_targets: vec!["portal".into()],
        channel,
        finished,
        results,
        ..EventFacts::default()
    };
    let mut b = TallyBatch::default();
    let id = b.on_event(
        &mut io,
        "naf",
        &facts(Some(channel::ONLINE), Some(false), false),
        1,
        now,
    );
    b.on_event(&mut io, "naf", &facts(None, Some(true), true), 1, now);
    b.finish(&mut io);
    // One dossier on the portal, not synced (2 outstanding), online, finished with
    // electronic results, not yet on the portal.
    assert_eq!(
        named(&buckets(&io)[0].totals),
        [
            ("dossiers", 1),
            ("portal_dossiers", 1),
            ("online", 1),
            ("channel_known", 1),
            ("finished_with_digital_results", 1),
            ("finished", 1),
        ]
    );
    let mut b = TallyBatch::default();
    b.on_sync_finished(&mut io, id);
    b.finish(&mut io);
    let t = buckets(&io)[0].totals;
    assert_eq!(t[field::SYNCED], 0, "one delivery still outstanding");
    assert_eq!(t[field::RESULTS_SYNCED], 0);
    let mut b = TallyBatch::default();
    b.on_sync_finished(&mut io, id);
    b.finish(&mut io);
    let t = buckets(&io)[0].totals;
    assert_eq!((t[field::SYNCED], t[field::RESULTS_SYNCED]), (1, 1));
}

#[test]
fn payments_are_transactions_and_a_repeated_confirm_counts_once() {
    let mut io = Io::default();
    let mut b = TallyBatch::default();
    let fee = |reference: &str| EventFacts {
        dossier: "HS-2".into(),
        fee: true,
        fee_reference: Some(reference.into()),
        ..EventFacts::default()
    };
    b.on_event(&mut io, "naf", &fee("REF-1"), 0, 0);
    b.on_event(&mut io, "naf", &fee("REF-2"), 0, 0);
    b.on_paid(&mut io, "REF-unknown");
    b.finish(&mut io);
    let t = buckets(&io)[0].totals;
    assert_eq!((t[field::PAYMENTS_ONLINE], t[field::PAYMENTS]), (0, 0));
    let mut b = TallyBatch::default();
    b.on_paid(&mut io, "REF-1");
    b.on_paid(&mut io, "REF-1");
    b.on_paid(&mut io, "REF-2");
    b.finish(&mut io);
    let t = buckets(&io)[0].totals;
    assert_eq!((t[field::PAYMENTS_ONLINE], t[field::PAYMENTS]), (2, 2));
    // The unit then reports three fees paid at the counter (another stage).
    let mut b = TallyBatch::default();
    b.on_event(
        &mut io,
        "naf",
        &EventFacts {
            dossier: "HS-2".into(),
            paid_counter_items: Some(3),
            ..EventFacts::default()
        },
        0,
        0,
    );
    b.finish(&mut io);
    let t = buckets(&io)[0].totals;
    assert_eq!((t[field::PAYMENTS_ONLINE], t[field::PAYMENTS]), (2, 5));
    // A finish for a dossier never seen leaves no trace.
    let before = io.0.len();
    let mut b = TallyBatch::default();
    b.on_sync_finished(&mut io, dossier_id("naf", "never"));
    b.finish(&mut io);
    assert_eq!(io.0.len(), before);
}

#[test]
fn open_dossiers_are_kept_by_due_day_until_they_close() {
    let mut io = Io::default();
    let event = |dossier: &str, due_day, closed| EventFacts {
        dossier: dossier.into(),
        due_day,
        closed,
        ..EventFacts::default()
    };
    let due = |io: &Io| {
        let mut v: Vec<(String, u32, u64)> =
            io.0.iter()
                .filter_map(|(k, v)| decode_due(k, v))
                .filter(|(_, _, n)| *n > 0)
                .collect();
        v.sort();
        v
    };
    let mut b = TallyBatch::default();
    b.on_event(&mut io, "naf", &event("HS-1", Some(100), Some(false)), 0, 0);
    b.on_event(&mut io, "naf", &event("HS-2", Some(100), Some(false)), 0, 0);
    b.on_event(&mut io, "ipo", &event("HS-1", Some(90), None), 0, 0);
    b.finish(&mut io);
    assert_eq!(due(&io), [("ipo".into(), 90, 1), ("naf".into(), 100, 2)]);
    // HS-1 gets a new due date, HS-2 its result: one moves, one leaves.
    let mut b = TallyBatch::default();
    b.on_event(&mut io, "naf", &event("HS-1", Some(120), None), 0, 0);
    b.on_event(&mut io, "naf", &event("HS-2", None, Some(true)), 0, 0);
    b.finish(&mut io);
    assert_eq!(due(&io), [("ipo".into(), 90, 1), ("naf".into(), 120, 1)]);
}

#[test]
fn records_of_the_first_layout_are_read() {
    // A bucket of nine numbers and a dossier with the old `online` and `paid` flags.
    let t = decode_totals(b"[1,0,1,1,1,1,1,0,0]").unwrap();
    assert_eq!(t[field::PAYMENTS], 1);
    assert_eq!(t[field::UNKNOWN_PROCEDURE], 0);
    let old: DossierTally =
        decode(br#"{"unit":"naf","dossier":"HS-3","day":1,"online":true,"fee":true,"paid":true}"#)
            .unwrap();
    let c = old.contribution();
    assert_eq!((c[field::ONLINE], c[field::PAYMENTS_ONLINE]), (1, 1));
}

#[test]
fn days_are_counted_in_vietnam_time_and_ids_separate_units() {
    // 2024-03-08 17:30 UTC is already 2024-03-09 in Hà Nội.
    let ms = 1_709_919_000_000;
    assert_eq!(day_of(ms), day_of(ms - 3_600_000) + 1);
    assert_ne!(dossier_id("a", "bc"), dossier_id("ab", "c"));
    let key = totals_key("naf", 20_000, "1.0084");
    let b = decode_bucket(&key, &encode(&[1u64; 13])).unwrap();
    assert_eq!(
        (b.unit.as_str(), b.day, b.procedure.as_str()),
        ("naf", 20_000, "1.0084")
    );
}

#[test]
fn a_record_kept_for_whom_it_names_is_no_kpi_dossier_until_a_kpi_event_comes() {
    let mut io = Io::default();
    let now = 1_732_960_000_000;
    let naming = EventFacts {
        dossier: "HS-9".into(),
        people: vec!["001040144502".into()],
        people_only: true,
        ..EventFacts::default()
    };
    let mut b = TallyBatch::default();
    let id = b.on_event(&mut io, "naf", &naming, 0, now);
    b.finish(&mut io);
    assert!(buckets(&io).iter().all(|b| named(&b.totals).is_empty()));
    let d: DossierTally = decode(&io.0[&dossier_key(id)]).unwrap();
    assert!(d.people_only && d.names("001040144502"));
    // The portal event of the same dossier makes it a KPI dossier, and it stays one.
    let portal = EventFacts {
        dossier: "HS-9".into(),
        sync_targets: vec!["portal".into()],
        ..EventFacts::default()
    };
    let mut b = TallyBatch::default();
    b.on_event(&mut io, "naf", &portal, 1, now);
    b.on_event(&mut io, "naf", &naming, 0, now);
    b.finish(&mut io);
    let d: DossierTally = decode(&io.0[&dossier_key(id)]).unwrap();
    assert!(!d.people_only && d.names("001040144502"));
    let totals: Vec<_> = buckets(&io).iter().map(|b| named(&b.totals)).collect();
    assert!(
        totals.iter().any(|t| t.contains(&("dossiers", 1))),
        "{totals:?}"
    );
}

#[test]
fn a_confirm_before_its_fee_request_counts_when_the_request_comes() {
    // In a cluster the Confirm and the fee request may reach a node in either order.
    let mut io = Io::default();
    let mut b = TallyBatch::default();
    b.on_paid(&mut io, "REF-9");
    b.on_paid(&mut io, "REF-9");
    let fee = EventFacts {
        dossier: "HS-9".into(),
        fee: true,
        fee_reference: Some("REF-9".into()),
        ..EventFacts::default()
    };
    b.on_event(&mut io, "naf", &fee, 0, 0);
    // The fee request again (a resend): still one payment.
    b.on_event(&mut io, "naf", &fee, 0, 0);
    b.on_paid(&mut io, "REF-9");
    b.finish(&mut io);
    let t = buckets(&io)[0].totals;
    assert_eq!((t[field::PAYMENTS_ONLINE], t[field::PAYMENTS]), (1, 1));
}

/// Target 3 from a hand-computed set: online on the portal (the unit's code 1, the
/// platform's confirmation), the ministry's gateway (code 2) apart, the counter (code 0).
#[test]
fn payments_on_the_portal_the_gateway_and_the_counter_are_counted_apart() {
    let mut io = Io::default();
    let mut b = TallyBatch::default();
    let paid = |dossier: &str, online, gateway, counter| EventFacts {
        dossier: dossier.into(),
        fee: true,
        paid_online_items: online,
        paid_gateway_items: gateway,
        paid_counter_items: counter,
        ..EventFacts::default()
    };
    b.on_event(&mut io, "ipo", &paid("A", Some(2), None, None), 0, 0);
    b.on_event(&mut io, "ipo", &paid("B", None, Some(1), None), 0, 0);
    b.on_event(&mut io, "ipo", &paid("C", None, None, Some(3)), 0, 0);
    let request = EventFacts {
        fee_reference: Some("REF-D".into()),
        ..paid("D", None, None, None)
    };
    b.on_event(&mut io, "ipo", &request, 0, 0);
    b.finish(&mut io);
    let mut b = TallyBatch::default();
    b.on_paid(&mut io, "REF-D");
    b.finish(&mut io);
    let t = buckets(&io)[0].totals;
    assert_eq!(
        (
            t[field::PAYMENTS_ONLINE],
            t[field::PAYMENTS_GATEWAY],
            t[field::PAYMENTS]
        ),
        (3, 1, 7),
        "{:?}",
        named(&t)
    );
    // A dossier record of the layout before the gateway was kept apart (its code 2 in
    // reported_online) contributes as it did: the totals it built stay consistent.
    let old: DossierTally = serde_json::from_str(
        r#"{"unit":"ipo","dossier":"E","day":1,"fee":true,"reported_online":2}"#,
    )
    .unwrap();
    let c = old.contribution();
    assert_eq!(
        (c[field::PAYMENTS_ONLINE], c[field::PAYMENTS_GATEWAY]),
        (2, 0)
    );
}

/// Periods follow the dossier's own dates: a dossier first seen through an event without
/// its intake date counts on the day it arrived, then moves to its intake day once a row
/// says it (history loaded at go-live lands on its own dates).
#[test]
fn a_dossier_counts_on_its_intake_day() {
    let mut io = Io::default();
    let now = 1_732_960_000_000; // 2024-11-30
    let intake = day_of(1_709_600_000_000); // 2024-03-05
    let fee = EventFacts {
        dossier: "HS-7".into(),
        fee: true,
        ..EventFacts::default()
    };
    let mut b = TallyBatch::default();
    b.on_event(&mut io, "naf", &fee, 0, now);
    b.finish(&mut io);
    assert_eq!(buckets(&io)[0].day, day_of(now));
    let sync = EventFacts {
        dossier: "HS-7".into(),
        procedure: "1.008433".into(),
        channel: Some(channel::ONLINE),
        intake_day: Some(intake),
        ..EventFacts::default()
    };
    let mut b = TallyBatch::default();
    b.on_event(&mut io, "naf", &sync, 0, now);
    b.finish(&mut io);
    let counted: Vec<(u32, u64)> = buckets(&io)
        .iter()
        .map(|b| (b.day, b.totals[field::DOSSIERS]))
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(counted, vec![(intake, 1)], "moved, counted once");
    let online: u64 = buckets(&io).iter().map(|b| b.totals[field::ONLINE]).sum();
    assert_eq!(online, 1);
}

/// Decision 766's progress group from a hand-computed set: ended before, on and after the
/// due day (moved by a supplement for one), one finished without its end date, one open.
#[test]
fn finished_dossiers_are_early_on_time_or_late_against_their_due_day() {
    let mut io = Io::default();
    let mut b = TallyBatch::default();
    let done = |dossier: &str, end: Option<u32>, due: Option<u32>, finished| EventFacts {
        dossier: dossier.into(),
        finished: Some(finished),
        end_day: end,
        due_day: due,
        intake_day: Some(19_700),
        ..EventFacts::default()
    };
    b.on_event(
        &mut io,
        "sta",
        &done("A", Some(19_710), Some(19_712), true),
        0,
        0,
    );
    b.on_event(
        &mut io,
        "sta",
        &done("B", Some(19_712), Some(19_712), true),
        0,
        0,
    );
    b.on_event(
        &mut io,
        "sta",
        &done("C", Some(19_715), Some(19_712), true),
        0,
        0,
    );
    // D was late against its first due day, on time against the day a supplement set.
    b.on_event(
        &mut io,
        "sta",
        &done("D", Some(19_715), Some(19_712), true),
        0,
        0,
    );
    b.on_event(&mut io, "sta", &done("D", None, Some(19_716), true), 0, 0);
    b.on_event(&mut io, "sta", &done("E", None, Some(19_712), true), 0, 0);
    b.on_event(&mut io, "sta", &done("F", None, Some(19_712), false), 0, 0);
    b.finish(&mut io);
    // Each finished dossier counts on the day it ended (E, undated, on the day it closed).
    let mut t = [0u64; FIELD_COUNT];
    for b in buckets(&io) {
        add_totals(&mut t, &b.totals);
    }
    assert_eq!(
        (
            t[field::FINISHED_EARLY],
            t[field::FINISHED_ON_TIME],
            t[field::FINISHED_LATE],
            t[field::FINISHED]
        ),
        (2, 1, 1, 5),
        "A and D early, B on time, C late, E undated: {:?}",
        named(&t)
    );
}

/// An outbox of the first layout (a finished dossier's results in its intake day's
/// bucket) is moved once, when it is opened: its results go to the day it ended, its
/// close and due days are added, and the totals stay those of a dossier counted anew.
#[test]
fn the_first_layouts_records_are_moved_to_their_days_once() {
    use crate::outbox::store::{MemStore, Store, WriteBatch};
    let old = DossierTally {
        unit: "sta".into(),
        dossier: "HS-OLD".into(),
        procedure: "1.1".into(),
        day: 19_700,
        channel: Some(channel::COUNTER),
        finished: true,
        closed: true,
        end_day: Some(19_710),
        due_day: Some(19_712),
        ..DossierTally::default()
    };
    assert_eq!(old.layout, 0);
    let id = dossier_id("sta", "HS-OLD");
    let store = MemStore::default();
    let mut batch = WriteBatch::default();
    batch.put(dossier_key(id), encode(&old));
    batch.put(
        totals_key("sta", 19_700, "1.1"),
        encode(&old.contribution().to_vec()),
    );
    store.apply(batch).unwrap();
    assert_eq!(relayout(&store).unwrap(), 1);
    assert_eq!(relayout(&store).unwrap(), 0, "once");
    let bucket = |day: u32| {
        let v = store.get(&totals_key("sta", day, "1.1")).unwrap();
        named(&decode_totals(&v.unwrap()).unwrap())
    };
    assert_eq!(
        bucket(19_700),
        [("dossiers", 1), ("channel_known", 1)],
        "the intake stays"
    );
    assert_eq!(
        bucket(19_710),
        [("finished", 1), ("finished_early", 1), ("closed", 1)]
    );
    assert_eq!(bucket(19_712), [("due", 1), ("due_settled", 1)]);
    let moved: DossierTally = decode(&store.get(&dossier_key(id)).unwrap().unwrap()).unwrap();
    assert_eq!(moved.layout, PARTS_LAYOUT);
}

/// A rating counts its dossier once, a new rating replaces the old, and a dossier the bus
/// never carried gets no record.
#[test]
fn a_rating_sets_its_dossiers_satisfaction_once() {
    let mut io = Io::default();
    let mut b = TallyBatch::default();
    let facts = EventFacts {
        dossier: "HS-R".into(),
        finished: Some(true),
        closed: Some(true),
        ..EventFacts::default()
    };
    b.on_event(&mut io, "naf", &facts, 0, 0);
    b.on_rated(&mut io, "naf", "HS-R", 3);
    b.on_rated(&mut io, "naf", "HS-R", 1);
    b.on_rated(&mut io, "naf", "HS-NEVER", 1);
    b.finish(&mut io);
    let mut t = [0u64; FIELD_COUNT];
    for b in buckets(&io) {
        add_totals(&mut t, &b.totals);
    }
    assert_eq!((t[field::RATED], t[field::SATISFIED]), (1, 1));
    assert!(
        !io.0
            .contains_key(&dossier_key(dossier_id("naf", "HS-NEVER")))
    );
}
