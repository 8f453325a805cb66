//! Wall-clock helpers: the outbox stores times as milliseconds since the Unix epoch.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
/// The day of `ms` in Asia/Ho_Chi_Minh (UTC+7, no daylight saving), as days since
/// 1970-01-01: the day the KPIs, quotas and lookup figures count by.
pub fn vn_day(ms: u64) -> u32 {
    ((ms / 1000 + 7 * 3600) / 86_400) as u32
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}

/// RFC 3339 text (UTC, millisecond precision) for a stored millisecond timestamp.
pub fn rfc3339_ms(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// `yyyyMMddHHmmss` in Vietnam's time (UTC+7, no daylight saving): the national
/// platforms' date-time form.
pub fn vn_compact(ms: u64) -> String {
    let utc7 = UNIX_EPOCH + Duration::from_millis(ms) + Duration::from_secs(7 * 3600);
    // "2024-03-08T09:12:45Z" → "20240308091245"
    humantime::format_rfc3339_seconds(utc7)
        .to_string()
        .chars()
        .filter(char::is_ascii_digit)
        .collect()
}

/// A day as [`vn_day`] counts it, as `YYYY-MM-DD`.
pub fn day_text(day: u32) -> String {
    let (y, m, d) = lienthong_mapping::datetime::civil_from_days(i64::from(day));
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn vietnam_time_is_utc_plus_seven() {
        // 2024-03-08T02:12:45Z
        assert_eq!(super::vn_compact(1_709_863_965_000), "20240308091245");
    }
}
