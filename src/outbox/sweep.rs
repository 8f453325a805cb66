//! Retention: removes finished deliveries and their messages once `outbox.retention` has
//! passed, idempotency keys after `outbox.idempotency_ttl` and notes after
//! `outbox.note_retention` ([`super::notes`]). Dead letters and pending
//! deliveries are never touched. The sweep only plans, in small steps (a few dozen
//! chunks each, read on a blocking thread); the writer applies each step's deletions.
//! A sweep examines at most [`MAX_MESSAGES_PER_SWEEP`] messages and remembers where it
//! stopped, so old messages kept by dead letters are looked at once per cycle, not at
//! every sweep, and nothing it does grows with the outbox.

use super::keys;
use super::records::{
    DoneRecord, IdempotencyRecord, MessageRecord, chunk_entry, chunk_len, decode,
};
use super::store::{Store, StoreError, WriteBatch};
use super::writer::Command;
use super::{OpError, OutboxSettings};
use std::sync::Arc;

/// Most message chunks examined in one step: one step runs on a blocking thread, then its
/// deletions go to the writer, so no step holds a thread (or shutdown) for long.
const CHUNKS_PER_STEP: usize = 64;
/// Most messages examined in one sweep; the next sweep goes on from there.
pub(super) const MAX_MESSAGES_PER_SWEEP: usize = 100_000;
/// Idempotency keys expired per step.
const KEYS_PER_STEP: usize = 10_000;

#[derive(Clone, Debug, Default, serde::Serialize, PartialEq, Eq)]
pub struct SweepReport {
    pub messages_removed: u64,
    pub idempotency_keys_removed: u64,
    pub notes_removed: u64,
    /// The file compacted after the sweep removed records ([`Store::reclaim`]): bytes
    /// before and after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_compacted: Option<(u64, u64)>,
}

/// One step of a sweep: what to delete and where the next step starts.
pub(super) struct Step {
    pub batch: WriteBatch,
    pub report: SweepReport,
    pub messages_examined: usize,
    /// The key after the last chunk examined; `None`: the messages old enough to expire
    /// are all examined (the next sweep starts again from the oldest).
    pub next: Option<Vec<u8>>,
}

/// Examine up to [`CHUNKS_PER_STEP`] message chunks from `from` (a message key, or the
/// start of the messages): old finished deliveries are removed, and a chunk goes once
/// every message in it is finished and old. Pending and dead deliveries keep their
/// messages.
pub(super) fn messages_step(
    store: &dyn Store,
    settings: &OutboxSettings,
    now_ms: u64,
    from: &[u8],
) -> Result<Step, StoreError> {
    let mut step = Step {
        batch: WriteBatch::default(),
        report: SweepReport::default(),
        messages_examined: 0,
        next: None,
    };
    let cutoff = now_ms.saturating_sub(settings.retention.as_millis() as u64);
    let m_end = keys::prefix_end(&[keys::MESSAGE]);
    let rows = store.scan(from, &m_end, CHUNKS_PER_STEP)?;
    let full = rows.len() == CHUNKS_PER_STEP;
    for (k, stored) in &rows {
        let Some(first) = keys::id_suffix(k) else {
            continue;
        };
        let chunk = &super::records::open_chunk(bytes::Bytes::copy_from_slice(stored))?;
        // Messages come out oldest first; none accepted after the cutoff can be expired,
        // since a delivery always finishes after its message was accepted.
        if first.timestamp_ms() >= cutoff {
            return Ok(step);
        }
        let mut chunk_done = true;
        let mut dossier_entries = Vec::new();
        let count = chunk_len(chunk);
        step.messages_examined += count;
        let mut id = first;
        for i in 0..count {
            if i > 0 {
                id = id.successor();
            }
            let msg: MessageRecord = decode(chunk_entry(chunk, i)?)?;
            if let Some(key) = &msg.key {
                dossier_entries.push(keys::unit_dossier(&msg.unit, key, &id));
                dossier_entries.push(keys::legacy_dossier(key, &id));
            }
            let mut message_done = true;
            let mut had_records = false;
            for t in &msg.targets {
                let dkey = keys::delivery(keys::DONE, t, &id);
                match store.get(&dkey)? {
                    Some(d) if DoneRecord::from_bytes(&d)?.at_ms < cutoff => {
                        step.batch.delete(dkey);
                        had_records = true;
                    }
                    Some(_) => message_done = false,
                    None => {
                        // Pending or dead: still needed. Neither: already forgotten.
                        let pending = store.get(&keys::delivery(keys::PENDING, t, &id))?.is_some();
                        let dead = store.get(&keys::delivery(keys::DEAD, t, &id))?.is_some();
                        if pending || dead {
                            message_done = false;
                        }
                    }
                }
            }
            if message_done && had_records {
                step.report.messages_removed += 1;
            }
            chunk_done &= message_done;
        }
        if chunk_done {
            step.batch.delete(k.clone());
            for entry in dossier_entries {
                step.batch.delete(entry);
            }
        }
    }
    if full && let Some((last, _)) = rows.last() {
        let mut next = last.clone();
        next.push(0);
        step.next = Some(next);
    }
    Ok(step)
}

/// Up to [`KEYS_PER_STEP`] idempotency keys past their TTL, with their expiry index
/// entries; `true` when more may be left.
pub(super) fn idempotency_step(
    store: &dyn Store,
    settings: &OutboxSettings,
    now_ms: u64,
) -> Result<(WriteBatch, u64, bool), StoreError> {
    let mut batch = WriteBatch::default();
    let mut removed = 0;
    let ttl_cutoff = now_ms.saturating_sub(settings.idempotency_ttl.as_millis() as u64);
    let t_prefix = [keys::IDEMPOTENCY_EXPIRY];
    let mut t_end = t_prefix.to_vec();
    t_end.extend_from_slice(&ttl_cutoff.to_be_bytes());
    let rows = store.scan(&t_prefix, &t_end, KEYS_PER_STEP)?;
    let more = rows.len() == KEYS_PER_STEP;
    for (k, _) in rows {
        batch.delete(k.clone());
        let created = u64::from_be_bytes(k[1..9].try_into().expect("expiry keys carry a time"));
        let mut ikey = vec![keys::IDEMPOTENCY];
        ikey.extend_from_slice(&k[9..]);
        // The key may have been reused after it expired: remove only the record this
        // index entry belongs to.
        if let Some(v) = store.get(&ikey)?
            && decode::<IdempotencyRecord>(&v)?.created_ms == created
        {
            batch.delete(ikey);
        }
        removed += 1;
    }
    Ok((batch, removed, more))
}

impl super::Outbox {
    /// Remove what retention and idempotency expiry allow, as of `now_ms`: up to
    /// [`MAX_MESSAGES_PER_SWEEP`] messages examined, in short steps, going on
    /// where the previous sweep stopped. Returns early once the outbox is closing.
    pub async fn sweep(&self, now_ms: u64) -> Result<SweepReport, OpError> {
        let mut report = SweepReport::default();
        let mut examined = 0;
        let storage = |e: &dyn std::fmt::Display| OpError::Storage(e.to_string());
        while examined < MAX_MESSAGES_PER_SWEEP && !self.is_closing() {
            let from = self
                .inner
                .sweep_cursor
                .lock()
                .unwrap()
                .clone()
                .unwrap_or_else(|| vec![keys::MESSAGE]);
            let store = Arc::clone(&self.inner.store);
            let settings = self.inner.settings.clone();
            let step = tokio::task::spawn_blocking(move || {
                messages_step(store.as_ref(), &settings, now_ms, &from)
            })
            .await
            .map_err(|e| storage(&e))?
            .map_err(|e| storage(&e))?;
            examined += step.messages_examined;
            report.messages_removed += step.report.messages_removed;
            if !step.batch.is_empty() {
                self.ask(|reply| Command::Batch(step.batch, reply)).await?;
                self.inner.chunks.clear();
            }
            let done = step.next.is_none();
            *self.inner.sweep_cursor.lock().unwrap() = step.next;
            if done {
                break;
            }
        }
        loop {
            if self.is_closing() {
                break;
            }
            let store = Arc::clone(&self.inner.store);
            let settings = self.inner.settings.clone();
            let (batch, removed, more) = tokio::task::spawn_blocking(move || {
                idempotency_step(store.as_ref(), &settings, now_ms)
            })
            .await
            .map_err(|e| storage(&e))?
            .map_err(|e| storage(&e))?;
            report.idempotency_keys_removed += removed;
            if !batch.is_empty() {
                self.ask(|reply| Command::Batch(batch, reply)).await?;
            }
            if !more {
                break;
            }
        }
        while !self.is_closing() {
            let outbox = self.clone();
            let (removed, more) =
                tokio::task::spawn_blocking(move || outbox.expire_notes_step(now_ms))
                    .await
                    .map_err(|e| storage(&e))?
                    .map_err(|e| storage(&e))?;
            report.notes_removed += removed;
            if !more {
                break;
            }
        }
        let removed =
            report.messages_removed + report.idempotency_keys_removed + report.notes_removed;
        if removed > 0 && !self.is_closing() {
            // After removing records, most of the file may be free (a drained outage):
            // give it back when that is cheap (the store decides, from running totals).
            let store = Arc::clone(&self.inner.store);
            if let Some(r) = tokio::task::spawn_blocking(move || store.reclaim())
                .await
                .map_err(|e| storage(&e))?
                .map_err(|e| storage(&e))?
            {
                tracing::info!(
                    file_before_mib = r.file_before >> 20,
                    file_after_mib = r.file_after >> 20,
                    live_mib = r.live_bytes >> 20,
                    took_ms = r.took.as_millis() as u64,
                    "outbox file compacted after the retention sweep"
                );
                report.file_compacted = Some((r.file_before, r.file_after));
            }
        }
        Ok(report)
    }
}
