//! The words the IT Center's pages and reports use, in one place: the units' and
//! platforms' names as the ministry writes them, periods as a report's heading says them,
//! numbers as Vietnamese writes them (a decimal comma). Terms follow the ministry's own
//! documents: *thư chết* is explained on the page as a message that could not be
//! delivered, *bảng mã* is a text encoding (never *mã hoá*, which reads as encryption).

use crate::admin::period::Period;

/// The ministry's name of one of its four units.
fn known_unit(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "stameq" => "Ủy ban Tiêu chuẩn Đo lường Chất lượng quốc gia",
        "nafosted" => "Quỹ Phát triển khoa học và công nghệ quốc gia",
        "ipo" => "Cục Sở hữu trí tuệ",
        "varans" => "Cục An toàn bức xạ và hạt nhân",
        _ => return None,
    })
}

/// A unit's name as the ministry writes it (the id when the unit is not one of the four).
pub fn unit_name(unit: &str) -> &str {
    known_unit(unit).unwrap_or(unit)
}

/// A unit's name, or "" when only its id is known (for a second line under the id).
pub fn unit_label(unit: &str) -> &'static str {
    known_unit(unit).unwrap_or("")
}

/// A period as a report's heading says it: "Quý III/2024", "Tháng 07/2024", "Năm 2024",
/// "Từ đầu năm đến nay", "Toàn bộ thời gian".
pub fn period_words(id: &str) -> String {
    match Period::parse(id) {
        Ok(Period::All) => "Toàn bộ thời gian".into(),
        Ok(Period::YearToDate) => "Từ đầu năm đến nay".into(),
        Ok(Period::Year(y)) => format!("Năm {y}"),
        Ok(Period::Quarter(y, q)) => {
            let roman = ["I", "II", "III", "IV"][(q as usize - 1).min(3)];
            format!("Quý {roman}/{y}")
        }
        Ok(Period::Month(y, m)) => format!("Tháng {m:02}/{y}"),
        Err(_) => id.to_string(),
    }
}

/// A number with one decimal, a decimal comma: `75,0`.
pub fn decimal_vn(p: f64) -> String {
    format!("{p:.1}").replace('.', ",")
}

/// A latency bucket's bound in the unit a person reads: "≤ 25 ms", "≤ 5 giây",
/// "≤ 5 phút", "≤ 1 giờ", "> 1 giờ" (past the last bucket).
pub fn latency_bound(ms: u64) -> String {
    match ms {
        u64::MAX => "> 1 giờ".into(),
        ms if ms < 1_000 => format!("≤ {ms} ms"),
        ms if ms < 60_000 => format!("≤ {} giây", ms / 1_000),
        ms if ms < 3_600_000 => format!("≤ {} phút", ms / 60_000),
        ms => format!("≤ {} giờ", ms / 3_600_000),
    }
}

/// "Hà Nội, ngày 05 tháng 12 năm 2026": the place and date line of a document to sign,
/// for the day `now_ms` falls on in Vietnam.
pub fn place_and_date(now_ms: u64) -> String {
    let t = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(now_ms + 7 * 3_600_000),
    )
    .to_string();
    format!(
        "Hà Nội, ngày {} tháng {} năm {}",
        &t[8..10],
        &t[5..7],
        &t[0..4]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_numbers_and_dates_in_words() {
        assert_eq!(period_words("2024-Q3"), "Quý III/2024");
        assert_eq!(period_words("2024-07"), "Tháng 07/2024");
        assert_eq!(period_words("all"), "Toàn bộ thời gian");
        assert_eq!(period_words("ytd"), "Từ đầu năm đến nay");
        assert_eq!(decimal_vn(75.0), "75,0");
        assert_eq!(unit_name("ipo"), "Cục Sở hữu trí tuệ");
        assert_eq!(unit_name("ptn"), "ptn");
        assert_eq!(latency_bound(25), "≤ 25 ms");
        assert_eq!(latency_bound(3_600_000), "≤ 1 giờ");
        assert_eq!(latency_bound(300_000), "≤ 5 phút");
        assert_eq!(latency_bound(u64::MAX), "> 1 giờ");
        // 2026-12-04T17:30Z is the 5th in Hà Nội.
        assert_eq!(
            place_and_date(1_796_405_400_000),
            "Hà Nội, ngày 05 tháng 12 năm 2026"
        );
    }
}
