//! How each unit's own system writes things: its status words, its SOAP envelope, XML
//! text, TCVN3 text in old exports, and its name.

use crate::units::UNITS;

pub(super) fn status_word(unit: &str, status: u8, bad: bool) -> String {
    if bad {
        return "TRANG_THAI_LA".into();
    }
    let words: [&str; 10] = match unit {
        "stameq" => [
            "CHO_TIEP_NHAN",
            "DA_TIEP_NHAN",
            "TU_CHOI",
            "DANG_XU_LY",
            "YEU_CAU_BO_SUNG",
            "CHO_NOP_PHI",
            "RUT_HO_SO",
            "DUNG_XU_LY",
            "DA_XU_LY",
            "DA_TRA_KET_QUA",
        ],
        "nafosted" => [
            "submitted",
            "accepted",
            "rejected",
            "under_review",
            "needs_supplement",
            "awaiting_payment",
            "withdrawn",
            "suspended",
            "approved",
            "result_delivered",
        ],
        "ipo" => [
            "MOI_NOP",
            "HOP_LE",
            "TU_CHOI_HINH_THUC",
            "THAM_DINH",
            "SUA_DOI_BO_SUNG",
            "CHO_NOP_PHI",
            "RUT_DON",
            "DINH_CHI",
            "CAP_VAN_BANG",
            "DA_GIAO_VAN_BANG",
        ],
        _ => ["10", "20", "25", "30", "35", "40", "45", "50", "60", "70"],
    };
    words[status as usize - 1].to_string()
}

pub(super) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub(super) fn soap(body: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>{body}</soap:Body></soap:Envelope>"#
    )
    .into_bytes()
}

/// TCVN3 text as the Latin-1 characters old exports put inside UTF-8 files.
pub(super) fn tcvn3_chars(s: &str) -> String {
    lienthong_mapping::text::unicode_to_tcvn3_chars(s)
}

pub(super) fn tcvn3_bytes(s: &str) -> Vec<u8> {
    lienthong_mapping::text::unicode_to_tcvn3(s).unwrap_or_else(|_| s.as_bytes().to_vec())
}

pub(super) fn unit_name(unit: &str) -> &'static str {
    UNITS
        .iter()
        .find(|u| **u == unit)
        .copied()
        .unwrap_or("varans")
}
