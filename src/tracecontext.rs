//! W3C Trace Context (`traceparent`): a unit that sends one keeps its trace through the
//! bus, and every delivery attempt carries it on to the target as a span of that trace.
//!
//! The bus's own trace ids are already W3C trace ids (32 lowercase hex digits), so a
//! message accepted without a `traceparent` starts a trace of its own that targets can
//! follow just the same. `X-Trace-Id` is still read (and sent) for units and targets that
//! predate Trace Context.

/// The trace id of a valid `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`; version `ff`,
/// an all-zero trace or parent id, and upper-case hex are invalid), lower case.
pub fn trace_id_of(traceparent: &str) -> Option<String> {
    let parts: Vec<&str> = traceparent.trim().split('-').collect();
    let [version, trace, parent, flags] = parts.as_slice() else {
        // Future versions may append fields after the flags.
        let is_future = parts.len() > 4 && parts[0] != "00";
        return is_future
            .then(|| trace_id_of(&parts[..4].join("-")))
            .flatten();
    };
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    (hex(version, 2)
        && *version != "ff"
        && hex(trace, 32)
        && nonzero(trace)
        && hex(parent, 16)
        && nonzero(parent)
        && hex(flags, 2))
    .then(|| trace.to_string())
}

/// The parent span id (16 hex digits) of a valid `traceparent`.
pub fn parent_id_of(traceparent: &str) -> Option<&str> {
    trace_id_of(traceparent)?;
    traceparent.trim().split('-').nth(2)
}

/// A `traceparent` for one delivery attempt of a message of `trace_id`: a new span id,
/// sampled. `None` when the trace id is not a W3C one (a unit's own `X-Trace-Id`).
pub fn traceparent_for(trace_id: &str) -> Option<String> {
    let valid = trace_id.len() == 32
        && trace_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && trace_id.bytes().any(|b| b != b'0');
    valid.then(|| {
        let span = loop {
            let s: u64 = rand::random();
            if s != 0 {
                break s;
            }
        };
        format!("00-{trace_id}-{span:016x}-01")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_are_read_strictly_and_written_as_new_spans_of_the_trace() {
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(
            trace_id_of(&format!("00-{trace}-00f067aa0ba902b7-01")).as_deref(),
            Some(trace)
        );
        // Invalid: version ff, zero ids, upper case, wrong lengths, garbage.
        for bad in [
            format!("ff-{trace}-00f067aa0ba902b7-01"),
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01".to_string(),
            format!("00-{trace}-0000000000000000-01"),
            format!("00-{}-00f067aa0ba902b7-01", trace.to_uppercase()),
            format!("00-{trace}-00f067aa0ba902b-01"),
            "not a traceparent".to_string(),
        ] {
            assert_eq!(trace_id_of(&bad), None, "{bad}");
        }
        // A later version with more fields: its first four are read.
        assert_eq!(
            trace_id_of(&format!("01-{trace}-00f067aa0ba902b7-01-extra")).as_deref(),
            Some(trace)
        );
        let out = traceparent_for(trace).unwrap();
        assert!(
            out.starts_with(&format!("00-{trace}-")) && out.ends_with("-01"),
            "{out}"
        );
        assert_eq!(trace_id_of(&out).as_deref(), Some(trace));
        assert_ne!(
            traceparent_for(trace),
            traceparent_for(trace),
            "a new span each time"
        );
        assert_eq!(traceparent_for("unit-own-trace-id"), None);
    }
}
