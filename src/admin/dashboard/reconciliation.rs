//! The reconciliation page (`/doi-soat?tu=…&den=…`): per unit and day, the events received
//! and, per target, delivered, dead and pending, with the message log's chain head of the
//! day, and the same table to download as CSV or Excel (`/doi-soat/tai-ve`).

use super::session_of;
use super::view::{error_page, layout, login_page};
use crate::admin::AdminState;
use crate::admin::api::reconciliation::range;
use crate::admin::reconciliation::{HEADINGS, csv, document, table, xlsx};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

#[derive(Deserialize, Default)]
pub(super) struct PageQuery {
    tu: Option<String>,
    den: Option<String>,
    /// `csv`, `csv-vn` or `xlsx` (downloads).
    dinh_dang: Option<String>,
}

/// The document of the days asked, for a signed-in user; else the page to show instead
/// (sign-in, or what is wrong).
async fn read(s: &Arc<AdminState>, headers: &HeaderMap, q: &PageQuery) -> Result<Value, Response> {
    if session_of(s, headers).is_none() {
        return Err(login_page(None, StatusCode::OK));
    }
    // An emptied date field of the form means "not given".
    let (from, to) = range(
        q.tu.as_deref().filter(|t| !t.is_empty()),
        q.den.as_deref().filter(|t| !t.is_empty()),
    )
    .map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            layout(
                "Đối soát",
                html! { section { p.bad #doi-soat-loi { "Ngày không hợp lệ (dạng 2026-12-07, tối đa 92 ngày): " (e.message) } } },
            ),
        )
            .into_response()
    })?;
    let state = Arc::clone(s);
    tokio::task::spawn_blocking(move || {
        state
            .outbox
            .ledger_rows(from, to)
            .map(|rows| document(&rows, from, to, state.evidence_dir.as_deref()))
    })
    .await
    .map_err(|e| error_page(&format!("Lỗi nội bộ: {e}")))?
    .map_err(|e| error_page(&format!("Không đọc được hàng đợi: {e}")))
}

pub(super) async fn page(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let doc = match read(&s, &headers, &q).await {
        Ok(doc) => doc,
        Err(page) => return page,
    };
    let (from, to) = (
        doc["from"].as_str().unwrap_or("").to_string(),
        doc["to"].as_str().unwrap_or("").to_string(),
    );
    let lines = table(&doc);
    let body = html! {
        section #doi-soat {
            h2 { "Đối soát theo đơn vị và ngày" }
            form method="get" action="/doi-soat" {
                "Từ ngày " input type="date" name="tu" value=(from);
                " đến ngày " input type="date" name="den" value=(to);
                " " button type="submit" { "Xem" }
            }
            p.muted {
                "Sự kiện tính theo ngày bus nhận (giờ Việt Nam). Đang chờ = lượt gửi − đã nhận − đã chuyển vào cụm − thư chết − đã hủy. "
                "Tải về: "
                a #doi-soat-csv href={"/doi-soat/tai-ve?tu=" (from) "&den=" (to) "&dinh_dang=csv"} { "CSV" } " · "
                a #doi-soat-xlsx href={"/doi-soat/tai-ve?tu=" (from) "&den=" (to) "&dinh_dang=xlsx"} { "Excel" }
            }
            @if lines.is_empty() {
                p.muted #doi-soat-trong { "Không có sự kiện nào trong những ngày này." }
            } @else {
                table #doi-soat-bang {
                    tr { @for h in HEADINGS { th { (h) } } }
                    @for line in &lines {
                        tr {
                            @for (i, cell) in line.iter().enumerate() {
                                @if i == HEADINGS.len() - 1 {
                                    td.muted { code { (cell.get(..16).unwrap_or(cell)) } }
                                } @else if i >= 4 {
                                    td.num { (cell) }
                                } @else {
                                    td { (cell) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    (
        [(header::CACHE_CONTROL, "no-store")],
        layout("Đối soát", body),
    )
        .into_response()
}

pub(super) async fn download(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let doc = match read(&s, &headers, &q).await {
        Ok(doc) => doc,
        Err(page) => return page,
    };
    let (bytes, kind, ext) = match q.dinh_dang.as_deref().unwrap_or("csv") {
        "csv" => (Ok(csv(&doc, ',')), "text/csv; charset=utf-8", "csv"),
        "csv-vn" => (Ok(csv(&doc, ';')), "text/csv; charset=utf-8", "csv"),
        "xlsx" => (
            xlsx(&doc),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
        ),
        _ => return error_page("Định dạng tải về là csv, csv-vn hoặc xlsx."),
    };
    let Ok(bytes) = bytes else {
        return error_page("Không tạo được tệp Excel.");
    };
    let name = format!(
        "doi-soat-{}-{}.{ext}",
        doc["from"].as_str().unwrap_or(""),
        doc["to"].as_str().unwrap_or("")
    );
    (
        [
            (header::CONTENT_TYPE, kind.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}
