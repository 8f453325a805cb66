//! How much of a schema the door enforces, and how a value meets a JSON type in each
//! mode: JSON's own types for a JSON record, or text read as a number, a whole number or
//! true/false for an XML or CSV record, whose values are all text.

use super::Type;
use serde_json::Value;

/// How much of a schema is enforced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every keyword, as JSON Schema reads it.
    Published,
    /// Every keyword, reading a record whose values are text (XML, CSV) as its document
    /// describes it: text that reads as a number is a number (`<SoTien>500000</SoTien>`
    /// meets `"type": "integer"` and its bounds; `1` meets the code `1`), `true` and
    /// `false` are booleans, one element where a list is expected is the list of one, and
    /// an empty element is no value (`<NgayCap/>` is an optional date not given), as the
    /// mapping reads it (text of spaces is a value, as the mapping reads it too).
    Text,
}

impl Mode {
    /// How the door reads a record of `format`: JSON as JSON Schema does, XML and CSV
    /// (all text) as text.
    pub fn of_format(format: crate::Format) -> Mode {
        match format {
            crate::Format::Json => Mode::Published,
            crate::Format::Xml | crate::Format::Csv => Mode::Text,
        }
    }

    /// Null and empty text are "no value", and one element is a list of one.
    pub(super) fn lenient(self) -> bool {
        self == Mode::Text
    }

    /// The mode a condition (`if`) is read in: as written, or as text for a text record.
    pub(super) fn of_condition(self) -> Mode {
        match self {
            Mode::Text => Mode::Text,
            _ => Mode::Published,
        }
    }

    pub(super) fn has_type(self, value: &Value, t: Type) -> bool {
        match (t, value) {
            (Type::String, Value::String(_)) => true,
            (Type::Integer, Value::Number(n)) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            (Type::Number, Value::Number(_)) => true,
            (Type::Boolean, Value::Bool(_)) => true,
            (Type::Object, Value::Object(_)) => true,
            (Type::Array, Value::Array(_)) => true,
            (Type::Null, Value::Null) => true,
            (Type::Integer, Value::String(s)) if self == Mode::Text => text_integer(s),
            (Type::Number, Value::String(s)) if self == Mode::Text => text_number(s).is_some(),
            (Type::Boolean, Value::String(s)) if self == Mode::Text => text_bool(s).is_some(),
            _ => false,
        }
    }

    /// Whether `value` is the code `code`: equal, or for a text record the code written.
    pub(super) fn is_code(self, value: &Value, code: &Value) -> bool {
        if value == code {
            return true;
        }
        let (Mode::Text, Value::String(s)) = (self, value) else {
            return false;
        };
        match code {
            Value::Number(n) => text_number(s).is_some_and(|v| Some(v) == n.as_f64()),
            Value::Bool(b) => text_bool(s) == Some(*b),
            _ => false,
        }
    }

    /// The number `value` is, for a schema's bounds.
    pub(super) fn number(self, value: &Value) -> Option<f64> {
        match (self, value) {
            (Mode::Text, Value::String(s)) => text_number(s),
            (_, v) => v.as_f64(),
        }
    }
}

/// A number as XML Schema's decimal writes it: digits with an optional sign and point
/// (no exponent, no spaces, nothing a mapping would read otherwise).
fn text_number(s: &str) -> Option<f64> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let ok = !(whole.is_empty() && frac.is_empty())
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// A whole number written in digits (`12`, `-3`, `12.0`).
fn text_integer(s: &str) -> bool {
    text_number(s).is_some_and(|f| f.fract() == 0.0)
}

/// `true`/`false` (and XML Schema's `1`/`0`).
fn text_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

impl Mode {
    /// No value: null, or empty text (an empty element, an empty CSV cell), as a mapping
    /// reads it.
    pub(super) fn absent(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_meets_a_type_only_in_text_mode() {
        let twelve = json!("12");
        assert!(Mode::Text.has_type(&twelve, Type::Integer));
        assert!(Mode::Text.has_type(&twelve, Type::Number));
        assert!(!Mode::Published.has_type(&twelve, Type::Integer));
        assert!(Mode::Text.has_type(&json!("1.5"), Type::Number));
        assert!(!Mode::Text.has_type(&json!("1.5"), Type::Integer));
        for not_a_number in ["", "1e3", " 1", "1 000", "NaN", "-", "."] {
            assert!(
                !Mode::Text.has_type(&json!(not_a_number), Type::Number),
                "{not_a_number:?}"
            );
        }
        assert!(Mode::Text.has_type(&json!("false"), Type::Boolean));
        assert!(!Mode::Text.has_type(&json!("False"), Type::Boolean));
    }

    #[test]
    fn a_code_written_as_text_is_the_code() {
        assert!(Mode::Text.is_code(&json!("1"), &json!(1)));
        assert!(!Mode::Published.is_code(&json!("1"), &json!(1)));
        assert!(Mode::Text.is_code(&json!("true"), &json!(true)));
        assert!(!Mode::Text.is_code(&json!("2"), &json!(1)));
        assert_eq!(Mode::Text.number(&json!("500000")), Some(500000.0));
    }
}
