//! The door: an event its route's mappings can never deliver is refused before it is
//! stored, with every problem of the request named in the unit's own terms, instead of
//! becoming a dead letter minutes later.
//!
//! A JSON event is held to the event schema the route's document publishes
//! ([`crate::mappings::event_schema`]), every keyword; an XML or CSV event (all text) to
//! each mapping's presence and shape ([`lienthong_mapping::Mapping::check_record`]). Then
//! each mapping of a target the event goes to runs without sending. A request is all or nothing, so one refused event
//! refuses the request: `400 invalid_event`, `problems` listing each field. A route with
//! `validate = "deliver"` skips the door (its events are checked at delivery).
//!
//! Fields are named as the unit wrote them: a JSON pointer into the event, after its
//! batch index (`[3]/applicant/idNumber`); an XML record's elements the same way; a CSV
//! record by the line it starts on and its column name.

use super::{ApiError, FieldProblem, IngressState};
use crate::mappings::MappingSet;
use crate::outbox::NewEvent;
use crate::route::Route;
use axum::http::StatusCode;
use lienthong_mapping::codec::DecodeOptions;
use lienthong_mapping::{Format, Mapping};
use std::sync::Arc;

/// At most this many problems are listed in one answer (a batch of a thousand bad
/// events says so without a megabyte of problems).
const MAX_PROBLEMS: usize = 100;

/// The mappings an event of `route` goes through, once each (targets often share one).
pub(crate) fn mappings_of(mappings: &MappingSet, route: &Route) -> Vec<(String, Arc<Mapping>)> {
    let mut out: Vec<(String, Arc<Mapping>)> = Vec::new();
    for target in &route.targets {
        if let Some(m) = mappings.for_delivery(&route.unit, &route.flow, target) {
            out.push((target.clone(), m));
        }
    }
    out
}

/// How the body was written, for naming a field in the unit's terms.
pub(crate) struct BodyShape<'a> {
    pub format: Format,
    /// Several events (a JSON array, or the records of an XML or CSV body).
    pub batch: bool,
    pub bytes: &'a [u8],
    pub decode: Option<&'a DecodeOptions>,
}

/// Every problem of `events` against the mappings of `route`, or `Ok` when each can be
/// delivered as far as the bus can know.
pub(crate) fn check(
    mappings: &MappingSet,
    route: &Route,
    events: &[NewEvent],
    shape: &BodyShape<'_>,
) -> Result<(), ApiError> {
    if !route.check_at_door {
        return Ok(());
    }
    let checks = mappings_of(mappings, route);
    if checks.is_empty() {
        return Ok(());
    }
    // A JSON body is held to the event schema its route's document publishes, whole;
    // an XML or CSV one, all text, to each mapping's presence and shape (the mapping reads
    // each value's form). Then each mapping of a target the event goes to runs dry.
    let published = match shape.format {
        Format::Json => Some(mappings.door_schema(route).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "door_schema",
                format!("the route's event schema cannot be compiled: {e}"),
            )
        })?),
        _ => None,
    };
    let mut found: Vec<(usize, lienthong_mapping::door::Problem)> = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let record: serde_json::Value = serde_json::from_str(event.payload.get()).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("an event cannot be read: {e}"),
            )
        })?;
        if let Some(schema) = &published {
            let problems = schema.check(&record);
            if !problems.is_empty() {
                found.extend(problems.into_iter().map(|p| (i, p)));
                continue;
            }
        }
        let mut done: Vec<&Arc<Mapping>> = Vec::new();
        for (target, mapping) in &checks {
            let goes = event.targets.as_ref().is_none_or(|ts| ts.contains(target));
            if !goes || done.iter().any(|m| Arc::ptr_eq(m, mapping)) {
                continue;
            }
            done.push(mapping);
            let problems = if published.is_some() {
                mapping.dry_run(&record)
            } else {
                mapping.check_record(&record)
            };
            for p in problems {
                if !found.iter().any(|(j, q)| *j == i && *q == p) {
                    found.push((i, p));
                }
            }
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    Err(refusal(found, shape))
}

/// The 400 for what was found: each problem at its field, the first also in `field`.
fn refusal(
    found: Vec<(usize, lienthong_mapping::door::Problem)>,
    shape: &BodyShape<'_>,
) -> ApiError {
    let lines = match (shape.format, shape.decode) {
        (Format::Csv, Some(opts)) => {
            lienthong_mapping::codec::csv::record_lines(shape.bytes, &opts.csv)
        }
        _ => Vec::new(),
    };
    let events: std::collections::BTreeSet<usize> = found.iter().map(|(i, _)| *i).collect();
    let total = found.len();
    let problems: Vec<FieldProblem> = found
        .into_iter()
        .take(MAX_PROBLEMS)
        .map(|(i, p)| {
            let line = lines.get(i).copied();
            let at = if shape.batch {
                format!("[{i}]")
            } else {
                String::new()
            };
            let pointer = p.pointer();
            let field = match (&p.path[..], line) {
                // A CSV record: its line, and the column by its header.
                ([lienthong_mapping::path::Step::Key(column)], Some(_)) => column.clone(),
                _ if at.is_empty() && pointer.is_empty() => "/".into(),
                _ => format!("{at}{pointer}"),
            };
            FieldProblem {
                field,
                problem: p.reason,
                line,
            }
        })
        .collect();
    let first = &problems[0];
    let place = match first.line {
        Some(l) => format!("line {l}, {}", first.field),
        None => first.field.clone(),
    };
    let mut message = format!(
        "{total} problem{} in {} event{} of this request; nothing was stored. {place}: {}",
        if total == 1 { "" } else { "s" },
        events.len(),
        if events.len() == 1 { "" } else { "s" },
        first.problem
    );
    if total > MAX_PROBLEMS {
        message.push_str(&format!(" (the first {MAX_PROBLEMS} are listed)"));
    }
    message.push_str("; correct the events and send the request again");
    let mut e =
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_event", message).field(first.field.clone());
    if let Some(l) = first.line {
        e.line = Some(u32::try_from(l).unwrap_or(u32::MAX));
    }
    e.problems = problems.into();
    e
}

/// [`door::check`] the events, a large request's on a blocking thread; they come back to
/// be stored when each can be delivered.
pub(super) async fn check_at_door(
    state: &IngressState,
    route: &Route,
    events: Vec<NewEvent>,
    format: Format,
    batch: bool,
    bytes: bytes::Bytes,
    decode: Option<DecodeOptions>,
) -> Result<Vec<NewEvent>, ApiError> {
    if !route.check_at_door {
        return Ok(events);
    }
    let large = bytes.len() > super::DECODE_OFF_THREAD_BYTES;
    let run = move |mappings: &MappingSet, route: &Route| {
        let shape = BodyShape {
            format,
            batch,
            bytes: &bytes,
            decode: decode.as_ref(),
        };
        check(mappings, route, &events, &shape).map(|()| events)
    };
    if !large {
        return run(&state.mappings, route);
    }
    let (mappings, route) = (state.mappings.clone(), route.clone());
    tokio::task::spawn_blocking(move || run(&mappings, &route))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "check_failed",
                format!("checking the events failed: {e}"),
            )
        })?
}
