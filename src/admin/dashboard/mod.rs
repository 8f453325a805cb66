//! The IT Center's dashboard at `/`, in Vietnamese, rendered on the server (maud): the
//! health of each national platform, backlog and oldest pending per unit, recent failures,
//! dead letters with a replay button for operators, search by `MaHoSo`, and the action
//! plan's KPIs per unit against their 2024 targets, each with its definition.
//!
//! Every figure comes from the same documents the admin API serves
//! ([`api::status_document`], [`api::dossier_document`], the KPI snapshot), so the page and
//! the API never disagree. Sign-in takes an admin token once and opens a session kept on
//! the server ([`super::session`]); the browser holds only the session's random id in an
//! HttpOnly, SameSite=Strict cookie (also `Secure` when the bus serves HTTPS); buttons are plain HTML forms (no script needed), and a few lines
//! of script refresh the page every 15 seconds unless the operator is typing.

use super::AdminState;
use super::api;
use super::session::SessionHolder;
use crate::config::AdminRole;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;
use serde::Deserialize;
use std::sync::Arc;

mod charts;
mod dead_letters;
mod evidence;
mod form06a;
mod lookups;
mod message;
mod reconciliation;
mod route_map;
mod studio;
mod view;

use view::{REFRESH_SCRIPT, View, error_page, layout, login_page};

pub fn routes(state: Arc<AdminState>) -> axum::Router {
    axum::Router::new()
        .route("/", get(page))
        .route("/dang-nhap", post(login))
        .route("/dang-xuat", post(logout))
        .route("/thu-chet", get(dead_letters::page))
        .route("/tra-cuu", get(lookups::page))
        .route("/bang-chung", get(evidence::page))
        .route("/doi-soat", get(reconciliation::page))
        .route("/doi-soat/tai-ve", get(reconciliation::download))
        .route("/thu-chet/xac-nhan", post(dead_letters::confirm))
        .route("/thu-chet/thuc-hien", post(dead_letters::execute))
        .route("/thu-chet/{target}/{id}/gui-lai", post(replay))
        .route("/bao-cao", get(report))
        .route(
            "/anh-xa",
            get(studio::page)
                .post(studio::run)
                .layer(axum::extract::DefaultBodyLimit::max(
                    studio::MAX_SAMPLE_BYTES + 64 * 1024,
                )),
        )
        .route("/anh-xa/tai-ve", post(studio::download_file))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            guard,
        ))
        .with_state(state)
}

/// Every dashboard answer: no framing, no scripts or forms but its own (a
/// Content-Security-Policy that names the one refresh script by its hash). Every POST:
/// its `Origin`, when the browser sends one, must be this bus (its scheme and `Host`: the
/// page of `http://` on the same host is another origin of a bus served over HTTPS), so that no other
/// site can make a signed-in browser press a button here — SameSite cookies alone do not
/// cover older browsers or same-site hosts. Forms also carry a per-session token
/// ([`csrf_token`]).
async fn guard(
    State(s): State<Arc<AdminState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if req.method() == axum::http::Method::POST && !same_origin(req.headers(), s.secure_cookies) {
        return forbidden("Yêu cầu đến từ trang khác (Origin không khớp); thao tác bị từ chối.");
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&content_security_policy()).expect("ASCII policy"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: with it a browser sends `Origin: null` on its own form posts.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

fn content_security_policy() -> String {
    use base64::Engine;
    use sha2::Digest;
    let script = base64::engine::general_purpose::STANDARD
        .encode(sha2::Sha256::digest(REFRESH_SCRIPT.as_bytes()));
    format!(
        "default-src 'none'; script-src 'sha256-{script}'; style-src 'unsafe-inline'; \
         img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// No `Origin` (a same-origin form in an older browser, or a tool), or one that is this
/// bus: the scheme browsers reach it by (`https` when it serves TLS or stands behind a TLS
/// proxy) and this request's `Host`.
fn same_origin(headers: &HeaderMap, https: bool) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some((scheme, origin_host)) = origin.split_once("://") else {
        return false;
    };
    let expected = if https { "https" } else { "http" };
    !host.is_empty()
        && scheme.eq_ignore_ascii_case(expected)
        && origin_host.trim_end_matches('/').eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_this_bus_only_with_its_scheme_and_host() {
        let headers = |origin: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, HeaderValue::from_static("bus.most.gov.vn"));
            h.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
            h
        };
        assert!(same_origin(&headers("https://bus.most.gov.vn"), true));
        assert!(!same_origin(&headers("http://bus.most.gov.vn"), true));
        assert!(!same_origin(&headers("https://evil.example"), true));
        assert!(!same_origin(&headers("null"), true));
        assert!(same_origin(&headers("http://bus.most.gov.vn"), false));
        assert!(same_origin(&HeaderMap::new(), true), "no Origin: a tool");
    }
}

/// The anti-forgery token of a session: derived from its id (which only the browser's
/// HttpOnly cookie holds), so a page of another site can neither read nor guess it.
fn csrf_token(session_id: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(format!("lienthong-csrf\0{session_id}").as_bytes());
    crate::hex::encode(&d[..16])
}

/// The form's token matches one of the request's open sessions.
fn csrf_ok(s: &AdminState, headers: &HeaderMap, token: &str) -> bool {
    session_ids(headers).any(|id| {
        s.sessions.find(id).is_some()
            && crate::web::constant_time_eq(csrf_token(id).as_bytes(), token.as_bytes())
    })
}

fn forbidden(text: &str) -> Response {
    let body = html! {
        header { h1 { "Hệ thống liên thông Bộ Khoa học và Công nghệ" } }
        main { section { p.bad #tu-choi { (text) } p { a href="/" { "Về trang giám sát" } } } }
    };
    (StatusCode::FORBIDDEN, layout("Từ chối", body)).into_response()
}

/// The `csrf` field of a dashboard form (URL-encoded body; the token is hex, so it needs
/// no decoding). A request without a body simply has none.
fn csrf_field(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .split('&')
        .find_map(|pair| pair.strip_prefix("csrf="))
        .unwrap_or_default()
        .to_string()
}

#[derive(Deserialize, Default)]
struct PageQuery {
    /// The dossier searched for.
    ma_ho_so: Option<String>,
    /// A notice after an action (replayed, ...), shown only with its seal `ma`.
    thong_bao: Option<String>,
    ma: Option<String>,
    /// The KPIs' period (`2024-Q3`, `2024-07`, `2024`, `ytd`, `all`).
    ky: Option<String>,
}

#[derive(Deserialize)]
struct ReportQuery {
    ky: Option<String>,
    dinh_dang: Option<String>,
    /// `06a` for the form 06a; the plan's report otherwise.
    bieu: Option<String>,
}

/// The KPI report of a period as a file (`/bao-cao?ky=2024-Q3&dinh_dang=xlsx`).
async fn report(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Query(q): Query<ReportQuery>,
) -> Response {
    use crate::admin::report::{ReportForm, ReportFormat};
    if session_of(&s, &headers).is_none() {
        return login_page(None, StatusCode::UNAUTHORIZED);
    }
    let Ok(period) = crate::admin::period::Period::parse(q.ky.as_deref().unwrap_or("ytd")) else {
        return error_page(
            "Kỳ báo cáo không hợp lệ: chọn tháng (2024-07), quý (2024-Q3), năm (2024), ytd hoặc all.",
        );
    };
    let Some(format) = ReportFormat::parse(q.dinh_dang.as_deref().unwrap_or("csv")) else {
        return error_page("Định dạng không hợp lệ: csv, csv-vn, xlsx hoặc pdf.");
    };
    let Some(form) = ReportForm::parse(q.bieu.as_deref().unwrap_or("plan")) else {
        return error_page("Biểu báo cáo không hợp lệ: plan (Phụ lục I) hoặc 06a.");
    };
    // A report is computed now, not taken from the page's snapshot.
    let computed = crate::admin::kpi::snapshot_for(&s, period, true).await.ok();
    let Some(kpis) = computed else {
        return error_page("Không tính được chỉ tiêu.");
    };
    let doc = serde_json::to_value(&*kpis).expect("snapshots serialize");
    match form.render(&doc, format) {
        Ok((bytes, _)) => (
            [
                (header::CONTENT_TYPE, format.content_type().to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"{}.{}\"",
                        form.file_stem(&period.id()),
                        format.extension()
                    ),
                ),
                (header::CACHE_CONTROL, "no-store".to_string()),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => error_page(&e),
    }
}

async fn page(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let Some(SessionHolder { name, role }) = session_of(&s, &headers) else {
        return login_page(None, StatusCode::OK);
    };
    let csrf = session_csrf(&s, &headers);
    let period =
        q.ky.as_deref()
            .and_then(|k| crate::admin::period::Period::parse(k).ok())
            .unwrap_or_default();
    let kpis = crate::admin::kpi::snapshot_for(&s, period, false)
        .await
        .ok();
    let state = Arc::clone(&s);
    let searched = q.ma_ho_so.clone();
    // The documents read the outbox: off the async threads.
    let docs = tokio::task::spawn_blocking(move || {
        let status = api::status_document(&state)?;
        let dead = api::select(
            &state,
            &api::DeadFilter {
                limit: Some(50),
                ..Default::default()
            },
        )
        .map_err(|e| crate::outbox::StoreError::Corrupt(format!("{e:?}")))?;
        // A message id (a UUID) finds the message; anything else is a dossier code.
        let searched = searched.as_deref().map(str::trim).filter(|k| !k.is_empty());
        let as_id = searched.and_then(|k| k.parse::<crate::envelope::MessageId>().ok());
        let (dossier, message) = match (searched, as_id) {
            (_, Some(id)) => (None, Some(api::message_document(&state, id, true)?)),
            (Some(key), None) => (
                Some(api::dossier_document(&state, key, None, DOSSIER_EVENTS)?),
                None,
            ),
            (None, None) => (None, None),
        };
        let months = crate::admin::kpi::monthly(&state, 12, crate::time::now_ms())?;
        Ok::<_, crate::outbox::StoreError>((status, dead, dossier, message, months))
    })
    .await;
    let samples = s.history.samples();
    let (status, dead, dossier, message, months) = match docs {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => return error_page(&format!("Không đọc được hàng đợi: {e}")),
        Err(e) => return error_page(&format!("Lỗi nội bộ: {e}")),
    };
    let view = View {
        s: &s,
        who: &name,
        operator: role == AdminRole::Operator,
        status: &status,
        dead: &dead,
        kpis: kpis.as_deref(),
        search: q.ma_ho_so.as_deref(),
        dossier: dossier.as_ref(),
        message: message.as_ref().map(Option::as_ref),
        notice: sealed_notice(&csrf, q.thong_bao.as_deref(), q.ma.as_deref()),
        csrf: &csrf,
        months: &months,
        samples: &samples,
    };
    (
        [(header::CACHE_CONTROL, "no-store")],
        layout("Giám sát liên thông", view.render()),
    )
        .into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

/// The dashboard's session cookie: a random session id, never the admin token.
pub const SESSION_COOKIE: &str = "lienthong_session";
/// Events of a dossier the search shows (the first page; the API pages the rest).
const DOSSIER_EVENTS: usize = 200;

/// The session ids the request's cookies carry (a browser may send several).
fn session_ids(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(SESSION_COOKIE))
        .filter_map(|c| c.strip_prefix('='))
}

/// Who the request's session belongs to, if it is open.
fn session_of(s: &AdminState, headers: &HeaderMap) -> Option<SessionHolder> {
    session_ids(headers).find_map(|id| s.sessions.find(id))
}

/// `Set-Cookie` for the session `id` (empty and expired: sign-out).
fn session_cookie(s: &AdminState, id: &str) -> HeaderValue {
    let secure = if s.secure_cookies { "; Secure" } else { "" };
    let expiry = if id.is_empty() { "; Max-Age=0" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/{secure}{expiry}"
    ))
    .expect("a hex session id makes a valid header")
}

async fn login(State(s): State<Arc<AdminState>>, Form(f): Form<LoginForm>) -> Response {
    let Some((name, role)) = s.tokens.check(f.token.trim()) else {
        s.tokens.login_failed("dashboard");
        return login_page(
            Some("Mã truy cập không đúng. Dùng mã quản trị được cấp trong [admin] tokens."),
            StatusCode::UNAUTHORIZED,
        );
    };
    tracing::info!(admin = %name, "dashboard sign-in");
    let token = crate::web::key_digest(f.token.trim().as_bytes());
    let id = s.sessions.open(SessionHolder { name, role }, token);
    let mut resp = Redirect::to("/").into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&s, &id));
    resp
}

/// Sign out: the session ends on the server, not only in this browser.
async fn logout(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !csrf_ok(&s, &headers, &csrf_field(&body)) {
        return forbidden("Thiếu mã chống giả mạo của phiên; hãy tải lại trang rồi thử lại.");
    }
    for id in session_ids(&headers) {
        s.sessions.close(id);
    }
    let mut resp = Redirect::to("/").into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&s, ""));
    resp
}

/// The replay button: operators only, then back to the page with a notice.
async fn replay(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Path((target, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let Some(SessionHolder { name, role }) = session_of(&s, &headers) else {
        return login_page(
            Some("Phiên đăng nhập đã hết; hãy đăng nhập lại."),
            StatusCode::UNAUTHORIZED,
        );
    };
    if !csrf_ok(&s, &headers, &csrf_field(&body)) {
        return forbidden("Thiếu mã chống giả mạo của phiên; hãy tải lại trang rồi thử lại.");
    }
    if role != AdminRole::Operator {
        return notice_redirect(
            &s,
            &headers,
            "Cần mã quản trị có quyền vận hành (operator) để gửi lại.",
        );
    }
    let Ok(id) = id.parse::<crate::envelope::MessageId>() else {
        return notice_redirect(&s, &headers, "Mã thông điệp không hợp lệ.");
    };
    match s.outbox.replay(&target, id).await {
        Ok(()) => {
            tracing::info!(operator = %name, %target, %id, "dead letter replayed from the dashboard");
            s.audit.record(
                "dead_letter_replay",
                &name,
                serde_json::json!({"target": target, "id": id, "via": "dashboard"}),
            );
            notice_redirect(
                &s,
                &headers,
                &format!("Đã gửi lại thông điệp {id} tới {target}."),
            )
        }
        Err(crate::outbox::OpError::NotFound) => notice_redirect(
            &s,
            &headers,
            "Thư chết này không còn (đã được gửi lại hoặc hủy).",
        ),
        Err(e) => notice_redirect(&s, &headers, &format!("Không gửi lại được: {e}")),
    }
}

fn notice_redirect(s: &AdminState, headers: &HeaderMap, text: &str) -> Response {
    Redirect::to(&format!(
        "/?{}",
        notice_query(&session_csrf(s, headers), text)
    ))
    .into_response()
}

/// The anti-forgery token of the request's open session ("" without one).
pub(super) fn session_csrf(s: &AdminState, headers: &HeaderMap) -> String {
    session_ids(headers)
        .find(|id| s.sessions.find(id).is_some())
        .map(csrf_token)
        .unwrap_or_default()
}

/// A notice after an action travels in the redirect's query (`thong_bao`), so a link from
/// anywhere could put any text in the operator's notice box (a phishing lure). It goes
/// with its seal (`ma`): a keyed hash of the text under the session's anti-forgery token,
/// which only that session's pages know; a notice without its seal is not shown.
fn notice_seal(csrf: &str, text: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(format!("lienthong-notice\0{csrf}\0{text}").as_bytes());
    crate::hex::encode(&d[..16])
}

/// `thong_bao=…&ma=…` for a notice to the session of `csrf`.
pub(super) fn notice_query(csrf: &str, text: &str) -> String {
    format!(
        "thong_bao={}&ma={}",
        url_encode(text),
        notice_seal(csrf, text)
    )
}

/// The notice of a page's query, if it carries this session's seal.
pub(super) fn sealed_notice<'a>(
    csrf: &str,
    text: Option<&'a str>,
    seal: Option<&str>,
) -> Option<&'a str> {
    let (text, seal) = (text?, seal?);
    (!csrf.is_empty()
        && crate::web::constant_time_eq(notice_seal(csrf, text).as_bytes(), seal.as_bytes()))
    .then_some(text)
}

pub(super) fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
