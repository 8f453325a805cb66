//! What an event's rows say about its dossier, and the targets' formulas.

use super::facts::{day_of_datetime14, read_row};
use super::*;
use crate::outbox::tally::{EventFacts, channel};
use serde_json::Value;

#[test]
fn target_3_is_paid_on_the_portal_over_every_payment_and_needs_counter_figures() {
    let mut c = [0u64; FIELD_COUNT];
    c[field::PAYMENTS_ONLINE] = 3;
    c[field::PAYMENTS_GATEWAY] = 1;
    c[field::PAYMENTS] = 7;
    let r = online_payments(&c);
    assert_eq!((r.numerator, r.denominator, r.percent), (3, 7, Some(42.9)));
    // No counter payment ever reported: no figure, not 100 % (nor 75 %).
    c[field::PAYMENTS] = 4;
    let r = online_payments(&c);
    assert_eq!((r.numerator, r.denominator, r.percent), (3, 4, None));
    let k = unit_kpis("ipo", &c, ServiceCounts::default());
    assert_eq!(k.payments_gateway, 1);
}

#[test]
fn a_supplement_moves_the_due_date() {
    let due = |row: Value| {
        let mut facts = EventFacts::default();
        read_row(&row, true, &mut facts);
        facts.due_day
    };
    let day = |d: &str| day_of_datetime14(d);
    let row = serde_json::json!({"NgayHenTra": "20240319000000", "DanhSachHoSoBoSung": [
        {"NgayHenTraMoi": "20240322000000"}, {"NgayHenTraMoi": "20240321000000"}]});
    assert_eq!(due(row), day("20240322000000"));
    let earlier = serde_json::json!({"NgayHenTra": "20240411170000",
        "DanhSachHoSoBoSung": [{"NgayHenTraMoi": "20240408170000"}]});
    assert_eq!(due(earlier), day("20240411170000"));
}

#[test]
fn the_channel_is_kenh_thuc_hien_alone_never_hinh_thuc() {
    let channel = |row: Value| {
        let mut facts = EventFacts::default();
        read_row(&row, true, &mut facts);
        facts.channel
    };
    // HinhThuc 1 is a result sent by post, not an online dossier.
    assert_eq!(channel(serde_json::json!({"HinhThuc": "1"})), None);
    assert_eq!(
        channel(serde_json::json!({"HinhThuc": "1", "KenhThucHien": "1"})),
        Some(channel::COUNTER)
    );
    assert_eq!(
        channel(serde_json::json!({"HinhThuc": "0", "KenhThucHien": "2"})),
        Some(channel::ONLINE)
    );
}

#[test]
fn a_dossier_row_names_its_intake_day_a_progress_row_does_not() {
    let intake = |row: Value, sync| {
        let mut facts = EventFacts::default();
        read_row(&row, sync, &mut facts);
        facts.intake_day
    };
    let row = serde_json::json!({"NgayTiepNhan": "20240305083000", "TrangThaiHoSo": 2});
    assert_eq!(
        intake(row.clone(), true),
        day_of_datetime14("20240305000000")
    );
    assert_eq!(intake(row, false), None);
    assert_eq!(
        intake(serde_json::json!({"NgayTiepNhan": "05/03/2024"}), true),
        None
    );
}

#[test]
fn the_766_progress_group_shares_the_dated_finished_dossiers() {
    let mut c = [0u64; FIELD_COUNT];
    c[field::FINISHED] = 5;
    c[field::FINISHED_EARLY] = 2;
    c[field::FINISHED_ON_TIME] = 1;
    c[field::FINISHED_LATE] = 1;
    let p = Progress::of(&c);
    assert_eq!((p.early, p.on_time, p.late, p.undated), (2, 1, 1, 1));
    assert_eq!(p.in_time.percent, Some(75.0));
    let row = serde_json::json!({"TrangThaiHoSo": 10, "NgayKetThucXuLy": "20240318160000"});
    let mut facts = EventFacts::default();
    read_row(&row, true, &mut facts);
    assert_eq!(facts.end_day, day_of_datetime14("20240318000000"));
}

#[test]
fn a_reused_or_stored_document_counts_as_reuse_and_a_waiting_status_pauses() {
    let facts = |row: Value| {
        let mut facts = EventFacts::default();
        read_row(&row, true, &mut facts);
        facts
    };
    let doc = |k: &str, v: &str| serde_json::json!({"TaiLieuNop": [{"TepDinhKemId": "1"}, {k: v}]});
    assert!(facts(doc("DuocTaiSuDung", "2")).reused);
    assert!(facts(doc("DuocLayTuKhoDMQG", "1")).reused);
    assert!(!facts(doc("DuocTaiSuDung", "0")).reused);
    assert_eq!(
        facts(serde_json::json!({"TrangThaiHoSo": "5"})).paused,
        Some(true)
    );
    assert_eq!(
        facts(serde_json::json!({"TrangThaiHoSo": 4})).paused,
        Some(false)
    );
    assert_eq!(facts(serde_json::json!({})).paused, None);
}
