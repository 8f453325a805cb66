//! Accepted events in the message log ([`crate::evidence`]): what the request's events
//! were, packed before they go into the outbox, logged as one record once they are stored.

use crate::envelope::MessageId;
use crate::evidence::{AcceptedEvents, Entry, MessageLog};
use crate::outbox::{Accepted, NewEvent};
use crate::route::Route;

/// The events' dossiers, bodies and targets, when the log is on (ids come once stored).
pub(crate) fn before_store(log: &MessageLog, events: &[NewEvent]) -> Option<AcceptedEvents> {
    if !log.enabled() {
        return None;
    }
    let bytes = events.iter().map(|e| e.payload.get().len()).sum();
    let mut packed = AcceptedEvents::with_capacity(events.len(), bytes);
    let unknown = MessageId::from_bytes([0; 16]);
    for e in events {
        packed.push(
            unknown,
            e.key.as_deref(),
            e.payload.get().as_bytes(),
            e.targets.as_deref(),
        );
    }
    Some(packed)
}

/// Log the request's stored events (a resend of an earlier request was logged then).
pub(crate) fn stored(
    log: &MessageLog,
    route: &Route,
    trace_id: &str,
    packed: Option<AcceptedEvents>,
    accepted: &[Accepted],
) {
    let Some(mut events) = packed else { return };
    if accepted.iter().any(|a| a.duplicate) || events.len() != accepted.len() {
        return;
    }
    events.set_ids(accepted.iter().map(|a| a.id));
    log.log_one(Entry::Accepted {
        at_ms: crate::time::now_ms(),
        unit: route.unit.clone(),
        flow: route.flow.clone(),
        trace_id: trace_id.to_string(),
        targets: route.targets.clone(),
        events,
    });
}
