//! The single writer: one thread drains a channel of write commands, turns everything
//! waiting into one atomic batch, flushes once, then answers every waiting sender
//! (group commit). Being the only writer also keeps the counters in `zmeta` exact and
//! makes idempotency checks race-free.

mod prepare;

pub use prepare::PreparedEnqueue;

mod outcomes;
mod shared_tally;

use super::key_hash::{KeyHash, key_hash};
use super::keys;
use super::queue::{DeliveryInfo, TargetQueue};
use super::records::*;
use super::store::{Store, StoreError, WriteBatch};
use super::tally::{self, FactFinder, Facts, TallyBatch, TallyIo};
use super::{Accepted, EnqueueError, EnqueueRequest, OpError};
use crate::envelope::MessageId;
use crate::time::now_ms;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};

/// Most commands folded into one batch; bounds the latency of a very busy flush.
const MAX_COMMANDS_PER_BATCH: usize = 8192;

pub enum Command {
    Enqueue(
        PreparedEnqueue,
        oneshot::Sender<Result<Vec<Accepted>, EnqueueError>>,
    ),
    Delivered {
        target: String,
        info: DeliveryInfo,
        at_ms: u64,
        outcome: DoneOutcome,
    },
    /// A worker node delivered a message this node forwarded: `Forwarded` → `Delivered`.
    ConfirmDelivered {
        target: String,
        id: MessageId,
        at_ms: u64,
        attempts: u32,
    },
    Failed {
        target: String,
        info: DeliveryInfo,
        error: AttemptError,
        next_due_ms: u64,
    },
    Dead {
        target: String,
        info: DeliveryInfo,
        error: Option<AttemptError>,
        reason: String,
    },
    Replay {
        target: String,
        id: MessageId,
        reply: oneshot::Sender<Result<(), OpError>>,
    },
    Drop {
        target: String,
        id: MessageId,
        reply: oneshot::Sender<Result<(), OpError>>,
    },
    /// A dead letter from the cluster's log: its delivery becomes a dead letter here.
    ImportDead(ImportedDead),
    /// A dead letter another node of the cluster replayed or dropped.
    ResolveDead {
        target: String,
        id: MessageId,
        /// The death that was resolved (a newer one stays).
        dead_at_ms: u64,
        /// What the delivery's record here says now.
        outcome: DoneOutcome,
        reply: oneshot::Sender<Result<(), OpError>>,
    },
    /// Journal the KPI tally's changes for the cluster from now on ([`tally::shared`]).
    ShareTally(oneshot::Sender<Result<(), OpError>>),
    /// Another node's KPI changes.
    TakeShared(
        tally::shared::SharedOps,
        oneshot::Sender<Result<(), OpError>>,
    ),
    /// KPI changes made here that no event carries (the portal's ratings).
    Tally(
        Vec<tally::shared::TallyOp>,
        oneshot::Sender<Result<(), OpError>>,
    ),
    /// Raw writes from the sweeper; answered after the flush.
    Batch(WriteBatch, oneshot::Sender<Result<(), OpError>>),
    /// A barrier: answered once everything sent before it is durable.
    Sync(oneshot::Sender<Result<(), OpError>>),
    /// Like `Sync`, then the writer stops: later commands find the channel closed.
    Stop(oneshot::Sender<Result<(), OpError>>),
}

/// A dead letter from the cluster's log ([`Command::ImportDead`]).
pub struct ImportedDead {
    pub target: String,
    pub id: MessageId,
    pub record: DeadRecord,
    /// For a message another node accepted: stored with its dead letter.
    pub message: Option<ForeignMessage>,
    pub reply: oneshot::Sender<Result<(), OpError>>,
}

/// A message another node of the cluster accepted, as this node stores it.
pub struct ForeignMessage {
    /// Its `m` key (its own id: a chunk of one).
    pub key: Vec<u8>,
    pub chunk: Vec<u8>,
    /// Its dossier index key.
    pub dossier: Option<Vec<u8>>,
}

/// Counters shared with readers (status, metrics, backpressure decisions in ingress).
#[derive(Default)]
pub struct Counters {
    pub pending: AtomicU64,
    pub pending_bytes: AtomicU64,
    pub dead: AtomicU64,
    pub flushes: AtomicU64,
    pub accepted: AtomicU64,
    /// The per-target, per-unit counts as of the last flush.
    pub by_unit: std::sync::Mutex<Arc<UnitCounts>>,
}

pub struct Limits {
    pub max_pending: u64,
    pub max_pending_bytes: u64,
    pub idempotency_ttl_ms: u64,
}

pub struct Writer {
    pub store: Arc<dyn Store>,
    pub queues: HashMap<String, Arc<TargetQueue>>,
    pub counters: Arc<Counters>,
    pub meta: Meta,
    pub limits: Limits,
    /// The next sequence number of the KPI journal; `None`: the tally is not shared.
    pub journal_next: Option<u64>,
}

type Reply = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;

/// What one batch collects: writes, an overlay for reads of keys written earlier in the
/// same batch, keys created (to undo on a failed flush), and what to do afterwards.
struct Pending {
    batch: WriteBatch,
    overlay: HashMap<Vec<u8>, Option<Vec<u8>>>,
    created: Vec<Vec<u8>>,
    /// Values of existing records this batch overwrites (the KPI tally's), to put back
    /// if the flush fails.
    overwritten: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    replies: Vec<Reply>,
    tally: TallyBatch,
    /// The reconciliation's counts this batch moves ([`super::ledger`]).
    ledger: super::ledger::LedgerBatch,
}

/// The writer's reads and writes as the tally sees them: reads see this batch's writes;
/// the first write of a key remembers its old value for the undo of a failed flush.
struct BatchIo<'a> {
    store: &'a dyn Store,
    p: &'a mut Pending,
}

/// Run `f` on the batch's tally with the batch's reads and writes.
fn with_tally(
    store: &dyn Store,
    p: &mut Pending,
    f: impl FnOnce(&mut TallyBatch, &mut dyn TallyIo),
) {
    let mut tally = std::mem::take(&mut p.tally);
    f(&mut tally, &mut BatchIo { store, p });
    p.tally = tally;
}

impl TallyIo for BatchIo<'_> {
    fn read(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.p.overlay.get(key) {
            Some(v) => v.clone(),
            None => self.store.get(key).ok().flatten().map(|b| b.to_vec()),
        }
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        if !self.p.overlay.contains_key(&key) {
            let old = self.store.get(&key).ok().flatten().map(|b| b.to_vec());
            self.p.overwritten.push((key.clone(), old));
        }
        self.p.put(key, value);
    }
}

impl Pending {
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.overlay.insert(key.clone(), Some(value.clone()));
        self.batch.put(key, value);
    }
    /// A write no later command of the batch reads back (message bodies): no overlay copy.
    fn put_unread(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.batch.put(key, value);
    }
    fn delete(&mut self, key: Vec<u8>) {
        self.overlay.insert(key.clone(), None);
        self.batch.delete(key);
    }
}

impl Writer {
    pub fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        while let Some(first) = rx.blocking_recv() {
            let mut commands = vec![first];
            while commands.len() < MAX_COMMANDS_PER_BATCH {
                match rx.try_recv() {
                    Ok(c) => commands.push(c),
                    Err(_) => break,
                }
            }
            let stop = commands.iter().any(|c| matches!(c, Command::Stop(_)));
            self.commit(commands);
            if stop {
                return;
            }
        }
        if let Err(e) = self.store.flush() {
            tracing::error!(error = %e, "final outbox flush failed");
        }
    }

    fn commit(&mut self, commands: Vec<Command>) {
        let meta_before = self.meta.clone();
        let journal_before = self.journal_next;
        let mut p = Pending {
            batch: WriteBatch::default(),
            overlay: HashMap::new(),
            created: Vec::new(),
            overwritten: Vec::new(),
            replies: Vec::new(),
            tally: TallyBatch::default(),
            ledger: Default::default(),
        };
        for c in commands {
            self.process(c, &mut p);
        }
        self.save_journal_next(journal_before, &mut p);
        let tally = std::mem::take(&mut p.tally);
        tally.finish(&mut BatchIo {
            store: self.store.as_ref(),
            p: &mut p,
        });
        let ledger = std::mem::take(&mut p.ledger);
        ledger.finish(&mut BatchIo {
            store: self.store.as_ref(),
            p: &mut p,
        });
        p.batch.put(keys::META.to_vec(), encode(&self.meta));
        let batch = std::mem::take(&mut p.batch);
        let result = self.store.apply(batch).and_then(|_| self.store.flush());
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
        match &result {
            Ok(()) => self.publish_counters(),
            Err(e) => {
                tracing::error!(error = %e, "outbox write failed; refusing the affected messages");
                // Undo what this batch created so nothing half-written can surface later.
                let mut undo = WriteBatch::default();
                for k in &p.created {
                    undo.delete(k.clone());
                }
                for (k, old) in std::mem::take(&mut p.overwritten) {
                    match old {
                        Some(v) => undo.put(k, v),
                        None => undo.delete(k),
                    }
                }
                self.meta = meta_before;
                self.journal_next = journal_before;
                undo.put(keys::META.to_vec(), encode(&self.meta));
                let _ = self.store.apply(undo);
            }
        }
        for reply in p.replies {
            reply(result.as_ref().map(|_| ()));
        }
    }

    /// A pending delivery ended (delivered or dead): count it out, and once its `q` record
    /// is gone let the queue forget it. On a failed write it stays remembered, so the loader
    /// never mistakes it for pending.
    fn finish_pending(&mut self, target: &str, info: &DeliveryInfo, p: &mut Pending) {
        count_unit(&mut self.meta.by_unit, target, &info.unit.name(), -1, 0);
        self.meta.pending = self.meta.pending.saturating_sub(1);
        self.meta.pending_bytes = self
            .meta
            .pending_bytes
            .saturating_sub(info.payload_len as u64);
        if let Some(q) = self.queues.get(target).cloned() {
            let id = info.id;
            p.replies.push(Box::new(move |r| {
                if r.is_ok() {
                    q.on_finish_persisted(id);
                }
            }));
        }
    }

    fn publish_counters(&self) {
        self.counters
            .pending
            .store(self.meta.pending, Ordering::Relaxed);
        self.counters
            .pending_bytes
            .store(self.meta.pending_bytes, Ordering::Relaxed);
        self.counters.dead.store(self.meta.dead, Ordering::Relaxed);
        *self.counters.by_unit.lock().unwrap() = Arc::new(self.meta.by_unit.clone());
    }

    fn read(&self, p: &Pending, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match p.overlay.get(key) {
            Some(v) => Ok(v.clone()),
            None => Ok(self.store.get(key)?.map(|b| b.to_vec())),
        }
    }

    fn next_id(&mut self) -> MessageId {
        let fresh = MessageId(uuid::Uuid::now_v7());
        let id = match self.meta.last_id {
            Some(last) if fresh <= last => last.successor(),
            _ => fresh,
        };
        self.meta.last_id = Some(id);
        id
    }

    fn process(&mut self, command: Command, p: &mut Pending) {
        match command {
            Command::Enqueue(req, reply) => match self.enqueue(req, p) {
                Ok((accepted, infos, fresh)) => {
                    let queues = self.queues.clone();
                    let counters = Arc::clone(&self.counters);
                    p.replies.push(Box::new(move |r| match r {
                        Ok(()) => {
                            for (target, info) in infos {
                                queues[&target].on_enqueued(info);
                            }
                            counters.accepted.fetch_add(fresh, Ordering::Relaxed);
                            let _ = reply.send(Ok(accepted));
                        }
                        Err(e) => {
                            let _ = reply.send(Err(EnqueueError::Storage(e.to_string())));
                        }
                    }));
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::ConfirmDelivered {
                target,
                id,
                at_ms,
                attempts,
            } => self.confirm_delivered(target, id, at_ms, attempts, p),
            Command::Delivered {
                target,
                info,
                at_ms,
                outcome,
            } => self.record_delivered(target, info, at_ms, outcome, p),
            Command::Failed {
                target,
                info,
                error,
                next_due_ms,
            } => self.record_failed(target, info, error, next_due_ms, p),
            Command::Dead {
                target,
                info,
                error,
                reason,
            } => self.record_dead(target, info, error, reason, p),
            Command::Replay { target, id, reply } => {
                let result = self.replay(&target, id, p);
                let queue = self.queues.get(&target).cloned();
                answer_after_flush(p, result, reply, move |info| {
                    if let Some(q) = queue {
                        q.on_replayed(info);
                    }
                });
            }
            Command::Drop { target, id, reply } => {
                let result = self.drop_dead(&target, id, p);
                let queue = self.queues.get(&target).cloned();
                answer_after_flush(p, result, reply, move |key_hash| {
                    if let Some(q) = queue {
                        q.on_dropped(key_hash, id);
                    }
                });
            }
            Command::ImportDead(import) => self.import_dead(import, p),
            Command::ResolveDead {
                target,
                id,
                dead_at_ms,
                outcome,
                reply,
            } => {
                let result = self.resolve_dead(&target, id, dead_at_ms, outcome, p);
                answer_after_flush(p, result, reply, |_| {});
            }
            Command::ShareTally(reply) => {
                let result = self.share_tally(p);
                answer_after_flush(p, result, reply, |()| {});
            }
            Command::Tally(ops, reply) => {
                self.tally_local(p, &ops);
                answer_after_flush(p, Ok(()), reply, |()| {});
            }
            Command::TakeShared(ops, reply) => {
                self.take_shared(p, &ops);
                answer_after_flush(p, Ok(()), reply, |()| {});
            }
            Command::Batch(batch, reply) => {
                for (k, v) in batch.ops {
                    match v {
                        Some(v) => p.put(k, v),
                        None => p.delete(k),
                    }
                }
                p.replies.push(Box::new(move |r| {
                    let _ = reply.send(r.map_err(|e| OpError::Storage(e.to_string())));
                }));
            }
            Command::Sync(reply) | Command::Stop(reply) => {
                p.replies.push(Box::new(move |r| {
                    let _ = reply.send(r.map_err(|e| OpError::Storage(e.to_string())));
                }));
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn enqueue(
        &mut self,
        req: PreparedEnqueue,
        p: &mut Pending,
    ) -> Result<(Vec<Accepted>, Vec<(String, DeliveryInfo)>, u64), EnqueueError> {
        let now = now_ms();
        let scoped = req
            .idempotency_key
            .as_ref()
            .map(|k| keys::scoped_idempotency(&req.flow, k));
        let idem_key = scoped.as_ref().map(|k| keys::idempotency(&req.unit, k));
        if let (Some(key), Some(raw)) = (&idem_key, &req.idempotency_key) {
            let mut existing = self
                .read(p, key)
                .map_err(|e| EnqueueError::Storage(e.to_string()))?;
            if existing.is_none() {
                // A key stored before keys were their flow's (kept idempotency_ttl at most):
                // still answered, so that a resend across the upgrade is not stored twice.
                existing = self
                    .read(p, &keys::idempotency(&req.unit, raw))
                    .map_err(|e| EnqueueError::Storage(e.to_string()))?;
            }
            if let Some(bytes) = existing {
                let rec: IdempotencyRecord =
                    decode(&bytes).map_err(|e| EnqueueError::Storage(e.to_string()))?;
                if rec.created_ms + self.limits.idempotency_ttl_ms > now {
                    let accepted = rec
                        .ids
                        .into_iter()
                        .map(|id| Accepted {
                            id,
                            duplicate: true,
                        })
                        .collect();
                    return Ok((accepted, Vec::new(), 0));
                }
            }
        }
        if !req.from_reply
            && (self.meta.pending + req.deliveries > self.limits.max_pending
                || self.meta.pending_bytes + req.bytes > self.limits.max_pending_bytes)
        {
            return Err(EnqueueError::Backpressure {
                pending: self.meta.pending,
                pending_bytes: self.meta.pending_bytes,
            });
        }
        let mut accepted = Vec::with_capacity(req.events.len());
        let mut infos = Vec::with_capacity(req.deliveries as usize);
        // New deliveries per target, for the per-unit counts.
        let mut per_target: HashMap<&str, i64> = HashMap::new();
        let first = self.next_id();
        let mkey = keys::message(&first);
        p.created.push(mkey.clone());
        p.put_unread(mkey, req.chunk);
        let mut id = first;
        for (i, event) in req.events.iter().enumerate() {
            if i > 0 {
                // Consecutive ids: message i of the chunk is `first + i`.
                id = id.successor();
            }
            let mut tallied = 0u32;
            for target in &event.targets {
                *per_target.entry(target.as_str()).or_default() += 1;
                let qkey = keys::delivery(keys::PENDING, target, &id);
                p.created.push(qkey.clone());
                let (record, info) = match &event.tally_pending {
                    Some((record, info)) if event.tally_targets.contains(target) => {
                        tallied += 1;
                        (record.clone(), *info)
                    }
                    _ => (event.pending.clone(), event.info),
                };
                // Unread in this batch: a delivery is registered with its queue only after
                // the flush, so no outcome for it can be in the same batch.
                p.put_unread(qkey, record);
                infos.push((target.clone(), DeliveryInfo { id, ..info }));
            }
            match &event.facts {
                Some(Facts::Dossier(f)) => self.tally_event(p, &req.unit, f, tallied, now),
                Some(Facts::Paid { reference }) => self.tally_paid(p, reference),
                None => {}
            }
            if let Some(key) = &event.key {
                let kkey = keys::unit_dossier(&req.unit, key, &id);
                p.created.push(kkey.clone());
                p.put_unread(kkey, Vec::new());
            }
            accepted.push(Accepted {
                id,
                duplicate: false,
            });
        }
        self.meta.last_id = Some(id);
        let day = super::ledger::day_of(&first);
        let events = req.events.len() as i64;
        p.ledger
            .add(day, &req.unit, "", super::ledger::EVENTS, events);
        for (target, n) in &per_target {
            p.ledger
                .add(day, &req.unit, target, super::ledger::DELIVERIES, *n);
        }
        for (target, n) in per_target {
            count_unit(&mut self.meta.by_unit, target, &req.unit, n, 0);
        }
        self.meta.pending += req.deliveries;
        self.meta.pending_bytes += req.bytes;
        if let (Some(key), Some(idem)) = (idem_key, &scoped) {
            let rec = IdempotencyRecord {
                ids: accepted.iter().map(|a| a.id).collect(),
                created_ms: now,
            };
            p.created.push(key.clone());
            p.put(key, encode(&rec));
            let tkey = keys::idempotency_expiry(now, &req.unit, idem);
            p.created.push(tkey.clone());
            p.put_unread(tkey, Vec::new());
        }
        let fresh = accepted.len() as u64;
        Ok((accepted, infos, fresh))
    }
}

/// Answer an operator command once the batch is flushed: its own error, the flush's, or
/// success after `on_ok` has updated the in-memory queue.
fn answer_after_flush<T: Send + 'static>(
    p: &mut Pending,
    result: Result<T, OpError>,
    reply: oneshot::Sender<Result<(), OpError>>,
    on_ok: impl FnOnce(T) + Send + 'static,
) {
    p.replies.push(Box::new(move |flushed| {
        let out = match (flushed, result) {
            (Err(e), _) => Err(OpError::Storage(e.to_string())),
            (Ok(()), Err(e)) => Err(e),
            (Ok(()), Ok(value)) => {
                on_ok(value);
                Ok(())
            }
        };
        let _ = reply.send(out);
    }));
}
