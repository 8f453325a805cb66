//! Mock of the National Public Service Portal (Cổng Dịch vụ công quốc gia) dossier sync.
//!
//! The real interface is not public; this follows what provincial integration code shows
//! (see `docs/src/reference/national-formats.md`): `POST /portal/login` with username and password
//! returns a session token; `POST /portal/api` takes a JSON body whose `service` selects
//! `DongBoHoSoMC`, `CapNhatTienDoHoSoMC` or `TraCuuHoSo` and which carries `session` and
//! `madonvi`. Replies are HTTP 200 with `error_code` (success as 0, "0" or "00" —
//! configurable, since sources disagree) and `message`.
//!
//! Every call must name a unit code (`madonvi`, `000.00.00.G22`-shaped) and carry the
//! gateway adapter's `dstcode` header (`VN:GOV:000.00.00.G22:vpcpdvcprovider` by
//! default); each dossier keeps the `madonvi` it was synced under.
//!
//! The code table, in one place (what is seen in public integration code is marked
//! "code", the rest is this mock's own, **assumed**):
//!
//! | code | meaning | source |
//! |---|---|---|
//! | 0 | success (also "0", "00") | code |
//! | 1 | wrong credentials | assumed |
//! | 2 | session missing, unknown or expired: log in again | assumed |
//! | 3 | invalid field (the message names it) | code (meaning assumed) |
//! | -3 | a new dossier (`isUpdating` False) that already exists: the message says "đã tồn tại", and clients send it again as an update | code (meaning assumed) |
//! | 4 | dossier not found (progress of an unknown dossier) | assumed |
//! | 5 | an update (`isUpdating` True) of a dossier that does not exist | assumed |
//! | 6 | `madonvi` or `dstcode` missing or malformed | assumed |
//! | 9 | unknown service | assumed |
//!
//! **Whole rows.** Every `DongBoHoSoMC` row, an update as much as a new dossier, carries
//! the whole dossier (procedure, applicant, intake date, status, and what else it has):
//! the mock replaces the row it holds with the one it is sent, as the real clients assume
//! (opencps-v2 keeps a dossier's row and re-sends it whole). A partial row and a field the
//! portal does not know (of the row or of a result document) are refused with code 3,
//! naming the field.
//!
//! A dossier's `history` lists its status changes: every progress step's status, and a
//! row's status when it differs from the row held (a row sent again, or a result's row at
//! the dossier's current status, changes nothing).
//!
//! `LayThuTuc` takes `maTTHC` and answers the procedure as the national catalogue has it
//! ([`catalogue`]), for `lienthong procedures sync`.
//!
//! `LayDanhSachDanhGia` answers citizens' ratings of the unit's dossiers ([`ratings`]).
//!
//! `TraCuuHoSo` takes `mahoso` (lower case; `MaHoSo` too) and answers 0 with `result[]`:
//! empty when the portal does not have the dossier.
//!
//! **What should accompany a status.** The fee list (`DanhSachLePhi`) belongs with status 6
//! (a fee is due) and the result documents (`DanhSachGiayToKetQua`) with statuses 9 and 10.
//! The mock *reports* a dossier whose latest status lacks them (`incomplete` in
//! `GET /_mock/portal/dossiers`, with the reason) rather than refusing the call: a unit's
//! own status change to 9 reaches the portal before its result documents do (they are
//! uploaded to the data store first and follow as an update), so a refusal would hold
//! back every result. A tester reads `incomplete` once the traffic has settled: what is
//! still listed never got its fees or documents.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod catalogue;
mod check;
pub mod ratings;
pub use check::check_request;
use check::{check_progress, check_sync, status_of};

pub const WRONG_CREDENTIALS: i64 = 1;
pub const SESSION_EXPIRED: i64 = 2;
pub const INVALID_FIELD: i64 = 3;
pub const NOT_FOUND: i64 = 4;
pub const UPDATE_MISMATCH: i64 = 5;
pub const ALREADY_EXISTS: i64 = -3;
pub const BAD_UNIT: i64 = 6;
/// The `dstcode` the mock expects by default.
pub const DSTCODE: &str = "VN:GOV:000.00.00.G22:vpcpdvcprovider";
pub const UNKNOWN_SERVICE: i64 = 9;

/// How the mock portal behaves.
#[derive(Clone, Debug)]
pub struct PortalConfig {
    /// The first path segment it serves under: `portal`, or `bo-tthc` for the ministry's
    /// TTHC information system, whose interface is not public and is modelled on the
    /// portal's (assumed).
    pub service: &'static str,
    pub username: String,
    pub password: String,
    pub session_ttl: Duration,
    /// The success `error_code`: `0`, `"0"` or `"00"`.
    pub success_code: Value,
    /// The `dstcode` header every call must carry.
    pub dstcode: String,
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig {
            service: "portal",
            username: "lienthong".into(),
            password: "mock-portal-password".into(),
            session_ttl: Duration::from_secs(3600),
            success_code: json!(0),
            dstcode: DSTCODE.into(),
        }
    }
}

/// One status a dossier went through.
#[derive(Clone, Debug, Serialize)]
pub struct StatusChange {
    pub status: i64,
    /// `DongBoHoSoMC` or `CapNhatTienDoHoSoMC`.
    pub via: &'static str,
    /// The status before it ranked later in a dossier's life (e.g. 4 after 9).
    pub regression: bool,
}

/// A dossier as the portal holds it.
#[derive(Clone, Debug, Serialize)]
pub struct Dossier {
    /// The `madonvi` of the last call that synced it.
    pub madonvi: String,
    pub fields: Value,
    pub history: Vec<StatusChange>,
    pub steps: Vec<Value>,
}

#[derive(Default)]
struct Inner {
    sessions: BTreeMap<String, Instant>,
    dossiers: BTreeMap<String, Dossier>,
    next_session: u64,
    /// Dossier rows and progress steps taken, every one (a row at the status held too).
    rows_taken: usize,
    /// Citizens' ratings ([`ratings`]).
    ratings: Vec<ratings::Rating>,
}

#[derive(Clone)]
pub struct Portal {
    config: PortalConfig,
    inner: Arc<Mutex<Inner>>,
}

impl Portal {
    /// Forget every dossier and session (`POST /_mock/reset`).
    pub fn reset(&self) {
        let mut g = self.inner.lock().unwrap();
        g.sessions.clear();
        g.dossiers.clear();
        g.rows_taken = 0;
        g.ratings.clear();
    }

    pub fn new(config: PortalConfig) -> Portal {
        Portal {
            config,
            inner: Arc::default(),
        }
    }

    /// The ministry's TTHC information system: the portal's messages under `/bo-tthc`
    /// with its own password (assumed: its interface is not public).
    pub fn ministry() -> Portal {
        Portal::new(PortalConfig {
            service: "bo-tthc",
            password: "mock-ministry-password".into(),
            ..PortalConfig::default()
        })
    }

    pub fn router(&self) -> Router {
        let s = self.config.service;
        Router::new()
            .route(&format!("/{s}/login"), post(login))
            .route(&format!("/{s}/api"), post(api))
            .route(&format!("/_mock/{s}/dossiers"), get(inspect))
            .route(&format!("/_mock/{s}/ratings"), post(ratings::rate_now))
            .with_state(self.clone())
    }

    /// Every dossier, by `MaHoSo`.
    pub fn dossiers(&self) -> BTreeMap<String, Dossier> {
        self.inner.lock().unwrap().dossiers.clone()
    }

    /// Status changes received, over every dossier.
    /// Dossier rows (`DongBoHoSoMC` items) and progress steps taken so far, each one
    /// counted, whether it changed a status or not: what a drain has delivered.
    pub fn rows_taken(&self) -> usize {
        self.inner.lock().unwrap().rows_taken
    }

    pub fn status_changes(&self) -> usize {
        let g = self.inner.lock().unwrap();
        g.dossiers.values().map(|d| d.history.len()).sum()
    }

    /// `MaHoSo` → what its latest status lacks: the fee list at status 6, the result
    /// documents at 9 and 10.
    pub fn incomplete(&self) -> BTreeMap<String, String> {
        let g = self.inner.lock().unwrap();
        let has = |d: &Dossier, list: &str| {
            d.fields[list]
                .as_array()
                .is_some_and(|items| !items.is_empty())
        };
        g.dossiers
            .iter()
            .filter_map(|(code, d)| {
                let status = d.history.last()?.status;
                let missing = match status {
                    6 if !has(d, "DanhSachLePhi") => "DanhSachLePhi",
                    9 | 10 if !has(d, "DanhSachGiayToKetQua") => "DanhSachGiayToKetQua",
                    _ => return None,
                };
                Some((code.clone(), format!("status {status} without {missing}")))
            })
            .collect()
    }

    /// `MaHoSo` of the dossiers whose status ever went backwards.
    pub fn regressions(&self) -> Vec<String> {
        let g = self.inner.lock().unwrap();
        g.dossiers
            .iter()
            .filter(|(_, d)| d.history.iter().any(|h| h.regression))
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn ok(&self, extra: Value) -> Json<Value> {
        let mut body = json!({ "error_code": self.config.success_code, "message": "Thành công" });
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        Json(body)
    }
}

fn fail(code: i64, message: impl Into<String>) -> Json<Value> {
    Json(json!({ "error_code": code, "message": message.into() }))
}

async fn login(State(portal): State<Portal>, Json(body): Json<Value>) -> Json<Value> {
    let user = body["username"].as_str().unwrap_or_default();
    let pass = body["password"].as_str().unwrap_or_default();
    if user != portal.config.username || pass != portal.config.password {
        return fail(WRONG_CREDENTIALS, "Sai tên đăng nhập hoặc mật khẩu");
    }
    let mut g = portal.inner.lock().unwrap();
    g.next_session += 1;
    let token = format!("mock-session-{:08}", g.next_session);
    g.sessions
        .insert(token.clone(), Instant::now() + portal.config.session_ttl);
    drop(g);
    portal.ok(json!({ "session": token }))
}

async fn api(
    State(portal): State<Portal>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    let dstcode = headers
        .get("dstcode")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if dstcode != portal.config.dstcode {
        return fail(
            BAD_UNIT,
            format!(
                "dstcode `{dstcode}` không đúng (cần {})",
                portal.config.dstcode
            ),
        );
    }
    let madonvi = body["madonvi"].as_str().unwrap_or_default();
    if !valid_unit_code(madonvi) {
        return fail(BAD_UNIT, format!("madonvi `{madonvi}` không hợp lệ"));
    }
    let session = body["session"].as_str().unwrap_or_default();
    {
        let g = portal.inner.lock().unwrap();
        match g.sessions.get(session) {
            Some(until) if *until > Instant::now() => {}
            _ => {
                return fail(
                    SESSION_EXPIRED,
                    "Phiên làm việc không hợp lệ hoặc đã hết hạn",
                );
            }
        }
    }
    match body["service"].as_str().unwrap_or_default() {
        "DongBoHoSoMC" => sync_dossiers(&portal, &body),
        "CapNhatTienDoHoSoMC" => progress(&portal, &body),
        "TraCuuHoSo" => lookup(&portal, &body),
        "LayDanhSachDanhGia" => portal.ok(ratings::list(&portal, &body)),
        "LayThuTuc" => {
            let code = body["maTTHC"].as_str().or(body["MaTTHC"].as_str());
            portal.ok(json!({ "result": catalogue::lay_thu_tuc(code.unwrap_or_default()) }))
        }
        other => fail(
            UNKNOWN_SERVICE,
            format!("service `{other}` không được hỗ trợ"),
        ),
    }
}

/// Rank of a status in a dossier's life; a later change with a lower rank is a regression.
/// The working states 3–8 may follow each other in any order.
fn rank(status: i64) -> u8 {
    match status {
        1 => 0,
        2 => 1,
        3..=8 => 2,
        9 => 3,
        _ => 4,
    }
}

fn push_status(dossier: &mut Dossier, status: i64, via: &'static str) {
    let regression = dossier
        .history
        .last()
        .is_some_and(|last| rank(status) < rank(last.status));
    dossier.history.push(StatusChange {
        status,
        via,
        regression,
    });
}

fn sync_dossiers(portal: &Portal, body: &Value) -> Json<Value> {
    let (updating, checked) = match check_sync(body) {
        Ok(v) => v,
        Err(message) => return fail(INVALID_FIELD, message),
    };
    let items = body["data"].as_array().expect("checked above");
    let mut g = portal.inner.lock().unwrap();
    for (code, _) in &checked {
        match (g.dossiers.contains_key(code), updating) {
            (true, false) => {
                return fail(ALREADY_EXISTS, format!("Hồ sơ {code} đã tồn tại"));
            }
            (false, true) => {
                return fail(
                    UPDATE_MISMATCH,
                    format!("hồ sơ {code} chưa tồn tại (isUpdating = True)"),
                );
            }
            _ => {}
        }
    }
    g.rows_taken += items.len();
    for ((code, status), item) in checked.into_iter().zip(items) {
        let dossier = g.dossiers.entry(code).or_insert_with(|| Dossier {
            madonvi: String::new(),
            fields: Value::Null,
            history: Vec::new(),
            steps: Vec::new(),
        });
        dossier.madonvi = body["madonvi"].as_str().unwrap_or_default().to_string();
        // A row at the status the portal's row already has is no status change: a
        // result's documents, or the same row sent again (at least once).
        let held = status_of(&dossier.fields["TrangThaiHoSo"]);
        // The row sent replaces the row held: what it leaves out is gone.
        dossier.fields = item.clone();
        if let Some(status) = status.filter(|s| held != Some(*s)) {
            push_status(dossier, status, "DongBoHoSoMC");
        }
    }
    drop(g);
    portal.ok(json!({}))
}

fn progress(portal: &Portal, body: &Value) -> Json<Value> {
    let items = match check_progress(body) {
        Ok(items) => items,
        Err(message) => return fail(INVALID_FIELD, message),
    };
    let mut g = portal.inner.lock().unwrap();
    for item in items {
        let code = item["MaHoSo"].as_str().unwrap_or_default();
        if !g.dossiers.contains_key(code) {
            return fail(NOT_FOUND, format!("không tìm thấy hồ sơ {code}"));
        }
    }
    g.rows_taken += items.len();
    for item in items {
        let code = item["MaHoSo"].as_str().unwrap_or_default();
        let dossier = g.dossiers.get_mut(code).expect("checked above");
        dossier.steps.push(item.clone());
        if let Some(status) = status_of(&item["TrangThai"]) {
            push_status(dossier, status, "CapNhatTienDoHoSoMC");
        }
    }
    drop(g);
    portal.ok(json!({}))
}

fn lookup(portal: &Portal, body: &Value) -> Json<Value> {
    let code = body["mahoso"]
        .as_str()
        .or(body["MaHoSo"].as_str())
        .unwrap_or_default();
    let g = portal.inner.lock().unwrap();
    let result = match g.dossiers.get(code) {
        Some(d) => {
            let status = d.history.last().map(|h| h.status);
            vec![json!({ "MaHoSo": code, "TrangThaiHoSo": status, "HoSo": d.fields })]
        }
        None => Vec::new(),
    };
    drop(g);
    portal.ok(json!({ "result": result }))
}

/// `madonvi` shaped like `000.00.17.G22`.
fn valid_unit_code(code: &str) -> bool {
    let parts: Vec<&str> = code.split('.').collect();
    parts.len() == 4
        && [3, 2, 2]
            .iter()
            .zip(&parts)
            .all(|(n, p)| p.len() == *n && p.bytes().all(|b| b.is_ascii_digit()))
        && parts[3].len() == 3
        && parts[3].as_bytes()[0].is_ascii_uppercase()
        && parts[3][1..].bytes().all(|b| b.is_ascii_digit())
}

async fn inspect(State(portal): State<Portal>) -> Json<Value> {
    let dossiers = portal.dossiers();
    let regressions = portal.regressions();
    let incomplete = portal.incomplete();
    Json(json!({ "dossiers": dossiers, "regressions": regressions, "incomplete": incomplete }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_ranks() {
        assert!(rank(4) < rank(9) && rank(5) == rank(4) && rank(1) < rank(2));
    }
}
