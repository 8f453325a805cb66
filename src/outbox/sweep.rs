//! Retention: removes finished deliveries and their messages once `outbox.retention` has
//! passed, and idempotency keys after `outbox.idempotency_ttl`. Dead letters and pending
//! deliveries are never touched. The sweep only plans; the writer applies the batch.

use super::OutboxSettings;
use super::keys;
use super::records::{
    DoneRecord, IdempotencyRecord, MessageRecord, chunk_entry, chunk_len, decode,
};
use super::store::{Store, StoreError, WriteBatch};

/// Most messages examined in one sweep, so one sweep never holds the writer for long.
const MAX_MESSAGES_PER_SWEEP: usize = 100_000;

#[derive(Clone, Debug, Default, serde::Serialize, PartialEq, Eq)]
pub struct SweepReport {
    pub messages_removed: u64,
    pub idempotency_keys_removed: u64,
}

pub(super) fn plan(
    store: &dyn Store,
    settings: &OutboxSettings,
    now_ms: u64,
) -> Result<(WriteBatch, SweepReport), StoreError> {
    let mut batch = WriteBatch::default();
    let mut report = SweepReport::default();
    let cutoff = now_ms.saturating_sub(settings.retention.as_millis() as u64);

    // Messages come out oldest first; none accepted after the cutoff can be expired,
    // since a delivery always finishes after its message was accepted.
    let m_prefix = [keys::MESSAGE];
    let m_end = keys::prefix_end(&m_prefix);
    let mut start = m_prefix.to_vec();
    let mut examined = 0;
    'scan: while examined < MAX_MESSAGES_PER_SWEEP {
        let rows = store.scan(&start, &m_end, 1024)?;
        if rows.is_empty() {
            break;
        }
        for (k, chunk) in &rows {
            let Some(first) = keys::id_suffix(k) else {
                continue;
            };
            if first.timestamp_ms() >= cutoff {
                break 'scan;
            }
            // Old finished deliveries go one by one; the chunk goes when every message
            // in it is finished and old.
            let mut chunk_done = true;
            let mut dossier_entries = Vec::new();
            let count = chunk_len(chunk);
            examined += count;
            let mut id = first;
            for i in 0..count {
                if i > 0 {
                    id = id.successor();
                }
                let msg: MessageRecord = decode(chunk_entry(chunk, i)?)?;
                if let Some(key) = &msg.key {
                    dossier_entries.push(keys::dossier(key, &id));
                }
                let mut message_done = true;
                let mut had_records = false;
                for t in &msg.targets {
                    let dkey = keys::delivery(keys::DONE, t, &id);
                    match store.get(&dkey)? {
                        Some(d) if decode::<DoneRecord>(&d)?.at_ms < cutoff => {
                            batch.delete(dkey);
                            had_records = true;
                        }
                        Some(_) => message_done = false,
                        None => {
                            // Pending or dead: still needed. Neither: already forgotten.
                            let pending =
                                store.get(&keys::delivery(keys::PENDING, t, &id))?.is_some();
                            let dead = store.get(&keys::delivery(keys::DEAD, t, &id))?.is_some();
                            if pending || dead {
                                message_done = false;
                            }
                        }
                    }
                }
                if message_done && had_records {
                    report.messages_removed += 1;
                }
                chunk_done &= message_done;
            }
            if chunk_done {
                batch.delete(k.clone());
                for entry in dossier_entries {
                    batch.delete(entry);
                }
            }
        }
        start = rows.last().expect("non-empty").0.clone();
        start.push(0);
    }

    let ttl_cutoff = now_ms.saturating_sub(settings.idempotency_ttl.as_millis() as u64);
    let t_prefix = [keys::IDEMPOTENCY_EXPIRY];
    let mut t_end = t_prefix.to_vec();
    t_end.extend_from_slice(&ttl_cutoff.to_be_bytes());
    for (k, _) in store.scan(&t_prefix, &t_end, MAX_MESSAGES_PER_SWEEP)? {
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
        report.idempotency_keys_removed += 1;
    }
    Ok((batch, report))
}
