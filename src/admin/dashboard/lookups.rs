//! The lookups page (`/tra-cuu`): who looked whom up on a day — each unit's lookups by kind
//! and officer, the refusals by reason in words, and the documented exceptions to the
//! purpose check, so that the IT Center sees a unit or an officer asking far more than its
//! dossiers need. Read from the running totals ([`crate::lookup::usage`]).

use super::session_of;
use super::view::{layout, login_page};
use crate::admin::AdminState;
use crate::admin::api::lookups::{day_text, parse_day};
use crate::web::lookup_usage::UnitDay;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use std::sync::Arc;

/// Officers listed per unit (the most active first).
const OFFICERS_SHOWN: usize = 20;

#[derive(Deserialize, Default)]
pub(super) struct LookupsQuery {
    /// `YYYY-MM-DD`; today when absent.
    ngay: Option<String>,
}

/// A refusal's code in words.
fn refusal_words(code: &str) -> &str {
    match code {
        "purpose_missing" => "không nêu mục đích",
        "dossier_missing" => "không nêu hồ sơ",
        "dossier_unknown" => "hồ sơ đơn vị chưa gửi",
        "dossier_closed" => "hồ sơ đã kết thúc quá lâu",
        "person_missing" => "không nêu số định danh",
        "person_not_in_dossier" => "người không có trong hồ sơ",
        "unit_rate_exceeded" => "vượt phần tốc độ của đơn vị",
        "unit_daily_quota_exceeded" => "hết hạn mức ngày",
        "rate_limited" => "vượt tốc độ của nền tảng",
        other => other,
    }
}

pub(super) async fn page(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Query(q): Query<LookupsQuery>,
) -> Response {
    if session_of(&s, &headers).is_none() {
        return login_page(None, StatusCode::OK);
    }
    let today = crate::outbox::tally::day_of(crate::time::now_ms());
    let day = q
        .ngay
        .as_deref()
        .filter(|t| !t.is_empty())
        .map_or(Some(today), parse_day);
    let Some(day) = day else {
        return super::view::error_page("Ngày không hợp lệ: viết theo dạng 2026-12-06.");
    };
    let figures = s.lookups.day(day);
    let body = html! {
        header { h1 { "Tra cứu dữ liệu công dân và doanh nghiệp" } p { a href="/" { "← Trang giám sát" } } }
        main {
            section #ngay {
                form method="get" action="/tra-cuu" {
                    label { "Ngày " input #chon-ngay type="date" name="ngay" value=(day_text(day)); }
                    " " button type="submit" { "Xem" }
                }
                p.muted {
                    "Số liệu từ khi trục khởi động (mỗi lần tra cứu có bản ghi trong nhật ký kiểm toán). "
                    "Tra cứu dữ liệu công dân phải nêu mục đích và một hồ sơ của đơn vị có tên người đó."
                }
            }
            section #theo-don-vi {
                h2 { "Theo đơn vị" }
                @if figures.is_empty() {
                    p.muted #khong-tra-cuu { "Không có tra cứu nào trong ngày." }
                } @else {
                    table {
                        tr { th { "Đơn vị" } th { "Công dân" } th { "Nơi cư trú" } th { "Doanh nghiệp" } th { "Bị từ chối" } th { "Qua ngoại lệ" } }
                        @for (unit, f) in &figures { (unit_row(unit, f)) }
                    }
                }
            }
            @for (unit, f) in &figures { (unit_detail(unit, f)) }
            (exceptions(&s))
        }
    };
    (
        [(header::CACHE_CONTROL, "no-store")],
        layout("Tra cứu", body),
    )
        .into_response()
}

fn unit_row(unit: &str, f: &UnitDay) -> Markup {
    let asked = |k: &str| f.asked.get(k).copied().unwrap_or(0);
    html! {
        tr.don-vi data-unit=(unit) {
            td { (unit) }
            td.cong-dan { (asked("citizen")) }
            td { (asked("residence")) }
            td { (asked("business")) }
            td.tu-choi { (f.refused.values().sum::<u64>()) }
            td { (f.exceptions.values().sum::<u64>()) }
        }
    }
}

fn unit_detail(unit: &str, f: &UnitDay) -> Markup {
    let mut officers: Vec<(&String, &u64)> = f.officers.iter().collect();
    officers.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    html! {
        section.chi-tiet data-unit=(unit) {
            h2 { "Đơn vị " (unit) }
            @if !f.refused.is_empty() {
                h3 { "Bị từ chối, theo lý do" }
                ul.ly-do {
                    @for (code, n) in &f.refused {
                        li data-code=(code) { (refusal_words(code)) " (" code { (code) } "): " (n) }
                    }
                }
            }
            h3 { "Theo cán bộ" }
            table.can-bo {
                tr { th { "Cán bộ" } th { "Lượt tra cứu" } }
                @for (officer, n) in officers.iter().take(OFFICERS_SHOWN) {
                    tr { td { (officer) } td { (n) } }
                }
            }
            @if officers.len() > OFFICERS_SHOWN {
                p.muted { "… và " (officers.len() - OFFICERS_SHOWN) " cán bộ khác (GET /api/v1/lookups có đủ)." }
            }
        }
    }
}

fn exceptions(s: &AdminState) -> Markup {
    let list = s.lookups.exceptions();
    html! {
        section #ngoai-le {
            h2 { "Ngoại lệ được phép (không cần hồ sơ)" }
            @if list.is_empty() {
                p.muted { "Không có: mọi tra cứu công dân đều phải nêu một hồ sơ có tên người đó." }
            } @else {
                table {
                    tr { th { "Tên" } th { "Đơn vị" } th { "Loại tra cứu" } th { "Lý do" } }
                    @for e in list {
                        tr.ngoai-le { td { (e.name) } td { (e.unit) } td { (e.lookups.join(", ")) } td { (e.reason) } }
                    }
                }
            }
        }
    }
}
