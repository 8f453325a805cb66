//! The dashboard's form 06a (Biểu số 06a) for the period on the page, with its downloads,
//! Decision 766's service-index groups, and what the figures cannot see.

use crate::admin::kpi::{INDEX_766, KpiSnapshot};
use crate::admin::report_06a::{HEADINGS, rows};
use maud::{Markup, html};

/// The form's table (a row per unit, then the ministry), its downloads, and the limits.
pub fn section(k: &KpiSnapshot, period: &str) -> Markup {
    let doc = serde_json::to_value(k).expect("snapshots serialize");
    let rows = rows(&doc);
    html! {
        h3 #bieu-06a { "Biểu số 06a: tình hình, kết quả giải quyết TTHC" }
        p.muted {
            "Hồ sơ từ kỳ trước chuyển qua, tiếp nhận trong kỳ, đã giải quyết (trước, đúng, quá hạn, theo NgayKetThucXuLy so với NgayHenTra đã gia hạn khi bổ sung) và đang giải quyết cuối kỳ. Tải biểu: "
            a #tai-06a-xlsx href={"/bao-cao?bieu=06a&ky=" (period) "&dinh_dang=xlsx"} { "Excel" }
            " · "
            a #tai-06a-csv href={"/bao-cao?bieu=06a&ky=" (period) "&dinh_dang=csv"} { "CSV" }
            " · "
            a #tai-06a-pdf href={"/bao-cao?bieu=06a&ky=" (period) "&dinh_dang=pdf"} { "PDF" }
        }
        table #bang-06a {
            tr {
                @for h in &HEADINGS[1..] { th { (h) } }
            }
            @for (r, u) in rows.iter().zip(k.units.iter().chain(std::iter::once(&k.overall))) {
                @let unit = if u.unit.is_empty() { "tong" } else { u.unit.as_str() };
                tr {
                    td { b { (r.unit) } }
                    @for (i, v) in r.figures().iter().enumerate() {
                        td.num #{"b06a-" (unit) "-" (i)} {
                            // Open and late: the figure to act on.
                            @if i == 10 && *v > 0 { span.bad { (v) } } @else { (v) }
                        }
                    }
                }
            }
        }
        h3 #chi-so-766 { "Chỉ số phục vụ theo Quyết định 766/QĐ-TTg (phần trục thấy được)" }
        p.muted { "Theo cách Chính phủ chấm điểm, cạnh các chỉ tiêu của Kế hoạch: thanh toán trực tuyến tính theo hồ sơ của thủ tục có thu phí (chỉ tiêu 3 của Kế hoạch tính theo giao dịch); số hóa tách từng phần. Mức độ hài lòng lấy từ đánh giá của người dân trên Cổng, trục hỏi định kỳ; công khai minh bạch không đi qua trục." }
        table #bang-766 {
            tr {
                th { "Đơn vị" }
                @for (_, name) in INDEX_766 { th { (name) } }
            }
            @for u in k.units.iter().chain(std::iter::once(&k.overall)) {
                @let unit = if u.unit.is_empty() { "tong" } else { u.unit.as_str() };
                tr {
                    td { b { @if u.unit.is_empty() { "Toàn Bộ" } @else { (crate::admin::words::unit_name(&u.unit)) } } }
                    @for ((id, _), r) in INDEX_766.iter().zip(u.index_766.ratios()) {
                        td.num #{"i766-" (unit) "-" (id)} {
                            @match r.percent {
                                Some(p) => { (crate::admin::words::decimal_vn(p)) " %" br; span.muted { (r.numerator) "/" (r.denominator) } }
                                None => "—",
                            }
                        }
                    }
                }
            }
        }
        h3 { "Những gì số liệu không thấy" }
        ul #gioi-han {
            @for l in &k.limits { li { (l) } }
        }
    }
}
