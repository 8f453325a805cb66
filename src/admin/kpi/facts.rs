//! What an accepted event says for the KPIs ([`KpiFacts`]), read from the event as the
//! national platforms will receive it.

use crate::outbox::tally::{EventFacts, FactFinder, Facts, channel};
use crate::procedures::Catalogue;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::HashSet;
use std::sync::Arc;

/// Status codes 9 (đã xử lý xong) and 10 (đã trả kết quả).
fn finished_status(v: &Value) -> bool {
    text(v).is_some_and(|s| s == "9" || s == "10")
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// What an accepted event means for the KPIs, read from the event as the national
/// platforms will receive it: rendered through its portal mapping (the `DongBoHoSoMC`
/// rows) or its payment mapping (the `Init`), so the national codes count whatever each
/// unit's own format is. Runs when a request is prepared, off the outbox's writer.
pub struct KpiFacts {
    pub mappings: Arc<crate::mappings::MappingSet>,
    /// Whether a dossier's `MaTTHC` is one of its unit's procedures.
    pub procedures: Arc<Catalogue>,
    pub portal_targets: HashSet<String>,
    pub payment_targets: HashSet<String>,
}

impl FactFinder for KpiFacts {
    fn facts(
        &self,
        unit: &str,
        flow: &str,
        key: Option<&str>,
        targets: &[String],
        payload: &RawValue,
    ) -> Option<Facts> {
        // A payment platform Confirm relayed back to a unit (the callback's flow).
        if flow == "payment_confirm" {
            let confirm: Value = serde_json::from_str(payload.get()).ok()?;
            let reference = text(&confirm["MaThamChieu"])?;
            return (text(&confirm["MaLoi"]).as_deref() == Some("00"))
                .then_some(Facts::Paid { reference });
        }
        let env = crate::envelope::Envelope {
            id: crate::envelope::MessageId(uuid::Uuid::nil()),
            unit: unit.to_string(),
            flow: flow.to_string(),
            key: key.map(str::to_string),
            payload: payload.to_owned(),
            received_ms: crate::time::now_ms(),
            trace_id: String::new(),
            attempts: 0,
            idempotency_key: None,
            targets: targets.to_vec(),
        };
        let portal: Vec<String> = targets
            .iter()
            .filter(|t| self.portal_targets.contains(*t))
            .cloned()
            .collect();
        let mut facts = EventFacts::default();
        if let Some(first) = portal.first() {
            let rendered = self
                .mappings
                .render(&env, first)
                .ok()
                .and_then(|o| serde_json::from_slice::<Value>(&o.body).ok());
            let rows: Vec<&Value> = rendered
                .as_ref()
                .map(|r| match &r["data"] {
                    Value::Array(rows) => rows.iter().collect(),
                    Value::Null => vec![r],
                    other => vec![other],
                })
                .unwrap_or_default();
            // The dossier is the event's ordering key, else the MaHoSo the portal receives.
            facts.dossier = key
                .map(str::to_string)
                .or_else(|| rows.first().and_then(|r| text(&r["MaHoSo"])))?;
            facts.sync_targets = portal;
            let sync_row = rendered
                .as_ref()
                .is_some_and(|r| r["service"] == "DongBoHoSoMC");
            for row in rows {
                read_row(row, sync_row, &mut facts);
            }
        }
        // A fee request relayed to the payment platform.
        if let Some(target) = targets.iter().find(|t| self.payment_targets.contains(*t))
            && let Some(init) = self
                .mappings
                .render(&env, target)
                .ok()
                .and_then(|o| serde_json::from_slice::<Value>(&o.body).ok())
            && let Some(dossier) =
                text(&init["ThongTinBienLai"]["MaHoSo"]).or(key.map(str::to_string))
        {
            if facts.dossier.is_empty() {
                facts.dossier = dossier;
            }
            facts.fee = true;
            facts.fee_reference = text(&init["MaThamChieu"]);
            if let Some(code) = text(&init["ThongTinBienLai"]["MaTTHC"]) {
                facts.procedure = code;
            }
        }
        // Whom the dossier names: every identity number in the unit's event as sent.
        crate::outbox::tally::people::scan_json(payload.get(), &mut facts.people);
        // A keyed event bound elsewhere only (the ministry's systems, notifications) is
        // still of its dossier when it names someone: the dossier's record keeps whom, for
        // the purpose check of lookups, and is no KPI dossier. One that names nobody gets
        // no record (it could let no lookup through, and would cost the outbox a record
        // write per event).
        if facts.dossier.is_empty() && !facts.people.is_empty() {
            facts.dossier = key.map(str::to_string).unwrap_or_default();
            facts.people_only = true;
        }
        if !facts.procedure.is_empty() {
            facts.procedure_known = self.procedures.knows(unit, &facts.procedure);
        }
        (!facts.dossier.is_empty()).then_some(Facts::Dossier(facts))
    }
}

/// What one portal row (`DongBoHoSoMC` item or progress row) says about its dossier.
pub(super) fn read_row(row: &Value, sync_row: bool, facts: &mut EventFacts) {
    if let Some(code) = text(&row["MaTTHC"]) {
        facts.procedure = code;
    }
    if sync_row && let Some(ch) = channel_of(row) {
        facts.channel = Some(ch);
    }
    let flag = |v: &Value| text(v).is_some_and(|t| t == "1" || t.eq_ignore_ascii_case("true"));
    let documents = row["TaiLieuNop"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    facts.intake_digitised |=
        flag(&row["HoSoCoThanhPhanSoHoa"]) || documents.iter().any(|d| flag(&d["DuocSoHoa"]));
    // A reused document (1 reused, 2 reused in place of an earlier result) or one taken
    // from the national document store.
    facts.reused |= documents.iter().any(|d| {
        matches!(text(&d["DuocTaiSuDung"]).as_deref(), Some("1" | "2"))
            || flag(&d["DuocLayTuKhoDMQG"])
    });
    let fees = row["DanhSachLePhi"].as_array().map_or(0, Vec::len) as u32;
    facts.fee |= fees > 0;
    // An electronic result: a result document with its code and its file.
    facts.results |= row["DanhSachGiayToKetQua"]
        .as_array()
        .is_some_and(|docs| docs.iter().any(electronic_result));
    // How the unit says the fees were paid (one transaction per fee item).
    match text(&row["DuocThanhToanTrucTuyen"]).as_deref() {
        // 1: on the portal (target 3's numerator); 2: the ministry's own gateway (online,
        // but not on the portal: shown apart); 0: at the counter; 3: not paid yet.
        Some("1") => facts.paid_online_items = Some(fees.max(1)),
        Some("2") => facts.paid_gateway_items = Some(fees.max(1)),
        Some("0") if fees > 0 => facts.paid_counter_items = Some(fees),
        _ => {}
    }
    let status = if sync_row {
        &row["TrangThaiHoSo"]
    } else {
        &row["TrangThai"]
    };
    if !status.is_null() {
        facts.finished = Some(finished_status(status));
        // 5 (supplements asked) and 6 (fee to pay) wait for the citizen: Decision 766
        // suspends the due day meanwhile.
        facts.paused = Some(text(status).is_some_and(|s| s == "5" || s == "6"));
        facts.closed =
            Some(text(status).is_some_and(|s| matches!(s.as_str(), "3" | "7" | "8" | "9" | "10")));
    }
    // The due date, as moved by the rounds of supplements (Decision 766 scores a dossier
    // against the moved date): the latest of NgayHenTra and each round's NgayHenTraMoi.
    let moved = row["DanhSachHoSoBoSung"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|round| &round["NgayHenTraMoi"]);
    let due = std::iter::once(&row["NgayHenTra"])
        .chain(moved)
        .filter_map(|d| text(d).and_then(|d| day_of_datetime14(&d)))
        .max();
    if let Some(due) = due {
        facts.due_day = Some(due);
    }
    if let Some(day) = text(&row["NgayKetThucXuLy"]).and_then(|d| day_of_datetime14(&d)) {
        facts.end_day = Some(day);
    }
    // The dossier's own intake day decides its period, not the day the bus saw it.
    if sync_row && let Some(day) = text(&row["NgayTiepNhan"]).and_then(|d| day_of_datetime14(&d)) {
        facts.intake_day = Some(day);
    }
}

/// The day (since 1970-01-01) of a portal date `yyyyMMddHHmmss` (Asia/Ho_Chi_Minh).
pub(super) fn day_of_datetime14(text: &str) -> Option<u32> {
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<u32>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    ((1..=12).contains(&m) && (1..=31).contains(&d))
        .then(|| crate::admin::period::days_from_civil(y as i32, m, d))
}

/// `KenhThucHien` (1 counter, 2 online, 3 postal). Absent: unknown. (`HinhThuc` is how the
/// result is handed over, never the channel: the real portal clients send `HinhThucTra` in
/// it.)
fn channel_of(row: &Value) -> Option<u8> {
    match text(&row["KenhThucHien"]).as_deref() {
        Some("1") => Some(channel::COUNTER),
        Some("2") => Some(channel::ONLINE),
        Some("3") => Some(channel::POSTAL),
        _ => None,
    }
}

/// A result document the portal scores as electronic: a result code (`MaGiayToKetQua`,
/// or the older `GiayToId`) and the file's link.
fn electronic_result(doc: &Value) -> bool {
    let has = |k: &str| text(&doc[k]).is_some_and(|t| !t.is_empty());
    (has("MaGiayToKetQua") || has("GiayToId")) && has("DuongDanTepTinKetQua")
}
