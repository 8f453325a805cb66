//! Date-time parsing and formatting with patterns unit IT teams already know
//! (`dd/MM/yyyy HH:mm`, the portal's `yyyyMMddHHmmss`), ISO 8601 and epoch seconds.
//!
//! Pattern letters: `yyyy` year, `MM` month, `dd` day, `HH` hour (00-23), `mm` minute,
//! `ss` second, `SSS` milliseconds; single letters `M`, `d`, `H` accept one or two digits
//! when parsing. Text in single quotes is literal (`'T'`), as is any other character.
//! Named formats: `iso8601` (e.g. `2024-03-05T08:30:00+07:00`, `...Z`, a date alone, or no
//! offset: then the zone applies), `epoch` (seconds), `epoch_ms`.
//!
//! Time zones are fixed offsets: `Asia/Ho_Chi_Minh` (UTC+7; Vietnam has kept no daylight
//! saving since 1975), `Asia/Bangkok`, `UTC`, or an offset like `+07:00`. No time-zone
//! database is needed for the zones these platforms use.

/// A format a value is parsed from or written in.
#[derive(Clone, Debug, PartialEq)]
pub enum DateFormat {
    Pattern(Vec<Token>),
    Iso8601,
    Epoch,
    EpochMillis,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Token {
    Year,
    Month { strict: bool },
    Day { strict: bool },
    Hour { strict: bool },
    Minute,
    Second,
    Millis,
    Literal(char),
}

/// Seconds east of UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Zone(pub i32);

impl Zone {
    pub const VIETNAM: Zone = Zone(7 * 3600);

    pub fn parse(name: &str) -> Result<Zone, String> {
        match name {
            "Asia/Ho_Chi_Minh" | "Asia/Saigon" | "Asia/Bangkok" | "Asia/Jakarta" | "ICT" => {
                Ok(Zone::VIETNAM)
            }
            "UTC" | "Z" | "Etc/UTC" | "GMT" => Ok(Zone(0)),
            other => parse_offset(other).ok_or_else(|| {
                format!("unknown time zone `{other}` (use Asia/Ho_Chi_Minh, UTC or an offset such as +07:00)")
            }),
        }
    }
}

fn parse_offset(s: &str) -> Option<Zone> {
    // Byte positions below: only ASCII can be an offset (and slicing stays on characters).
    if !s.is_ascii() {
        return None;
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = match rest.len() {
        5 if rest.as_bytes()[2] == b':' => (&rest[..2], &rest[3..]),
        4 => (&rest[..2], &rest[2..]),
        2 => (rest, "00"),
        _ => return None,
    };
    let h: i32 = h.parse().ok()?;
    let m: i32 = m.parse().ok()?;
    (h <= 14 && m < 60).then_some(Zone(sign * (h * 3600 + m * 60)))
}

impl DateFormat {
    /// The format as written in a mapping (`dd/MM/yyyy HH:mm`, `iso8601`, …).
    pub fn describe(&self) -> String {
        match self {
            DateFormat::Iso8601 => "iso8601".into(),
            DateFormat::Epoch => "epoch (seconds)".into(),
            DateFormat::EpochMillis => "epoch_ms".into(),
            DateFormat::Pattern(tokens) => tokens
                .iter()
                .map(|t| match t {
                    Token::Year => "yyyy".to_string(),
                    Token::Month { strict } => if *strict { "MM" } else { "M" }.into(),
                    Token::Day { strict } => if *strict { "dd" } else { "d" }.into(),
                    Token::Hour { strict } => if *strict { "HH" } else { "H" }.into(),
                    Token::Minute => "mm".into(),
                    Token::Second => "ss".into(),
                    Token::Millis => "SSS".into(),
                    Token::Literal(c) => c.to_string(),
                })
                .collect(),
        }
    }

    pub fn parse(spec: &str) -> Result<DateFormat, String> {
        match spec {
            "iso8601" => return Ok(DateFormat::Iso8601),
            "epoch" => return Ok(DateFormat::Epoch),
            "epoch_ms" => return Ok(DateFormat::EpochMillis),
            _ => {}
        }
        let chars: Vec<char> = spec.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        let (mut y, mut mo, mut d) = (false, false, false);
        while i < chars.len() {
            let c = chars[i];
            let run = chars[i..].iter().take_while(|x| **x == c).count();
            match c {
                '\'' => {
                    let end = chars[i + 1..]
                        .iter()
                        .position(|x| *x == '\'')
                        .ok_or_else(|| format!("unclosed quote in date format `{spec}`"))?;
                    tokens.extend(chars[i + 1..i + 1 + end].iter().map(|c| Token::Literal(*c)));
                    i += end + 2;
                    continue;
                }
                'y' if run == 4 => {
                    y = true;
                    tokens.push(Token::Year)
                }
                'M' if run <= 2 => {
                    mo = true;
                    tokens.push(Token::Month { strict: run == 2 })
                }
                'd' if run <= 2 => {
                    d = true;
                    tokens.push(Token::Day { strict: run == 2 })
                }
                'H' if run <= 2 => tokens.push(Token::Hour { strict: run == 2 }),
                'm' if run == 2 => tokens.push(Token::Minute),
                's' if run == 2 => tokens.push(Token::Second),
                'S' if run == 3 => tokens.push(Token::Millis),
                'y' | 'M' | 'd' | 'H' | 'm' | 's' | 'S' => {
                    return Err(format!(
                        "`{}` in date format `{spec}`: use yyyy, MM, dd, HH, mm, ss or SSS",
                        chars[i..i + run].iter().collect::<String>()
                    ));
                }
                c if c.is_ascii_alphabetic() => {
                    return Err(format!(
                        "`{c}` in date format `{spec}` is not a pattern letter; quote literal text ('T')"
                    ));
                }
                c => {
                    for _ in 0..run {
                        tokens.push(Token::Literal(c));
                    }
                }
            }
            i += run;
        }
        if !(y && mo && d) {
            return Err(format!(
                "date format `{spec}` needs a year (yyyy), a month (MM) and a day (dd)"
            ));
        }
        Ok(DateFormat::Pattern(tokens))
    }
}

/// A point in time: milliseconds since the Unix epoch.
pub type Millis = i64;

/// A whole number, also as a JSON double writes it (`1710000000.0`: many systems keep
/// times in floating point).
fn whole(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().or_else(|| {
        let f = text.parse::<f64>().ok()?;
        (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
    })
}

/// Parse `text` in `format`; `zone` applies when the text names none.
pub fn parse(text: &str, format: &DateFormat, zone: Zone) -> Result<Millis, String> {
    let text = text.trim();
    match format {
        DateFormat::Epoch => whole(text)
            .and_then(|s| s.checked_mul(1000))
            .ok_or_else(|| format!("`{text}` is not epoch seconds")),
        DateFormat::EpochMillis => {
            whole(text).ok_or_else(|| format!("`{text}` is not epoch milliseconds"))
        }
        DateFormat::Iso8601 => parse_iso(text, zone),
        DateFormat::Pattern(tokens) => parse_pattern(text, tokens, zone),
    }
}

#[derive(Default)]
struct Fields {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    millis: u32,
}

fn parse_pattern(text: &str, tokens: &[Token], zone: Zone) -> Result<Millis, String> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut f = Fields::default();
    let digits = |i: &mut usize, min: usize, max: usize| -> Option<u32> {
        let start = *i;
        while *i < b.len() && *i - start < max && b[*i].is_ascii_digit() {
            *i += 1;
        }
        if *i - start < min {
            return None;
        }
        text[start..*i].parse().ok()
    };
    let mismatch = || format!("`{text}` does not match the date format");
    for t in tokens {
        match t {
            Token::Year => f.year = digits(&mut i, 4, 4).ok_or_else(mismatch)? as i64,
            Token::Month { strict } => {
                f.month = digits(&mut i, if *strict { 2 } else { 1 }, 2).ok_or_else(mismatch)?
            }
            Token::Day { strict } => {
                f.day = digits(&mut i, if *strict { 2 } else { 1 }, 2).ok_or_else(mismatch)?
            }
            Token::Hour { strict } => {
                f.hour = digits(&mut i, if *strict { 2 } else { 1 }, 2).ok_or_else(mismatch)?
            }
            Token::Minute => f.minute = digits(&mut i, 2, 2).ok_or_else(mismatch)?,
            Token::Second => f.second = digits(&mut i, 2, 2).ok_or_else(mismatch)?,
            Token::Millis => f.millis = digits(&mut i, 3, 3).ok_or_else(mismatch)?,
            Token::Literal(c) => {
                let mut buf = [0u8; 4];
                let lit = c.encode_utf8(&mut buf).as_bytes();
                if !b[i..].starts_with(lit) {
                    return Err(mismatch());
                }
                i += lit.len();
            }
        }
    }
    if i != b.len() {
        return Err(format!("`{text}` has extra text after the date"));
    }
    to_millis(&f, zone)
}

fn parse_iso(text: &str, zone: Zone) -> Result<Millis, String> {
    let bad = || format!("`{text}` is not an ISO 8601 date-time");
    let b = text.as_bytes();
    // ISO 8601 is ASCII; checking first keeps the byte slicing below on characters (found
    // by fuzzing: `2024-03-1ấy` used to panic).
    if !text.is_ascii() || b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let num = |s: &str| s.parse::<u32>().map_err(|_| bad());
    let mut f = Fields {
        year: num(&text[0..4])? as i64,
        month: num(&text[5..7])?,
        day: num(&text[8..10])?,
        ..Default::default()
    };
    let mut rest = &text[10..];
    let mut zone = zone;
    if let Some(time) = rest.strip_prefix(['T', ' ']) {
        if time.len() < 5 || time.as_bytes()[2] != b':' {
            return Err(bad());
        }
        f.hour = num(&time[0..2])?;
        f.minute = num(&time[3..5])?;
        rest = &time[5..];
        if let Some(sec) = rest.strip_prefix(':') {
            if sec.len() < 2 {
                return Err(bad());
            }
            f.second = num(&sec[0..2])?;
            rest = &sec[2..];
            if let Some(frac) = rest.strip_prefix('.') {
                let n = frac.bytes().take_while(u8::is_ascii_digit).count();
                if n == 0 {
                    return Err(bad());
                }
                let ms = format!("{:0<3}", &frac[..n.min(3)]);
                f.millis = num(&ms)?;
                rest = &frac[n..];
            }
        }
        if !rest.is_empty() {
            zone = Zone::parse(rest).map_err(|_| bad())?;
            rest = "";
        }
    }
    if !rest.is_empty() {
        return Err(bad());
    }
    to_millis(&f, zone)
}

/// Whether `s` (8 or 14 ASCII digits: yyyyMMdd[HHmmss]) is a real date and time, without
/// building a format: the schema checks every portal date this way.
pub fn valid_compact(s: &str) -> bool {
    let b = s.as_bytes();
    if !(b.len() == 8 || b.len() == 14) || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let n = |i: usize, len: usize| {
        b[i..i + len]
            .iter()
            .fold(0u32, |a, d| a * 10 + (d - b'0') as u32)
    };
    let (year, month, day) = (n(0, 4) as i64, n(4, 2), n(6, 2));
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return false;
    }
    b.len() == 8 || (n(8, 2) < 24 && n(10, 2) < 60 && n(12, 2) < 60)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

fn to_millis(f: &Fields, zone: Zone) -> Result<Millis, String> {
    if !(1..=12).contains(&f.month) {
        return Err(format!("month {} is out of range", f.month));
    }
    if f.day == 0 || f.day > days_in_month(f.year, f.month) {
        return Err(format!(
            "day {} is out of range for {:04}-{:02}",
            f.day, f.year, f.month
        ));
    }
    if f.hour > 23 || f.minute > 59 || f.second > 60 {
        return Err(format!(
            "time {:02}:{:02}:{:02} is out of range",
            f.hour, f.minute, f.second
        ));
    }
    let days = days_from_civil(f.year, f.month, f.day);
    let secs =
        days * 86_400 + (f.hour * 3600 + f.minute * 60 + f.second.min(59)) as i64 - zone.0 as i64;
    Ok(secs * 1000 + f.millis as i64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Write `at` in `format`, as seen in `zone`.
pub fn format(at: Millis, format: &DateFormat, zone: Zone) -> String {
    use std::fmt::Write;
    match format {
        DateFormat::Epoch => return at.div_euclid(1000).to_string(),
        DateFormat::EpochMillis => return at.to_string(),
        _ => {}
    }
    let local = at + zone.0 as i64 * 1000;
    let days = local.div_euclid(86_400_000);
    let ms_of_day = local.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s, ms) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000,
    );
    let mut out = String::with_capacity(25);
    match format {
        DateFormat::Iso8601 => {
            let _ = write!(out, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
            if zone.0 == 0 {
                out.push('Z');
            } else {
                let sign = if zone.0 < 0 { '-' } else { '+' };
                let off = zone.0.abs();
                let _ = write!(out, "{sign}{:02}:{:02}", off / 3600, off / 60 % 60);
            }
        }
        DateFormat::Pattern(tokens) => {
            // Digits pushed by hand: this runs for every date of every record.
            let push = |out: &mut String, v: i64, width: u32| {
                let mut div = 10i64.pow(width - 1);
                while div > 0 {
                    out.push((b'0' + (v / div % 10) as u8) as char);
                    div /= 10;
                }
            };
            for t in tokens {
                match t {
                    Token::Year => push(&mut out, y, 4),
                    Token::Month { .. } => push(&mut out, mo as i64, 2),
                    Token::Day { .. } => push(&mut out, d as i64, 2),
                    Token::Hour { .. } => push(&mut out, h, 2),
                    Token::Minute => push(&mut out, mi, 2),
                    Token::Second => push(&mut out, s, 2),
                    Token::Millis => push(&mut out, ms, 3),
                    Token::Literal(c) => out.push(*c),
                }
            }
        }
        DateFormat::Epoch | DateFormat::EpochMillis => unreachable!(),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `map_records` fuzz target (fuzz/regressions/map_records/): non-ASCII
    /// text where a date or an offset was expected is an error, not a panic.
    #[test]
    fn non_ascii_dates_and_offsets_are_errors_not_panics() {
        let iso = DateFormat::parse("iso8601").unwrap();
        for text in [
            "2024-03-1ấy phép",
            "2024-03-15Tấ:00",
            "2024-03-15T08:30+0ấ",
            "2024-03-15T08:30:00ấ",
        ] {
            assert!(parse(text, &iso, Zone(0)).is_err(), "{text}");
        }
        assert!(Zone::parse("+0ấ").is_err());
        assert_eq!(parse_offset("+07ấ"), None);
    }

    fn convert(text: &str, from: &str, to: &str) -> Result<String, String> {
        let from = DateFormat::parse(from)?;
        let to = DateFormat::parse(to)?;
        let at = parse(text, &from, Zone::VIETNAM)?;
        Ok(format(at, &to, Zone::VIETNAM))
    }

    #[test]
    fn unit_formats_to_the_portal_format() {
        assert_eq!(
            convert("05/03/2024 08:30", "dd/MM/yyyy HH:mm", "yyyyMMddHHmmss").unwrap(),
            "20240305083000"
        );
        assert_eq!(
            convert("5/3/2024", "d/M/yyyy", "yyyyMMddHHmmss").unwrap(),
            "20240305000000"
        );
        assert_eq!(
            convert("2024-03-05T01:30:00Z", "iso8601", "yyyyMMddHHmmss").unwrap(),
            "20240305083000"
        );
        assert_eq!(
            convert("2024-03-05T08:30:00.250+07:00", "iso8601", "yyyyMMddHHmmss").unwrap(),
            "20240305083000"
        );
        assert_eq!(
            convert("2024-03-05", "iso8601", "yyyyMMddHHmmss").unwrap(),
            "20240305000000"
        );
        assert_eq!(
            convert("1709602200", "epoch", "yyyyMMddHHmmss").unwrap(),
            "20240305083000"
        );
        assert_eq!(
            convert("20240305083000", "yyyyMMddHHmmss", "iso8601").unwrap(),
            "2024-03-05T08:30:00+07:00"
        );
        assert_eq!(
            convert("2024-03-05 08:30", "yyyy-MM-dd HH:mm", "yyyyMMdd").unwrap(),
            "20240305"
        );
        assert_eq!(
            convert("2024-03-05T08:30", "yyyy-MM-dd'T'HH:mm", "dd/MM/yyyy").unwrap(),
            "05/03/2024"
        );
    }

    #[test]
    fn impossible_dates_and_bad_formats_are_errors() {
        assert!(
            convert("31/02/2024", "dd/MM/yyyy", "yyyyMMdd")
                .unwrap_err()
                .contains("day 31")
        );
        assert!(convert("29/02/2023", "dd/MM/yyyy", "yyyyMMdd").is_err());
        assert_eq!(
            convert("29/02/2024", "dd/MM/yyyy", "yyyyMMdd").unwrap(),
            "20240229"
        );
        assert!(convert("2024/03/05", "dd/MM/yyyy", "yyyyMMdd").is_err());
        assert!(
            convert("05/03/2024x", "dd/MM/yyyy", "yyyyMMdd")
                .unwrap_err()
                .contains("extra")
        );
        assert!(DateFormat::parse("DD/MM/YYYY").is_err());
        assert!(DateFormat::parse("HH:mm").is_err());
        assert!(Zone::parse("Europe/Paris").is_err());
        assert_eq!(Zone::parse("-05:30").unwrap(), Zone(-(5 * 3600 + 1800)));
    }

    #[test]
    fn civil_round_trip_over_four_centuries() {
        for days in (-200_000..200_000).step_by(37) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
