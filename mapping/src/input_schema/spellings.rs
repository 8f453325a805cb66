//! The spellings of a value that a mapping reads, as JSON Schema: what the door lets in.
//!
//! The door holds a JSON event to its published schema, so that schema must take every
//! spelling the mapping turns into a valid output (else the door refuses what the bus
//! would deliver) and nothing the mapping then refuses (else the contract promises what
//! the bus refuses). Unit systems write a phone as `+84 912 345 678`, an identity number
//! as `0010 4028 5821`, a code in capitals, an amount as `"500000"` or `150.000`; the
//! mapping's operations (`phone_vn`, `digits`, `strip_spaces`, `trim`, `upper`/`lower`,
//! `type = "integer"`) normalise each, and the patterns here are what those operations
//! take, written so that a value matching them always normalises to a valid output.

use crate::engine::Op;
use crate::schema::{Kind, TextFormat};
use serde_json::{Map, Value, json};

/// Which of the preserving operations run before the value reaches its output field.
#[derive(Clone, Copy, Default)]
pub(super) struct Normalised {
    /// `trim` (or `collapse_spaces`): spaces around the value.
    pub trim: bool,
    /// `strip_spaces`: spaces anywhere.
    pub spaces: bool,
    /// `digits`: any separators between digits.
    pub digits: bool,
    /// `phone_vn`: separators, and 84 or +84 for the leading 0.
    pub phone: bool,
    /// `upper` or `lower`: any case.
    pub case: bool,
}

impl Normalised {
    pub(super) fn of(ops: &[Op]) -> Normalised {
        let mut n = Normalised::default();
        for op in ops {
            match op {
                Op::Trim | Op::CollapseSpaces => n.trim = true,
                Op::StripSpaces => n.spaces = true,
                Op::Digits => n.digits = true,
                Op::PhoneVn => n.phone = true,
                Op::Upper | Op::Lower => n.case = true,
                _ => {}
            }
        }
        n
    }

    /// Whether the input may be longer than the output (lengths are not carried back).
    pub(super) fn loosens(self) -> bool {
        self.trim || self.spaces || self.digits || self.phone
    }

    /// Between two digits: nothing, or what the operations remove.
    fn separator(self) -> &'static str {
        if self.digits || self.phone {
            "[ .-]?"
        } else if self.spaces {
            " ?"
        } else {
            ""
        }
    }

    /// `n` digits, with the separators the operations remove between them.
    fn digits_run(self, n: &str) -> String {
        match self.separator() {
            "" => format!("[0-9]{{{n}}}"),
            sep => {
                let (low, high) = n.split_once(',').unwrap_or((n, n));
                let less = |s: &str| s.parse::<usize>().map(|v| v.saturating_sub(1).to_string());
                match (less(low).unwrap_or_default(), less(high)) {
                    (low, Ok(high)) if low == high => format!("[0-9](?:{sep}[0-9]){{{low}}}"),
                    (low, Ok(high)) => format!("[0-9](?:{sep}[0-9]){{{low},{high}}}"),
                    (low, Err(_)) => format!("[0-9](?:{sep}[0-9]){{{low},}}"),
                }
            }
        }
    }
}

/// The pattern (unanchored) of an output format as the input may write it.
pub(super) fn format_pattern(f: TextFormat, n: Normalised) -> String {
    let sep = n.separator();
    let body = match f {
        TextFormat::SoDinhDanh => n.digits_run("12"),
        TextFormat::Cmnd => n.digits_run("9"),
        TextFormat::Digits => match sep {
            "" => "[0-9]+".into(),
            sep => format!("[0-9](?:{sep}[0-9])*"),
        },
        // `digits` would join a branch code to the number: only the separators kept.
        TextFormat::MaSoDoanhNghiep if n.digits => n.digits_run("10"),
        TextFormat::MaSoDoanhNghiep => {
            let s = if n.spaces { " ?" } else { "" };
            format!("{}(?:{s}-{s}{})?", n.digits_run("10"), n.digits_run("3"))
        }
        // What `phone_vn` makes of it (its digits, 84 for the 0) the output then checks.
        TextFormat::Phone if n.phone => {
            format!("(?:\\+?84|0){sep}[1-9](?:{sep}[0-9]){{8,9}}")
        }
        TextFormat::MobilePhone if n.phone => {
            format!("(?:\\+?84|0){sep}[35789](?:{sep}[0-9]){{8}}")
        }
        // Without `phone_vn` the output takes +84 (which `digits` turns into 84) or 0.
        TextFormat::Phone => {
            let prefix = if n.digits {
                "(?:\\+?84|0)"
            } else {
                "(?:\\+84|84|0)"
            };
            format!("{prefix}{sep}[1-9](?:{sep}[0-9]){{8,9}}")
        }
        TextFormat::MobilePhone => {
            let prefix = if n.digits { "0" } else { "(?:\\+84|0)" };
            format!("{prefix}{sep}[35789](?:{sep}[0-9]){{8}}")
        }
        TextFormat::DateTime14 => super::dates::compact(true),
        TextFormat::Date8 => super::dates::compact(false),
        TextFormat::Email => "[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)+".into(),
        // Base64 as mail and PEM wrap it, in lines; `strip_spaces` also takes an XML
        // element's base64 indented on lines of its own (`<NoiDung>\n  JVBER…\n</NoiDung>`).
        TextFormat::PdfBase64 if n.spaces => "\\s*JVBERi[0-3][A-Za-z0-9+/=\\s]*".into(),
        TextFormat::PdfBase64 => "JVBERi[0-3][A-Za-z0-9+/=\\r\\n]*".into(),
    };
    if n.trim {
        format!(" *(?:{body}) *")
    } else {
        body
    }
}

/// A code in any case (the table ignores case, or the value's case is changed before
/// the table): `[sS][mM][sS]`.
pub(super) fn caseless(code: &str) -> String {
    let mut out = String::new();
    for c in code.chars() {
        let (lo, up) = (c.to_lowercase().to_string(), c.to_uppercase().to_string());
        if lo != up && lo.chars().count() == 1 && up.chars().count() == 1 {
            out.push_str(&format!("[{lo}{up}]"));
        } else if ".^$*+?()[]{}|\\".contains(c) {
            out.push('\\');
            out.push(c);
        } else {
            out.push(c);
        }
    }
    out
}

/// A whole number written as text: plain, or in groups of three (`150.000`, `1,200,000`)
/// when `digits` runs first and drops the separators.
pub(super) fn integer_text(digits_first: bool) -> String {
    if digits_first {
        "^(?:[0-9]{1,15}|[0-9]{1,3}(?:[., ][0-9]{3}){1,4})$".into()
    } else {
        "^-?[0-9]{1,15}$".into()
    }
}

/// The output field's format, lengths and enumeration, as the input's.
pub(super) fn carry_back(
    leaf: &mut Map<String, Value>,
    out: &crate::schema::FieldRule,
    normalised: Normalised,
) {
    if let Some(values) = &out.one_of {
        let texts: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
        if normalised.case && texts.len() == values.len() {
            // The output's codes in any case: the case is changed on the way.
            let spelled: Vec<String> = texts.iter().map(|c| caseless(c)).collect();
            leaf.insert(
                "anyOf".into(),
                json!([{"type": "string", "enum": values},
                    {"type": "string", "pattern": format!("^(?:{})$", spelled.join("|"))}]),
            );
        } else {
            leaf.insert("enum".into(), Value::Array(values.clone()));
        }
        return;
    }
    match out.kind {
        Some(Kind::Integer) => {
            leaf.insert("type".into(), json!("integer"));
        }
        Some(Kind::Number) => {
            leaf.insert("type".into(), json!("number"));
        }
        Some(Kind::Boolean) => {
            leaf.insert("type".into(), json!("boolean"));
        }
        _ => {}
    }
    let patterns: Vec<String> = out
        .formats
        .iter()
        .map(|f| match f {
            // Digits with separators: the output's length is a count of digits.
            TextFormat::Digits
                if normalised.loosens() && (out.min_len, out.max_len) != (None, None) =>
            {
                let low = out.min_len.unwrap_or(1).max(1);
                let high = out.max_len.map(|h| h.to_string()).unwrap_or_default();
                let run = normalised.digits_run(&format!("{low},{high}"));
                if normalised.trim {
                    format!(" *(?:{run}) *")
                } else {
                    run
                }
            }
            f => format_pattern(*f, normalised),
        })
        .collect();
    if !patterns.is_empty() {
        leaf.insert("type".into(), json!("string"));
        leaf.insert(
            "pattern".into(),
            json!(format!("^(?:{})$", patterns.join("|"))),
        );
        if out.formats.contains(&TextFormat::PdfBase64) {
            leaf.insert("contentEncoding".into(), json!("base64"));
            leaf.insert("contentMediaType".into(), json!("application/pdf"));
        }
        let described: Vec<&str> = out.formats.iter().map(|f| f.describe()).collect();
        leaf.insert("description".into(), json!(described.join(" or ")));
    }
    // The normalising operations only shorten a value; where the pattern takes the
    // longer spellings, it bounds the length itself.
    if normalised.loosens() && !patterns.is_empty() {
        return;
    }
    if let Some(n) = out.max_len {
        leaf.insert("type".into(), json!("string"));
        leaf.insert("maxLength".into(), json!(n));
    }
    if let Some(n) = out.min_len {
        leaf.insert("type".into(), json!("string"));
        leaf.insert("minLength".into(), json!(n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(f: TextFormat, ops: &[Op], s: &str) -> bool {
        let re = format!("^(?:{})$", format_pattern(f, Normalised::of(ops)));
        regex::Regex::new(&re).unwrap().is_match(s)
    }

    /// Every spelling the pattern takes is one the operations turn into a valid output.
    fn delivered(f: TextFormat, ops: &[Op], s: &str) -> bool {
        let mut v = serde_json::Value::String(s.into());
        for op in ops {
            v = crate::engine::apply_op(op, v).unwrap();
        }
        f.check(v.as_str().unwrap())
    }

    #[test]
    fn the_spellings_units_write_are_taken_and_each_one_is_delivered() {
        let cases: &[(TextFormat, &[Op], &str, bool)] = &[
            (
                TextFormat::MobilePhone,
                &[Op::PhoneVn],
                "+84 983 456 789",
                true,
            ),
            (TextFormat::MobilePhone, &[Op::PhoneVn], "84983456789", true),
            (
                TextFormat::MobilePhone,
                &[Op::PhoneVn],
                "091 379 1234",
                true,
            ),
            (
                TextFormat::MobilePhone,
                &[Op::PhoneVn],
                "024 3756 2345",
                false,
            ),
            (TextFormat::Phone, &[Op::PhoneVn], "024 3756 2345", true),
            (TextFormat::Phone, &[Op::PhoneVn], "+84 24 3756 2345", true),
            (TextFormat::Phone, &[], "02437562345", true),
            (TextFormat::Phone, &[], "+842437562345", true),
            (
                TextFormat::SoDinhDanh,
                &[Op::Digits],
                "0010 4028 5821",
                true,
            ),
            (
                TextFormat::SoDinhDanh,
                &[Op::StripSpaces],
                "0010 4028 5821",
                true,
            ),
            (TextFormat::SoDinhDanh, &[Op::Trim], " 001040285821 ", true),
            (TextFormat::SoDinhDanh, &[], "0010 4028 5821", false),
            (TextFormat::Cmnd, &[Op::Digits], "012 345 678", true),
            (
                TextFormat::MaSoDoanhNghiep,
                &[Op::StripSpaces],
                "0100 631 043-002",
                true,
            ),
            (
                TextFormat::MaSoDoanhNghiep,
                &[Op::Trim],
                " 0100308695 ",
                true,
            ),
            (TextFormat::Email, &[Op::Lower], "Minh.Anh@vnu.edu.vn", true),
        ];
        for (f, ops, s, taken) in cases {
            assert_eq!(matches(*f, ops, s), *taken, "{f:?} {s}");
            if *taken {
                assert!(delivered(*f, ops, s), "{f:?} {s}");
            }
        }
    }

    #[test]
    fn codes_in_any_case_and_amounts_as_text() {
        let re = regex::Regex::new(&format!("^(?:{})$", caseless("zalo"))).unwrap();
        assert!(re.is_match("ZALO") && re.is_match("Zalo") && !re.is_match("zal"));
        let re = regex::Regex::new(&integer_text(true)).unwrap();
        for ok in ["150.000", "1,200,000", "500000"] {
            assert!(re.is_match(ok), "{ok}");
        }
        assert!(!re.is_match("15.00") && !re.is_match(""));
    }
}
