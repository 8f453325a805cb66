//! Reading an event's routing values: the ordering key at the route's JSON pointer, and a
//! field's value as text for `deliver_when`. Only the objects on the pointer's way are
//! parsed, shallowly; everything else is borrowed.

use serde_json::value::RawValue;

/// Longest ordering key accepted.
const MAX_ORDERING_KEY: usize = 256;

/// The value at `pointer` as text (a string as it is, a number or boolean written out,
/// an object or list as JSON); `None` when absent or null.
pub fn text_at(raw: &RawValue, pointer: &str) -> Option<String> {
    let found = pointer_raw(raw, pointer).ok()??;
    match serde_json::from_str::<serde_json::Value>(found.get()).ok()? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// The ordering key at `pointer`: a non-empty string or an integer.
pub fn extract_key(
    raw: &RawValue,
    pointer: &str,
    required: bool,
) -> Result<Option<String>, (&'static str, String)> {
    let found = pointer_raw(raw, pointer).map_err(|e| ("malformed_json", e.to_string()))?;
    let value: Option<serde_json::Value> = match found {
        // Only the key's own value is parsed, not the whole event.
        Some(v) => {
            Some(serde_json::from_str(v.get()).map_err(|e| ("malformed_json", e.to_string()))?)
        }
        None => None,
    };
    match value {
        Some(serde_json::Value::String(s))
            if !s.trim().is_empty() && s.len() <= MAX_ORDERING_KEY =>
        {
            Ok(Some(s))
        }
        Some(serde_json::Value::String(s)) if s.len() > MAX_ORDERING_KEY => Err((
            "invalid_key",
            format!("the ordering key is longer than {MAX_ORDERING_KEY} characters"),
        )),
        Some(serde_json::Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        None | Some(serde_json::Value::Null) if !required => Ok(None),
        None | Some(serde_json::Value::Null) => Err((
            "missing_key",
            "the ordering key is missing; this flow delivers events of one key in order".into(),
        )),
        Some(_) => Err((
            "invalid_key",
            "the ordering key must be a non-empty string or an integer".into(),
        )),
    }
}

/// Follow a JSON pointer (RFC 6901) through raw JSON, parsing only the objects and arrays
/// on the way, shallowly, and borrowing everything else.
fn pointer_raw<'a>(
    raw: &'a RawValue,
    pointer: &str,
) -> Result<Option<&'a RawValue>, serde_json::Error> {
    let mut current = raw;
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        let text = current.get();
        current = match text.as_bytes().first() {
            Some(b'{') => {
                let map: std::collections::HashMap<std::borrow::Cow<'a, str>, &'a RawValue> =
                    serde_json::from_str(text)?;
                match map.get(segment.as_str()) {
                    Some(v) => *v,
                    None => return Ok(None),
                }
            }
            Some(b'[') => {
                let items: Vec<&'a RawValue> = serde_json::from_str(text)?;
                match segment.parse::<usize>().ok().and_then(|i| items.get(i)) {
                    Some(v) => *v,
                    None => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
    }
    Ok(Some(current))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn keys_are_found_by_pointer_without_parsing_everything() {
        let ev = raw(r#"{"a": {"b/c": [10, {"d": "HS-1"}]}, "n": 42, "s": "  ", "z": null}"#);
        assert_eq!(
            extract_key(&ev, "/a/b~1c/1/d", true),
            Ok(Some("HS-1".into()))
        );
        assert_eq!(extract_key(&ev, "/n", true), Ok(Some("42".into())));
        assert_eq!(extract_key(&ev, "/missing", false), Ok(None));
        assert_eq!(
            extract_key(&ev, "/missing", true).unwrap_err().0,
            "missing_key"
        );
        assert_eq!(extract_key(&ev, "/z", true).unwrap_err().0, "missing_key");
        assert_eq!(extract_key(&ev, "/s", true).unwrap_err().0, "invalid_key");
        assert_eq!(extract_key(&ev, "/a", true).unwrap_err().0, "invalid_key");
    }
}
