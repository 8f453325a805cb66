//! Bodies of deliveries being retried, kept so a retry does not run the mapping again: a
//! platform that is down for an hour gets the same bytes on every attempt, and a retry
//! storm costs network, not mapping.
//!
//! Bounded in entries and bytes (the oldest kept body goes first; a message whose body
//! was let go is simply rendered again). A body is kept with the generation of the
//! mappings it was rendered with: after a mapping reload (the fix an operator makes before
//! replaying) the new mapping renders it afresh. Entries leave when their delivery ends.
//!
//! The door ([`crate::ingress`]) runs each event's mapping before the event is stored;
//! the body it wrote waits in a second, smaller set ([`DoorBodies`]) for the first
//! attempt, which takes it instead of running the mapping again.

use crate::envelope::MessageId;
use crate::mappings::Outbound;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Most bodies kept per target.
pub const MAX_ENTRIES: usize = 4096;
/// Most bytes of bodies kept per target.
pub const MAX_BYTES: usize = 32 * 1024 * 1024;

#[derive(Default)]
pub struct RenderedBodies {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for RenderedBodies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (n, bytes) = self.size();
        write!(f, "RenderedBodies({n} bodies, {bytes} bytes)")
    }
}

#[derive(Default)]
struct Inner {
    /// Message → (insertion number, mappings generation, body).
    bodies: HashMap<MessageId, (u64, u64, Outbound)>,
    /// Insertion order, for eviction; entries whose number no longer matches are stale.
    order: VecDeque<(MessageId, u64)>,
    bytes: usize,
    next: u64,
}

/// Most bodies from the door kept per target: enough for the deliveries in flight; in a
/// backlog the oldest go and their first attempt renders them again.
pub const DOOR_MAX_ENTRIES: usize = 2048;
/// Most bytes of bodies (and the events they were written from) from the door per target.
pub const DOOR_MAX_BYTES: usize = 8 * 1024 * 1024;

/// Bodies the door rendered, each waiting for its message's first attempt.
///
/// Kept by what they were written from (unit, flow, the event's JSON as stored, the
/// mappings' generation), not by message id: the door runs before the outbox gives the
/// event its id, and the relay may claim the message before the request that stored it
/// has its answer. The same event always maps to the same body, and the event is kept
/// beside its body and compared in full, so a body never goes out for another event.
pub struct DoorBodies {
    inner: Mutex<DoorInner>,
    hasher: std::collections::hash_map::RandomState,
}

impl std::fmt::Debug for DoorBodies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (n, bytes) = self.size();
        write!(f, "DoorBodies({n} bodies, {bytes} bytes)")
    }
}

impl Default for DoorBodies {
    fn default() -> Self {
        DoorBodies {
            inner: Mutex::default(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }
}

/// What a door body was written from.
struct Written {
    unit: String,
    flow: String,
    event: Box<str>,
    generation: u64,
}

#[derive(Default)]
struct DoorInner {
    /// Digest of what it was written from → (insertion number, what, body).
    bodies: HashMap<u64, (u64, Written, Outbound)>,
    order: VecDeque<(u64, u64)>,
    bytes: usize,
    next: u64,
}

impl DoorInner {
    fn remove(&mut self, key: u64) {
        if let Some((_, w, b)) = self.bodies.remove(&key) {
            self.bytes -= w.event.len() + b.body.len();
        }
    }
}

impl DoorBodies {
    fn key(&self, unit: &str, flow: &str, event: &str, generation: u64) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one((unit, flow, event, generation))
    }

    /// Keep the body the door rendered from `unit`'s `flow` event `event` (its JSON as
    /// the outbox stores it) with mappings of `generation`.
    pub fn keep(&self, unit: &str, flow: &str, event: &str, generation: u64, body: &Outbound) {
        let size = event.len() + body.body.len();
        if size > DOOR_MAX_BYTES / 8 {
            return; // a very large event is rendered at delivery rather than crowd others out
        }
        let key = self.key(unit, flow, event, generation);
        let written = Written {
            unit: unit.to_string(),
            flow: flow.to_string(),
            event: event.into(),
            generation,
        };
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.remove(key);
        let n = inner.next;
        inner.next += 1;
        inner.bodies.insert(key, (n, written, body.clone()));
        inner.bytes += size;
        inner.order.push_back((key, n));
        while inner.bodies.len() > DOOR_MAX_ENTRIES || inner.bytes > DOOR_MAX_BYTES {
            let Some((oldest, seq)) = inner.order.pop_front() else {
                break;
            };
            if inner.bodies.get(&oldest).is_some_and(|(s, _, _)| *s == seq) {
                inner.remove(oldest);
            }
        }
        if inner.order.len() > 2 * DOOR_MAX_ENTRIES {
            let DoorInner { bodies, order, .. } = &mut *inner;
            order.retain(|(k, seq)| bodies.get(k).is_some_and(|(s, _, _)| s == seq));
        }
    }

    /// The body the door wrote for this event with mappings of `generation`, if it is
    /// still kept; it is let go (a second message with the same event renders its own).
    pub fn take(&self, unit: &str, flow: &str, event: &str, generation: u64) -> Option<Outbound> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        // A target whose routes have no mapping never gets one: no digest of the event.
        if inner.bodies.is_empty() {
            return None;
        }
        let key = self.key(unit, flow, event, generation);
        let (_, w, _) = inner.bodies.get(&key)?;
        if w.unit != unit || w.flow != flow || w.generation != generation || &*w.event != event {
            return None;
        }
        let (_, w, body) = inner.bodies.remove(&key)?;
        inner.bytes -= w.event.len() + body.body.len();
        Some(body)
    }

    /// Bodies kept now, and their bytes (with the events they were written from).
    pub fn size(&self) -> (usize, usize) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        (inner.bodies.len(), inner.bytes)
    }
}

impl RenderedBodies {
    /// The body rendered for `id` with mappings of `generation`, if kept.
    pub fn get(&self, id: MessageId, generation: u64) -> Option<Outbound> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.bodies.is_empty() {
            return None;
        }
        match inner.bodies.get(&id) {
            Some((_, g, body)) if *g == generation => Some(body.clone()),
            _ => None,
        }
    }

    /// Keep `body` for the next attempt of `id`.
    pub fn keep(&self, id: MessageId, generation: u64, body: &Outbound) {
        let size = body.body.len();
        if size > MAX_BYTES / 4 {
            return; // a very large document is rendered again rather than crowding out others
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let n = inner.next;
        inner.next += 1;
        if let Some((_, _, old)) = inner.bodies.insert(id, (n, generation, body.clone())) {
            inner.bytes -= old.body.len();
        }
        inner.bytes += size;
        inner.order.push_back((id, n));
        while inner.bodies.len() > MAX_ENTRIES || inner.bytes > MAX_BYTES {
            let Some((oldest, seq)) = inner.order.pop_front() else {
                break;
            };
            if inner.bodies.get(&oldest).is_some_and(|(s, _, _)| *s == seq)
                && let Some((_, _, b)) = inner.bodies.remove(&oldest)
            {
                inner.bytes -= b.body.len();
            }
        }
        // Stale order entries (bodies forgotten or replaced) do not pile up.
        if inner.order.len() > 2 * MAX_ENTRIES {
            let Inner { bodies, order, .. } = &mut *inner;
            order.retain(|(id, seq)| bodies.get(id).is_some_and(|(s, _, _)| s == seq));
        }
    }

    /// The delivery of `id` ended (delivered or dead): its body is not needed any more.
    pub fn forget(&self, id: MessageId) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, _, b)) = inner.bodies.remove(&id) {
            inner.bytes -= b.body.len();
        }
    }

    /// Bodies kept now, and their bytes.
    pub fn size(&self) -> (usize, usize) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        (inner.bodies.len(), inner.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(n: usize) -> Outbound {
        Outbound {
            content_type: "application/json",
            body: bytes::Bytes::from(vec![b'x'; n]),
        }
    }

    fn id(i: u64) -> MessageId {
        MessageId::from_bytes(u128::from(i).to_be_bytes())
    }

    #[test]
    fn a_body_is_kept_per_generation_until_its_delivery_ends() {
        let r = RenderedBodies::default();
        r.keep(id(1), 7, &body(10));
        assert_eq!(r.get(id(1), 7).unwrap().body.len(), 10);
        assert!(
            r.get(id(1), 8).is_none(),
            "a reloaded mapping renders afresh"
        );
        r.keep(id(1), 8, &body(20));
        assert_eq!(r.size(), (1, 20));
        r.forget(id(1));
        assert!(r.get(id(1), 8).is_none());
        assert_eq!(r.size(), (0, 0));
    }

    #[test]
    fn entries_and_bytes_stay_within_their_bounds() {
        let r = RenderedBodies::default();
        for i in 0..(MAX_ENTRIES as u64 + 100) {
            r.keep(id(i), 1, &body(1));
        }
        assert_eq!(r.size().0, MAX_ENTRIES);
        assert!(r.get(id(0), 1).is_none(), "the oldest went first");
        assert!(r.get(id(MAX_ENTRIES as u64 + 99), 1).is_some());
        let big = MAX_BYTES / 5;
        for i in 0..10 {
            r.keep(id(100_000 + i), 1, &body(big));
        }
        assert!(r.size().1 <= MAX_BYTES, "{:?}", r.size());
        // Forgetting and re-keeping many times leaves no trail.
        for round in 0..10 {
            for i in 0..1000 {
                r.keep(id(i), round, &body(1));
                r.forget(id(i));
            }
        }
        assert!(r.inner.lock().unwrap().order.len() <= 2 * MAX_ENTRIES + 1);
    }

    #[test]
    fn a_door_body_goes_once_and_only_to_the_event_it_was_written_from() {
        let d = DoorBodies::default();
        let event = r#"{"dossierCode":"HS-1"}"#;
        d.keep("nafosted", "dossier_sync", event, 3, &body(10));
        assert!(
            d.take("nafosted", "dossier_sync", r#"{"dossierCode":"HS-2"}"#, 3)
                .is_none()
        );
        assert!(d.take("nafosted", "dossier_progress", event, 3).is_none());
        assert!(
            d.take("nafosted", "dossier_sync", event, 4).is_none(),
            "a reload renders afresh"
        );
        assert_eq!(
            d.take("nafosted", "dossier_sync", event, 3)
                .unwrap()
                .body
                .len(),
            10
        );
        assert!(
            d.take("nafosted", "dossier_sync", event, 3).is_none(),
            "taken once"
        );
        assert_eq!(d.size(), (0, 0));
    }

    #[test]
    fn door_bodies_stay_within_their_bounds() {
        let d = DoorBodies::default();
        for i in 0..(DOOR_MAX_ENTRIES + 50) {
            d.keep("u", "f", &format!("{{\"n\":{i}}}"), 1, &body(8));
        }
        assert_eq!(d.size().0, DOOR_MAX_ENTRIES);
        assert!(
            d.take("u", "f", "{\"n\":0}", 1).is_none(),
            "the oldest went first"
        );
        for i in 0..40 {
            d.keep(
                "u",
                "f",
                &format!("{{\"big\":{i}}}"),
                1,
                &body(DOOR_MAX_BYTES / 10),
            );
        }
        assert!(d.size().1 <= DOOR_MAX_BYTES, "{:?}", d.size());
        d.keep("u", "f", "{}", 1, &body(DOOR_MAX_BYTES / 2));
        assert!(d.take("u", "f", "{}", 1).is_none(), "too large to keep");
    }
}
