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
use super::kpi::{KPIS, KpiSnapshot, Ratio};
use super::session::SessionHolder;
use crate::config::AdminRole;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

pub fn routes(state: Arc<AdminState>) -> axum::Router {
    axum::Router::new()
        .route("/", get(page))
        .route("/dang-nhap", post(login))
        .route("/dang-xuat", post(logout))
        .route("/thu-chet/{target}/{id}/gui-lai", post(replay))
        .layer(axum::middleware::from_fn(guard))
        .with_state(state)
}

/// Every dashboard answer: no framing, no scripts or forms but its own (a
/// Content-Security-Policy that names the one refresh script by its hash). Every POST:
/// its `Origin`, when the browser sends one, must be this bus (`Host`), so that no other
/// site can make a signed-in browser press a button here — SameSite cookies alone do not
/// cover older browsers or same-site hosts. Forms also carry a per-session token
/// ([`csrf_token`]).
async fn guard(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if req.method() == axum::http::Method::POST && !same_origin(req.headers()) {
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

/// No `Origin` (a same-origin form in an older browser, or a tool), or one whose host is
/// this request's `Host`.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .split_once("://")
        .map_or("", |(_, rest)| rest.trim_end_matches('/'));
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
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
            && crate::ingress::constant_time_eq(csrf_token(id).as_bytes(), token.as_bytes())
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
    /// A notice after an action (replayed, ...).
    thong_bao: Option<String>,
}

async fn page(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let Some(SessionHolder { name, role }) = session_of(&s, &headers) else {
        return login_page(None, StatusCode::OK);
    };
    let csrf = session_ids(&headers)
        .find(|id| s.sessions.find(id).is_some())
        .map(csrf_token)
        .unwrap_or_default();
    let kpis = match s.kpis.latest() {
        Some(k) => Some(k),
        None => s.kpis.refresh(&s).await.ok(),
    };
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
        let dossier = match searched.as_deref().map(str::trim) {
            Some(key) if !key.is_empty() => Some(api::dossier_document(&state, key)?),
            _ => None,
        };
        Ok::<_, crate::outbox::StoreError>((status, dead, dossier))
    })
    .await;
    let (status, dead, dossier) = match docs {
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
        notice: q.thong_bao.as_deref(),
        csrf: &csrf,
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
    let id = s.sessions.open(SessionHolder { name, role });
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
        return notice_redirect("Cần mã quản trị có quyền vận hành (operator) để gửi lại.");
    }
    let Ok(id) = id.parse::<crate::envelope::MessageId>() else {
        return notice_redirect("Mã thông điệp không hợp lệ.");
    };
    match s.outbox.replay(&target, id).await {
        Ok(()) => {
            tracing::info!(operator = %name, %target, %id, "dead letter replayed from the dashboard");
            s.audit.record(
                "dead_letter_replay",
                &name,
                serde_json::json!({"target": target, "id": id, "via": "dashboard"}),
            );
            notice_redirect(&format!("Đã gửi lại thông điệp {id} tới {target}."))
        }
        Err(crate::outbox::OpError::NotFound) => {
            notice_redirect("Thư chết này không còn (đã được gửi lại hoặc hủy).")
        }
        Err(e) => notice_redirect(&format!("Không gửi lại được: {e}")),
    }
}

fn notice_redirect(text: &str) -> Response {
    let query: String = url_encode(text);
    Redirect::to(&format!("/?thong_bao={query}")).into_response()
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

const STYLE: &str = r#"
body{font-family:system-ui,"Segoe UI",Roboto,Arial,sans-serif;margin:0;background:#f4f6f8;color:#1d2733}
header{background:#a50e0e;color:#fff;padding:12px 24px;display:flex;justify-content:space-between;align-items:center}
header h1{font-size:20px;margin:0}
main{padding:16px 24px;max-width:1400px}
section{background:#fff;border-radius:6px;padding:12px 16px;margin-bottom:16px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
h2{font-size:17px;margin:4px 0 10px}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{padding:6px 8px;border-bottom:1px solid #e3e7eb;text-align:left;vertical-align:top}
th{background:#eef1f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#17692e;font-weight:600}.warn{color:#a35a00;font-weight:600}.bad{color:#b3261e;font-weight:600}
.muted{color:#65707c;font-size:13px}
.notice{background:#e7f3ea;border:1px solid #9bc7a6;padding:8px 12px;border-radius:4px;margin-bottom:12px}
button{cursor:pointer;padding:4px 10px}
dl.defs dt{font-weight:600;margin-top:6px}dl.defs dd{margin-left:16px}
form.inline{display:inline}
"#;

const REFRESH_SCRIPT: &str = r#"
setInterval(function(){
  var a=document.activeElement;
  if(document.getElementById('tu-dong').checked && !(a && a.tagName==='INPUT' && a.type==='text')){location.reload();}
},15000);
"#;

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="vi" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — lienthong" }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
}

fn login_page(error: Option<&str>, status: StatusCode) -> Response {
    let body = html! {
        header { h1 { "Hệ thống liên thông Bộ Khoa học và Công nghệ" } }
        main {
            section style="max-width:480px" {
                h2 { "Đăng nhập giám sát" }
                @if let Some(e) = error { p.bad #loi-dang-nhap { (e) } }
                form method="post" action="/dang-nhap" {
                    label for="token" { "Mã truy cập quản trị" } br;
                    input #token type="password" name="token" size="40" autocomplete="off" required;
                    " "
                    button #dang-nhap type="submit" { "Đăng nhập" }
                }
                p.muted { "Mã được cấp trong mục [admin] tokens của cấu hình (vai trò xem hoặc vận hành)." }
            }
        }
    };
    (status, layout("Đăng nhập", body)).into_response()
}

fn error_page(message: &str) -> Response {
    let body = html! {
        header { h1 { "Hệ thống liên thông" } }
        main { section { p.bad { (message) } p { a href="/" { "Tải lại" } } } }
    };
    (StatusCode::SERVICE_UNAVAILABLE, layout("Lỗi", body)).into_response()
}

/// Everything the page shows, read once per request.
struct View<'a> {
    s: &'a AdminState,
    who: &'a str,
    operator: bool,
    status: &'a Value,
    dead: &'a [crate::outbox::DeadLetter],
    kpis: Option<&'a KpiSnapshot>,
    search: Option<&'a str>,
    dossier: Option<&'a Value>,
    notice: Option<&'a str>,
    /// The session's anti-forgery token, in every POST form.
    csrf: &'a str,
}

/// Vietnamese name of a configured target.
fn target_label(s: &AdminState, target: &str) -> &'static str {
    if s.portal_targets.iter().any(|t| t == target) {
        "Cổng Dịch vụ công quốc gia"
    } else if s.payment_targets.iter().any(|t| t == target) {
        "Nền tảng thanh toán trực tuyến"
    } else if target.contains("datastore") {
        "Kho dữ liệu điện tử cá nhân"
    } else if target.contains("notify") {
        "Kênh thông báo công dân (SMS)"
    } else if target.ends_with("_inbox") {
        "Hệ thống nghiệp vụ của đơn vị"
    } else {
        ""
    }
}

fn unit_label(unit: &str) -> &'static str {
    match unit {
        "stameq" => "Ủy ban Tiêu chuẩn Đo lường Chất lượng quốc gia",
        "nafosted" => "Quỹ Phát triển khoa học và công nghệ quốc gia",
        "ipo" => "Cục Sở hữu trí tuệ",
        "varans" => "Cục An toàn bức xạ và hạt nhân",
        _ => "",
    }
}

/// `12,5 %` (Vietnamese decimal comma).
fn percent(p: f64) -> String {
    format!("{:.1} %", p).replace('.', ",")
}

fn age(v: &Value) -> String {
    match v.as_u64() {
        None => "—".into(),
        Some(s) if s < 120 => format!("{s} giây"),
        Some(s) if s < 7200 => format!("{} phút", s / 60),
        Some(s) if s < 172_800 => format!("{} giờ", s / 3600),
        Some(s) => format!("{} ngày", s / 86_400),
    }
}

/// Time in Vietnam (UTC+7), `HH:MM:SS dd/MM/yyyy`.
fn vn_time(ms: u64) -> String {
    let t = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms + 7 * 3_600_000),
    )
    .to_string();
    // 2026-11-28T19:58:01Z
    format!("{} {}/{}/{}", &t[11..19], &t[8..10], &t[5..7], &t[0..4])
}

/// Failed attempts that will be retried, over attempts that reached a verdict of the
/// platform's own: a message the platform refuses for good (or that cannot be mapped) says
/// nothing about the platform's health.
fn transient_failure_share(recent: &Value) -> f64 {
    let failed = recent["failed_attempts"].as_f64().unwrap_or(0.0);
    let delivered = recent["delivered"].as_f64().unwrap_or(0.0);
    if failed + delivered == 0.0 {
        0.0
    } else {
        failed / (failed + delivered)
    }
}

/// A platform's health in words and its colour class.
fn health(t: &Value) -> (&'static str, &'static str) {
    if t["paused"] == true {
        ("Tạm dừng", "warn")
    } else if t["circuit"] == "open" {
        ("Mất kết nối", "bad")
    } else if t["circuit"] == "half_open" {
        ("Đang thử kết nối lại", "warn")
    } else if transient_failure_share(&t["recent"]) > 0.2 {
        ("Chập chờn", "warn")
    } else {
        ("Hoạt động tốt", "ok")
    }
}

impl View<'_> {
    fn render(&self) -> Markup {
        html! {
            header {
                h1 { "Giám sát liên thông hồ sơ — Bộ Khoa học và Công nghệ" }
                div {
                    span.muted style="color:#fde" { (self.who) " (" (if self.operator { "vận hành" } else { "xem" }) ") · " }
                    label style="font-size:13px" { input #tu-dong type="checkbox" checked; " tự động làm mới" }
                    " "
                    form.inline method="post" action="/dang-xuat" {
                        input type="hidden" name="csrf" value=(self.csrf);
                        button type="submit" { "Đăng xuất" }
                    }
                }
            }
            main {
                @if let Some(n) = self.notice { div.notice #thong-bao { (n) } }
                p.muted {
                    "Cập nhật lúc " (vn_time(crate::time::now_ms()))
                    " · " (self.status["pending"]) " lượt gửi đang chờ · "
                    (self.status["dead"]) " thư chết · số liệu gần đây tính trong "
                    (self.status["window_seconds"].as_u64().unwrap_or(0) / 60) " phút"
                }
                (self.search_box())
                @if let Some(d) = self.dossier { (self.dossier_view(d)) }
                (self.platforms())
                (self.units())
                (self.kpi_table())
                (self.failures())
                (self.dead_letters())
            }
            script { (PreEscaped(REFRESH_SCRIPT)) }
        }
    }

    fn search_box(&self) -> Markup {
        html! {
            section {
                h2 { "Tra cứu hồ sơ theo mã hồ sơ (MaHoSo)" }
                form method="get" action="/" {
                    input #ma-ho-so type="text" name="ma_ho_so" size="36" placeholder="ví dụ: NAFOSTED-2024-00042" value=[self.search];
                    " " button #tra-cuu type="submit" { "Tra cứu" }
                }
            }
        }
    }

    fn dossier_view(&self, d: &Value) -> Markup {
        let events = d["events"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        html! {
            section #ho-so {
                h2 { "Hồ sơ " (d["key"].as_str().unwrap_or("")) }
                @if events.is_empty() {
                    p.bad #ho-so-khong-thay { "Không tìm thấy hồ sơ này (chưa có sự kiện nào, hoặc đã quá thời hạn lưu)." }
                } @else {
                    p {
                        "Trạng thái mới nhất đã lên Cổng DVCQG: "
                        @match d["portal_synced"].as_bool() {
                            Some(true) => span.ok #ho-so-dong-bo { "Đã đồng bộ" },
                            Some(false) => span.bad #ho-so-dong-bo { "Chưa đồng bộ" },
                            None => span.muted #ho-so-dong-bo { "Không có sự kiện gửi Cổng" },
                        }
                    }
                    table {
                        tr { th { "Nơi nhận" } th { "Sự kiện mới nhất" } th { "Tình trạng" } }
                        @for t in d["targets"].as_array().map(Vec::as_slice).unwrap_or_default() {
                            tr {
                                td { (t["target"].as_str().unwrap_or("")) " " span.muted { (target_label(self.s, t["target"].as_str().unwrap_or(""))) } }
                                td.muted { (t["latest_event"].as_str().unwrap_or("")) }
                                td { (delivery_text(&t["delivery"])) }
                            }
                        }
                    }
                    h2 style="margin-top:12px" { "Các sự kiện" }
                    table {
                        tr { th { "Nhận lúc" } th { "Đơn vị" } th { "Luồng" } th { "Gửi tới" } }
                        @for e in events {
                            tr {
                                td { (vn_time(e["received_ms"].as_u64().unwrap_or(0))) }
                                td { (e["unit"].as_str().unwrap_or("")) }
                                td { (e["flow"].as_str().unwrap_or("")) }
                                td {
                                    @for dl in e["deliveries"].as_array().map(Vec::as_slice).unwrap_or_default() {
                                        div { (dl["target"].as_str().unwrap_or("")) ": " (delivery_text(&dl["delivery"])) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn platforms(&self) -> Markup {
        let targets = self.status["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        html! {
            section #nen-tang {
                h2 { "Tình trạng các nền tảng quốc gia và hệ thống nhận" }
                table {
                    tr {
                        th { "Nơi nhận" } th { "Tình trạng" } th { "Đang chờ" } th { "Chờ thử lại" }
                        th { "Hồ sơ bị chặn" } th { "Chờ lâu nhất" } th { "Đã gửi (gần đây)" }
                        th { "Tỷ lệ lỗi" } th { "Độ trễ p99" }
                    }
                    @for t in targets {
                        @let name = t["target"].as_str().unwrap_or("");
                        @let (label, class) = health(t);
                        tr #{"target-" (name)} {
                            td { b { (name) } br; span.muted { (target_label(self.s, name)) } }
                            td { span class=(class) #{"target-" (name) "-health"} { (label) } }
                            td.num #{"target-" (name) "-pending"} { (t["pending"]) }
                            td.num { (t["retrying"]) }
                            td.num { (t["blocked_dossiers"]) }
                            td.num { (age(&t["oldest_pending_age_s"])) }
                            td.num { (t["recent"]["delivered"]) }
                            td.num { (percent(t["recent"]["error_rate"].as_f64().unwrap_or(0.0) * 100.0)) }
                            td.num { @match t["latency_p99_ms"].as_u64() { Some(ms) => { "≤ " (ms) " ms" }, None => "—" } }
                        }
                    }
                }
            }
        }
    }

    fn units(&self) -> Markup {
        let units = self.status["units"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        html! {
            section #don-vi {
                h2 { "Tồn đọng theo đơn vị" }
                table {
                    tr {
                        th { "Đơn vị" } th { "Đang chờ gửi" } th { "Đang gửi" } th { "Chờ thử lại" }
                        th { "Thư chết" } th { "Chờ lâu nhất" } th { "Đã gửi (gần đây)" } th { "Tỷ lệ lỗi" }
                    }
                    @for u in units {
                        @let name = u["unit"].as_str().unwrap_or("");
                        tr {
                            td { b { (name) } br; span.muted { (unit_label(name)) } }
                            td.num #{"unit-" (name) "-pending"} { (u["pending"]) }
                            td.num { (u["in_flight"]) }
                            td.num { (u["retrying"]) }
                            td.num #{"unit-" (name) "-dead"} class=@if u["dead"].as_u64().unwrap_or(0) > 0 { "num bad" } @else { "num" } { (u["dead"]) }
                            td.num #{"unit-" (name) "-oldest"} { (age(&u["oldest_pending_age_s"])) }
                            td.num #{"unit-" (name) "-delivered"} { (u["recent"]["delivered"]) }
                            td.num { (percent(u["recent"]["error_rate"].as_f64().unwrap_or(0.0) * 100.0)) }
                        }
                    }
                }
            }
        }
    }

    fn kpi_table(&self) -> Markup {
        html! {
            section #chi-tieu {
                h2 { "Chỉ tiêu của Kế hoạch hành động năm 2024" }
                @match self.kpis {
                    None => p.muted { "Chưa tính được chỉ tiêu." },
                    Some(k) => {
                        p.muted { "Cộng dồn từ mọi sự kiện hệ thống đã nhận, kể cả đã quá thời hạn lưu; cập nhật lúc " (vn_time(k.computed_at_ms)) "." }
                        table {
                            tr {
                                th { "Đơn vị" } th { "Số hồ sơ" }
                                @for d in &KPIS { th { (d.name) br; span.muted { "chỉ tiêu " (percent(d.target_percent).replace(",0", "")) } } }
                            }
                            @for u in k.units.iter().chain(std::iter::once(&k.overall)) {
                                @let unit = if u.unit.is_empty() { "tong" } else { u.unit.as_str() };
                                tr {
                                    td { b { @if u.unit.is_empty() { "Toàn Bộ" } @else { (u.unit) } } }
                                    td.num #{"kpi-" (unit) "-dossiers"} { (u.dossiers) }
                                    @for d in &KPIS {
                                        @let r = u.kpis.get(d.id).copied().unwrap_or_default();
                                        td.num #{"kpi-" (unit) "-" (d.id)} { (ratio_cell(r, d.target_percent)) }
                                    }
                                }
                            }
                        }
                        dl.defs {
                            @for d in &KPIS {
                                dt { (d.name) " — chỉ tiêu " (percent(d.target_percent).replace(",0", "")) }
                                dd { (d.definition) }
                            }
                        }
                    }
                }
            }
        }
    }

    fn failures(&self) -> Markup {
        let list = self.status["recent_failures"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        html! {
            section #loi-gan-day {
                h2 { "Lỗi gần đây" }
                @if list.is_empty() {
                    p.muted { "Không có lỗi nào gần đây." }
                } @else {
                    table {
                        tr { th { "Lúc" } th { "Nơi nhận" } th { "Đơn vị" } th { "Lỗi" } th { "Xử lý" } }
                        @for f in list.iter().take(10) {
                            tr {
                                td { (vn_time(f["at_ms"].as_u64().unwrap_or(0))) }
                                td { (f["target"].as_str().unwrap_or("")) }
                                td { (f["unit"].as_str().unwrap_or("")) }
                                td { (f["error"].as_str().unwrap_or("")) }
                                td { @if f["dead"] == true { span.bad { "thành thư chết" } } @else { span.warn { "sẽ thử lại" } } }
                            }
                        }
                    }
                }
            }
        }
    }

    fn dead_letters(&self) -> Markup {
        html! {
            section #thu-chet {
                h2 { "Thư chết (" (self.status["dead"]) ")" }
                @if self.dead.is_empty() {
                    p.muted #khong-thu-chet { "Không có thư chết." }
                } @else {
                    table {
                        tr { th { "Nơi nhận" } th { "Đơn vị" } th { "Hồ sơ" } th { "Lý do" } th { "Lúc" } th {} }
                        @for d in self.dead {
                            tr #{"dead-" (d.id)} {
                                td { (d.target) }
                                td { (d.unit) }
                                td { @if let Some(k) = &d.key { a href={"/?ma_ho_so=" (url_encode(k))} { (k) } } }
                                td { (d.reason) }
                                td { (d.errors.last().map_or(d.dead_at.clone(), |e| vn_time(e.at_ms))) }
                                td {
                                    @if self.operator {
                                        form.inline method="post" action={"/thu-chet/" (d.target) "/" (d.id) "/gui-lai"} {
                                            input type="hidden" name="csrf" value=(self.csrf);
                                            button #{"replay-" (d.id)} type="submit" { "Gửi lại" }
                                        }
                                    } @else {
                                        span.muted { "cần quyền vận hành" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn ratio_cell(r: Ratio, target: f64) -> Markup {
    html! {
        @match r.percent {
            None => span.muted { "—" },
            Some(p) => {
                span class=(if p >= target { "ok" } else { "bad" }) { (percent(p)) }
                br; span.muted { (r.numerator) "/" (r.denominator) }
            }
        }
    }
}

fn delivery_text(d: &Value) -> Markup {
    html! {
        @match d["state"].as_str().unwrap_or("") {
            "delivered" => span.ok { "đã nhận (" (d["attempts"]) " lần gửi)" },
            "forwarded" => span.warn { "đã chuyển vào hàng đợi cụm, chờ gửi" },
            "pending" => span.warn { "đang chờ gửi (" (d["attempts"]) " lần đã thử)" },
            "dead" => span.bad { "thư chết: " (d["reason"].as_str().unwrap_or("")) },
            "dropped" => span.muted { "đã hủy" },
            _ => span.muted { "đã quá thời hạn lưu" },
        }
    }
}
