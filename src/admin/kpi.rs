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
//! | trực tuyến | dossiers with `HinhThuc` = 1 / dossiers with a `DongBoHoSoMC` row | 50 % |
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
use crate::outbox::tally::{EventFacts, FactFinder, Facts, Totals};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};

/// One KPI of the plan: its name as the plan says it, its 2024 target, and how it is counted.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct KpiDefinition {
    pub id: &'static str,
    pub name: &'static str,
    pub target_percent: f64,
    pub definition: &'static str,
}

pub const KPIS: [KpiDefinition; 4] = [
    KpiDefinition {
        id: "dong_bo",
        name: "Tỷ lệ hồ sơ đồng bộ trạng thái lên Cổng DVCQG",
        target_percent: 100.0,
        definition: "Số hồ sơ có trạng thái mới nhất đã được Cổng DVCQG nhận / số hồ sơ có sự kiện gửi lên Cổng.",
    },
    KpiDefinition {
        id: "truc_tuyen",
        name: "Tỷ lệ hồ sơ trực tuyến",
        target_percent: 50.0,
        definition: "Số hồ sơ nộp trực tuyến (HinhThuc = 1 trong DongBoHoSoMC) / số hồ sơ đồng bộ lên Cổng.",
    },
    KpiDefinition {
        id: "thanh_toan_truc_tuyen",
        name: "Tỷ lệ thanh toán trực tuyến",
        target_percent: 45.0,
        definition: "Số hồ sơ có phí, lệ phí đã thanh toán qua Nền tảng thanh toán (Confirm, MaLoi = 00) / số hồ sơ có phí, lệ phí.",
    },
    KpiDefinition {
        id: "so_hoa",
        name: "Tỷ lệ số hóa hồ sơ, kết quả",
        target_percent: 80.0,
        definition: "Số hồ sơ đã xử lý xong (trạng thái 9, 10) có giấy tờ kết quả điện tử (DanhSachGiayToKetQua) / số hồ sơ đã xử lý xong.",
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

/// The four KPIs of one unit (or of all units), keyed like [`KPIS`].
#[derive(Clone, Debug, Serialize)]
pub struct UnitKpis {
    pub unit: String,
    pub dossiers: u64,
    pub kpis: BTreeMap<&'static str, Ratio>,
}

#[derive(Clone, Debug, Serialize)]
pub struct KpiSnapshot {
    pub computed_at_ms: u64,
    pub computed_at: String,
    /// Totals records read (units × days × procedures), never the messages.
    pub buckets_read: u64,
    pub definitions: [KpiDefinition; 4],
    pub overall: UnitKpis,
    pub units: Vec<UnitKpis>,
}

/// The latest snapshot, shared by the API, the dashboard and the refresh task.
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

    /// Compute again (off the async threads) and keep the result.
    pub async fn refresh(&self, state: &Arc<AdminState>) -> Result<Arc<KpiSnapshot>, StoreError> {
        let s = Arc::clone(state);
        let snapshot = tokio::task::spawn_blocking(move || compute(&s))
            .await
            .map_err(|e| StoreError::Corrupt(format!("KPI computation failed: {e}")))??;
        let snapshot = Arc::new(snapshot);
        *self.snapshot.write().unwrap() = Some(Arc::clone(&snapshot));
        Ok(snapshot)
    }
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

fn non_empty_array(v: &Value) -> bool {
    v.as_array().is_some_and(|a| !a.is_empty())
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

/// Sum the running totals ([`crate::outbox::tally`]) per unit: O(units × days ×
/// procedures), whatever the outbox holds.
pub fn compute(s: &AdminState) -> Result<KpiSnapshot, StoreError> {
    let mut counts: BTreeMap<String, Totals> =
        s.units.iter().map(|u| (u.clone(), [0; 9])).collect();
    let buckets = s.outbox.kpi_buckets()?;
    for b in &buckets {
        let c = counts.entry(b.unit.clone()).or_default();
        for (t, v) in c.iter_mut().zip(b.totals) {
            *t += v;
        }
    }
    let to_kpis = |unit: &str, c: &Totals| UnitKpis {
        unit: unit.to_string(),
        dossiers: c[0],
        kpis: BTreeMap::from([
            ("dong_bo", Ratio::new(c[1], c[2])),
            ("truc_tuyen", Ratio::new(c[3], c[4])),
            ("thanh_toan_truc_tuyen", Ratio::new(c[5], c[6])),
            ("so_hoa", Ratio::new(c[7], c[8])),
        ]),
    };
    let mut total = [0u64; 9];
    for c in counts.values() {
        for (t, v) in total.iter_mut().zip(c) {
            *t += v;
        }
    }
    let now = crate::time::now_ms();
    Ok(KpiSnapshot {
        computed_at_ms: now,
        computed_at: crate::time::rfc3339_ms(now),
        buckets_read: buckets.len() as u64,
        definitions: KPIS,
        overall: to_kpis("", &total),
        units: counts.iter().map(|(u, c)| to_kpis(u, c)).collect(),
    })
}

/// What an accepted event means for the KPIs, read from the event as the national
/// platforms will receive it: rendered through its portal mapping (the `DongBoHoSoMC`
/// rows) or its payment mapping (the `Init`), so the national codes count whatever each
/// unit's own format is. Runs when a request is prepared, off the outbox's writer.
pub struct KpiFacts {
    pub mappings: Arc<crate::mappings::MappingSet>,
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
                if let Some(code) = text(&row["MaTTHC"]) {
                    facts.procedure = code;
                }
                if sync_row && let Some(h) = text(&row["HinhThuc"]) {
                    facts.online = Some(h == "1");
                }
                facts.fee |= non_empty_array(&row["DanhSachLePhi"]);
                facts.results |= non_empty_array(&row["DanhSachGiayToKetQua"]);
                let status = if sync_row {
                    &row["TrangThaiHoSo"]
                } else {
                    &row["TrangThai"]
                };
                if !status.is_null() {
                    facts.finished = Some(finished_status(status));
                }
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
        (!facts.dossier.is_empty()).then_some(Facts::Dossier(facts))
    }
}
