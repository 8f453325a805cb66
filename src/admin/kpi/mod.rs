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
use crate::outbox::tally::{FIELD_COUNT, Totals, field};
use crate::procedures::ServiceCounts;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

pub use super::period::Period;

mod facts;
mod progress;
pub use facts::KpiFacts;
pub use progress::{Form06a, INDEX_766, Index766, Progress, Spans};

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
    /// Decision 766's progress group over the dossiers finished in the period.
    pub progress: Progress,
    /// The report form 06a's figures of the period.
    pub form_06a: Form06a,
    /// Decision 766's service-index groups the traffic shows.
    pub index_766: Index766,
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
    /// What the figures cannot see, in words: printed on the dashboard and under every
    /// report.
    pub limits: Vec<String>,
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

/// Sum the running totals ([`crate::outbox::tally`]) of the days of `period` per unit:
/// O(units × days × procedures), whatever the outbox holds.
pub fn compute(s: &AdminState, period: Period) -> Result<KpiSnapshot, StoreError> {
    let now = crate::time::now_ms();
    let days = period.days(now);
    let (first, last) = (days.start, days.end.saturating_sub(1));
    let mut spans: BTreeMap<String, Spans> = s
        .units
        .iter()
        .map(|u| (u.clone(), Spans::default()))
        .collect();
    let buckets = s.outbox.kpi_buckets()?;
    for b in &buckets {
        let unit = spans.entry(b.unit.clone()).or_default();
        unit.add(b.day, first, last, &b.totals);
    }
    let mut all = Spans::default();
    for unit in spans.values() {
        all.merge(unit);
    }
    // Overdue: open dossiers due before today (a dossier due today is not late yet).
    let today = crate::outbox::tally::day_of(now);
    let mut overdue: BTreeMap<String, u64> = BTreeMap::new();
    for (unit, day, open) in s.outbox.open_due()? {
        if day < today {
            *overdue.entry(unit).or_default() += open;
        }
    }
    // A period that reaches today ends now: its late open dossiers are today's overdue.
    let current = days.end > today;
    let with_progress = |mut k: UnitKpis, spans: &Spans| {
        k.overdue = if k.unit.is_empty() {
            overdue.values().sum()
        } else {
            overdue.get(&k.unit).copied().unwrap_or(0)
        };
        k.form_06a = Form06a::of(spans, current.then_some(k.overdue));
        k
    };
    let unit = |u: &str, spans: &Spans| {
        let catalogue = s.procedures.counts((!u.is_empty()).then_some(u));
        with_progress(unit_kpis(u, &spans.during, catalogue), spans)
    };
    let overall = unit("", &all);
    Ok(KpiSnapshot {
        computed_at_ms: now,
        computed_at: crate::time::rfc3339_ms(now),
        period,
        buckets_read: buckets.len() as u64,
        definitions: KPIS,
        limits: limits(&overall.catalogue),
        overall,
        units: spans.iter().map(|(u, sp)| unit(u, sp)).collect(),
    })
}

/// What the figures cannot see: what never passes through the bus, and the catalogue
/// entries not yet checked against the portal.
fn limits(catalogue: &ServiceCounts) -> Vec<String> {
    let mut out = vec![
        "Số liệu chỉ gồm hồ sơ và giao dịch đi qua trục liên thông: hồ sơ đơn vị không gửi qua trục, thanh toán trục không chuyển tiếp và giao dịch nộp tại quầy đơn vị chưa báo đều không được tính.".to_string(),
        "Hồ sơ được tính vào kỳ theo ngày của chính nó: tiếp nhận theo NgayTiepNhan, giải quyết theo NgayKetThucXuLy; hồ sơ chờ công dân bổ sung hoặc nộp phí (trạng thái 5, 6) không bị tính quá hạn.".to_string(),
    ];
    if catalogue.assumed > 0 {
        out.push(format!(
            "Danh mục thủ tục: {} trên {} mục là giả định, chưa đối chiếu với Cổng DVCQG (source = \"assumed\"); chạy `lienthong procedures sync` để đối chiếu. Chỉ tiêu 1a, 1b dựa trên các mục này.",
            catalogue.assumed, catalogue.procedures
        ));
    }
    out
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
                crate::outbox::tally::add_totals(&mut t, &b.totals);
            }
            let k = unit_kpis("", &t, ServiceCounts::default());
            (p.id(), k.kpis)
        })
        .collect())
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
        form_06a: Form06a::default(),
        index_766: Index766::of(c),
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

#[cfg(test)]
mod tests;
