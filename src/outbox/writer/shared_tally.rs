//! How the writer counts the KPIs when the tally is the cluster's ([`tally::shared`]):
//! each change is applied here and, once sharing is on, journalled in the same batch; the
//! other nodes' changes are taken in with their origin's mark.

use super::*;
use crate::outbox::tally::EventFacts;
use crate::outbox::tally::shared::{self, SharedOps, TallyOp};

impl Writer {
    /// An accepted event's facts: counted, and journalled for the cluster.
    pub(super) fn tally_event(
        &mut self,
        p: &mut Pending,
        unit: &str,
        facts: &EventFacts,
        sync_deliveries: u32,
        now: u64,
    ) {
        with_tally(self.store.as_ref(), p, |t, io| {
            t.on_event(io, unit, facts, sync_deliveries, now);
        });
        if self.journal_next.is_some() {
            self.journal(p, &TallyOp::event(unit, facts, sync_deliveries, now));
        }
    }

    /// A sync delivery of dossier `id` finished.
    pub(super) fn tally_sync_finished(&mut self, p: &mut Pending, id: u128) {
        with_tally(self.store.as_ref(), p, |t, io| t.on_sync_finished(io, id));
        if self.journal_next.is_some() {
            self.journal(p, &TallyOp::sync_finished(id));
        }
    }

    /// The fee with `reference` was paid online.
    pub(super) fn tally_paid(&mut self, p: &mut Pending, reference: &str) {
        with_tally(self.store.as_ref(), p, |t, io| t.on_paid(io, reference));
        if self.journal_next.is_some() {
            self.journal(
                p,
                &TallyOp::Paid {
                    reference: reference.to_string(),
                },
            );
        }
    }

    /// Changes made here that no event carries: applied, and journalled.
    pub(super) fn tally_local(&mut self, p: &mut Pending, ops: &[TallyOp]) {
        for op in ops {
            with_tally(self.store.as_ref(), p, |t, io| op.apply(t, io));
            if self.journal_next.is_some() {
                self.journal(p, op);
            }
        }
    }

    fn journal(&mut self, p: &mut Pending, op: &TallyOp) {
        let Some(seq) = self.journal_next else { return };
        let key = shared::journal_key(seq);
        p.created.push(key.clone());
        p.put_unread(key, encode(op));
        self.journal_next = Some(seq + 1);
    }

    /// Journal every change from now on (the cluster's tally): this outbox's origin id is
    /// made the first time, and the journal goes on from its saved sequence number.
    pub(super) fn share_tally(&mut self, p: &mut Pending) -> Result<(), OpError> {
        let storage = |e: StoreError| OpError::Storage(e.to_string());
        if self.read(p, shared::ORIGIN).map_err(storage)?.is_none() {
            let origin = uuid::Uuid::now_v7().to_string();
            p.put(shared::ORIGIN.to_vec(), origin.into_bytes());
        }
        let next = match self.read(p, shared::JOURNAL_NEXT).map_err(storage)? {
            Some(v) => decode::<u64>(&v).map_err(storage)?,
            None => 0,
        };
        self.journal_next.get_or_insert(next);
        Ok(())
    }

    /// Another node's changes: applied after its origin's mark, never journalled again.
    pub(super) fn take_shared(&mut self, p: &mut Pending, ops: &SharedOps) {
        with_tally(self.store.as_ref(), p, |t, io| {
            shared::take_in(t, io, ops);
        });
    }

    /// The journal's next sequence number, saved in the batch when it moved.
    pub(super) fn save_journal_next(&self, before: Option<u64>, p: &mut Pending) {
        if let Some(next) = self.journal_next.filter(|n| Some(*n) != before) {
            p.put(shared::JOURNAL_NEXT.to_vec(), encode(&next));
        }
    }
}
