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
//! They cover the messages the outbox still holds (the retention period, 30 days by
//! default). Computing them reads every stored message, so it runs in the background every
//! `[admin] kpi_interval` and the dashboard and the API show the same snapshot.

use super::AdminState;
use crate::envelope::Envelope;
use crate::outbox::{DeliveryState, StoreError};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
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
    pub messages_read: u64,
    pub definitions: [KpiDefinition; 4],
    pub overall: UnitKpis,
    pub units: Vec<UnitKpis>,
}

/// What the messages say about one dossier.
#[derive(Default)]
struct DossierFacts {
    /// The latest portal-bound event and its portal targets.
    latest_portal: Option<(crate::envelope::MessageId, Vec<String>)>,
    online: Option<bool>,
    fee: bool,
    paid_online: bool,
    finished: bool,
    results: bool,
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

fn is_delivered(state: &DeliveryState) -> bool {
    matches!(state, DeliveryState::Delivered { .. })
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

/// Read every stored message and count.
pub fn compute(s: &AdminState) -> Result<KpiSnapshot, StoreError> {
    let payment_targets: HashSet<&str> = s.payment_targets.iter().map(String::as_str).collect();
    let mut dossiers: HashMap<(String, String), DossierFacts> = HashMap::new();
    // Payment reference → the dossier its fee belongs to.
    let mut fee_refs: HashMap<String, (String, String)> = HashMap::new();
    let mut paid_refs: HashSet<String> = HashSet::new();
    let mut read = 0u64;
    s.outbox.for_each_message(|env| {
        read += 1;
        observe(
            s,
            &payment_targets,
            &env,
            &mut dossiers,
            &mut fee_refs,
            &mut paid_refs,
        );
    })?;
    for reference in &paid_refs {
        if let Some(d) = fee_refs.get(reference).and_then(|k| dossiers.get_mut(k)) {
            d.paid_online = true;
        }
    }
    // Per unit: [dossiers, synced, with portal events, online, with a row, paid, with fee,
    // finished with results, finished].
    let mut counts: BTreeMap<String, [u64; 9]> =
        s.units.iter().map(|u| (u.clone(), [0; 9])).collect();
    for ((unit, _), d) in &dossiers {
        let c = counts.entry(unit.clone()).or_default();
        c[0] += 1;
        if let Some((id, targets)) = &d.latest_portal {
            c[2] += 1;
            let states = s.outbox.delivery_states(*id)?;
            let synced = states
                .iter()
                .filter(|(t, _)| targets.contains(t))
                .all(|(_, st)| is_delivered(st));
            c[1] += u64::from(synced && !states.is_empty());
        }
        if let Some(online) = d.online {
            c[4] += 1;
            c[3] += u64::from(online);
        }
        if d.fee {
            c[6] += 1;
            c[5] += u64::from(d.paid_online);
        }
        if d.finished {
            c[8] += 1;
            c[7] += u64::from(d.results);
        }
    }
    let to_kpis = |unit: &str, c: &[u64; 9]| UnitKpis {
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
        messages_read: read,
        definitions: KPIS,
        overall: to_kpis("", &total),
        units: counts.iter().map(|(u, c)| to_kpis(u, c)).collect(),
    })
}

/// What one message tells about its dossier.
fn observe(
    s: &AdminState,
    payment_targets: &HashSet<&str>,
    env: &Envelope,
    dossiers: &mut HashMap<(String, String), DossierFacts>,
    fee_refs: &mut HashMap<String, (String, String)>,
    paid_refs: &mut HashSet<String>,
) {
    // A payment platform Confirm relayed back to a unit (the callback's flow).
    if env.flow == "payment_confirm"
        && let Ok(confirm) = serde_json::from_str::<Value>(env.payload.get())
        && let (Some(reference), Some(code)) =
            (text(&confirm["MaThamChieu"]), text(&confirm["MaLoi"]))
    {
        if code == "00" {
            paid_refs.insert(reference);
        }
        return;
    }
    let portal: Vec<String> = env
        .targets
        .iter()
        .filter(|t| s.portal_targets.contains(t))
        .cloned()
        .collect();
    if !portal.is_empty() {
        // The dossier is the event's ordering key, else the MaHoSo the portal receives.
        let rendered = s
            .mappings
            .render(env, &portal[0])
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
        let key = env
            .key
            .clone()
            .or_else(|| rows.first().and_then(|r| text(&r["MaHoSo"])));
        let Some(key) = key else { return };
        let d = dossiers.entry((env.unit.clone(), key)).or_default();
        // Messages come oldest first: the last one seen is the latest.
        d.latest_portal = Some((env.id, portal));
        let sync_row = rendered
            .as_ref()
            .is_some_and(|r| r["service"] == "DongBoHoSoMC");
        for row in rows {
            if sync_row && let Some(h) = text(&row["HinhThuc"]) {
                d.online = Some(h == "1");
            }
            if non_empty_array(&row["DanhSachLePhi"]) {
                d.fee = true;
            }
            if non_empty_array(&row["DanhSachGiayToKetQua"]) {
                d.results = true;
            }
            let status = if sync_row {
                &row["TrangThaiHoSo"]
            } else {
                &row["TrangThai"]
            };
            if !status.is_null() {
                d.finished = finished_status(status);
            }
        }
    }
    // A fee request relayed to the payment platform.
    if let Some(target) = env
        .targets
        .iter()
        .find(|t| payment_targets.contains(t.as_str()))
        && let Some(init) = s
            .mappings
            .render(env, target)
            .ok()
            .and_then(|o| serde_json::from_slice::<Value>(&o.body).ok())
        && let Some(dossier) = text(&init["ThongTinBienLai"]["MaHoSo"]).or(env.key.clone())
    {
        let key = (env.unit.clone(), dossier);
        dossiers.entry(key.clone()).or_default().fee = true;
        if let Some(reference) = text(&init["MaThamChieu"]) {
            fee_refs.insert(reference, key);
        }
    }
}
