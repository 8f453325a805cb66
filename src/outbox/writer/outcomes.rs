//! How the writer records each outcome of a delivery (delivered, failed, dead, confirmed
//! by a worker, imported from a worker, replayed, dropped), as changes to the batch being
//! committed ([`Pending`]) and to the running counts.

use super::*;
use crate::outbox::ledger;

impl Writer {
    /// A worker delivered what this node forwarded: the done record says delivered.
    pub(super) fn confirm_delivered(
        &mut self,
        target: String,
        id: MessageId,
        at_ms: u64,
        attempts: u32,
        p: &mut Pending,
    ) {
        let dkey = keys::delivery(keys::DONE, &target, &id);
        if let Ok(Some(v)) = self.read(p, &dkey)
            && let Ok(mut done) = DoneRecord::from_bytes(&v)
            && done.outcome == DoneOutcome::Forwarded
        {
            done.outcome = DoneOutcome::Delivered;
            done.at_ms = at_ms;
            done.attempts = attempts;
            if let Some(id) = done.tally.take() {
                self.tally_sync_finished(p, id);
            }
            p.put(dkey, done.to_bytes());
        }
    }

    /// A delivery finished: its pending record becomes a done record.
    pub(super) fn record_delivered(
        &mut self,
        target: String,
        info: DeliveryInfo,
        at_ms: u64,
        outcome: DoneOutcome,
        p: &mut Pending,
    ) {
        let key = keys::delivery(keys::PENDING, &target, &info.id);
        // Earlier failures stay visible in the message's journey.
        let errors = if info.attempts > 0 || info.had_errors {
            self.read(p, &key)
                .ok()
                .flatten()
                .and_then(|v| PendingRecord::from_bytes(&v).ok())
                .map(|r| r.errors)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        p.delete(key);
        let mut tally = info.tally;
        if outcome == DoneOutcome::Delivered
            && let Some(id) = tally.take()
        {
            self.tally_sync_finished(p, id);
        }
        p.ledger.moved(
            &info.id,
            &info.unit.name(),
            &target,
            None,
            ledger_field(outcome),
        );
        let done = DoneRecord {
            outcome,
            at_ms,
            attempts: info.attempts + 1,
            errors,
            // Forwarded: settled when a worker reports it delivered.
            tally,
        };
        p.put(
            keys::delivery(keys::DONE, &target, &info.id),
            done.to_bytes(),
        );
        self.finish_pending(&target, &info, p);
    }

    /// An attempt failed: the pending record keeps the error and the next due time.
    pub(super) fn record_failed(
        &mut self,
        target: String,
        info: DeliveryInfo,
        error: AttemptError,
        next_due_ms: u64,
        p: &mut Pending,
    ) {
        let key = keys::delivery(keys::PENDING, &target, &info.id);
        match self
            .read(p, &key)
            .and_then(|v| v.map(|v| PendingRecord::from_bytes(&v)).transpose())
        {
            Ok(Some(mut rec)) => {
                rec.attempts = info.attempts + 1;
                rec.next_due_ms = next_due_ms;
                push_error(&mut rec.errors, error);
                p.put(key, rec.to_bytes());
            }
            Ok(None) => {
                tracing::warn!(%target, id = %info.id, "retry of a delivery that is no longer pending")
            }
            Err(e) => {
                tracing::error!(%target, id = %info.id, error = %e, "cannot record a failed attempt")
            }
        }
    }

    /// A delivery is dead: its pending record becomes a dead letter.
    pub(super) fn record_dead(
        &mut self,
        target: String,
        info: DeliveryInfo,
        error: Option<AttemptError>,
        reason: String,
        p: &mut Pending,
    ) {
        let key = keys::delivery(keys::PENDING, &target, &info.id);
        let mut errors = match self
            .read(p, &key)
            .and_then(|v| v.map(|v| PendingRecord::from_bytes(&v)).transpose())
        {
            Ok(Some(rec)) => rec.errors,
            _ => Vec::new(),
        };
        let attempts = info.attempts + u32::from(error.is_some());
        if let Some(e) = error {
            push_error(&mut errors, e);
        }
        let dead = DeadRecord {
            key_hash: info.key_hash,
            block_on_dead: info.block_on_dead,
            attempts,
            payload_len: info.payload_len,
            reason,
            dead_at_ms: now_ms(),
            errors,
            unit: info.unit.name().to_string(),
            tally: info.tally,
        };
        p.delete(key);
        p.ledger
            .moved(&info.id, &dead.unit, &target, None, ledger::DEAD);
        feed_dead(p, &dead.unit, dead.dead_at_ms, &info.id, &target);
        p.put(keys::delivery(keys::DEAD, &target, &info.id), encode(&dead));
        self.meta.dead += 1;
        count_unit(&mut self.meta.by_unit, &target, &dead.unit, 0, 1);
        self.finish_pending(&target, &info, p);
    }

    /// A dead letter the cluster's log reported ([`Command::ImportDead`]). The newest death
    /// of a delivery wins, whatever order the log's records arrive in: a delivery pending
    /// here, or finished here after it died, is not made dead again; an older dead letter
    /// gives way to a newer one (counted once).
    pub(super) fn import_dead(&mut self, import: ImportedDead, p: &mut Pending) {
        let ImportedDead {
            target,
            id,
            mut record,
            message,
            reply,
        } = import;
        let xkey = keys::delivery(keys::DEAD, &target, &id);
        let dkey = keys::delivery(keys::DONE, &target, &id);
        let qkey = keys::delivery(keys::PENDING, &target, &id);
        let read = |w: &mut Self, p: &mut Pending, k: &[u8]| {
            w.read(p, k).map_err(|e| OpError::Storage(e.to_string()))
        };
        let result = (|| {
            if read(self, p, &qkey)?.is_some() {
                return Ok(()); // under way here again (replayed): not dead
            }
            if let Some(v) = read(self, p, &xkey)? {
                let old: DeadRecord = decode(&v).map_err(|e| OpError::Storage(e.to_string()))?;
                if old.dead_at_ms < record.dead_at_ms {
                    record.tally = old.tally;
                    p.put(xkey, encode(&record));
                }
                return Ok(()); // already recorded (the record came twice)
            }
            let done = read(self, p, &dkey)?.and_then(|v| DoneRecord::from_bytes(&v).ok());
            // Delivered or dropped here after it died: an old report. (A forwarded record
            // is in the broker's hands; its time is this node's clock, not the worker's.)
            if done
                .as_ref()
                .is_some_and(|d| d.outcome != DoneOutcome::Forwarded && d.at_ms > record.dead_at_ms)
            {
                return Ok(());
            }
            if done
                .as_ref()
                .is_some_and(|d| d.outcome == DoneOutcome::Forwarded)
                && message.is_none()
            {
                // Forwarded from here: this node's reconciliation sees it die.
                p.ledger.moved(
                    &id,
                    &record.unit,
                    &target,
                    Some(ledger::FORWARDED),
                    ledger::DEAD,
                );
            }
            if let Some(message) = message {
                // Accepted by another node: the message comes with its dead letter.
                p.created.push(message.key.clone());
                p.put(message.key, message.chunk);
                if let Some(dossier) = message.dossier {
                    p.created.push(dossier.clone());
                    p.put(dossier, Vec::new());
                }
            }
            // The forwarded delivery's record gives way to the dead letter (which keeps
            // the dossier it settles in the KPIs).
            record.tally = done.and_then(|d| d.tally);
            p.delete(dkey);
            count_unit(&mut self.meta.by_unit, &target, &record.unit, 0, 1);
            feed_dead(p, &record.unit, record.dead_at_ms, &id, &target);
            p.put(xkey, encode(&record));
            self.meta.dead += 1;
            Ok(())
        })();
        answer_after_flush(p, result, reply, |_| {});
    }

    /// A dead letter another node replayed or dropped: the copy here goes, unless it died
    /// again since (`dead_at_ms` is the death that was resolved).
    pub(super) fn resolve_dead(
        &mut self,
        target: &str,
        id: MessageId,
        dead_at_ms: u64,
        outcome: DoneOutcome,
        p: &mut Pending,
    ) -> Result<bool, OpError> {
        let xkey = keys::delivery(keys::DEAD, target, &id);
        let Some(bytes) = self
            .read(p, &xkey)
            .map_err(|e| OpError::Storage(e.to_string()))?
        else {
            return Ok(false);
        };
        let dead: DeadRecord = decode(&bytes).map_err(|e| OpError::Storage(e.to_string()))?;
        if dead.dead_at_ms > dead_at_ms {
            return Ok(false);
        }
        // No longer outstanding here: the node that resolved it carries it on.
        self.settle_dead(target, id, dead, outcome, p);
        Ok(true)
    }

    pub(super) fn replay(
        &mut self,
        target: &str,
        id: MessageId,
        p: &mut Pending,
    ) -> Result<DeliveryInfo, OpError> {
        let xkey = keys::delivery(keys::DEAD, target, &id);
        let bytes = self
            .read(p, &xkey)
            .map_err(|e| OpError::Storage(e.to_string()))?
            .ok_or(OpError::NotFound)?;
        let dead: DeadRecord = decode(&bytes).map_err(|e| OpError::Storage(e.to_string()))?;
        let rec = PendingRecord {
            key_hash: dead.key_hash,
            block_on_dead: dead.block_on_dead,
            attempts: 0,
            next_due_ms: 0,
            payload_len: dead.payload_len,
            errors: dead.errors,
            unit: dead.unit,
            tally: dead.tally,
        };
        count_unit(&mut self.meta.by_unit, target, &rec.unit, 1, -1);
        p.ledger.revived(&id, &rec.unit, target);
        p.delete(xkey);
        p.put(keys::delivery(keys::PENDING, target, &id), rec.to_bytes());
        self.meta.dead = self.meta.dead.saturating_sub(1);
        self.meta.pending += 1;
        self.meta.pending_bytes += dead.payload_len as u64;
        Ok(DeliveryInfo::from_record(id, &rec))
    }

    pub(super) fn drop_dead(
        &mut self,
        target: &str,
        id: MessageId,
        p: &mut Pending,
    ) -> Result<Option<KeyHash>, OpError> {
        let xkey = keys::delivery(keys::DEAD, target, &id);
        let bytes = self
            .read(p, &xkey)
            .map_err(|e| OpError::Storage(e.to_string()))?
            .ok_or(OpError::NotFound)?;
        let dead: DeadRecord = decode(&bytes).map_err(|e| OpError::Storage(e.to_string()))?;
        let key_hash = dead.key_hash;
        self.settle_dead(target, id, dead, DoneOutcome::Dropped, p);
        Ok(key_hash)
    }

    /// A dead letter is no more: a done record with `outcome` takes its place, and the
    /// dossier it settles is no longer outstanding for the sync KPI.
    fn settle_dead(
        &mut self,
        target: &str,
        id: MessageId,
        dead: DeadRecord,
        outcome: DoneOutcome,
        p: &mut Pending,
    ) {
        p.delete(keys::delivery(keys::DEAD, target, &id));
        count_unit(&mut self.meta.by_unit, target, &dead.unit, 0, -1);
        p.ledger.moved(
            &id,
            &dead.unit,
            target,
            Some(ledger::DEAD),
            ledger_field(outcome),
        );
        if let Some(tally_id) = dead.tally {
            self.tally_sync_finished(p, tally_id);
        }
        let done = DoneRecord {
            outcome,
            at_ms: now_ms(),
            attempts: dead.attempts,
            errors: dead.errors,
            tally: None,
        };
        p.put(keys::delivery(keys::DONE, target, &id), done.to_bytes());
        self.meta.dead = self.meta.dead.saturating_sub(1);
    }
}

/// The reconciliation's count a finished delivery moves to.
fn ledger_field(outcome: DoneOutcome) -> usize {
    match outcome {
        DoneOutcome::Delivered => ledger::DELIVERED,
        DoneOutcome::Forwarded => ledger::FORWARDED,
        DoneOutcome::Dropped => ledger::DROPPED,
    }
}

/// The unit's dead-letter feed gains an entry in the same write as the dead letter: a
/// note (expired with the other notes), named so that a unit reads it in the order the
/// letters died ([`crate::outbox::dead_feed`]).
fn feed_dead(p: &mut Pending, unit: &str, dead_at_ms: u64, id: &MessageId, target: &str) {
    if unit.is_empty() {
        return;
    }
    let name = crate::outbox::dead_feed::entry_name(unit, dead_at_ms, id, target);
    p.put(keys::note(&name), Vec::new());
    p.put(keys::note_expiry(dead_at_ms, &name), Vec::new());
}
