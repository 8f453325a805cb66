//! `lienthong run --demo`: the mock unit systems' traffic generators post realistic events
//! to the bus, in each unit's own format (STAMEQ SOAP, NAFOSTED JSON, IP Office CSV/XML in
//! TCVN3, VARANS JSON with PDFs), for dossiers going through their whole life, with a small
//! share of deliberately bad events. Several dossiers are in flight at once; each one's
//! events are posted in order.

use lienthong_mocks::units::{Traffic, UNITS, UnitEvent};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What the demo traffic has done so far.
#[derive(Default, Debug)]
pub struct DemoStats {
    /// Events the bus accepted (202).
    pub accepted: AtomicU64,
    /// Deliberately bad ones: refused at the door (400 `invalid_event`), or dead letters
    /// on a route that checks at delivery (`validate = "deliver"`).
    pub bad: AtomicU64,
    /// Of the bad ones, those the door refused.
    pub refused_at_door: AtomicU64,
    /// Events the bus refused (non-2xx), e.g. a unit with no route for the flow.
    pub refused: AtomicU64,
    /// Dossiers started.
    pub dossiers: AtomicU64,
    /// Citizen lookups asked, and how many found the person.
    pub lookups: AtomicU64,
    pub lookups_found: AtomicU64,
}

/// How the demo runs.
#[derive(Clone, Debug)]
pub struct DemoSettings {
    pub seed: u64,
    /// Events per second, all units together.
    pub rate: u32,
    /// Share of deliberately bad events.
    pub bad_share: f64,
    /// Dossiers in flight at once.
    pub parallel: usize,
    /// Stop after this many events (None: run until stopped).
    pub limit: Option<u64>,
    /// Start no more than this many dossiers, and stop when their lives are complete.
    pub max_dossiers: Option<u64>,
    /// Ask a citizen lookup every this many events (0: never).
    pub lookup_every: u64,
}

impl Default for DemoSettings {
    fn default() -> Self {
        DemoSettings {
            seed: lienthong_mocks::DEFAULT_SEED,
            rate: 20,
            bad_share: 0.02,
            parallel: 8,
            limit: None,
            max_dossiers: None,
            lookup_every: 10,
        }
    }
}

/// Post generated traffic to the bus at `addr` with the units' `keys` until `limit` (or
/// forever). Units without a key are skipped.
pub async fn drive(
    addr: SocketAddr,
    keys: BTreeMap<String, String>,
    settings: DemoSettings,
    stats: Arc<DemoStats>,
) {
    let client = match crate::tls_provider::http_client()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "demo: cannot build an HTTP client");
            return;
        }
    };
    let units: Vec<&str> = UNITS
        .iter()
        .copied()
        .filter(|u| keys.contains_key(*u))
        .collect();
    if units.is_empty() {
        tracing::warn!("demo: no configured unit the generators know; nothing to send");
        return;
    }
    let mut traffic = Traffic::new(settings.seed, settings.bad_share);
    // Lookups ask about people the population mock knows (same seed as the mocks).
    let people: Vec<(String, String, String)> = if settings.lookup_every > 0 {
        lienthong_mocks::population::Population::generate(settings.seed, 10_000)
            .all()
            .take(500)
            .map(|c| (c.so_dinh_danh.clone(), c.ho_va_ten(), c.ngay_sinh.clone()))
            .collect()
    } else {
        Vec::new()
    };
    let mut lives: Vec<VecDeque<UnitEvent>> = Vec::new();
    let mut next_unit = 0usize;
    let mut tick =
        tokio::time::interval(Duration::from_secs_f64(1.0 / settings.rate.max(1) as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut slot = 0usize;
    let mut sent = 0u64;
    let mut last_report = tokio::time::Instant::now();
    loop {
        if settings.limit.is_some_and(|l| sent >= l) {
            break;
        }
        while lives.len() < settings.parallel.max(1)
            && settings.max_dossiers.is_none_or(|m| (next_unit as u64) < m)
        {
            let unit = units[next_unit % units.len()];
            next_unit += 1;
            lives.push(traffic.dossier_life(unit).into());
            stats.dossiers.fetch_add(1, Ordering::Relaxed);
        }
        if lives.is_empty() {
            break;
        }
        slot = (slot + 1) % lives.len();
        let Some(event) = lives[slot].pop_front() else {
            lives.swap_remove(slot);
            continue;
        };
        tick.tick().await;
        sent += 1;
        if settings.lookup_every > 0
            && sent.is_multiple_of(settings.lookup_every)
            && !people.is_empty()
        {
            let person = &people[(sent / settings.lookup_every) as usize % people.len()];
            // As at the counter: the citizen's dossier is taken in, then the officer checks
            // who they are — a lookup is always for a dossier naming the person.
            let dossier = traffic.dossier_naming(event.unit, &person.1, &person.0);
            let opened = client
                .post(format!(
                    "http://{addr}/api/v1/units/{}/events?flow={}",
                    dossier.unit, dossier.flow
                ))
                .bearer_auth(&keys[dossier.unit])
                .header("content-type", dossier.content_type)
                .body(dossier.body)
                .send()
                .await;
            if opened.is_ok_and(|r| r.status().is_success()) {
                stats.dossiers.fetch_add(1, Ordering::Relaxed);
                lookup(
                    &client,
                    addr,
                    &keys,
                    event.unit,
                    person,
                    &dossier.dossier,
                    &stats,
                )
                .await;
            }
        }
        let key = &keys[event.unit];
        let url = format!(
            "http://{addr}/api/v1/units/{}/events?flow={}",
            event.unit, event.flow
        );
        let result = client
            .post(url)
            .bearer_auth(key)
            .header("content-type", event.content_type)
            .body(event.body)
            .send()
            .await;
        match result {
            Ok(r) if r.status().is_success() => {
                stats.accepted.fetch_add(1, Ordering::Relaxed);
                if event.bad {
                    stats.bad.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(r) if event.bad && r.status() == reqwest::StatusCode::BAD_REQUEST => {
                stats.bad.fetch_add(1, Ordering::Relaxed);
                stats.refused_at_door.fetch_add(1, Ordering::Relaxed);
            }
            Ok(r) => {
                stats.refused.fetch_add(1, Ordering::Relaxed);
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                tracing::warn!(unit = event.unit, flow = event.flow, dossier = %event.dossier, %status, %body, "demo: event refused");
            }
            Err(e) => {
                stats.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(unit = event.unit, error = %e, "demo: cannot reach the bus");
            }
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = tokio::time::Instant::now();
            tracing::info!(
                dossiers = stats.dossiers.load(Ordering::Relaxed),
                accepted = stats.accepted.load(Ordering::Relaxed),
                deliberately_bad = stats.bad.load(Ordering::Relaxed),
                refused_at_door = stats.refused_at_door.load(Ordering::Relaxed),
                refused = stats.refused.load(Ordering::Relaxed),
                lookups = stats.lookups.load(Ordering::Relaxed),
                lookups_found = stats.lookups_found.load(Ordering::Relaxed),
                "demo traffic"
            );
        }
    }
}

/// A citizen lookup in the unit's own format, as its officer would ask it.
fn lookup_request(
    unit: &str,
    (id, name, birth): &(String, String, String),
) -> (&'static str, Vec<u8>) {
    let (y, m, d) = (&birth[..4], &birth[4..6], &birth[6..8]);
    match unit {
        "stameq" => (
            "text/xml; charset=utf-8",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><TraCuuCongDan xmlns="http://stameq.gov.vn/motcua/1.0"><MaYeuCau>DEMO-{id}</MaYeuCau><CanBo>tdc.demo</CanBo><SoDinhDanh>{id}</SoDinhDanh><HoTen>{name}</HoTen><NgaySinh>{d}/{m}/{y}</NgaySinh></TraCuuCongDan></soap:Body></soap:Envelope>"#
            )
            .into_bytes(),
        ),
        "ipo" => {
            let tcvn3 = lienthong_mapping::text::unicode_to_tcvn3_chars(name);
            (
                "text/xml; charset=utf-8",
                format!(
                    r#"<?xml version="1.0" encoding="UTF-8"?><YeuCauTraCuu ma="DEMO-{id}" can_bo="ipo.demo"><ChuDon><SoDinhDanh>{id}</SoDinhDanh><HoTen>{tcvn3}</HoTen><NgaySinh>{d}/{m}/{y}</NgaySinh></ChuDon></YeuCauTraCuu>"#
                )
                .into_bytes(),
            )
        }
        "nafosted" => (
            "application/json",
            serde_json::to_vec(&serde_json::json!({"requestId": format!("DEMO-{id}"), "officer": "naf.demo", "citizen": {"idNumber": id, "fullName": name, "dateOfBirth": format!("{y}-{m}-{d}")}})).unwrap(),
        ),
        _ => (
            "application/json",
            serde_json::to_vec(&serde_json::json!({"checkId": id, "requestedBy": "varans.demo", "worker": {"personalId": id, "name": name, "born": format!("{y}-{m}-{d}")}})).unwrap(),
        ),
    }
}

async fn lookup(
    client: &reqwest::Client,
    addr: SocketAddr,
    keys: &BTreeMap<String, String>,
    unit: &str,
    person: &(String, String, String),
    dossier: &str,
    stats: &DemoStats,
) {
    let (content_type, body) = lookup_request(unit, person);
    let url = format!(
        "http://{addr}/api/v1/units/{unit}/lookup/citizen?dossier={dossier}&purpose=xac-minh-nguoi-nop"
    );
    let result = client
        .post(url)
        .bearer_auth(&keys[unit])
        .header("content-type", content_type)
        .body(body)
        .send()
        .await;
    stats.lookups.fetch_add(1, Ordering::Relaxed);
    match result {
        Ok(r) if r.status().is_success() => {
            let text = r.text().await.unwrap_or_default();
            // Each unit's "found" in its own format.
            if text.contains("true") || text.contains("tim_thay=\"1\"") {
                stats.lookups_found.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(r) => {
            let status = r.status();
            tracing::warn!(unit, %status, "demo: lookup refused");
        }
        Err(e) => tracing::warn!(unit, error = %e, "demo: lookup failed"),
    }
}

/// Where `run --demo` tells the tester to watch: the bundled mocks' own views of what
/// each platform received (the recording sink sees nothing of the demo's routes).
pub fn watch_hint(mocks: Option<std::net::SocketAddr>) -> String {
    match mocks {
        Some(a) => format!(
            "watch the portal at http://{a}/_mock/portal/dossiers (and /_mock/bo-tthc/dossiers, /_mock/payment/transactions, /_mock/datastore/documents, /_mock/notify/messages)"
        ),
        None => "the mocks are off: watch the targets your config names".into(),
    }
}
