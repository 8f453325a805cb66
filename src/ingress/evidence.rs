//! Accepted events in the message log ([`crate::evidence`]): what each stored event was,
//! taken before the events go into the outbox, logged once they are stored.

use crate::evidence::{Entry, MessageLog};
use crate::outbox::{Accepted, NewEvent};
use crate::route::Route;

/// What the log needs of each event, taken before the events move into the outbox.
pub(crate) struct Pending {
    dossier: Option<String>,
    targets: Option<Vec<String>>,
    body: bytes::Bytes,
}

/// The events' dossiers, targets and bodies, when the log is on.
pub(crate) fn before_store(log: &MessageLog, events: &[NewEvent]) -> Option<Vec<Pending>> {
    log.enabled().then(|| {
        events
            .iter()
            .map(|e| Pending {
                dossier: e.key.clone(),
                targets: e.targets.clone(),
                body: bytes::Bytes::copy_from_slice(e.payload.get().as_bytes()),
            })
            .collect()
    })
}

/// Log the events stored (a duplicate of an earlier request was logged then).
pub(crate) fn stored(
    log: &MessageLog,
    route: &Route,
    trace_id: &str,
    pending: Option<Vec<Pending>>,
    accepted: &[Accepted],
) {
    let Some(pending) = pending else { return };
    let at_ms = crate::time::now_ms();
    let entries = pending
        .into_iter()
        .zip(accepted)
        .filter(|(_, a)| !a.duplicate)
        .map(|(p, a)| Entry::Accepted {
            at_ms,
            unit: route.unit.clone(),
            flow: route.flow.clone(),
            id: a.id.to_string(),
            dossier: p.dossier,
            targets: p.targets.unwrap_or_else(|| route.targets.clone()),
            trace_id: trace_id.to_string(),
            body: p.body,
        })
        .collect();
    log.log(entries);
}
