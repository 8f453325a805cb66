//! A message on the dashboard: found by its id in the search box, with each delivery's
//! state, what a waiting delivery waits behind, every attempt with the platform's answer,
//! and the body each platform receives (personal data masked).

use super::url_encode;
use maud::{Markup, html};
use serde_json::Value;

/// Where one delivery stands, in words: the state, and for a pending one what it waits
/// behind (a link to that message).
pub(super) fn delivery_text(d: &Value, waiting: &Value) -> Markup {
    html! {
        @match d["state"].as_str().unwrap_or("") {
            "delivered" => span.ok { "đã nhận (" (d["attempts"]) " lần gửi)" },
            "forwarded" => span.warn { "đã chuyển vào hàng đợi cụm, chờ gửi" },
            "pending" => {
                @if waiting.is_object() {
                    (waiting_text(waiting))
                } @else {
                    span.warn { "đang chờ gửi (" (d["attempts"]) " lần đã thử)" }
                }
            },
            "dead" => span.bad { "thư chết: " (d["reason"].as_str().unwrap_or("")) },
            "dropped" => span.muted { "đã hủy" },
            _ => span.muted { "đã quá thời hạn lưu" },
        }
    }
}

/// "Waiting behind message X (a dead letter since …)": the reason a pending delivery
/// does not move, with a link to the message in the way.
pub(super) fn waiting_text(w: &Value) -> Markup {
    let id = w["id"].as_str().unwrap_or("");
    html! {
        span.warn.cho-sau {
            "đang chờ sau tin "
            a href={"/?ma_ho_so=" (url_encode(id))} { (short_id(id)) }
            " (" (w["flow"].as_str().unwrap_or("")) ")"
            @if w["why"] == "dead_letter" {
                ": tin này là thư chết từ " (super::view::vn_time(w["dead_since_ms"].as_u64().unwrap_or(0)))
                " — " (w["reason"].as_str().unwrap_or(""))
                ". Gửi lại hoặc hủy tin đó để hồ sơ đi tiếp."
            } @else {
                ": tin này đang được gửi trước ("
                (w["attempts"].as_u64().unwrap_or(0)) " lần đã thử"
                @if let Some(e) = w["reason"].as_str() { "; lỗi gần nhất: " (e) }
                ")."
            }
        }
    }
}

fn short_id(id: &str) -> &str {
    id.get(..13).unwrap_or(id)
}

/// The message view (`?ma_ho_so=<message id>`).
pub(super) fn message_view(m: Option<&Value>, searched: &str) -> Markup {
    let Some(m) = m else {
        return html! {
            section #tin {
                h2 { "Tin " (searched) }
                p.bad #tin-khong-thay { "Không tìm thấy tin này (chưa được nhận, hoặc đã quá thời hạn lưu)." }
            }
        };
    };
    let key = m["key"].as_str();
    html! {
        section #tin {
            h2 { "Tin " (m["id"].as_str().unwrap_or("")) }
            p {
                "Đơn vị " b { (m["unit"].as_str().unwrap_or("")) }
                " · luồng " b { (m["flow"].as_str().unwrap_or("")) }
                " · nhận lúc " (super::view::vn_time(m["received_ms"].as_u64().unwrap_or(0)))
                @if let Some(k) = key {
                    " · hồ sơ " a #tin-ho-so href={"/?ma_ho_so=" (url_encode(k))} { (k) }
                }
            }
            @for d in m["deliveries"].as_array().map(Vec::as_slice).unwrap_or_default() {
                (delivery_block(d))
            }
        }
    }
}

fn delivery_block(d: &Value) -> Markup {
    let target = d["target"].as_str().unwrap_or("");
    let state = &d["delivery"];
    let errors = state["errors"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    html! {
        div.giao class={"giao-" (target)} {
            h3 { "Gửi tới " (target) }
            p.tinh-trang { (delivery_text(state, &d["waiting_behind"])) }
            @if !errors.is_empty() {
                table {
                    tr { th { "Lần thử lúc" } th { "HTTP" } th { "Nền tảng trả lời" } }
                    @for e in errors {
                        tr {
                            td { (super::view::vn_time(e["at_ms"].as_u64().unwrap_or(0))) }
                            td { (e["status"].as_u64().map(|s| s.to_string()).unwrap_or_else(|| "—".into())) }
                            td { (crate::redact::mask(e["error"].as_str().unwrap_or(""))) }
                        }
                    }
                }
            }
            @match (&d["mapped"]["body"], d["mapped"]["error"].as_str()) {
                (_, Some(e)) => p.bad { "Không chuyển đổi được: " (crate::redact::mask(e)) },
                (Value::Null, None) => {},
                (body, None) => {
                    details {
                        summary { "Nội dung gửi đi (đã che dữ liệu cá nhân)" }
                        pre.than { (masked_body(body)) }
                    }
                },
            }
        }
    }
}

/// The body as sent, pretty-printed, with personal data masked as the log masks it.
fn masked_body(body: &Value) -> String {
    let text = match body {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    };
    crate::redact::mask(&text)
}
