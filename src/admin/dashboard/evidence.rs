//! The evidence page (`/bang-chung?ma_ho_so=…&ngay=…`): what the message log holds of a
//! dossier on one day — each accepted event and each delivery attempt, with the digests of
//! what was sent and answered and the seal that signs it — the page an operator shows in a
//! dispute. One day's file is read and checked per request, one request at a time.

use super::session_of;
use super::view::{error_page, layout, login_page, vn_time};
use crate::admin::AdminState;
use crate::evidence::archive;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

/// Records shown at most (the CLI prints them all).
const SHOWN: usize = 1000;

/// One day file is read at a time, whoever asks.
static READING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

#[derive(Deserialize, Default)]
pub(super) struct EvidenceQuery {
    ma_ho_so: Option<String>,
    /// `YYYY-MM-DD` (Vietnam's time).
    ngay: Option<String>,
}

/// What a day's file holds of one dossier, checked.
struct Found {
    records: Vec<(Value, String, Option<String>)>,
    more: bool,
    checked: Result<archive::Report, archive::Broken>,
}

pub(super) async fn page(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Query(q): Query<EvidenceQuery>,
) -> Response {
    if session_of(&s, &headers).is_none() {
        return login_page(None, StatusCode::OK);
    }
    let Some(dir) = s.evidence_dir.clone() else {
        return refused(
            StatusCode::NOT_FOUND,
            "Nhật ký thông điệp đang tắt ([evidence] mode = \"off\").",
        );
    };
    let dossier = q.ma_ho_so.unwrap_or_default().trim().to_string();
    let day = q.ngay.unwrap_or_default();
    let day_ok = day.len() == 10
        && day.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if dossier.is_empty() || dossier.len() > 200 || !day_ok {
        return refused(
            StatusCode::BAD_REQUEST,
            "Cần mã hồ sơ (ma_ho_so) và ngày (ngay, dạng 2026-12-07).",
        );
    }
    let file = dir.join(format!("{day}{}", archive::SUFFIX));
    if !file.exists() {
        return refused(
            StatusCode::NOT_FOUND,
            &format!("Nhật ký thông điệp không có ngày {day}."),
        );
    }
    let Ok(_turn) = READING.acquire().await else {
        return error_page("Lỗi nội bộ.");
    };
    let wanted = dossier.clone();
    let found = tokio::task::spawn_blocking(move || read_day(&file, &wanted)).await;
    let Ok(found) = found else {
        return error_page("Lỗi nội bộ khi đọc nhật ký thông điệp.");
    };
    (
        [(header::CACHE_CONTROL, "no-store")],
        layout("Bằng chứng trao đổi", render(&dossier, &day, &found)),
    )
        .into_response()
}

/// A request the page cannot answer, and why, with the status that says so.
fn refused(status: StatusCode, message: &str) -> Response {
    let body = html! {
        section { p.bad #bang-chung-loi { (message) } p { a href="/" { "Về trang chính" } } }
    };
    (status, layout("Bằng chứng trao đổi", body)).into_response()
}

fn read_day(file: &std::path::Path, dossier: &str) -> Found {
    let mut records = Vec::new();
    let mut more = false;
    let checked = archive::verify_files(
        &[file.to_path_buf()],
        None,
        &mut |line, hash, proof| {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                return;
            };
            for v in archive::records_of(&v) {
                if v["dossier"].as_str() != Some(dossier) {
                    continue;
                }
                if records.len() < SHOWN {
                    records.push((v, hash.to_string(), proof.map(str::to_string)));
                } else {
                    more = true;
                }
            }
        },
        &mut |_, _| {},
    );
    Found {
        records,
        more,
        checked,
    }
}

fn render(dossier: &str, day: &str, found: &Found) -> Markup {
    html! {
        section #bang-chung {
            h2 { "Bằng chứng trao đổi của hồ sơ " (dossier) ", ngày " (day) }
            @match &found.checked {
                Ok(r) => p.ok #bang-chung-kiem-tra {
                    "Chuỗi băm và chữ ký của ngày này hợp lệ (" (r.accepted) " sự kiện nhận, "
                    (r.attempts) " lần gửi, " (r.seals) " dấu niêm phong; khóa ký "
                    code { (r.keys.join(", ")) } ")."
                    @if r.unsealed > 0 { " " (r.unsealed) " bản ghi cuối chưa được niêm phong (sẽ được niêm phong trong vài giây)." }
                },
                Err(e) => p.bad #bang-chung-kiem-tra { "Nhật ký ngày này KHÔNG hợp lệ: " (e.to_string()) },
            }
            @if found.records.is_empty() {
                p.muted { "Không có bản ghi nào của hồ sơ này trong ngày." }
            } @else {
                table {
                    tr { th { "Lúc" } th { "Việc" } th { "Nội dung (mã băm SHA-256)" } th { "Bằng chứng" } }
                    @for (v, hash, proof) in &found.records {
                        tr {
                            td { (vn_time(v["at_ms"].as_u64().or(v["sent_ms"].as_u64()).unwrap_or(0))) }
                            td { (what(v)) }
                            td.muted {
                                @if let Some(b) = v["body_sha256"].as_str() { "nhận: " code { (b) } }
                                @if let Some(b) = v["request_sha256"].as_str() { "gửi: " code { (b) } }
                                @if let Some(b) = v["answer_sha256"].as_str() { br; "trả lời: " code { (b) } }
                            }
                            td.muted {
                                "dòng " code { (hash.get(..16).unwrap_or(hash)) } "…; "
                                (proof.as_deref().map_or("chưa niêm phong", |_| "đã niêm phong, chữ ký hợp lệ"))
                            }
                        }
                    }
                }
                @if found.more { p.muted { "Chỉ hiện " (SHOWN) " bản ghi đầu; tất cả: lệnh bên dưới." } }
            }
            p.muted {
                "Kiểm tra độc lập, trên bản sao thư mục nhật ký: "
                code { "lienthong evidence show --dossier " (dossier) " --day " (day) " THƯ_MỤC" }
            }
        }
    }
}

/// An accepted event or an attempt, in words.
fn what(v: &Value) -> Markup {
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    html! {
        @if v["t"] == "accepted" {
            "nhận từ " b { (s("unit")) } " (" (s("flow")) "), tin " code { (s("id")) }
        } @else {
            "gửi lần " (v["attempt"]) " tới " b { (s("target")) } ": "
            @match s("outcome").as_str() {
                "delivered" => span.ok { "đã nhận" },
                "retry" => span.warn { "lỗi, sẽ thử lại" },
                "dead" => span.bad { "bị từ chối (thư chết)" },
                _ => span.muted { "gửi gộp không thành, gửi lại riêng" },
            }
            @match v["answer_status"].as_u64() {
                Some(code) => { " (HTTP " (code) ")" },
                None => { " (không có trả lời)" },
            }
        }
    }
}
