//! The notes of open payments, which the connector, the callback and the cluster share:
//! each `INIT` leaves a note `payment-open/<MaThamChieu>` naming the unit and the time
//! ([`OpenPayment`]); a callback marks it paid or settles it; a node takes the notes
//! other nodes share without ever moving a payment backwards ([`take_shared`]). The
//! reconciler that asks the platform about them, and sends what it learns to the units
//! through their routes, is [`crate::route::payments`] (its design is there).

use super::{OPEN_PREFIX, SETTLED_PREFIX, open_note, settled_note};
use crate::outbox::{Notes, Outbox, StoreError};
use crate::time::now_ms;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What the note of an open payment holds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OpenPayment {
    pub unit: String,
    /// When the `INIT` was first sent.
    pub since_ms: u64,
    /// Paid; only the receipt is left to fetch.
    #[serde(default)]
    pub paid: bool,
}

impl OpenPayment {
    pub fn new(unit: &str) -> OpenPayment {
        OpenPayment {
            unit: unit.to_string(),
            since_ms: now_ms(),
            paid: false,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("serialisable")
    }

    pub fn decode(bytes: &[u8]) -> Option<OpenPayment> {
        serde_json::from_slice(bytes).ok()
    }
}

/// When and how reconciliation runs (`payment = { ... }` of the payment target).
#[derive(Clone, Debug)]
pub struct ReconcileSettings {
    /// How often a round runs.
    pub every: Duration,
    /// A payment with no callback this long after its `INIT` is asked about.
    pub query_after: Duration,
    /// A payment still pending this long after its `INIT` is reported expired.
    pub give_up_after: Duration,
}

/// Settle a payment for good: its mark goes to every node (so no note arriving late
/// reopens it) and its open note is removed here.
pub fn settle(
    notes: &dyn Notes,
    outbox: &Outbox,
    reference: &str,
    unit: &str,
) -> Result<(), StoreError> {
    notes.put_note(&settled_note(reference), unit.as_bytes())?;
    outbox.remove_note(&open_note(reference))
}

/// After a verified callback: a paid payment is marked paid (its receipt is fetched next
/// round), any other outcome settles it. Marked even when this node has no note of it:
/// in a cluster, the `INIT`'s note may not have reached the node that took the callback.
pub fn settled_by_callback(
    notes: &dyn Notes,
    outbox: &Outbox,
    unit: &str,
    reference: &str,
    code: &str,
) {
    let result = if code == "00" {
        let since_ms = outbox
            .get_note(&open_note(reference))
            .ok()
            .flatten()
            .and_then(|b| OpenPayment::decode(&b))
            .map_or_else(now_ms, |o| o.since_ms);
        let paid = OpenPayment {
            unit: unit.to_string(),
            since_ms,
            paid: true,
        };
        notes.put_note(&open_note(reference), &paid.encode())
    } else {
        settle(notes, outbox, reference, unit)
    };
    if let Err(e) = result {
        tracing::warn!(reference, error = %e, "cannot update the open payment note; it is reconciled by QUERY instead");
    }
}

/// Take a payment note another node shared, never moving the payment backwards: an open
/// note of a settled payment is dropped, an unpaid one does not overwrite a paid one, a
/// settled mark removes the open note. Other notes are taken as they come.
pub fn take_shared(outbox: &Outbox, name: &str, value: &[u8]) -> Result<(), StoreError> {
    if let Some(reference) = name.strip_prefix(OPEN_PREFIX) {
        if outbox.get_note(&settled_note(reference))?.is_some() {
            return Ok(());
        }
        let known = outbox.get_note(name)?.and_then(|b| OpenPayment::decode(&b));
        let incoming = OpenPayment::decode(value);
        if known.is_some_and(|k| k.paid) && incoming.is_some_and(|i| !i.paid) {
            return Ok(());
        }
        return outbox.put_note(name, value);
    }
    if let Some(reference) = name.strip_prefix(SETTLED_PREFIX) {
        outbox.put_note(name, value)?;
        return outbox.remove_note(&open_note(reference));
    }
    outbox.put_note(name, value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::{MemStore, OutboxSettings};
    use std::sync::Arc;

    fn outbox() -> Outbox {
        let settings = OutboxSettings {
            max_pending: 100,
            max_pending_bytes: 1 << 20,
            retention: Duration::from_secs(3600),
            idempotency_ttl: Duration::from_secs(3600),
            note_retention: Duration::from_secs(3600),
            window: 16,
        };
        Outbox::open(Arc::new(MemStore::default()), settings, &["t".to_string()]).unwrap()
    }

    fn open(paid: bool) -> Vec<u8> {
        OpenPayment {
            unit: "nafosted".into(),
            since_ms: 1,
            paid,
        }
        .encode()
    }

    /// What a node knows of payment R once it has taken `notes` in this order.
    fn state_after(notes: &[(&str, Vec<u8>)]) -> &'static str {
        let outbox = outbox();
        for (name, value) in notes {
            take_shared(&outbox, name, value).unwrap();
        }
        let settled = outbox.get_note("payment-settled/R").unwrap().is_some();
        let open = outbox
            .get_note("payment-open/R")
            .unwrap()
            .and_then(|b| OpenPayment::decode(&b));
        match (settled, open) {
            (true, None) => "settled",
            (true, Some(_)) => "settled, with an open note left",
            (false, Some(o)) if o.paid => "paid",
            (false, Some(_)) => "open",
            (false, None) => "unknown",
        }
    }

    #[test]
    fn shared_payment_notes_never_move_a_payment_backwards_whatever_their_order() {
        let opened = ("payment-open/R", open(false));
        let paid = ("payment-open/R", open(true));
        let settled = ("payment-settled/R", b"nafosted".to_vec());
        // The life of a payment is opened → paid → settled; each prefix of it, in every
        // order the broker may deliver the notes from different nodes, ends where the
        // furthest note says.
        let lives: [(&[_], &str); 3] = [
            (std::slice::from_ref(&opened), "open"),
            (&[opened.clone(), paid.clone()], "paid"),
            (&[opened.clone(), paid.clone(), settled.clone()], "settled"),
        ];
        for (life, expected) in lives {
            let n = life.len();
            let mut order: Vec<usize> = (0..n).collect();
            // Every permutation (at most 3! = 6).
            let mut perms = vec![];
            permute(&mut order, 0, &mut perms);
            for perm in perms {
                let notes: Vec<_> = perm.iter().map(|&i| life[i].clone()).collect();
                assert_eq!(state_after(&notes), expected, "order {perm:?}");
            }
        }
    }

    fn permute(items: &mut Vec<usize>, k: usize, out: &mut Vec<Vec<usize>>) {
        if k == items.len() {
            out.push(items.clone());
            return;
        }
        for i in k..items.len() {
            items.swap(k, i);
            permute(items, k + 1, out);
            items.swap(k, i);
        }
    }

    #[test]
    fn a_paid_callback_marks_the_payment_paid_even_where_its_open_note_never_arrived() {
        let outbox = outbox();
        settled_by_callback(&outbox, &outbox, "nafosted", "R", "00");
        let note = outbox.get_note("payment-open/R").unwrap().unwrap();
        let open = OpenPayment::decode(&note).unwrap();
        assert!(open.paid);
        assert_eq!(open.unit, "nafosted");
        // The INIT's note arriving after it changes nothing.
        take_shared(&outbox, "payment-open/R", &super::tests::open(false)).unwrap();
        let note = outbox.get_note("payment-open/R").unwrap().unwrap();
        assert!(OpenPayment::decode(&note).unwrap().paid);
        // A failed callback settles it for good.
        settled_by_callback(&outbox, &outbox, "nafosted", "S", "01");
        assert!(outbox.get_note("payment-settled/S").unwrap().is_some());
        assert!(outbox.get_note("payment-open/S").unwrap().is_none());
    }
}
