//! Dead letters as operators see them: listed in pages, one read by id, and those a worker
//! node reported for messages accepted here (cluster mode) recorded beside the others.

use super::records::{AttemptError, DeadRecord, decode};
use super::store::StoreError;
use super::writer::Command;
use super::{OpError, Outbox, keys};
use crate::envelope::{Envelope, MessageId};
use crate::time::now_ms;

/// A dead letter as shown to operators.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DeadLetter {
    pub id: MessageId,
    pub target: String,
    pub unit: String,
    pub flow: String,
    pub key: Option<String>,
    pub attempts: u32,
    pub reason: String,
    pub dead_at: String,
    pub errors: Vec<AttemptError>,
    pub blocks_key: bool,
}

impl Outbox {
    /// Record a dead letter a worker node reported for a message accepted here
    /// (`transport = "amqp"`). It does not block its key here: the broker's workers keep
    /// per-key order. Replaying it sends it through the broker again.
    pub async fn import_dead(
        &self,
        target: &str,
        envelope: &Envelope,
        reason: &str,
        errors: &[AttemptError],
    ) -> Result<(), OpError> {
        if self
            .message(envelope.id)
            .map_err(|e| OpError::Storage(e.to_string()))?
            .is_none()
        {
            // Retention removed the message meanwhile: nothing to show or replay.
            return Err(OpError::NotFound);
        }
        let record = DeadRecord {
            key_hash: None,
            block_on_dead: false,
            attempts: errors.len() as u32,
            payload_len: envelope.payload.get().len() as u32,
            reason: reason.to_string(),
            dead_at_ms: now_ms(),
            errors: errors.to_vec(),
            unit: envelope.unit.clone(),
            tally: None,
        };
        let (target, id) = (target.to_string(), envelope.id);
        self.ask(|reply| Command::ImportDead {
            target,
            id,
            record,
            reply,
        })
        .await
    }

    /// Dead letters, oldest first, for one target or all (at most `limit`).
    pub fn dead_letters(
        &self,
        target: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let mut out = Vec::new();
        if limit > 0 {
            self.for_each_dead_letter(target, |d| {
                out.push(d);
                out.len() < limit
            })?;
        }
        Ok(out)
    }

    /// Every dead letter, per target in name order, oldest first, handed to `f` until it
    /// returns `false`. Read a page at a time: memory stays flat however many there are.
    pub fn for_each_dead_letter(
        &self,
        target: Option<&str>,
        mut f: impl FnMut(DeadLetter) -> bool,
    ) -> Result<(), StoreError> {
        const PAGE: usize = 256;
        let mut names: Vec<&String> = self
            .inner
            .queues
            .keys()
            .filter(|t| target.is_none_or(|w| w == t.as_str()))
            .collect();
        names.sort();
        for t in names {
            let prefix = keys::target_prefix(keys::DEAD, t);
            let end = keys::prefix_end(&prefix);
            let mut start = prefix.clone();
            loop {
                let rows = self.inner.store.scan(&start, &end, PAGE)?;
                let n = rows.len();
                if let Some((last, _)) = rows.last() {
                    start = last.clone();
                    start.push(0);
                }
                for (k, v) in rows {
                    let id = keys::id_suffix(&k)
                        .ok_or_else(|| StoreError::Corrupt("short dead key".into()))?;
                    if !f(self.dead_letter_of(t, id, &v)?) {
                        return Ok(());
                    }
                }
                if n < PAGE {
                    break;
                }
            }
        }
        Ok(())
    }

    /// One dead letter, if `id` is dead at `target`.
    pub fn dead_letter(
        &self,
        target: &str,
        id: MessageId,
    ) -> Result<Option<DeadLetter>, StoreError> {
        if !self.inner.queues.contains_key(target) {
            return Ok(None);
        }
        match self
            .inner
            .store
            .get(&keys::delivery(keys::DEAD, target, &id))?
        {
            Some(v) => Ok(Some(self.dead_letter_of(target, id, &v)?)),
            None => Ok(None),
        }
    }

    fn dead_letter_of(
        &self,
        target: &str,
        id: MessageId,
        record: &[u8],
    ) -> Result<DeadLetter, StoreError> {
        let rec: DeadRecord = decode(record)?;
        let msg = self.message(id)?;
        Ok(DeadLetter {
            id,
            target: target.to_string(),
            unit: msg.as_ref().map(|m| m.unit.clone()).unwrap_or_default(),
            flow: msg.as_ref().map(|m| m.flow.clone()).unwrap_or_default(),
            key: msg.and_then(|m| m.key),
            attempts: rec.attempts,
            reason: rec.reason,
            dead_at: crate::time::rfc3339_ms(rec.dead_at_ms),
            errors: rec.errors,
            blocks_key: rec.block_on_dead && rec.key_hash.is_some(),
        })
    }
}
