//! The door: an event its route's mappings can never deliver is refused before it is
//! stored, with every problem of the request named in the unit's own terms, instead of
//! becoming a dead letter minutes later.
//!
//! Every event is held to the event schema the route's document publishes
//! ([`crate::route::event_schema`]), every keyword: a JSON event as JSON Schema reads
//! it, an XML or CSV event (all text) as the document describes such a body (text that
//! reads as a number is one, one element is a list of one, an empty element is no value).
//! Then each mapping of a target the event goes to runs without sending. A request is all
//! or nothing, so one refused event refuses the request: `400 invalid_event`, `problems`
//! listing each field. A route with `validate = "deliver"` skips the door (its events are
//! checked at delivery).
//!
//! The bodies the mappings wrote on the way are not thrown away: just before the events
//! are stored, each goes to its target for the first delivery attempt
//! ([`crate::delivery::keep_from_door`]), so an event's mapping runs once, not twice.
//!
//! Fields are named as the unit wrote them: a JSON pointer into the event, after its
//! batch index (`[3]/applicant/idNumber`); an XML record's elements the same way; a CSV
//! record by the line it starts on and its column name.

use super::{ApiError, FieldProblem, IngressState};
use crate::mappings::{MappingSet, Outbound};
use crate::outbox::NewEvent;
use crate::route::Route;
use axum::http::StatusCode;
use lienthong_mapping::codec::DecodeOptions;
use lienthong_mapping::door::Mode as DoorMode;
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

/// A body a mapping wrote at the door: event `event`'s for `targets`.
pub(crate) struct DoorBody {
    pub event: usize,
    pub targets: Vec<String>,
    pub body: Outbound,
}

/// What passed the door: the bodies written, by mappings of `generation`.
#[derive(Default)]
pub(crate) struct Passed {
    pub generation: u64,
    pub bodies: Vec<DoorBody>,
}

/// Every problem of `events` against the mappings of `route`, or, when each can be
/// delivered as far as the bus can know, the bodies the mappings wrote.
pub(crate) fn check(
    mappings: &MappingSet,
    route: &Route,
    events: &[NewEvent],
    shape: &BodyShape<'_>,
) -> Result<Passed, ApiError> {
    if !route.check_at_door {
        return Ok(Passed::default());
    }
    // Read before the mappings: a reload meanwhile makes the bodies look older than they
    // are, so delivery renders them again rather than send an old mapping's body.
    let generation = mappings.generation();
    let checks = mappings_of(mappings, route);
    if checks.is_empty() {
        return Ok(Passed::default());
    }
    // Every event is held to the event schema its route's document publishes, whole: a
    // JSON one as JSON Schema reads it, an XML or CSV one (all text) as the document
    // describes such a body (text that reads as a number is one, an empty element is no
    // value). Then each mapping of a target the event goes to runs dry.
    let published = mappings
        .door_schema(&route.unit, &route.flow, |m| {
            crate::route::event_schema::event_schema(m, route)
        })
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "door_schema",
                format!("the route's event schema cannot be compiled: {e}"),
            )
        })?;
    let mode = DoorMode::of_format(shape.format);
    let mut found: Vec<(usize, lienthong_mapping::door::Problem)> = Vec::new();
    let mut bodies = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let record: serde_json::Value = serde_json::from_str(event.payload.get()).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("an event cannot be read: {e}"),
            )
        })?;
        let problems = published.check_in(&record, mode);
        if !problems.is_empty() {
            found.extend(problems.into_iter().map(|p| (i, p)));
            continue;
        }
        let mut done: Vec<&Arc<Mapping>> = Vec::new();
        for (target, mapping) in &checks {
            let goes = |t: &String| event.targets.as_ref().is_none_or(|ts| ts.contains(t));
            if !goes(target) || done.iter().any(|m| Arc::ptr_eq(m, mapping)) {
                continue;
            }
            done.push(mapping);
            match mapping.render_checked(&record) {
                Ok(body) if found.is_empty() => bodies.push(DoorBody {
                    event: i,
                    // Every target this event goes to through the same mapping.
                    targets: checks
                        .iter()
                        .filter(|(t, m)| Arc::ptr_eq(m, mapping) && goes(t))
                        .map(|(t, _)| t.clone())
                        .collect(),
                    body: Outbound {
                        content_type: mapping.content_type(),
                        body: body.into(),
                    },
                }),
                Ok(_) => {} // the request is refused: no body is needed
                Err(p) => {
                    if !found.iter().any(|(j, q)| *j == i && *q == p) {
                        found.push((i, p));
                    }
                }
            }
        }
    }
    if found.is_empty() {
        return Ok(Passed { generation, bodies });
    }
    Err(refusal(found, shape))
}

/// The events' bodies to the targets this node delivers to, for their first attempt:
/// handed on before the events are stored, since delivery may claim them at once.
pub(super) fn hand_on(state: &IngressState, route: &Route, passed: &Passed, events: &[NewEvent]) {
    if state.delivering.is_empty() {
        return;
    }
    for DoorBody {
        event,
        targets,
        body,
    } in &passed.bodies
    {
        let Some(e) = events.get(*event) else {
            continue;
        };
        let written = crate::delivery::DoorWritten {
            unit: &route.unit,
            flow: &route.flow,
            event: e.payload.get(),
            generation: passed.generation,
        };
        for name in targets {
            if let Some(target) = state.delivering.get(name) {
                crate::delivery::keep_from_door(target, &written, body);
            }
        }
    }
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

/// [`check`] the events, a large request's on a blocking thread; they come back to be
/// stored, with the bodies written, when each can be delivered.
pub(super) async fn check_at_door(
    state: &IngressState,
    route: &Route,
    events: Vec<NewEvent>,
    format: Format,
    batch: bool,
    bytes: bytes::Bytes,
    decode: Option<DecodeOptions>,
) -> Result<(Vec<NewEvent>, Passed), ApiError> {
    if !route.check_at_door {
        return Ok((events, Passed::default()));
    }
    let large = bytes.len() > super::DECODE_OFF_THREAD_BYTES;
    let run = move |mappings: &MappingSet, route: &Route| {
        let shape = BodyShape {
            format,
            batch,
            bytes: &bytes,
            decode: decode.as_ref(),
        };
        check(mappings, route, &events, &shape).map(|passed| (events, passed))
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
