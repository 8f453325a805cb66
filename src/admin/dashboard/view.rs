//! What the dashboard shows: the page layout, the sign-in and error pages, and the main
//! view (platform health, backlog per unit, failures, dead letters, dossier search, KPIs)
//! rendered from the admin API's documents.

use super::super::AdminState;
use super::super::kpi::{KPIS, KpiSnapshot, Ratio};
use super::message::{delivery_text, message_view};
use super::url_encode;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::Value;

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
.charts{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
figure.chart{margin:0 0 8px 0}
figure.chart figcaption{font-size:12px;max-width:260px}
"#;

pub(super) const REFRESH_SCRIPT: &str = r#"
setInterval(function(){
  var a=document.activeElement;
  if(document.getElementById('tu-dong').checked && !(a && a.tagName==='INPUT' && a.type==='text')){location.reload();}
},15000);
"#;

pub(super) fn layout(title: &str, body: Markup) -> Markup {
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

pub(super) fn login_page(error: Option<&str>, status: StatusCode) -> Response {
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

pub(super) fn error_page(message: &str) -> Response {
    let body = html! {
        header { h1 { "Hệ thống liên thông" } }
        main { section { p.bad { (message) } p { a href="/" { "Tải lại" } } } }
    };
    (StatusCode::SERVICE_UNAVAILABLE, layout("Lỗi", body)).into_response()
}

/// Everything the page shows, read once per request.
pub(super) struct View<'a> {
    pub(super) s: &'a AdminState,
    pub(super) who: &'a str,
    pub(super) operator: bool,
    pub(super) status: &'a Value,
    pub(super) dead: &'a [crate::outbox::DeadLetter],
    pub(super) kpis: Option<&'a KpiSnapshot>,
    pub(super) search: Option<&'a str>,
    pub(super) dossier: Option<&'a Value>,
    /// The message searched for by id (`Some(None)`: searched, not found).
    pub(super) message: Option<Option<&'a Value>>,
    pub(super) notice: Option<&'a str>,
    /// The session's anti-forgery token, in every POST form.
    pub(super) csrf: &'a str,
    /// The targets counted from traffic, month by month (the last 12).
    pub(super) months: &'a [crate::admin::kpi::MonthKpis],
    /// Each platform's last day.
    pub(super) samples: &'a [crate::admin::history::Sample],
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
    } else if target.contains("ministry") || target.contains("bo_tthc") {
        "Hệ thống thông tin giải quyết TTHC của Bộ"
    } else {
        ""
    }
}

/// `12,5 %` (Vietnamese decimal comma).
pub(super) fn percent(p: f64) -> String {
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
pub(super) fn vn_time(ms: u64) -> String {
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

/// A platform's health in words and its colour class: the worst of what holds. A platform
/// that answers but leaves dossiers blocked, errs often or lets deliveries wait long is not
/// "working well".
fn health(t: &Value) -> (String, &'static str) {
    let failures = transient_failure_share(&t["recent"]);
    let blocked = t["blocked_dossiers"].as_u64().unwrap_or(0);
    let oldest_s = t["oldest_pending_age_s"].as_u64().unwrap_or(0);
    if t["paused"] == true {
        ("Tạm dừng".into(), "warn")
    } else if t["circuit"] == "open" {
        ("Mất kết nối".into(), "bad")
    } else if t["circuit"] == "half_open" {
        ("Đang thử kết nối lại".into(), "warn")
    } else if failures > 0.2 {
        ("Chập chờn".into(), "bad")
    } else if blocked > 0 {
        (format!("Có {blocked} hồ sơ bị chặn"), "warn")
    } else if failures > 0.05 {
        ("Chập chờn".into(), "warn")
    } else if oldest_s > 15 * 60 {
        ("Tồn đọng".into(), "warn")
    } else {
        ("Hoạt động tốt".into(), "ok")
    }
}

impl View<'_> {
    pub(super) fn render(&self) -> Markup {
        html! {
            header {
                h1 { "Giám sát liên thông hồ sơ — Bộ Khoa học và Công nghệ" }
                div {
                    span.muted style="color:#fde" { (self.who) " (" (if self.operator { "vận hành" } else { "xem" }) ") · " }
                    label style="font-size:13px" { input #tu-dong type="checkbox" checked; " tự động làm mới" }
                    " "
                    a #den-tra-cuu href="/tra-cuu" style="color:#fde" { "Tra cứu" }
                    " "
                    a #den-doi-soat href="/doi-soat" style="color:#fde" { "Đối soát" }
                    " "
                    @if self.operator {
                        a #den-studio href="/anh-xa" style="color:#fde" { "Xưởng ánh xạ" }
                        " "
                    }
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
                @if let Some(m) = self.message { (message_view(m, self.search.unwrap_or(""))) }
                (self.platforms())
                (super::route_map::route_map(&self.s.routes, self.status))
                (self.last_day())
                (self.units())
                (self.kpi_table())
                (self.refused_mappings())
                (self.failures())
                (self.dead_letters())
            }
            script { (PreEscaped(REFRESH_SCRIPT)) }
        }
    }

    fn search_box(&self) -> Markup {
        html! {
            section {
                h2 { "Tra cứu hồ sơ (mã hồ sơ MaHoSo) hoặc tin (mã tin)" }
                form method="get" action="/" {
                    input #ma-ho-so type="text" name="ma_ho_so" size="36" placeholder="ví dụ: NAFOSTED-2024-00042 hoặc mã tin 0190…" value=[self.search];
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
                @if d["units"].as_array().is_none_or(|u| u.is_empty()) {
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
                                td { (delivery_text(&t["delivery"], &t["waiting_behind"])) }
                            }
                        }
                    }
                    @if self.s.evidence_dir.is_some() {
                        p #ho-so-bang-chung {
                            "Bằng chứng trao đổi (nhật ký thông điệp có chữ ký): "
                            @for day in evidence_days(events) {
                                a href={"/bang-chung?ma_ho_so=" (super::url_encode(d["key"].as_str().unwrap_or(""))) "&ngay=" (day)} { (day) } " "
                            }
                        }
                    }
                    h2 style="margin-top:12px" { "Các sự kiện" }
                    @if !d["next"].is_null() {
                        p.muted #ho-so-con-nua { "Hiển thị " (events.len()) " sự kiện đầu tiên; các sự kiện sau: API " code { "GET /api/v1/dossiers/{mã}?after=" (d["next"].as_str().unwrap_or("")) } "." }
                    }
                    table {
                        tr { th { "Nhận lúc" } th { "Đơn vị" } th { "Luồng" } th { "Gửi tới" } }
                        @for e in events {
                            tr {
                                td { (vn_time(e["received_ms"].as_u64().unwrap_or(0))) }
                                td { (e["unit"].as_str().unwrap_or("")) }
                                td { (e["flow"].as_str().unwrap_or("")) }
                                td {
                                    @for dl in e["deliveries"].as_array().map(Vec::as_slice).unwrap_or_default() {
                                        div { (dl["target"].as_str().unwrap_or("")) ": " (delivery_text(&dl["delivery"], &dl["waiting_behind"])) }
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
                            td.num { @match t["latency_p99_ms"].as_u64() { Some(ms) => (crate::admin::words::latency_bound(ms)), None => "—" } }
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
                            td { b { (name) } br; span.muted { (crate::admin::words::unit_label(name)) } }
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
        let period = self
            .kpis
            .map(|k| k.period.id())
            .unwrap_or_else(|| "all".into());
        html! {
            section #chi-tieu {
                h2 { "Chỉ tiêu của Kế hoạch hành động năm 2024 (QĐ 1205/QĐ-BKHCN, Phụ lục I)" }
                form #chon-ky method="get" action="/" {
                    label for="ky" { "Kỳ: " }
                    input #ky type="text" name="ky" value=(period) size="8" title="tháng 2024-07, quý 2024-Q3, năm 2024, ytd (từ đầu năm) hoặc all (toàn bộ)";
                    " " button type="submit" { "Xem" }
                    " · tải báo cáo: "
                    a #tai-csv href={"/bao-cao?ky=" (period) "&dinh_dang=csv"} { "CSV" }
                    " · "
                    a #tai-csv-vn href={"/bao-cao?ky=" (period) "&dinh_dang=csv-vn"} { "CSV cho Excel tiếng Việt (dấu ;)" }
                    " · "
                    a #tai-xlsx href={"/bao-cao?ky=" (period) "&dinh_dang=xlsx"} { "Excel" }
                    " · "
                    a #tai-pdf href={"/bao-cao?ky=" (period) "&dinh_dang=pdf"} { "PDF" }
                }
                @match self.kpis {
                    None => p.muted { "Chưa tính được chỉ tiêu." },
                    Some(k) => {
                        p.muted {
                            "Kỳ " b { (crate::admin::words::period_words(&k.period.id())) } ": hồ sơ tiếp nhận trong kỳ (theo NgayTiepNhan của hồ sơ), cộng dồn từ mọi sự kiện, kể cả đã quá thời hạn lưu; mục 1a, 1b theo danh mục thủ tục hiện tại. Cập nhật lúc " (vn_time(k.computed_at_ms)) "."
                        }
                        table {
                            tr {
                                th { "Đơn vị" } th { "Số hồ sơ" }
                                @for d in &KPIS {
                                    th {
                                        @if !d.plan_item.is_empty() { (d.plan_item) ". " }
                                        (d.name) br; span.muted { "chỉ tiêu " (percent(d.target_percent).replace(",0", "")) }
                                    }
                                }
                                th { "Không rõ kênh nộp" }
                                th { "Thanh toán qua cổng của Bộ" br; span.muted { "ngoài chỉ tiêu 3" } }
                                th { "Mã TTHC ngoài danh mục" }
                                th { "Quá hạn chưa có kết quả" br; span.muted { "hôm nay" } }
                                th { "Giải quyết đúng hạn" br; span.muted { "QĐ 766: sớm · đúng · trễ hạn" } }
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
                                    td.num #{"kpi-" (unit) "-channel_unknown"} { (u.channel_unknown) }
                                    td.num #{"kpi-" (unit) "-payments_gateway"} { (u.payments_gateway) }
                                    td.num #{"kpi-" (unit) "-unknown_procedure"} { (u.unknown_procedure) }
                                    td.num #{"kpi-" (unit) "-overdue"} {
                                        @if u.overdue > 0 { span.bad { (u.overdue) } } @else { "0" }
                                    }
                                    td.num #{"kpi-" (unit) "-progress"} {
                                        @match u.progress.in_time.percent { Some(p) => (percent(p)), None => "—" }
                                        br; span.muted { (u.progress.early) " · " (u.progress.on_time) " · " (u.progress.late) }
                                    }
                                }
                            }
                        }
                        (super::form06a::section(k, &period))
                        h3 { "Diễn biến theo tháng (12 tháng gần nhất, mọi đơn vị)" }
                        (super::charts::monthly_targets(self.months))
                        dl.defs {
                            @for d in &KPIS {
                                dt {
                                    @if !d.plan_item.is_empty() { (d.plan_item) ". " }
                                    (d.name) " — chỉ tiêu " (percent(d.target_percent).replace(",0", ""))
                                }
                                dd { (d.definition) }
                            }
                        }
                    }
                }
            }
        }
    }

    fn last_day(&self) -> Markup {
        let targets: Vec<String> = self.s.targets.iter().map(|t| t.name.clone()).collect();
        html! {
            section #dien-bien-24h {
                h2 { "Diễn biến 24 giờ qua theo nền tảng" }
                p.muted { "Lấy mẫu định kỳ từ số liệu cộng dồn (điểm cuối là số liệu hiện tại, như bảng trên); bắt đầu lại khi khởi động lại hệ thống." }
                (super::charts::platforms_last_day(self.samples, &targets, self.status))
            }
        }
    }

    /// Mapping edits the last reload refused: the running version stayed.
    fn refused_mappings(&self) -> Markup {
        let problems = self.status["mappings_refused"]["problems"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        html! {
            @if !problems.is_empty() {
                section #anh-xa-bi-tu-choi {
                    h2 { "Ánh xạ bị từ chối khi nạp lại" }
                    p.warn {
                        "Lúc " (self.status["mappings_refused"]["at"].as_str().unwrap_or(""))
                        ": bản sửa dưới đây không được dùng; bản đang chạy vẫn giữ nguyên."
                    }
                    @for p in problems {
                        pre.bad { (p.as_str().unwrap_or("")) }
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
                p.muted { "Thư chết là tin không gửi được nữa: nền tảng đã từ chối hẳn, hoặc không chuyển đổi được theo ánh xạ. Sửa dữ liệu hoặc ánh xạ rồi gửi lại, hoặc hủy kèm lý do." }
                p { a #tat-ca-thu-chet href="/thu-chet" { "Xem, lọc và xử lý tất cả thư chết →" } " "
                    span.muted { "(dưới đây: 50 thư cũ nhất)" } }
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

/// The days (Vietnam's time) on which a dossier's events were accepted: the message log's
/// files that hold them and, mostly, their attempts.
fn evidence_days(events: &[Value]) -> Vec<String> {
    let mut days: Vec<String> = events
        .iter()
        .filter_map(|e| e["received_ms"].as_u64())
        .map(crate::evidence::day_name)
        .collect();
    days.sort();
    days.dedup();
    days
}
