//! A date field of the input schema: a pattern that every spelling the mapping reads
//! matches (each of its source formats), and that only real dates match.
//!
//! The door enforces the published schema, so the pattern is the door's rule for a date:
//! it must take the 29th, 30th and 31st where the month has them, and the 29th of
//! February in a leap year, and nothing the mapping would then refuse as impossible.
//! Years run 1900–2099 (the centuries an administrative dossier has dates in).

use crate::datetime::{DateFormat, Token};
use serde_json::{Map, Value, json};

/// How a date's month, day and year may combine: one alternative of the pattern each.
struct Calendar {
    month: [&'static str; 2],
    day: [&'static str; 2],
    year: &'static str,
}

/// `[strict, loose]` spellings of each part; a loose token (`d`, `M`) takes one digit too.
const CALENDAR: [Calendar; 4] = [
    // Every month has days 1 to 28.
    Calendar {
        month: ["0[1-9]|1[0-2]", "0?[1-9]|1[0-2]"],
        day: ["0[1-9]|1[0-9]|2[0-8]", "0?[1-9]|1[0-9]|2[0-8]"],
        year: YEAR,
    },
    // Every month but February has the 29th and 30th.
    Calendar {
        month: ["0[13-9]|1[0-2]", "0?[13-9]|1[0-2]"],
        day: ["29|30", "29|30"],
        year: YEAR,
    },
    // The long months have the 31st.
    Calendar {
        month: ["0[13578]|1[02]", "0?[13578]|1[02]"],
        day: ["31", "31"],
        year: YEAR,
    },
    // February has the 29th in a leap year (1900 is not one, 2000 is).
    Calendar {
        month: ["02", "0?2"],
        day: ["29", "29"],
        year: LEAP_YEAR,
    },
];

const YEAR: &str = "19[0-9]{2}|20[0-9]{2}";
const LEAP_YEAR: &str = "19(?:0[48]|[2468][048]|[13579][26])|20(?:0[048]|[2468][048]|[13579][26])";

/// The date constraints of a leaf read with `date = { from = … }`.
pub(super) fn date(leaf: &mut Map<String, Value>, from: &[DateFormat]) {
    let names: Vec<String> = from.iter().map(DateFormat::describe).collect();
    leaf.insert(
        "description".into(),
        json!(format!("a date: {}", names.join(" or "))),
    );
    let epoch = from
        .iter()
        .any(|f| matches!(f, DateFormat::Epoch | DateFormat::EpochMillis));
    let mut texts: Vec<String> = from.iter().filter_map(text_pattern).collect();
    // Epoch time as text too (`"1708300800"`), up to 2100 as the number is.
    if from.contains(&DateFormat::Epoch) {
        texts.push("[0-9]{1,9}|[1-3][0-9]{9}|40[0-9]{8}".into());
    } else if from.contains(&DateFormat::EpochMillis) {
        texts.push("[0-9]{1,12}|[1-3][0-9]{12}|40[0-9]{11}".into());
    }
    let text = (!texts.is_empty())
        .then(|| json!({"type": "string", "pattern": format!("^(?:{})$", texts.join("|"))}));
    // Epoch seconds up to 2100; epoch milliseconds the same instant range.
    let number = epoch.then(|| {
        let max = if from.contains(&DateFormat::Epoch) {
            4_102_444_800i64
        } else {
            4_102_444_800_000
        };
        json!({"type": "integer", "minimum": 0, "maximum": max})
    });
    match (text, number) {
        (Some(Value::Object(t)), None) | (None, Some(Value::Object(t))) => leaf.extend(t),
        (Some(t), Some(n)) => {
            leaf.insert("anyOf".into(), json!([n, t]));
        }
        _ => {}
    }
    if from.contains(&DateFormat::Iso8601) {
        leaf.insert("examples".into(), json!(["2024-03-15T08:30:00+07:00"]));
    }
}

/// The portal's compact date (`yyyyMMdd`) or date-time (`yyyyMMddHHmmss`), real ones only.
pub(super) fn compact(time: bool) -> String {
    let spec = if time { "yyyyMMddHHmmss" } else { "yyyyMMdd" };
    let format = DateFormat::parse(spec).expect("a valid date format");
    text_pattern(&format).expect("a text format")
}

/// The pattern (unanchored alternatives) of one text format; `None` for epoch numbers.
fn text_pattern(format: &DateFormat) -> Option<String> {
    match format {
        DateFormat::Epoch | DateFormat::EpochMillis => None,
        DateFormat::Iso8601 => {
            // What the ISO reader takes: a date, then optionally a time (seconds and a
            // fraction optional) and an offset or UTC.
            let date = [Token::Year, dash(), strict_month(), dash(), strict_day()];
            let time = "(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\\.[0-9]+)?)?\
                        (?:Z|UTC|GMT|[+-](?:0[0-9]|1[0-4])(?::?[0-5][0-9])?)?)?";
            Some(format!("(?:{}){time}", calendar(&date)))
        }
        DateFormat::Pattern(tokens) => Some(calendar(tokens)),
    }
}

fn dash() -> Token {
    Token::Literal('-')
}
fn strict_month() -> Token {
    Token::Month { strict: true }
}
fn strict_day() -> Token {
    Token::Day { strict: true }
}

/// The alternatives of `tokens` over the calendar, without repeats (a format without a
/// day has one).
fn calendar(tokens: &[Token]) -> String {
    let mut alternatives: Vec<String> = Vec::new();
    for case in &CALENDAR {
        let one = render(tokens, case);
        if !alternatives.contains(&one) {
            alternatives.push(one);
        }
    }
    alternatives.join("|")
}

fn render(tokens: &[Token], case: &Calendar) -> String {
    let mut re = String::new();
    for (i, t) in tokens.iter().enumerate() {
        // The reader takes as many digits as a loose token can have: followed by another
        // number, a loose token is read as two digits.
        let next_is_digit = tokens
            .get(i + 1)
            .is_some_and(|n| !matches!(n, Token::Literal(_)));
        let loose = |strict: bool| usize::from(!strict && !next_is_digit);
        let part = match t {
            Token::Year => format!("(?:{})", case.year),
            Token::Month { strict } => format!("(?:{})", case.month[loose(*strict)]),
            Token::Day { strict } => format!("(?:{})", case.day[loose(*strict)]),
            Token::Hour { strict } => {
                let hour = ["[01][0-9]|2[0-3]", "[01]?[0-9]|2[0-3]"];
                format!("(?:{})", hour[loose(*strict)])
            }
            Token::Minute | Token::Second => "[0-5][0-9]".into(),
            Token::Millis => "[0-9]{3}".into(),
            Token::Literal(c) => regex_escape(*c),
        };
        re.push_str(&part);
    }
    re
}

fn regex_escape(c: char) -> String {
    if ".^$*+?()[]{}|\\".contains(c) {
        format!("\\{c}")
    } else {
        c.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datetime::{Zone, parse};

    fn pattern(formats: &[&str]) -> regex::Regex {
        let from: Vec<DateFormat> = formats
            .iter()
            .map(|f| DateFormat::parse(f).unwrap())
            .collect();
        let mut leaf = Map::new();
        date(&mut leaf, &from);
        regex::Regex::new(leaf["pattern"].as_str().unwrap()).unwrap()
    }

    #[test]
    fn every_real_day_matches_and_no_other() {
        let re = pattern(&["dd/MM/yyyy"]);
        let format = DateFormat::parse("dd/MM/yyyy").unwrap();
        for year in [1900, 1999, 2000, 2023, 2024, 2099] {
            for month in 1..=12 {
                for day in 0..=32 {
                    let text = format!("{day:02}/{month:02}/{year}");
                    let real = parse(&text, &format, Zone::VIETNAM).is_ok();
                    assert_eq!(re.is_match(&text), real, "{text}");
                }
            }
        }
    }

    #[test]
    fn each_source_format_and_loose_digits_are_taken() {
        let re = pattern(&["dd/MM/yyyy HH:mm", "dd/MM/yyyy", "d/M/yyyy"]);
        for ok in ["30/04/2024 17:05", "31/12/2024", "5/3/2024", "29/2/2024"] {
            assert!(re.is_match(ok), "{ok}");
        }
        for bad in ["31/04/2024", "29/02/2023", "5/3/24", "30/04/2024 24:00"] {
            assert!(!re.is_match(bad), "{bad}");
        }
        let iso = pattern(&["iso8601"]);
        let format = DateFormat::Iso8601;
        for ok in [
            "2024-02-29",
            "2024-04-30T08:30",
            "2024-03-31T08:30:00.123+07:00",
            "2024-03-31 08:30:00Z",
            "2024-03-31T08:30:00+0700",
        ] {
            assert!(iso.is_match(ok), "{ok}");
            assert!(parse(ok, &format, Zone::VIETNAM).is_ok(), "{ok}");
        }
        assert!(!iso.is_match("2023-02-29T08:30:00Z"));
    }

    #[test]
    fn epoch_and_text_together_are_either() {
        let from = [DateFormat::Epoch, DateFormat::Iso8601];
        let mut leaf = Map::new();
        date(&mut leaf, &from);
        let any = leaf["anyOf"].as_array().unwrap();
        assert_eq!(any[0]["type"], "integer");
        assert_eq!(any[1]["type"], "string");
    }
}
