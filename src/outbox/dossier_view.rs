//! A dossier as the admin API and a unit read it (`GET /api/v1/dossiers/{code}`, and
//! `GET /api/v1/units/{unit}/dossiers/{code}` with the unit's own events only): a page of
//! its events with their deliveries, per target the latest event and whether it reached
//! it, and `portal_synced`. One reader of the outbox for both faces.
//!
//! A dossier is a unit's and its code's: each unit's events are read from its own index,
//! so another unit's traffic under the same code can neither hide nor slow a unit's
//! dossier. Each read costs a page of events (`limit`, at most [`MAX_PAGE`]) and the
//! dossier's last [`TAIL`] events for the per-target summary, whatever the dossier's size.
//!
//! `summary` is the dossier as the KPI tally keeps it, per unit: in a cluster the tally is
//! the cluster's ([`super::tally::shared`]), so every node answers it for a dossier another
//! node accepted, while `events` and `targets` list what this node's outbox holds.

use crate::envelope::MessageId;
use crate::outbox::dossier_index::merge_pages;
use crate::outbox::waiting::Holders;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Most events one page of a dossier holds.
pub const MAX_PAGE: usize = 1_000;
/// Events read back from a dossier's end for its per-target summary: a target whose
/// latest event is older than these is not summarised.
pub const TAIL: usize = 200;

/// Which dossier, whose events, and which page.
pub struct DossierQuery<'a> {
    pub key: &'a str,
    /// The units whose events are read: the unit itself, or every unit for the admin.
    pub units: &'a [String],
    /// The page after this event (the previous page's `next`).
    pub after: Option<MessageId>,
    pub limit: usize,
}

/// The dossier document: `events` (a page, oldest first, and `next` when more follow),
/// `targets` and `portal_synced` (from the dossier's latest events), `units`.
pub fn dossier_document(
    outbox: &crate::outbox::Outbox,
    portal_targets: &[String],
    query: &DossierQuery,
) -> Result<Value, crate::outbox::StoreError> {
    let limit = query.limit.clamp(1, MAX_PAGE);
    // The units with events in this dossier, and each one's latest events.
    let mut tails = BTreeMap::new();
    for unit in query.units {
        let tail = outbox.dossier_tail(unit, query.key, TAIL)?;
        if !tail.is_empty() {
            tails.insert(unit.as_str(), tail);
        }
    }
    let mut pages = Vec::new();
    for unit in tails.keys() {
        pages.push(outbox.dossier_ids(unit, query.key, query.after, limit)?);
    }
    let page = merge_pages(pages, limit);
    let mut holders = Holders::default();
    let mut events = Vec::with_capacity(page.ids.len());
    for id in &page.ids {
        let Some(env) = outbox.message(*id)? else {
            continue;
        };
        let deliveries: Vec<Value> = outbox
            .dossier_states_explained(&env, &mut holders)?
            .into_iter()
            .map(|(target, state, waiting)| {
                json!({"target": target, "delivery": state, "waiting_behind": waiting})
            })
            .collect();
        events.push(json!({
            "id": env.id, "unit": env.unit, "flow": env.flow,
            "received_ms": env.received_ms, "deliveries": deliveries,
        }));
    }
    let latest = latest_per_target(outbox, &tails, &mut holders)?;
    let targets: Vec<Value> = latest
        .iter()
        .map(|(target, (id, state, waiting))| {
            json!({
                "target": target,
                "latest_event": id,
                "reached": matches!(state, crate::outbox::DeliveryState::Delivered { .. }),
                "delivery": state,
                "waiting_behind": waiting,
            })
        })
        .collect();
    let portal: Vec<&Latest> = portal_targets
        .iter()
        .filter_map(|t| latest.get(t))
        .collect();
    let portal_synced = (!portal.is_empty()).then(|| {
        portal
            .iter()
            .all(|(_, st, _)| matches!(st, crate::outbox::DeliveryState::Delivered { .. }))
    });
    let mut summary = Vec::new();
    for unit in query.units {
        if let Some(d) = outbox.dossier_record(unit, query.key)?
            && !d.people_only
        {
            summary.push(summary_of(&d));
        }
    }
    Ok(json!({
        "key": query.key,
        "units": tails.keys().collect::<Vec<_>>(),
        "summary": summary,
        // null when no event of the dossier goes to the portal.
        "portal_synced": portal_synced,
        "targets": targets,
        "events": events,
        "next": page.next,
    }))
}

/// Whether the document found the dossier: events of it here, or its record in the tally.
pub fn dossier_found(doc: &Value) -> bool {
    let some = |field: &str| doc[field].as_array().is_some_and(|a| !a.is_empty());
    some("units") || some("summary")
}

/// One unit's dossier as the tally keeps it (days as `YYYY-MM-DD`, Vietnam's).
fn summary_of(d: &crate::outbox::tally::DossierTally) -> Value {
    let procedure = (!d.procedure.is_empty()).then_some(d.procedure.as_str());
    json!({
        "unit": d.unit,
        "first_seen": crate::time::day_text(d.day),
        "procedure": procedure,
        "to_portal": d.portal,
        "portal_outstanding": d.outstanding,
        // null when none of its events goes to the portal.
        "portal_synced": d.portal.then_some(d.outstanding == 0),
        "finished": d.finished,
        "closed": d.closed,
        "due": d.due_day.map(crate::time::day_text),
    })
}

/// Per target: the latest event bound for it and that delivery's state.
type Latest = (
    MessageId,
    crate::outbox::DeliveryState,
    Option<crate::outbox::WaitingBehind>,
);

/// The latest event of the dossier bound for each target, from the units' latest events
/// (`tails`, newest first).
fn latest_per_target(
    outbox: &crate::outbox::Outbox,
    tails: &BTreeMap<&str, Vec<MessageId>>,
    holders: &mut Holders,
) -> Result<BTreeMap<String, Latest>, crate::outbox::StoreError> {
    let mut tail: Vec<MessageId> = tails.values().flatten().copied().collect();
    tail.sort_unstable_by(|a, b| b.cmp(a));
    tail.truncate(TAIL);
    let mut latest: BTreeMap<String, Latest> = BTreeMap::new();
    for id in tail {
        let Some(env) = outbox.message(id)? else {
            continue;
        };
        for (target, state, waiting) in outbox.dossier_states_explained(&env, holders)? {
            latest.entry(target).or_insert((env.id, state, waiting));
        }
    }
    Ok(latest)
}
