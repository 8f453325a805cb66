//! The periods KPIs are read over: a month, a quarter, a calendar year, the year to date
//! or all time, in Asia/Ho_Chi_Minh days (the tally's buckets are days).

use serde::Serialize;
use std::ops::Range;

/// A period, as `?period=` writes it: `2024-07`, `2024-Q3`, `2024`, `ytd` or `all`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Period {
    #[default]
    All,
    YearToDate,
    Year(i32),
    Quarter(i32, u32),
    Month(i32, u32),
}

impl Period {
    pub fn parse(text: &str) -> Result<Period, String> {
        let bad = || {
            format!(
                "`{text}` is not a period: write a month (2024-07), a quarter (2024-Q3), a year (2024), ytd or all"
            )
        };
        let year = |y: &str| {
            y.parse::<i32>()
                .ok()
                .filter(|y| (2000..=2100).contains(y))
                .ok_or_else(bad)
        };
        match text.trim() {
            "" | "all" => Ok(Period::All),
            "ytd" => Ok(Period::YearToDate),
            t => match t.split_once('-') {
                None => Ok(Period::Year(year(t)?)),
                Some((y, q)) if q.starts_with(['Q', 'q']) => match q[1..].parse::<u32>() {
                    Ok(n @ 1..=4) => Ok(Period::Quarter(year(y)?, n)),
                    _ => Err(bad()),
                },
                Some((y, m)) => match m.parse::<u32>() {
                    Ok(n @ 1..=12) if m.len() == 2 => Ok(Period::Month(year(y)?, n)),
                    _ => Err(bad()),
                },
            },
        }
    }

    /// The period's name as `?period=` takes it.
    pub fn id(&self) -> String {
        match self {
            Period::All => "all".into(),
            Period::YearToDate => "ytd".into(),
            Period::Year(y) => format!("{y}"),
            Period::Quarter(y, q) => format!("{y}-Q{q}"),
            Period::Month(y, m) => format!("{y}-{m:02}"),
        }
    }

    /// The days (Asia/Ho_Chi_Minh, since 1970-01-01) the period covers, `now_ms` deciding
    /// the year to date.
    pub fn days(&self, now_ms: u64) -> Range<u32> {
        let day = |y: i32, m: u32| days_from_civil(y, m, 1);
        match *self {
            Period::All => 0..u32::MAX,
            Period::YearToDate => {
                let today = crate::outbox::tally::day_of(now_ms);
                let (y, _, _) = civil_from_days(today);
                day(y, 1)..today + 1
            }
            Period::Year(y) => day(y, 1)..day(y + 1, 1),
            Period::Quarter(y, q) => {
                let first = (q - 1) * 3 + 1;
                let (ny, nm) = if q == 4 { (y + 1, 1) } else { (y, first + 3) };
                day(y, first)..day(ny, nm)
            }
            Period::Month(y, m) => {
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                day(y, m)..day(ny, nm)
            }
        }
    }
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.id())
    }
}

/// Days since 1970-01-01 of a calendar date (the mapping library's civil calendar).
pub fn days_from_civil(y: i32, m: u32, d: u32) -> u32 {
    lienthong_mapping::datetime::days_from_civil(y.into(), m, d).max(0) as u32
}

/// The calendar date of a day since 1970-01-01.
pub fn civil_from_days(days: u32) -> (i32, u32, u32) {
    let (y, m, d) = lienthong_mapping::datetime::civil_from_days(days.into());
    (y as i32, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_and_cover_their_days() {
        assert_eq!(Period::parse("2024-Q3"), Ok(Period::Quarter(2024, 3)));
        assert_eq!(Period::parse("2024-07"), Ok(Period::Month(2024, 7)));
        assert_eq!(Period::parse("2024"), Ok(Period::Year(2024)));
        for bad in ["2024-Q5", "2024-13", "24", "2024-7", "soon"] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
        // 2024-07-01 is day 19905; Q3 has 92 days; 2024 is a leap year.
        assert_eq!(days_from_civil(2024, 7, 1), 19_905);
        assert_eq!(civil_from_days(19_905), (2024, 7, 1));
        assert_eq!(Period::Quarter(2024, 3).days(0).len(), 92);
        assert_eq!(Period::Year(2024).days(0).len(), 366);
        assert_eq!(
            Period::Month(2024, 12).days(0).end,
            days_from_civil(2025, 1, 1)
        );
        // The year to date at 2024-03-08 17:30 UTC (already the 9th in Hà Nội).
        let ytd = Period::YearToDate.days(1_709_919_000_000);
        assert_eq!(
            ytd,
            days_from_civil(2024, 1, 1)..days_from_civil(2024, 3, 10)
        );
    }
}
