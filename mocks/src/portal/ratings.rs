//! Citizens' ratings of dossiers, as the mock portal keeps and serves them:
//! `LayDanhSachDanhGia` (`madonvi`, `tungay`, `denngay`, `yyyyMMdd`) answers `result[]` of
//! `{MaHoSo, MucDoHaiLong, NgayDanhGia}` for the unit's dossiers rated in those days.
//! `MucDoHaiLong`: 1 rất hài lòng, 2 hài lòng, 3 không hài lòng. Service, fields and scale
//! are the mock's own (**assumed**: the interface is not public). A tester rates a dossier
//! the portal holds with `POST /_mock/portal/ratings` `{"MaHoSo": "...", "MucDoHaiLong": 1}`
//! (rated now) or [`super::Portal::rate`].

use super::Portal;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

/// One rating the portal holds.
#[derive(Clone, Debug)]
pub struct Rating {
    pub madonvi: String,
    pub dossier: String,
    pub level: u8,
    /// `yyyyMMddHHmmss`, Vietnam's time.
    pub at: String,
}

impl Portal {
    /// A citizen rates dossier `dossier` (which the portal must hold) with `level` at `at`
    /// (`yyyyMMddHHmmss`); false when the portal does not hold it.
    pub fn rate(&self, dossier: &str, level: u8, at: &str) -> bool {
        let mut g = self.inner.lock().unwrap();
        let Some(madonvi) = g.dossiers.get(dossier).map(|d| d.madonvi.clone()) else {
            return false;
        };
        g.ratings.retain(|r| r.dossier != dossier);
        g.ratings.push(Rating {
            madonvi,
            dossier: dossier.to_string(),
            level,
            at: at.to_string(),
        });
        true
    }
}

/// `LayDanhSachDanhGia`: the unit's ratings given from `tungay` to `denngay` (inclusive).
pub(super) fn list(portal: &Portal, body: &Value) -> Value {
    let madonvi = body["madonvi"].as_str().unwrap_or_default();
    let from = body["tungay"].as_str().unwrap_or_default();
    let to = body["denngay"].as_str().unwrap_or("99999999");
    let g = portal.inner.lock().unwrap();
    let result: Vec<Value> = g
        .ratings
        .iter()
        .filter(|r| r.madonvi == madonvi && r.at.get(..8).is_some_and(|d| d >= from && d <= to))
        .map(|r| json!({"MaHoSo": r.dossier, "MucDoHaiLong": r.level, "NgayDanhGia": r.at}))
        .collect();
    json!({ "result": result })
}

/// `POST /_mock/<service>/ratings`: rate a dossier now.
pub(super) async fn rate_now(State(portal): State<Portal>, Json(body): Json<Value>) -> Json<Value> {
    let dossier = body["MaHoSo"].as_str().unwrap_or_default();
    let level = body["MucDoHaiLong"]
        .as_u64()
        .filter(|l| (1..=3).contains(l));
    let Some(level) = level else {
        return Json(json!({"ok": false, "error": "MucDoHaiLong: 1, 2 hoặc 3"}));
    };
    let at = now_compact();
    let ok = portal.rate(dossier, level as u8, &at);
    Json(json!({"ok": ok, "NgayDanhGia": at}))
}

/// Now as `yyyyMMddHHmmss` in Vietnam's time.
pub fn now_compact() -> String {
    use std::time::{Duration, SystemTime};
    let utc7 = SystemTime::now() + Duration::from_secs(7 * 3600);
    humantime::format_rfc3339_seconds(utc7)
        .to_string()
        .chars()
        .filter(char::is_ascii_digit)
        .collect()
}
