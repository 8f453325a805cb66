//! What the message log records ([`Entry`]) and how each becomes a line's JSON.
//!
//! A request's accepted events are one `accepted` line (the request's unit, flow, trace
//! and targets once, then each event's id, dossier and body digest): the log costs a
//! line per request, not per event. Each delivery attempt is one `attempt` line.
//!
//! An attempt's bodies are digested where they are, on the delivery thread ([`Body`]), and
//! the bodies dropped there: the writer thread never frees a body another thread allocated.
//! (Measured: freeing a delivery thread's bodies on the writer thread made the two wait on
//! each other's allocator arena lock, and that was most of the log's cost on the e2e path.)

use super::BodySealer;
use crate::envelope::MessageId;
use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// One exchange to log.
pub enum Entry {
    /// The events of one request a unit sent, stored in the outbox.
    Accepted {
        at_ms: u64,
        unit: String,
        flow: String,
        trace_id: String,
        /// The route's targets (an event that goes to fewer says so itself).
        targets: Vec<String>,
        events: AcceptedEvents,
    },
    /// One attempt to deliver a message to a target, and what came of it.
    Attempt {
        sent_ms: u64,
        answered_ms: u64,
        unit: String,
        flow: String,
        id: MessageId,
        dossier: Option<String>,
        target: String,
        attempt: u32,
        request: Body,
        answer: Answer,
        /// `delivered`, `retry`, `dead`, or `resent` (a merged call that failed; each of
        /// its messages was sent again alone).
        outcome: &'static str,
    },
}

/// A request's events, packed: their bodies end to end in one buffer and their dossier
/// codes in one string, so that handing them over costs a few allocations per request,
/// not several per event.
#[derive(Default)]
pub struct AcceptedEvents {
    ids: Vec<MessageId>,
    bodies: Vec<u8>,
    body_ends: Vec<usize>,
    dossiers: String,
    /// Where each event's dossier code ends in `dossiers`; `None`: the event has none.
    dossier_ends: Vec<Option<usize>>,
    /// Events that go to fewer targets than the route's: (index, targets).
    own_targets: Vec<(usize, Vec<String>)>,
}

impl AcceptedEvents {
    pub fn with_capacity(events: usize, bytes: usize) -> AcceptedEvents {
        AcceptedEvents {
            ids: Vec::with_capacity(events),
            bodies: Vec::with_capacity(bytes),
            body_ends: Vec::with_capacity(events),
            dossier_ends: Vec::with_capacity(events),
            ..AcceptedEvents::default()
        }
    }

    /// One more event: its id, dossier, body, and its targets when fewer than the route's.
    pub fn push(
        &mut self,
        id: MessageId,
        dossier: Option<&str>,
        body: &[u8],
        targets: Option<&[String]>,
    ) {
        if let Some(t) = targets {
            self.own_targets.push((self.ids.len(), t.to_vec()));
        }
        self.ids.push(id);
        self.bodies.extend_from_slice(body);
        self.body_ends.push(self.bodies.len());
        self.dossier_ends.push(dossier.map(|d| {
            self.dossiers.push_str(d);
            self.dossiers.len()
        }));
    }

    /// The ids the outbox gave the events, in order (known once they are stored).
    pub fn set_ids(&mut self, ids: impl IntoIterator<Item = MessageId>) {
        for (slot, id) in self.ids.iter_mut().zip(ids) {
            *slot = id;
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Event `i`: (id, dossier, body, own targets).
    fn get(&self, i: usize) -> (MessageId, Option<&str>, &[u8], Option<&[String]>) {
        let body_start = if i == 0 { 0 } else { self.body_ends[i - 1] };
        let dossier_start = self.dossier_ends[..i]
            .iter()
            .rev()
            .find_map(|e| *e)
            .unwrap_or(0);
        let dossier = self.dossier_ends[i].map(|end| &self.dossiers[dossier_start..end]);
        let targets = self
            .own_targets
            .iter()
            .find(|(j, _)| *j == i)
            .map(|(_, t)| t.as_slice());
        (
            self.ids[i],
            dossier,
            &self.bodies[body_start..self.body_ends[i]],
            targets,
        )
    }
}

/// A body as the log records it: its SHA-256 and length, and the body itself only when the
/// log keeps bodies (`full`, sealed by the writer).
#[derive(Clone)]
pub struct Body {
    pub sha256: [u8; 32],
    pub len: usize,
    pub kept: Option<Bytes>,
}

impl Body {
    /// Digest `body`; `keep`: hold a reference to it too (no copy).
    pub fn of_bytes(body: &Bytes, keep: bool) -> Body {
        Body {
            sha256: Sha256::digest(body).into(),
            len: body.len(),
            kept: keep.then(|| body.clone()),
        }
    }

    /// Digest `body`; `keep`: hold a copy of it too.
    pub fn of(body: &[u8], keep: bool) -> Body {
        Body {
            sha256: Sha256::digest(body).into(),
            len: body.len(),
            kept: keep.then(|| Bytes::copy_from_slice(body)),
        }
    }
}

/// What the platform answered to an attempt.
pub struct Answer {
    /// The HTTP status; `None` when nothing came back.
    pub status: Option<u16>,
    /// The body the bus read (`None`: no answer).
    pub body: Option<Body>,
    /// Why there was no answer: `no_answer`, `timed_out`, `not_sent`.
    pub missing: Option<&'static str>,
}

/// The hex SHA-256 of a body.
pub fn digest(body: &[u8]) -> String {
    crate::hex::encode(&Sha256::digest(body))
}

/// An `accepted` line.
#[derive(Serialize)]
struct AcceptedLine<'a> {
    t: &'static str,
    seq: u64,
    at_ms: u64,
    unit: &'a str,
    flow: &'a str,
    trace_id: &'a str,
    targets: &'a [String],
    events: Vec<AcceptedEvent<'a>>,
}

/// One event of an `accepted` line.
#[derive(Serialize)]
struct AcceptedEvent<'a> {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    dossier: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    targets: Option<&'a [String]>,
    body_sha256: String,
    body_bytes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_sealed: Option<String>,
}

/// An `attempt` line.
#[derive(Serialize)]
struct AttemptLine<'a> {
    t: &'static str,
    seq: u64,
    sent_ms: u64,
    answered_ms: u64,
    unit: &'a str,
    flow: &'a str,
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    dossier: Option<&'a str>,
    target: &'a str,
    attempt: u32,
    request_sha256: String,
    request_bytes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_sealed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    answer_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    answer_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    answer_sealed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    no_answer: Option<&'static str>,
    outcome: &'static str,
}

/// The JSON of an entry's line.
pub(super) fn line_of(seq: u64, entry: &Entry, sealer: Option<&dyn BodySealer>, out: &mut Vec<u8>) {
    use base64::Engine as _;
    let sealed = |body: &[u8]| {
        sealer.map(|s| base64::engine::general_purpose::STANDARD.encode(s.seal_body(body)))
    };
    let written = match entry {
        Entry::Accepted {
            at_ms,
            unit,
            flow,
            trace_id,
            targets,
            events,
        } => serde_json::to_writer(
            out,
            &AcceptedLine {
                t: "accepted",
                seq,
                at_ms: *at_ms,
                unit,
                flow,
                trace_id,
                targets,
                events: (0..events.len())
                    .map(|i| {
                        let (id, dossier, body, targets) = events.get(i);
                        AcceptedEvent {
                            id: id.to_string(),
                            dossier,
                            targets,
                            body_sha256: digest(body),
                            body_bytes: body.len(),
                            body_sealed: sealed(body),
                        }
                    })
                    .collect(),
            },
        ),
        Entry::Attempt {
            sent_ms,
            answered_ms,
            unit,
            flow,
            id,
            dossier,
            target,
            attempt,
            request,
            answer,
            outcome,
        } => serde_json::to_writer(
            out,
            &AttemptLine {
                t: "attempt",
                seq,
                sent_ms: *sent_ms,
                answered_ms: *answered_ms,
                unit,
                flow,
                id: id.to_string(),
                dossier: dossier.as_deref(),
                target,
                attempt: *attempt,
                request_sha256: crate::hex::encode(&request.sha256),
                request_bytes: request.len,
                request_sealed: request.kept.as_deref().and_then(sealed),
                answer_status: answer.status,
                answer_sha256: answer.body.as_ref().map(|b| crate::hex::encode(&b.sha256)),
                answer_sealed: answer
                    .body
                    .as_ref()
                    .and_then(|b| b.kept.as_deref())
                    .and_then(sealed),
                no_answer: answer.missing,
                outcome,
            },
        ),
    };
    written.expect("a message log line serializes");
}
