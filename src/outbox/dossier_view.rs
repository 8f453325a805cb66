//! A dossier as the admin API and a unit read it (`GET /api/v1/dossiers/{code}`, and
//! `GET /api/v1/units/{unit}/dossiers/{code}` with the unit's own events only): every
//! event with its deliveries, per target the latest event and whether it reached it, and
//! `portal_synced`. One reader of the outbox for both faces.

use crate::envelope::MessageId;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The dossier document from `outbox`; with `unit`, that unit's events only (what a unit
/// reads about its own dossier with its own key).
pub fn dossier_document(
    outbox: &crate::outbox::Outbox,
    portal_targets: &[String],
    key: &str,
    unit: Option<&str>,
) -> Result<Value, crate::outbox::StoreError> {
    let mut messages = outbox.dossier_messages(key, 10_000)?;
    if let Some(unit) = unit {
        messages.retain(|m| m.unit == unit);
    }
    let mut events = Vec::with_capacity(messages.len());
    // Per target: the latest event bound for it and that delivery's state.
    type Latest = (
        MessageId,
        crate::outbox::DeliveryState,
        Option<crate::outbox::WaitingBehind>,
    );
    let mut latest: BTreeMap<String, Latest> = BTreeMap::new();
    for env in &messages {
        let states = outbox.dossier_states_explained(env, &messages)?;
        for (target, state, waiting) in &states {
            latest.insert(target.clone(), (env.id, state.clone(), waiting.clone()));
        }
        let deliveries: Vec<Value> = states
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
    Ok(json!({
        "key": key,
        "units": messages.iter().map(|m| m.unit.as_str()).collect::<std::collections::BTreeSet<_>>(),
        // null when no event of the dossier goes to the portal.
        "portal_synced": portal_synced,
        "targets": targets,
        "events": events,
    }))
}
