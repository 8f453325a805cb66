//! The JSON bodies units post: one event (an object) or a batch (an array of objects),
//! split into the raw text of each event without building a tree of it. Nesting is
//! bounded by a linear scan before the parser sees the body, so a hostile body costs time
//! in proportion to its length and never a deep recursion.

use serde_json::value::RawValue;

/// A JSON body split into its events.
#[derive(Debug)]
pub struct EventsBody {
    /// Each event's JSON text, an object.
    pub events: Vec<Box<RawValue>>,
    /// The body was an array (a batch), even of one event.
    pub batch: bool,
}

/// Why a body is not a JSON event or batch of events.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JsonBodyError {
    #[error("the body is not UTF-8 (byte {valid_up_to})")]
    NotUtf8 { valid_up_to: usize },
    #[error("the JSON nests deeper than {limit} levels (at byte {offset}); no event needs that")]
    TooDeep { offset: usize, limit: usize },
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    Malformed {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("the body is empty; send a JSON object or array")]
    Empty,
    #[error("send one event as a JSON object or a batch as a JSON array of objects")]
    NotAnEvent,
    #[error("the batch holds no events")]
    EmptyBatch,
    /// The event at this index of a batch (`None`: the body itself) is not an object.
    #[error("each event must be a JSON object")]
    EventNotAnObject { index: Option<usize> },
}

impl From<serde_json::Error> for JsonBodyError {
    fn from(e: serde_json::Error) -> Self {
        JsonBodyError::Malformed {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        }
    }
}

/// Split `bytes` into events: an object is one event, an array a batch of them.
pub fn split_events(bytes: &[u8], max_depth: usize) -> Result<EventsBody, JsonBodyError> {
    let text = std::str::from_utf8(bytes).map_err(|e| JsonBodyError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    if let Some(offset) = deeper_than(text.as_bytes(), max_depth) {
        return Err(JsonBodyError::TooDeep {
            offset,
            limit: max_depth,
        });
    }
    let (events, batch): (Vec<Box<RawValue>>, bool) =
        match text.trim_start().as_bytes().first().copied() {
            Some(b'[') => (serde_json::from_str(text)?, true),
            Some(b'{') => (vec![serde_json::from_str(text)?], false),
            None => return Err(JsonBodyError::Empty),
            Some(_) => {
                // Let the parser say what is wrong, or that it is valid JSON of the wrong kind.
                serde_json::from_str::<serde::de::IgnoredAny>(text)?;
                return Err(JsonBodyError::NotAnEvent);
            }
        };
    if events.is_empty() {
        return Err(JsonBodyError::EmptyBatch);
    }
    if let Some(index) = events.iter().position(|e| !e.get().starts_with('{')) {
        return Err(JsonBodyError::EventNotAnObject {
            index: batch.then_some(index),
        });
    }
    Ok(EventsBody { events, batch })
}

/// The byte offset where `json` first nests deeper than `limit` arrays and objects, if it
/// does. A linear scan that knows strings and escapes, and nothing else of JSON.
pub fn deeper_than(json: &[u8], limit: usize) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in json.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Some(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_and_batches_split_and_everything_else_is_named() {
        let one = split_events(br#" {"a":1}"#, 8).unwrap();
        assert_eq!((one.events.len(), one.batch), (1, false));
        let two = split_events(br#"[{"a":1},{"b":[2]}]"#, 8).unwrap();
        assert_eq!((two.events.len(), two.batch), (2, true));
        assert_eq!(two.events[1].get(), r#"{"b":[2]}"#);
        assert_eq!(split_events(b"  ", 8).unwrap_err(), JsonBodyError::Empty);
        assert_eq!(
            split_events(b"[]", 8).unwrap_err(),
            JsonBodyError::EmptyBatch
        );
        assert_eq!(
            split_events(b"42", 8).unwrap_err(),
            JsonBodyError::NotAnEvent
        );
        assert_eq!(
            split_events(br#"[{},3]"#, 8).unwrap_err(),
            JsonBodyError::EventNotAnObject { index: Some(1) }
        );
        assert!(matches!(
            split_events(b"{\"a\":", 8).unwrap_err(),
            JsonBodyError::Malformed { line: 1, .. }
        ));
        assert_eq!(
            split_events(b"[\xff]", 8).unwrap_err(),
            JsonBodyError::NotUtf8 { valid_up_to: 1 }
        );
        // Brackets inside strings do not count; real nesting does.
        assert!(split_events(br#"{"a":"[[[[[[[[[[[[\"[["}"#, 2).is_ok());
        assert_eq!(
            split_events(br#"{"a":[[1]]}"#, 2).unwrap_err(),
            JsonBodyError::TooDeep {
                offset: 6,
                limit: 2
            }
        );
    }
}
