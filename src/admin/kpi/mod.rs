//! The action plan's KPIs, per unit, computed from the traffic the bus has carried.
//!
//! The bus sees every dossier event a unit sends to the national portal, every fee request
//! it relays to the payment platform and every payment confirmation that comes back. The
//! figures are read from those messages as the national platforms receive them (the
//! portal's `DongBoHoSoMC` rows after mapping, the payment platform's `Init`), so they use
//! the national codes whatever each unit's own format is:
//!
//! | KPI | numerator / denominator | 2024 target |
//! |-----|-------------------------|-------------|
//! | đồng bộ | dossiers whose latest portal-bound event was delivered / dossiers with portal-bound events | 100 % |
//! | trực tuyến | dossiers with `KenhThucHien` = 2 / dossiers whose channel is known | 50 % |
//! | thanh toán trực tuyến | dossiers with a fee paid through the payment platform (`Confirm`, `MaLoi` 00) / dossiers with a fee | 45 % |
//! | số hóa | finished dossiers (status 9 or 10) with result documents (`DanhSachGiayToKetQua`) / finished dossiers | 80 % |
//!
//! They are kept as running totals by the outbox ([`crate::outbox::tally`]): each
//! accepted event's facts ([`KpiFacts`]) update its dossier in the same atomic write
//! that stores the event, a delivery to the portal settles it in the write that records
//! the delivery, and reading the KPIs sums the totals per unit, day and procedure. They
//! outlive the messages' retention and survive kill -9. The snapshot is refreshed every
//! `[admin] kpi_interval` (or on `?refresh=true`), so the dashboard and the API agree.

use super::AdminState;
use crate::outbox::StoreError;
use crate::outbox::tally::{EventFacts, FIELD_COUNT, FactFinder, Facts, Totals, channel, field};
use crate::procedures::{Catalogue, ServiceCounts};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};

pub use super::period::Period;

/// One KPI of the plan: its item in Phụ lục I, its name as the plan says it, its 2024
/// target, and how it is counted.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct KpiDefinition {
    pub id: &'static str,
    /// The item of Decision 1205's Phụ lục I ("" for the bus's own sync figure).
    pub plan_item: &'static str,
    pub name: &'static str,
    pub target_percent: f64,
    pub definition: &'static str,
}

pub const KPIS: [KpiDefinition; 7] = [
    KpiDefinition {
        id: "dvc_toan_trinh",
        plan_item: "1a",
        name: "Tỷ lệ TTHC cung cấp dịch vụ công trực tuyến toàn trình",
        target_percent: 80.0,
        definition: "Số TTHC đang cung cấp trực tuyến toàn trình / số TTHC đủ điều kiện cung cấp trực tuyến toàn trình, theo danh mục thủ tục của đơn vị (mappings/<đơn vị>/procedures.toml).",
    },
    KpiDefinition {
        id: "tich_hop",
        plan_item: "1b",
        name: "Tỷ lệ dịch vụ công trực tuyến tích hợp lên Hệ thống TTHC của Bộ và Cổng DVCQG",
        target_percent: 100.0,
        definition: "Số TTHC thuộc danh mục tích hợp được phê duyệt (QĐ 2213/QĐ-BKHCN) đã tích hợp cả trên Hệ thống thông tin giải quyết TTHC của Bộ và Cổng DVCQG / số TTHC thuộc danh mục đó.",
    },
    KpiDefinition {
        id: "truc_tuyen",
        plan_item: "2",
        name: "Tỷ lệ hồ sơ trực tuyến",
        target_percent: 50.0,
        definition: "Số hồ sơ nộp trực tuyến (KenhThucHien = 2) / số hồ sơ tiếp nhận có kênh nộp xác định (tại quầy, trực tuyến, bưu chính). Hồ sơ không rõ kênh nộp được đếm riêng, không tính là trực tuyến.",
    },
    KpiDefinition {
        id: "thanh_toan_truc_tuyen",
        plan_item: "3",
        name: "Tỷ lệ thanh toán trực tuyến",
        target_percent: 45.0,
        definition: "Số giao dịch thanh toán phí, lệ phí trực tuyến trên Cổng DVCQG (Nền tảng thanh toán xác nhận MaLoi = 00, hoặc đơn vị báo DuocThanhToanTrucTuyen = 1) / tổng số giao dịch thanh toán, kể cả qua cổng thanh toán của Bộ (DuocThanhToanTrucTuyen = 2, ghi riêng) và nộp tại quầy (DuocThanhToanTrucTuyen = 0). Đơn vị chưa từng báo giao dịch tại quầy: chưa có số liệu (không tính là 100 %).",
    },
    KpiDefinition {
        id: "so_hoa",
        plan_item: "4a",
        name: "Tỷ lệ số hóa hồ sơ, kết quả giải quyết TTHC",
        target_percent: 80.0,
        definition: "(Số hồ sơ có thành phần hồ sơ được số hóa + số hồ sơ đã giải quyết xong có kết quả điện tử: mã giấy tờ kết quả và DuongDanTepTinKetQua) / (số hồ sơ tiếp nhận + số hồ sơ đã giải quyết xong, trạng thái 9, 10).",
    },
    KpiDefinition {
        id: "dong_bo_ket_qua",
        plan_item: "4b",
        name: "Tỷ lệ kết quả giải quyết TTHC được đồng bộ đầy đủ lên Cổng DVCQG",
        target_percent: 100.0,
        definition: "Số hồ sơ đã giải quyết xong có kết quả điện tử và mọi sự kiện gửi Cổng (kể cả sự kiện mang kết quả) đã được Cổng nhận / số hồ sơ đã giải quyết xong.",
    },
    KpiDefinition {
        id: "dong_bo",
        plan_item: "",
        name: "Hồ sơ đồng bộ trạng thái lên Cổng DVCQG (theo dõi vận hành)",
        target_percent: 100.0,
        definition: "Số hồ sơ có mọi sự kiện gửi Cổng DVCQG đã được Cổng nhận / số hồ sơ có sự kiện gửi lên Cổng.",
    },
];

/// A ratio and its parts; `percent` is absent when there is nothing to count yet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Ratio {
    pub numerator: u64,
    pub denominator: u64,
    pub percent: Option<f64>,
}

impl Ratio {
    fn new(numerator: u64, denominator: u64) -> Ratio {
        Ratio {
            numerator,
            denominator,
            percent: (denominator > 0)
                .then(|| (numerator as f64 * 1000.0 / denominator as f64).round() / 10.0),
        }
    }
}

/// The KPIs of one unit (or of all units), keyed like [`KPIS`], with the counts behind
/// them that are not a KPI themselves.
#[derive(Clone, Debug, Serialize)]
pub struct UnitKpis {
    pub unit: String,
    pub dossiers: u64,
    /// Dossiers whose channel no event said (left out of target 2, never guessed).
    pub channel_unknown: u64,
    /// Dossiers whose `MaTTHC` is not in the unit's procedure catalogue.
    pub unknown_procedure: u64,
    /// Payments through the ministry's own gateway (`DuocThanhToanTrucTuyen` 2): online,
    /// but not on the portal, so in target 3's denominator only; shown apart.
    pub payments_gateway: u64,
    /// Decision 766's progress group over the finished dossiers.
    pub progress: Progress,
    /// Open dossiers past their `NgayHenTra` today (whatever the period: it is now).
    pub overdue: u64,
    /// The catalogue's counts behind targets 1a and 1b.
    pub catalogue: ServiceCounts,
    pub kpis: BTreeMap<&'static str, Ratio>,
}

#[derive(Clone, Debug, Serialize)]
pub struct KpiSnapshot {
    pub computed_at_ms: u64,
    pub computed_at: String,
    /// The period counted: dossiers taken in during it (`NgayTiepNhan`; first seen, while
    /// no event said) — catalogue targets: as of now.
    pub period: Period,
    /// Totals records read (units × days × procedures), never the messages.
    pub buckets_read: u64,
    pub definitions: [KpiDefinition; 7],
    pub overall: UnitKpis,
    pub units: Vec<UnitKpis>,
}

/// The latest snapshot (all time), shared by the API, the dashboard and the refresh task.
pub struct KpiBoard {
    snapshot: RwLock<Option<Arc<KpiSnapshot>>>,
}

impl Default for KpiBoard {
    fn default() -> Self {
        KpiBoard {
            snapshot: RwLock::new(None),
        }
    }
}

impl KpiBoard {
    pub fn latest(&self) -> Option<Arc<KpiSnapshot>> {
        self.snapshot.read().unwrap().clone()
    }

    /// Compute the all-time snapshot again (off the async threads) and keep it.
    pub async fn refresh(&self, state: &Arc<AdminState>) -> Result<Arc<KpiSnapshot>, StoreError> {
        let snapshot = Arc::new(compute_off_thread(state, Period::All).await?);
        *self.snapshot.write().unwrap() = Some(Arc::clone(&snapshot));
        Ok(snapshot)
    }
}

/// The snapshot of `period`: for all time the kept one (computed now when `fresh`, or
/// when none exists yet), any other period computed now. The API, the dashboard and the
/// report all read the KPIs through this.
pub async fn snapshot_for(
    state: &Arc<AdminState>,
    period: Period,
    fresh: bool,
) -> Result<Arc<KpiSnapshot>, StoreError> {
    match (period, fresh, state.kpis.latest()) {
        (Period::All, false, Some(kept)) => Ok(kept),
        (Period::All, _, _) => state.kpis.refresh(state).await,
        (p, _, _) => compute_off_thread(state, p).await.map(Arc::new),
    }
}

/// [`compute`] on a blocking thread.
pub async fn compute_off_thread(
    state: &Arc<AdminState>,
    period: Period,
) -> Result<KpiSnapshot, StoreError> {
    let s = Arc::clone(state);
    tokio::task::spawn_blocking(move || compute(&s, period))
        .await
        .map_err(|e| StoreError::Corrupt(format!("KPI computation failed: {e}")))?
}

/// Recompute the KPIs every `interval` for as long as the bus runs.
pub async fn refresh_periodically(state: Arc<AdminState>, interval: std::time::Duration) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        if let Err(e) = state.kpis.refresh(&state).await {
            tracing::warn!(error = %e, "cannot compute the KPIs");
        }
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Status codes 9 (đã xử lý xong) and 10 (đã trả kết quả).
fn finished_status(v: &Value) -> bool {
    text(v).is_some_and(|s| s == "9" || s == "10")
}

/// Sum the running totals ([`crate::outbox::tally`]) of the days of `period` per unit:
/// O(units × days × procedures), whatever the outbox holds.
pub fn compute(s: &AdminState, period: Period) -> Result<KpiSnapshot, StoreError> {
    let now = crate::time::now_ms();
    let days = period.days(now);
    let mut counts: BTreeMap<String, Totals> = s
        .units
        .iter()
        .map(|u| (u.clone(), [0; FIELD_COUNT]))
        .collect();
    let buckets = s.outbox.kpi_buckets()?;
    for b in buckets.iter().filter(|b| days.contains(&b.day)) {
        let c = counts.entry(b.unit.clone()).or_default();
        for (t, v) in c.iter_mut().zip(b.totals) {
            *t += v;
        }
    }
    let mut total = [0u64; FIELD_COUNT];
    for c in counts.values() {
        for (t, v) in total.iter_mut().zip(c) {
            *t += v;
        }
    }
    // Overdue: open dossiers due before today (a dossier due today is not late yet).
    let today = crate::outbox::tally::day_of(now);
    let mut overdue: BTreeMap<String, u64> = BTreeMap::new();
    for (unit, day, open) in s.outbox.open_due()? {
        if day < today {
            *overdue.entry(unit).or_default() += open;
        }
    }
    let with_overdue = |mut k: UnitKpis| {
        k.overdue = if k.unit.is_empty() {
            overdue.values().sum()
        } else {
            overdue.get(&k.unit).copied().unwrap_or(0)
        };
        k
    };
    Ok(KpiSnapshot {
        computed_at_ms: now,
        computed_at: crate::time::rfc3339_ms(now),
        period,
        buckets_read: buckets.len() as u64,
        definitions: KPIS,
        overall: with_overdue(unit_kpis("", &total, s.procedures.counts(None))),
        units: counts
            .iter()
            .map(|(u, c)| with_overdue(unit_kpis(u, c, s.procedures.counts(Some(u)))))
            .collect(),
    })
}

/// One month's targets counted from traffic: the month (`2024-07`) and its ratios by id.
pub type MonthKpis = (String, BTreeMap<&'static str, Ratio>);

/// The targets counted from traffic, per calendar month, over the last `months` months
/// (this one included), all units together: for the dashboard's trend charts. Reads the
/// totals records only.
pub fn monthly(s: &AdminState, months: u32, now_ms: u64) -> Result<Vec<MonthKpis>, StoreError> {
    use super::period::{Period, civil_from_days};
    let (mut y, mut m, _) = civil_from_days(crate::outbox::tally::day_of(now_ms));
    let mut periods = Vec::new();
    for _ in 0..months {
        periods.push(Period::Month(y, m));
        (y, m) = if m == 1 { (y - 1, 12) } else { (y, m - 1) };
    }
    periods.reverse();
    let buckets = s.outbox.kpi_buckets()?;
    Ok(periods
        .into_iter()
        .map(|p| {
            let days = p.days(now_ms);
            let mut t = [0u64; FIELD_COUNT];
            for b in buckets.iter().filter(|b| days.contains(&b.day)) {
                for (t, v) in t.iter_mut().zip(b.totals) {
                    *t += v;
                }
            }
            let k = unit_kpis("", &t, ServiceCounts::default());
            (p.id(), k.kpis)
        })
        .collect())
}

/// Decision 766's progress group ("tiến độ giải quyết") over finished dossiers: processing
/// ended (`NgayKetThucXuLy`) before, on or after the day due (`NgayHenTra`, as supplements
/// moved it); a finished dossier without both dates is `undated`, in no share. Open
/// dossiers past their due day are the unit's `overdue`.
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
    fn of(c: &Totals) -> Progress {
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

/// Target 3: payments made online on the portal (the payment platform's confirmations
/// and the units' code 1) over every payment, the ministry gateway's (code 2) and the
/// counter's included. A unit that never reported a counter payment has no figure ("chưa
/// có số liệu"): its denominator would be only what was paid online, a 100 % that says
/// nothing.
fn online_payments(c: &Totals) -> Ratio {
    use field::*;
    let counter = c[PAYMENTS].saturating_sub(c[PAYMENTS_ONLINE] + c[PAYMENTS_GATEWAY]);
    let ratio = Ratio::new(c[PAYMENTS_ONLINE], c[PAYMENTS]);
    if counter == 0 {
        return Ratio {
            percent: None,
            ..ratio
        };
    }
    ratio
}

/// The KPIs of one unit's totals and catalogue counts.
fn unit_kpis(unit: &str, c: &Totals, cat: ServiceCounts) -> UnitKpis {
    use field::*;
    UnitKpis {
        unit: unit.to_string(),
        dossiers: c[DOSSIERS],
        channel_unknown: c[CHANNEL_UNKNOWN],
        payments_gateway: c[PAYMENTS_GATEWAY],
        progress: Progress::of(c),
        unknown_procedure: c[UNKNOWN_PROCEDURE],
        overdue: 0,
        catalogue: cat,
        kpis: BTreeMap::from([
            (
                "dvc_toan_trinh",
                Ratio::new(cat.full_provided, cat.full_eligible),
            ),
            (
                "tich_hop",
                Ratio::new(cat.approved_integrated, cat.approved),
            ),
            ("truc_tuyen", Ratio::new(c[ONLINE], c[CHANNEL_KNOWN])),
            ("thanh_toan_truc_tuyen", online_payments(c)),
            (
                "so_hoa",
                Ratio::new(
                    c[INTAKE_DIGITISED] + c[FINISHED_DIGITAL],
                    c[DOSSIERS] + c[FINISHED],
                ),
            ),
            (
                "dong_bo_ket_qua",
                Ratio::new(c[RESULTS_SYNCED], c[FINISHED]),
            ),
            ("dong_bo", Ratio::new(c[SYNCED], c[PORTAL])),
        ]),
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
fn read_row(row: &Value, sync_row: bool, facts: &mut EventFacts) {
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
fn day_of_datetime14(text: &str) -> Option<u32> {
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<u32>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    ((1..=12).contains(&m) && (1..=31).contains(&d))
        .then(|| super::period::days_from_civil(y as i32, m, d))
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

#[cfg(test)]
mod tests;
