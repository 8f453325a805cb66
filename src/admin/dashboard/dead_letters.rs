//! The dead-letter page (`/thu-chet`): every dead letter, filtered by unit, platform and
//! reason, 50 to a page behind a cursor (a million dead letters cost no more than a page),
//! selected on the page or taken all that match the filter, then replayed or dropped in
//! bulk after a confirmation page that says what will happen and, for a drop, asks why.
//! No script: forms and links only.

use super::view::{layout, login_page, vn_time};
use super::{SessionHolder, csrf_ok, session_of, url_encode};
use crate::admin::AdminState;
use crate::admin::api::{self, DeadFilter};
use crate::config::AdminRole;
use crate::envelope::MessageId;
use crate::outbox::{DeadLetter, OpError};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use std::sync::Arc;

/// Dead letters on one page.
const PAGE: usize = 50;
/// Most dead letters one "all that match" action handles; the notice says to go on.
const MOST_PER_ACTION: usize = 5_000;

/// The page's filter, as its query string carries it.
#[derive(Deserialize, Default, Clone)]
pub(super) struct Filter {
    don_vi: Option<String>,
    noi_nhan: Option<String>,
    ly_do: Option<String>,
    /// The cursor: the page starts after this dead letter.
    sau: Option<String>,
    /// A notice after an action, shown only with its seal `ma` ([`super::sealed_notice`]).
    thong_bao: Option<String>,
    ma: Option<String>,
}

impl Filter {
    fn from_pairs(pairs: &[(String, String)]) -> Filter {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.trim().is_empty())
        };
        Filter {
            don_vi: get("don_vi"),
            noi_nhan: get("noi_nhan"),
            ly_do: get("ly_do"),
            sau: None,
            thong_bao: None,
            ma: None,
        }
    }

    fn api(&self, after: Option<String>, limit: usize) -> DeadFilter {
        let some = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
        DeadFilter {
            target: some(&self.noi_nhan),
            unit: some(&self.don_vi),
            reason: some(&self.ly_do),
            since_ms: None,
            after,
            limit: Some(limit),
        }
    }

    /// The filter as a query string (no cursor, no notice), for links and redirects.
    fn query(&self) -> String {
        [
            ("don_vi", &self.don_vi),
            ("noi_nhan", &self.noi_nhan),
            ("ly_do", &self.ly_do),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", url_encode(v))))
        .collect::<Vec<_>>()
        .join("&")
    }

    fn hidden_fields(&self) -> Markup {
        html! {
            @if let Some(v) = &self.don_vi { input type="hidden" name="don_vi" value=(v); }
            @if let Some(v) = &self.noi_nhan { input type="hidden" name="noi_nhan" value=(v); }
            @if let Some(v) = &self.ly_do { input type="hidden" name="ly_do" value=(v); }
        }
    }
}

/// The fields of a URL-encoded form, repeated ones included (`chon` is one per box).
fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    reqwest::Url::parse(&format!("http://form/?{text}"))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

/// `GET /thu-chet`: one page of the dead letters the filter selects.
pub(super) async fn page(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Query(f): Query<Filter>,
) -> Response {
    let Some(SessionHolder { role, .. }) = session_of(&s, &headers) else {
        return login_page(None, StatusCode::OK);
    };
    let state = Arc::clone(&s);
    let query = f.api(f.sau.clone(), PAGE);
    let found = tokio::task::spawn_blocking(move || api::select_page(&state, &query)).await;
    let (list, next) = match found {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            return super::notice_redirect(&s, &headers, &format!("Bộ lọc không hợp lệ: {e:?}"));
        }
        Err(e) => return super::view::error_page(&format!("Lỗi nội bộ: {e}")),
    };
    let body = page_body(
        &s,
        &f,
        &list,
        next.map(|c| c.to_string()),
        role,
        &super::session_csrf(&s, &headers),
    );
    (
        [(header::CACHE_CONTROL, "no-store")],
        layout("Thư chết", body),
    )
        .into_response()
}

fn page_body(
    s: &AdminState,
    f: &Filter,
    list: &[DeadLetter],
    next: Option<String>,
    role: AdminRole,
    csrf: &str,
) -> Markup {
    let operator = role == AdminRole::Operator;
    let targets: Vec<&str> = s.targets.iter().map(|t| t.name.as_str()).collect();
    let base = f.query();
    html! {
        header { h1 { "Thư chết — tin không gửi được" } p { a href="/" { "← Trang giám sát" } } }
        main {
            @if let Some(n) = super::sealed_notice(csrf, f.thong_bao.as_deref(), f.ma.as_deref()) { div.notice #thong-bao { (n) } }
            section #loc {
                h2 { "Lọc" }
                form method="get" action="/thu-chet" {
                    label { "Đơn vị " select #loc-don-vi name="don_vi" {
                        option value="" { "(tất cả)" }
                        @for u in &s.units { option value=(u) selected[f.don_vi.as_deref() == Some(u.as_str())] { (u) } }
                    } }
                    " "
                    label { "Nơi nhận " select #loc-noi-nhan name="noi_nhan" {
                        option value="" { "(tất cả)" }
                        @for t in &targets { option value=(t) selected[f.noi_nhan.as_deref() == Some(*t)] { (t) } }
                    } }
                    " "
                    label { "Lý do có chứa " input #loc-ly-do type="text" name="ly_do" size="24" value=[f.ly_do.as_deref()]; }
                    " " button #loc-ap-dung type="submit" { "Lọc" }
                }
                p.muted { "Tổng số thư chết: " (s.outbox.stats().dead) ". Trang này: " span #trang-so-thu { (list.len()) } " thư (mỗi trang " (PAGE) ")." }
            }
            section #danh-sach {
                @if list.is_empty() {
                    p.muted #khong-thu-chet { "Không có thư chết nào khớp bộ lọc." }
                } @else {
                    form method="post" action="/thu-chet/xac-nhan" {
                        input type="hidden" name="csrf" value=(csrf);
                        (f.hidden_fields())
                        table {
                            tr { th { "Chọn" } th { "Nơi nhận" } th { "Đơn vị" } th { "Luồng" } th { "Hồ sơ" } th { "Lý do" } th { "Lúc" } }
                            @for d in list {
                                tr.dong-thu-chet #{"dead-" (d.id)} {
                                    td { input.chon type="checkbox" name="chon" value={(d.target) "/" (d.id)}; }
                                    td { (d.target) }
                                    td { (d.unit) }
                                    td { (d.flow) }
                                    td { @if let Some(k) = &d.key { a href={"/?ma_ho_so=" (url_encode(k))} { (k) } } }
                                    td { a href={"/?ma_ho_so=" (d.id)} { (d.reason) } }
                                    td { (d.errors.last().map_or(d.dead_at.clone(), |e| vn_time(e.at_ms))) }
                                }
                            }
                        }
                        @if operator {
                            p {
                                button #gui-lai-da-chon type="submit" name="hanh_dong" value="gui-lai" { "Gửi lại các thư đã chọn" } " "
                                button #huy-da-chon type="submit" name="hanh_dong" value="huy" { "Hủy các thư đã chọn" } " · "
                                button #gui-lai-tat-ca type="submit" name="hanh_dong" value="gui-lai-tat-ca" { "Gửi lại tất cả thư khớp bộ lọc" } " "
                                button #huy-tat-ca type="submit" name="hanh_dong" value="huy-tat-ca" { "Hủy tất cả thư khớp bộ lọc" }
                            }
                        } @else {
                            p.muted { "Gửi lại hoặc hủy cần mã quản trị có quyền vận hành." }
                        }
                    }
                }
                p {
                    @if f.sau.is_some() { a #trang-dau href={"/thu-chet?" (base)} { "← Trang đầu" } " " }
                    @if let Some(n) = next { a #trang-sau href={"/thu-chet?" (base) "&sau=" (url_encode(&n))} { "Trang sau →" } }
                }
            }
        }
    }
}

/// What a bulk form asks for.
struct Action {
    kind: &'static str,
    all: bool,
    chosen: Vec<(String, MessageId)>,
    filter: Filter,
    why: Option<String>,
}

impl Action {
    fn parse(pairs: &[(String, String)]) -> Result<Action, &'static str> {
        let field = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let (kind, all) = match field("hanh_dong") {
            Some("gui-lai") => ("gui-lai", false),
            Some("huy") => ("huy", false),
            Some("gui-lai-tat-ca") => ("gui-lai", true),
            Some("huy-tat-ca") => ("huy", true),
            _ => return Err("Không rõ thao tác."),
        };
        let chosen: Vec<(String, MessageId)> = pairs
            .iter()
            .filter(|(n, _)| n == "chon")
            .filter_map(|(_, v)| {
                let (t, id) = v.rsplit_once('/')?;
                Some((t.to_string(), id.parse().ok()?))
            })
            .collect();
        if !all && chosen.is_empty() {
            return Err(
                "Chưa chọn thư nào: đánh dấu các thư cần xử lý, hoặc chọn “tất cả thư khớp bộ lọc”.",
            );
        }
        Ok(Action {
            kind,
            all,
            chosen,
            filter: Filter::from_pairs(pairs),
            why: field("ly_do_huy")
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .map(str::to_string),
        })
    }

    fn what(&self) -> String {
        let verb = if self.kind == "gui-lai" {
            "Gửi lại"
        } else {
            "Hủy"
        };
        if self.all {
            format!("{verb} tất cả thư chết khớp bộ lọc (tối đa {MOST_PER_ACTION} mỗi lần)")
        } else {
            format!("{verb} {} thư chết đã chọn", self.chosen.len())
        }
    }
}

/// Who may act, from the session; the response to send instead when nobody may.
fn operator_of(s: &AdminState, headers: &HeaderMap, csrf: &str) -> Result<String, Box<Response>> {
    let Some(SessionHolder { name, role }) = session_of(s, headers) else {
        return Err(Box::new(login_page(
            Some("Phiên đăng nhập đã hết; hãy đăng nhập lại."),
            StatusCode::UNAUTHORIZED,
        )));
    };
    if !csrf_ok(s, headers, csrf) {
        return Err(Box::new(super::forbidden(
            "Thiếu mã chống giả mạo của phiên; hãy tải lại trang rồi thử lại.",
        )));
    }
    if role != AdminRole::Operator {
        return Err(Box::new(back(
            csrf,
            "Cần mã quản trị có quyền vận hành (operator) để gửi lại hoặc hủy.",
            &Filter::default(),
        )));
    }
    Ok(name)
}

/// Back to the dead-letter page with `notice`, sealed for the session of `csrf`.
fn back(csrf: &str, notice: &str, f: &Filter) -> Response {
    let q = f.query();
    let sep = if q.is_empty() { "" } else { "&" };
    let notice = super::notice_query(csrf, notice);
    Redirect::to(&format!("/thu-chet?{q}{sep}{notice}")).into_response()
}

/// `POST /thu-chet/xac-nhan`: the confirmation of a bulk action.
pub(super) async fn confirm(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let pairs = form_pairs(&body);
    let csrf = pairs
        .iter()
        .find(|(n, _)| n == "csrf")
        .map_or("", |(_, v)| v.as_str());
    if let Err(r) = operator_of(&s, &headers, csrf) {
        return *r;
    }
    let action = match Action::parse(&pairs) {
        Ok(a) => a,
        Err(why) => return back(csrf, why, &Filter::from_pairs(&pairs)),
    };
    let body = html! {
        header { h1 { "Xác nhận thao tác với thư chết" } }
        main { section #xac-nhan {
            h2 #xac-nhan-viec { (action.what()) "?" }
            @if action.all {
                p { "Bộ lọc: đơn vị " b { (action.filter.don_vi.as_deref().unwrap_or("(tất cả)")) }
                    ", nơi nhận " b { (action.filter.noi_nhan.as_deref().unwrap_or("(tất cả)")) }
                    ", lý do có chứa " b { (action.filter.ly_do.as_deref().unwrap_or("(bất kỳ)")) } "." }
            }
            @if action.kind == "gui-lai" {
                p { "Các tin sẽ được gửi lại từ đầu; tin nào vẫn bị từ chối sẽ lại thành thư chết." }
            } @else {
                p.bad { "Tin bị hủy sẽ không bao giờ được gửi; hồ sơ bị chặn phía sau sẽ đi tiếp. Lý do được ghi vào nhật ký kiểm toán." }
            }
            form method="post" action="/thu-chet/thuc-hien" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="hanh_dong" value=(pairs.iter().find(|(n, _)| n == "hanh_dong").map_or("", |(_, v)| v.as_str()));
                (action.filter.hidden_fields())
                @for (t, id) in &action.chosen { input type="hidden" name="chon" value={(t) "/" (id)}; }
                @if action.kind == "huy" {
                    label { "Lý do hủy (bắt buộc) " input #ly-do-huy type="text" name="ly_do_huy" size="48" required; }
                    br;
                }
                button #xac-nhan-dong-y type="submit" { "Xác nhận" }
                " " a href={"/thu-chet?" (action.filter.query())} { "Quay lại" }
            }
        } }
    };
    layout("Xác nhận", body).into_response()
}

/// `POST /thu-chet/thuc-hien`: replay or drop what the confirmed form names.
pub(super) async fn execute(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let pairs = form_pairs(&body);
    let csrf = pairs
        .iter()
        .find(|(n, _)| n == "csrf")
        .map_or("", |(_, v)| v.as_str());
    let who = match operator_of(&s, &headers, csrf) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let action = match Action::parse(&pairs) {
        Ok(a) => a,
        Err(why) => return back(csrf, why, &Filter::from_pairs(&pairs)),
    };
    if action.kind == "huy" && action.why.is_none() {
        return back(csrf, "Hãy ghi lý do hủy.", &action.filter);
    }
    let chosen = if action.all {
        match everything_matching(&s, &action.filter) {
            Ok(list) => list,
            Err(e) => {
                return back(
                    csrf,
                    &format!("Không đọc được thư chết: {e:?}"),
                    &action.filter,
                );
            }
        }
    } else {
        action.chosen.clone()
    };
    let mut done = Vec::new();
    for (target, id) in &chosen {
        let outcome = if action.kind == "gui-lai" {
            s.outbox.replay(target, *id).await
        } else {
            api::drop_with_reason(&s, &who, target, *id, action.why.as_deref().unwrap_or("")).await
        };
        match outcome {
            Ok(()) => done.push(*id),
            Err(OpError::NotFound) => {}
            Err(e) => {
                return back(
                    csrf,
                    &format!("Dừng sau {} thư: {e}", done.len()),
                    &action.filter,
                );
            }
        }
    }
    let event = if action.kind == "gui-lai" {
        "dead_letter_replay"
    } else {
        "dead_letter_drop"
    };
    if !done.is_empty() {
        s.audit.record(
            event,
            &who,
            serde_json::json!({"ids": done, "reason": action.why, "via": "dashboard (bulk)"}),
        );
    }
    tracing::info!(operator = %who, count = done.len(), action = event, "dead letters handled from the dashboard");
    let verb = if action.kind == "gui-lai" {
        "gửi lại"
    } else {
        "hủy"
    };
    let mut notice = format!("Đã {verb} {} thư chết.", done.len());
    if action.all && chosen.len() >= MOST_PER_ACTION {
        notice.push_str(" Còn thư khớp bộ lọc: bấm lại để làm tiếp.");
    }
    back(csrf, &notice, &action.filter)
}

/// The dead letters the filter selects, at most [`MOST_PER_ACTION`], page by page.
fn everything_matching(
    s: &AdminState,
    f: &Filter,
) -> Result<Vec<(String, MessageId)>, crate::web::ApiError> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let (page, next) = api::select_page(s, &f.api(after, 500))?;
        out.extend(page.into_iter().map(|d| (d.target, d.id)));
        match next {
            Some(n) if out.len() < MOST_PER_ACTION => after = Some(n.to_string()),
            _ => break,
        }
    }
    out.truncate(MOST_PER_ACTION);
    Ok(out)
}
