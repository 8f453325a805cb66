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
            .with_state(self.clone())
    }

    /// Every dossier, by `MaHoSo`.
    pub fn dossiers(&self) -> BTreeMap<String, Dossier> {
        self.inner.lock().unwrap().dossiers.clone()
    }

    /// Status changes received, over every dossier.
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

fn status_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `yyyyMMddHHmmss` with plausible ranges.
fn valid_portal_date(s: &str) -> bool {
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let n = |a: usize, b: usize| s[a..b].parse::<u32>().unwrap_or(99);
    (1..=12).contains(&n(4, 6))
        && (1..=31).contains(&n(6, 8))
        && n(8, 10) < 24
        && n(10, 12) < 60
        && n(12, 14) < 60
}

/// A dossier item: its code and status. A new dossier (`isUpdating` False) must name its
/// procedure, applicant, intake date and status; an update may carry only what changes
/// (assumed: the real portal's rule is not public — result documents synced after an
/// upload come this way, without the status they were issued at).
fn validate_dossier(
    item: &Value,
    at: usize,
    updating: bool,
) -> Result<(String, Option<i64>), String> {
    let field = |name: &str| format!("data[{at}].{name}");
    let code = item["MaHoSo"].as_str().filter(|s| !s.trim().is_empty());
    let code = code.ok_or_else(|| format!("{} là bắt buộc", field("MaHoSo")))?;
    if !updating {
        for required in ["MaTTHC", "ChuHoSo", "NgayTiepNhan"] {
            if item[required].as_str().is_none_or(|s| s.trim().is_empty()) {
                return Err(format!("{} là bắt buộc", field(required)));
            }
        }
    }
    let status = match item.get("TrangThaiHoSo") {
        None | Some(Value::Null) if updating => None,
        given => Some(
            given
                .and_then(status_of)
                .filter(|s| (1..=10).contains(s))
                .ok_or_else(|| format!("{} phải là mã trạng thái 1–10", field("TrangThaiHoSo")))?,
        ),
    };
    if let Some(docs) = item.get("DanhSachGiayToKetQua").and_then(Value::as_array) {
        for (j, doc) in docs.iter().enumerate() {
            for required in ["TenGiayTo", "GiayToId"] {
                if doc[required].as_str().is_none_or(|s| s.trim().is_empty()) {
                    return Err(format!(
                        "{} là bắt buộc",
                        field(&format!("DanhSachGiayToKetQua[{j}].{required}"))
                    ));
                }
            }
        }
    }
    for date in ["NgayTiepNhan", "NgayHenTra", "NgayTra", "NgayKetThucXuLy"] {
        if let Some(s) = item[date].as_str().filter(|s| !s.is_empty())
            && !valid_portal_date(s)
        {
            return Err(format!("{} phải có dạng yyyyMMddHHmmss", field(date)));
        }
    }
    if let Some(kind) = item.get("LoaiDoiTuong").filter(|v| !v.is_null()) {
        // 1 citizen, 2 enterprise, 3 state agency, 4 other organisation; one vendor
        // documents 0/1/2, so 0 is accepted too.
        if !matches!(status_of(kind), Some(0..=4)) {
            return Err(format!(
                "{} phải là 1 (công dân), 2 (doanh nghiệp), 3 (cơ quan nhà nước) hoặc 4 (tổ chức khác)",
                field("LoaiDoiTuong")
            ));
        }
    }
    // HinhThuc is how the result is handed over (1 by post), KenhThucHien how the dossier
    // came in: a channel code in HinhThuc is refused, as the portal's codes have it.
    let codes: [(&str, &[&str], &str); 2] = [
        (
            "HinhThuc",
            &["0", "1"],
            "0 hoặc 1 (1: trả kết quả qua bưu chính)",
        ),
        (
            "KenhThucHien",
            &["1", "2", "3"],
            "1 (trực tiếp), 2 (trực tuyến) hoặc 3 (bưu chính)",
        ),
    ];
    for (name, allowed, meaning) in codes {
        let given = match item.get(name) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        if !allowed.contains(&given.as_str()) {
            return Err(format!("{} phải là {meaning}", field(name)));
        }
    }
    Ok((code.to_string(), status))
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

/// What a `DongBoHoSoMC` call carries once checked: whether it updates, and each
/// dossier's code and status.
type CheckedSync = (bool, Vec<(String, Option<i64>)>);

/// The portal's check of a `DongBoHoSoMC` body, before it looks at what it holds.
fn check_sync(body: &Value) -> Result<CheckedSync, String> {
    let updating = match body["isUpdating"].as_str() {
        Some("True") | Some("true") => true,
        Some("False") | Some("false") => false,
        _ => return Err("isUpdating phải là \"True\" hoặc \"False\"".into()),
    };
    let Some(items) = body["data"].as_array().filter(|d| !d.is_empty()) else {
        return Err("data phải là danh sách hồ sơ".into());
    };
    // Validate everything first: a call is taken whole or not at all.
    let checked = items
        .iter()
        .enumerate()
        .map(|(i, item)| validate_dossier(item, i, updating))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((updating, checked))
}

/// The portal's check of a `CapNhatTienDoHoSoMC` body, before it looks at what it holds.
fn check_progress(body: &Value) -> Result<&Vec<Value>, String> {
    let Some(items) = body["data"].as_array().filter(|d| !d.is_empty()) else {
        return Err("data phải là danh sách bước xử lý".into());
    };
    for (i, item) in items.iter().enumerate() {
        if item["MaHoSo"].as_str().is_none() {
            return Err(format!("data[{i}].MaHoSo là bắt buộc"));
        }
        if let Some(s) = item["ThoiDiemXuLy"].as_str()
            && !valid_portal_date(s)
        {
            return Err(format!(
                "data[{i}].ThoiDiemXuLy phải có dạng yyyyMMddHHmmss"
            ));
        }
        if !item["TrangThai"].is_null()
            && status_of(&item["TrangThai"]).is_none_or(|s| !(1..=10).contains(&s))
        {
            return Err(format!("data[{i}].TrangThai phải là mã trạng thái 1–10"));
        }
    }
    Ok(items)
}

/// The portal's own check of a call's body (what the bus's mapping produces, before the
/// connector adds the session and unit code): the suite applies it to every mapping's
/// expected output for the portal and the ministry's system (modelled on it).
pub fn check_request(body: &Value) -> Result<(), String> {
    match body["service"].as_str().unwrap_or_default() {
        "DongBoHoSoMC" => check_sync(body).map(|_| ()),
        "CapNhatTienDoHoSoMC" => check_progress(body).map(|_| ()),
        "TraCuuHoSo" => Ok(()),
        other => Err(format!("service `{other}` không được hỗ trợ")),
    }
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
    for ((code, status), item) in checked.into_iter().zip(items) {
        let dossier = g.dossiers.entry(code).or_insert_with(|| Dossier {
            madonvi: String::new(),
            fields: Value::Null,
            history: Vec::new(),
            steps: Vec::new(),
        });
        dossier.madonvi = body["madonvi"].as_str().unwrap_or_default().to_string();
        match (&mut dossier.fields, item) {
            // An update changes the fields it carries.
            (Value::Object(held), Value::Object(new)) if updating => {
                for (k, v) in new {
                    held.insert(k.clone(), v.clone());
                }
            }
            (held, _) => *held = item.clone(),
        }
        if let Some(status) = status {
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
    fn portal_dates_and_status_ranks() {
        assert!(valid_portal_date("20261128083000"));
        assert!(!valid_portal_date("2026-11-28 08:30"));
        assert!(!valid_portal_date("20261328083000"));
        assert!(rank(4) < rank(9) && rank(5) == rank(4) && rank(1) < rank(2));
    }

    #[test]
    fn a_channel_code_in_hinh_thuc_is_refused() {
        let row = |extra: Value| {
            let mut item = json!({"MaHoSo": "HS-1", "TrangThaiHoSo": 2});
            item.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            validate_dossier(&item, 0, true)
        };
        assert!(row(json!({"HinhThuc": "1", "KenhThucHien": "2"})).is_ok());
        let err = row(json!({"HinhThuc": "2"})).unwrap_err();
        assert!(err.contains("data[0].HinhThuc"), "{err}");
        assert!(row(json!({"KenhThucHien": "4"})).is_err());
    }
}
