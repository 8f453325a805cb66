//! Dead letters as operators see them: listed in pages, one read by id, replayed or
//! dropped; in a cluster, those the cluster's log reports recorded beside the others, and
//! those resolved here told to it.

use super::records::{
    AttemptError, DeadRecord, DoneOutcome, MessageRecord, compress_chunk, decode, encode,
    encode_chunk,
};
use super::store::StoreError;
use super::writer::{Command, ForeignMessage, ImportedDead};
use super::{OpError, Outbox, keys};
use crate::envelope::{Envelope, MessageId};
use std::sync::Arc;

/// Which dead letters to list: a page after a cursor, filtered. Matching happens while
/// reading a page at a time, so a million dead letters cost no more memory than a page.
#[derive(Clone, Debug, Default)]
pub struct DeadQuery {
    pub target: Option<String>,
    pub unit: Option<String>,
    /// Text the reason must contain.
    pub reason: Option<String>,
    /// Accepted or dead at or after this time (milliseconds since the epoch).
    pub since_ms: Option<u64>,
    /// Start after this dead letter (the `next` of the previous page).
    pub after: Option<DeadCursor>,
    pub limit: usize,
}

/// Where a page of dead letters ends: `target/id`, in the order they are listed (per
/// target in name order, then by message id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadCursor {
    pub target: String,
    pub id: MessageId,
}

impl std::fmt::Display for DeadCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.target, self.id)
    }
}

impl std::str::FromStr for DeadCursor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (target, id) = s
            .rsplit_once('/')
            .ok_or_else(|| format!("`{s}` is not a cursor (target/id, the `next` of a page)"))?;
        let id = id
            .parse()
            .map_err(|_| format!("`{s}` is not a cursor: `{id}` is not a message id"))?;
        Ok(DeadCursor {
            target: target.to_string(),
            id,
        })
    }
}

impl DeadQuery {
    fn matches(&self, d: &DeadLetter) -> bool {
        self.unit.as_ref().is_none_or(|u| &d.unit == u)
            && self
                .reason
                .as_ref()
                .is_none_or(|r| d.reason.contains(r.as_str()))
            && self.since_ms.is_none_or(|since| {
                d.id.timestamp_ms() >= since || d.errors.last().is_some_and(|e| e.at_ms >= since)
            })
    }
}

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

/// How an operator resolved a dead letter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    Replayed,
    Dropped,
}

/// Told of every dead letter an operator resolves on this node, so that the cluster's
/// other nodes stop listing it (`transport = "amqp"`). The future ends once they can
/// learn it (or it could not be told: the error is the log's to report).
pub trait ResolutionLog: Send + Sync {
    fn resolved(
        &self,
        target: &str,
        id: MessageId,
        dead_at_ms: u64,
        how: Resolution,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
}

impl Outbox {
    /// Where dead letters resolved here are told (once; later calls are ignored).
    pub fn tell_resolutions(&self, log: Arc<dyn ResolutionLog>) {
        let _ = self.inner.resolutions.set(log);
    }

    /// Put a dead letter back in its queue under its original id.
    pub async fn replay(&self, target: &str, id: MessageId) -> Result<(), OpError> {
        self.resolve_here(target, id, Resolution::Replayed).await
    }

    /// Give up on a dead letter for good; its key (if blocked) goes on.
    pub async fn drop_dead(&self, target: &str, id: MessageId) -> Result<(), OpError> {
        self.resolve_here(target, id, Resolution::Dropped).await
    }

    /// Replay or drop a dead letter; with a cluster's log, tell it which death was
    /// resolved (read before the writer removes the record; not read without a log).
    async fn resolve_here(
        &self,
        target: &str,
        id: MessageId,
        how: Resolution,
    ) -> Result<(), OpError> {
        let log = self.inner.resolutions.get();
        let dead_at = log.and_then(|_| self.dead_at(target, id));
        let name = target.to_string();
        self.ask(|reply| match how {
            Resolution::Replayed => Command::Replay {
                target: name,
                id,
                reply,
            },
            Resolution::Dropped => Command::Drop {
                target: name,
                id,
                reply,
            },
        })
        .await?;
        if let (Some(log), Some(dead_at)) = (log, dead_at) {
            log.resolved(target, id, dead_at, how).await;
        }
        Ok(())
    }

    fn dead_at(&self, target: &str, id: MessageId) -> Option<u64> {
        let bytes = self
            .inner
            .store
            .get(&keys::delivery(keys::DEAD, target, &id))
            .ok()??;
        decode::<DeadRecord>(&bytes).ok().map(|d| d.dead_at_ms)
    }

    /// Record a dead letter from the cluster's log (`transport = "amqp"`), whichever node
    /// accepted its message: a message accepted elsewhere is stored with it, so that it
    /// can be read, replayed (through the broker again) or dropped here. It does not block
    /// its key: the broker's workers keep per-key order. `dead_at_ms` is when the worker
    /// gave up: the newest death of a delivery wins.
    pub async fn import_dead(
        &self,
        target: &str,
        envelope: &Envelope,
        reason: &str,
        errors: &[AttemptError],
        dead_at_ms: u64,
    ) -> Result<(), OpError> {
        if !self.inner.queues.contains_key(target) {
            return Err(OpError::NotFound); // not a target this node knows
        }
        let here = self
            .message(envelope.id)
            .map_err(|e| OpError::Storage(e.to_string()))?
            .is_some();
        let message = (!here).then(|| {
            let record = MessageRecord {
                unit: envelope.unit.clone(),
                flow: envelope.flow.clone(),
                key: envelope.key.clone(),
                trace_id: envelope.trace_id.clone(),
                idempotency_key: envelope.idempotency_key.clone(),
                targets: vec![target.to_string()],
                payload: envelope.payload.clone(),
            };
            let chunk = compress_chunk(&encode_chunk(&[encode(&record)]));
            let dossier = envelope
                .key
                .as_ref()
                .map(|k| keys::unit_dossier(&envelope.unit, k, &envelope.id));
            ForeignMessage {
                key: keys::message(&envelope.id),
                chunk,
                dossier,
            }
        });
        let record = DeadRecord {
            key_hash: None,
            block_on_dead: false,
            attempts: errors.len() as u32,
            payload_len: envelope.payload.get().len() as u32,
            reason: reason.to_string(),
            dead_at_ms,
            errors: errors.to_vec(),
            unit: envelope.unit.clone(),
            tally: None,
        };
        let (target, id) = (target.to_string(), envelope.id);
        self.ask(|reply| {
            Command::ImportDead(ImportedDead {
                target,
                id,
                record,
                message,
                reply,
            })
        })
        .await
    }

    /// A dead letter another node of the cluster replayed or dropped: it is no longer
    /// listed here, unless it died again after `dead_at_ms`.
    pub async fn resolved_elsewhere(
        &self,
        target: &str,
        id: MessageId,
        dead_at_ms: u64,
        how: Resolution,
    ) -> Result<(), OpError> {
        if !self.inner.queues.contains_key(target) {
            return Ok(());
        }
        let outcome = match how {
            // It went back to the broker from the node that replayed it.
            Resolution::Replayed => DoneOutcome::Forwarded,
            Resolution::Dropped => DoneOutcome::Dropped,
        };
        self.ask(|reply| Command::ResolveDead {
            target: target.to_string(),
            id,
            dead_at_ms,
            outcome,
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
        let query = DeadQuery {
            target: target.map(str::to_string),
            limit,
            ..DeadQuery::default()
        };
        Ok(self.dead_letter_page(&query)?.0)
    }

    /// One page of the dead letters `query` selects, and the cursor of the next page when
    /// there may be more.
    pub fn dead_letter_page(
        &self,
        query: &DeadQuery,
    ) -> Result<(Vec<DeadLetter>, Option<DeadCursor>), StoreError> {
        let mut out: Vec<DeadLetter> = Vec::new();
        if query.limit == 0 {
            return Ok((out, None));
        }
        self.for_each_dead_letter(query.target.as_deref(), query.after.as_ref(), |d| {
            if query.matches(&d) {
                out.push(d);
            }
            out.len() < query.limit
        })?;
        let next = (out.len() == query.limit)
            .then(|| out.last())
            .flatten()
            .map(|d| DeadCursor {
                target: d.target.clone(),
                id: d.id,
            });
        Ok((out, next))
    }

    /// Every dead letter, per target in name order, oldest first, handed to `f` until it
    /// returns `false`; with `after`, those listed after that one. Read a page at a time:
    /// memory stays flat however many there are.
    pub fn for_each_dead_letter(
        &self,
        target: Option<&str>,
        after: Option<&DeadCursor>,
        mut f: impl FnMut(DeadLetter) -> bool,
    ) -> Result<(), StoreError> {
        const PAGE: usize = 256;
        let mut names: Vec<&String> = self
            .inner
            .queues
            .keys()
            .filter(|t| target.is_none_or(|w| w == t.as_str()))
            .filter(|t| after.is_none_or(|a| t.as_str() >= a.target.as_str()))
            .collect();
        names.sort();
        for t in names {
            let prefix = keys::target_prefix(keys::DEAD, t);
            let end = keys::prefix_end(&prefix);
            let mut start = prefix.clone();
            if let Some(a) = after.filter(|a| a.target == *t) {
                start = keys::delivery(keys::DEAD, t, &a.id);
                start.push(0);
            }
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
