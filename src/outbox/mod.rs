//! The durable outbox: every (message, target) delivery, from acceptance until it is
//! delivered, dead, or compacted away after retention.
//!
//! # Design
//!
//! **One tree, one writer, one flush per batch.** All records live in a single table of the store ([`redb_store`])
//! (layout in [`keys`]) so that a [`WriteBatch`] is atomic across record kinds: a message
//! and its delivery records appear together or not at all. A single writer thread
//! (`writer`) drains a channel of commands, folds everything waiting into one batch,
//! applies it, flushes once and then answers every sender (group commit). A sender's 202
//! is sent only after that flush: kill -9 at any moment loses nothing acknowledged. If a
//! flush fails (full disk), the keys the batch created are removed again and every sender
//! in it gets an error, so nothing half-written surfaces later.
//!
//! **Records per message.** Enqueue writes one `m` chunk per request (the messages of the
//! request, whose ids are consecutive, so one insert carries a whole batch) and one
//! small `q` record per message and target. Delivery replaces `q` by `d`; death by `x`
//! (dead letter, with the reason and every attempt's error). Replay turns `x` back into
//! `q` with the original id, so the message regains its place in its key's order. Outcomes
//! are written by the next group commit; until then the queue remembers finished ids so
//! that a reload from disk can never take them for pending.
//!
//! **Scheduling lives in memory, per target** ([`queue`]). Each target has its own queue,
//! so one slow or dead target never delays another. Leases are in memory only: a crashed
//! process leaves `q` records, which are pending again at the next start. Only a window
//! of each target's pending deliveries is loaded; the rest is read in id order as the
//! window drains, which keeps memory and restart time flat with millions pending.
//!
//! **Order.** With `ordering = "per_key"`, only the oldest unfinished delivery of a key is
//! eligible, through retries and restarts (the `q` record keeps attempts and the next due
//! time). A dead delivery either blocks its key until an operator replays or drops it
//! (`on_dead = "block"`) or lets the next one go (`skip`).
//!
//! **Bounded disk.** `d` records and messages whose deliveries are all finished are removed
//! after `outbox.retention`; idempotency keys after `outbox.idempotency_ttl`, notes after
//! `outbox.note_retention` (`sweep`, [`notes`]).
//! Dead letters stay until an operator acts. Pending work is capped by count and bytes;
//! over the cap, enqueue fails with [`EnqueueError::Backpressure`] and ingress answers 503.
//! Message chunks are LZ4-compressed before they are sealed ([`records::compress_chunk`]).
//!
//! **Nothing grows with the outbox but the disk.** Every figure a request, a periodic task
//! or shutdown needs is a running total kept by the writer in the batch that changes it:
//! pending and dead counts in total and per target and unit (`zmeta`), and the KPIs
//! ([`tally`]: per dossier, and per unit, day and procedure). Whatever walks records does
//! it in bounded pages and short steps (the sweep, the queue's loader, listings), so no
//! memory or blocking thread is held in proportion to the backlog and shutdown never
//! waits for a walk.
//!
//! # What a million pending taught (issue 13)
//! Profiled with the outage scenario (`lienthong bench --scenario outage`: the portal
//! refusing connections while 1,000,000 NAFOSTED status events pile up, shipped config,
//! sealed outbox) and `bench --scenario pending`:
//! - The KPI refresh walked every message every 30 s (sled pulling every page it walked
//!   into memory far past `cache_capacity`, every record opened, per-dossier state built
//!   for all): hundreds of MB, and a SIGTERM that waited minutes for the walk. Now the
//!   KPIs are running totals; nothing walks the messages.
//! - sled itself: with the KPI walk removed, 1,000,000 pending still took 3.8 GiB
//!   resident while filling and 1.1 GiB within 3 s of a restart (sled 0.34 keeps the
//!   nodes its writes materialise), and 2.7 GiB on disk. The store is now redb
//!   ([`redb_store`]): 54 MiB resident filling, restart in 0.01 s. A sled directory of an
//!   earlier version is moved into redb at the first start.
//! - The status view counted dead letters per unit by scanning them; it reads the running
//!   per-unit counts now. The sweep restarted from the oldest message each minute; it goes
//!   on from where it stopped, in steps of a few dozen chunks.

pub mod check;
mod chunk_cache;
pub mod dead_feed;
mod dead_letters;
pub mod disk_speed;
mod dossier_index;
mod dossier_view;
pub mod encryption;
mod interface;
pub mod key_hash;
pub mod keys;
pub mod ledger;
mod notes;
pub mod queue;
pub mod records;
pub mod redb_store;
pub mod start_check;
pub mod store;
mod sweep;
pub mod tally;
pub mod usage;
mod views;
mod waiting;
mod writer;

pub use dead_letters::{DeadCursor, DeadLetter, DeadQuery, Resolution, ResolutionLog};
pub use dossier_index::{DossierPage, IdPage};
pub use dossier_view::{DossierQuery, dossier_document, dossier_found};
pub use interface::{
    Accepted, EnqueueError, EnqueueRequest, NewEvent, OpError, OutboxSettings, OutboxStats,
};
pub use key_hash::{KeyHash, key_hash};
pub use notes::Notes;
pub use queue::{DeliveryInfo, Lease, QueueCounts, TargetQueue, UnitQueueCounts};
pub use records::AttemptError;
pub use redb_store::{FileStats, RedbStore};
pub use store::{MemStore, Reclaimed, SledStore, Store, StoreError, WriteBatch};
pub use sweep::SweepReport;
pub use views::DeliveryState;
pub use waiting::{Holders, WaitingBehind};

use crate::envelope::{Envelope, MessageId};
use crate::time::now_ms;
use records::{DeadRecord, MessageRecord, Meta, PendingRecord, decode};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{mpsc, oneshot};
use writer::{Command, Counters, Limits, Writer};

struct Inner {
    store: Arc<dyn Store>,
    queues: HashMap<String, Arc<TargetQueue>>,
    tx: mpsc::UnboundedSender<Command>,
    counters: Arc<Counters>,
    settings: OutboxSettings,
    writer: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    chunks: chunk_cache::ChunkCache,
    /// Reads what each accepted event means for the KPIs ([`tally`]); none: nothing counted.
    facts: std::sync::OnceLock<Arc<dyn tally::FactFinder>>,
    /// Told of each dead letter resolved here (a cluster's shared dead letters).
    resolutions: std::sync::OnceLock<Arc<dyn dead_letters::ResolutionLog>>,
    /// Serialises note writes, so that [`Notes::claim_note`] is a compare-and-set.
    notes_lock: std::sync::Mutex<()>,
    /// Where the next retention sweep goes on (a message key); `None`: from the oldest.
    sweep_cursor: std::sync::Mutex<Option<Vec<u8>>>,
    /// Set by [`Outbox::close`]: background work stops at its next step.
    closing: std::sync::atomic::AtomicBool,
}

/// Cheap to clone; every clone is the same outbox.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

impl Outbox {
    /// Open the outbox over `store` for these targets. Deliveries left in flight by a
    /// crashed process are simply pending again: leases are never written to disk.
    pub fn open(
        store: Arc<dyn Store>,
        settings: OutboxSettings,
        targets: &[String],
    ) -> Result<Outbox, StoreError> {
        let meta: Meta = match store.get(keys::META)? {
            Some(bytes) => decode(&bytes)?,
            // A new outbox: nothing to count, the current layout from the start.
            None => Meta {
                version: records::META_VERSION,
                ..Meta::default()
            },
        };
        let mut meta = meta;
        if meta.version < records::META_VERSION {
            if meta.version < 1 {
                meta.by_unit = count_per_unit(store.as_ref(), targets)?;
            }
            if meta.version < 2 {
                key_hash::rehash_records(store.as_ref())?;
                notes::index_unindexed(store.as_ref(), now_ms())?;
            }
            if meta.version < 3 {
                tally::relayout(store.as_ref())?;
            }
            meta.version = records::META_VERSION;
            let mut batch = WriteBatch::default();
            batch.put(keys::META.to_vec(), records::encode(&meta));
            store.apply(batch)?;
            store.flush()?;
        }
        let problems = start_check::problems(store.as_ref(), &meta, targets)?;
        if !problems.is_empty() {
            return Err(start_check::refusal(&problems));
        }
        let mut queues = HashMap::new();
        for target in targets {
            let blocked = blocked_keys(store.as_ref(), target)?;
            let q = TargetQueue::new(target.clone(), Arc::clone(&store), settings.window, blocked);
            queues.insert(target.clone(), Arc::new(q));
        }
        let counters = Arc::new(Counters::default());
        *counters.by_unit.lock().unwrap() = Arc::new(meta.by_unit.clone());
        counters.pending.store(meta.pending, Ordering::Relaxed);
        counters
            .pending_bytes
            .store(meta.pending_bytes, Ordering::Relaxed);
        counters.dead.store(meta.dead, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = Writer {
            store: Arc::clone(&store),
            queues: queues.clone(),
            counters: Arc::clone(&counters),
            meta,
            limits: Limits {
                max_pending: settings.max_pending,
                max_pending_bytes: settings.max_pending_bytes,
                idempotency_ttl_ms: settings.idempotency_ttl.as_millis() as u64,
            },
            journal_next: None,
        };
        let handle = std::thread::Builder::new()
            .name("outbox-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Io(format!("cannot start the outbox writer: {e}")))?;
        Ok(Outbox {
            inner: Arc::new(Inner {
                store,
                queues,
                tx,
                counters,
                settings,
                writer: std::sync::Mutex::new(Some(handle)),
                chunks: chunk_cache::ChunkCache::default(),
                facts: std::sync::OnceLock::new(),
                resolutions: std::sync::OnceLock::new(),
                sweep_cursor: std::sync::Mutex::new(None),
                notes_lock: std::sync::Mutex::new(()),
                closing: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    pub fn targets(&self) -> impl Iterator<Item = &str> {
        self.inner.queues.keys().map(|s| s.as_str())
    }

    /// Store the events durably; returns once they are flushed to disk.
    pub async fn enqueue(&self, req: EnqueueRequest) -> Result<Vec<Accepted>, EnqueueError> {
        let (tx, rx) = oneshot::channel();
        let finder = self.inner.facts.get().map(|f| f.as_ref());
        let prepared = writer::PreparedEnqueue::new(req, finder);
        self.inner
            .tx
            .send(Command::Enqueue(prepared, tx))
            .map_err(|_| EnqueueError::Closed)?;
        rx.await.map_err(|_| EnqueueError::Closed)?
    }

    /// Whether ingress should refuse new work right now.
    pub fn over_capacity(&self) -> bool {
        let c = &self.inner.counters;
        c.pending.load(Ordering::Relaxed) >= self.inner.settings.max_pending
            || c.pending_bytes.load(Ordering::Relaxed) >= self.inner.settings.max_pending_bytes
    }

    /// Wait for a delivery of `target` that may be attempted now; `None` after [`close`](Self::close).
    pub async fn claim(&self, target: &str) -> Option<Lease> {
        let q = self.inner.queues.get(target)?;
        q.claim().await
    }

    /// A delivery of `target` that may be attempted now, without waiting.
    pub fn try_claim(&self, target: &str) -> Option<Lease> {
        self.inner.queues.get(target)?.try_claim()
    }

    /// The envelope of a message (for a connector), with the attempt number filled in.
    pub fn load(&self, lease: &Lease) -> Result<Envelope, StoreError> {
        let found = self.message(lease.info.id).and_then(|m| {
            m.ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "message {} has a delivery but no message record",
                    lease.info.id
                ))
            })
        });
        let mut env = found.inspect_err(|e| self.note_damage(e))?;
        env.attempts = lease.info.attempts + 1;
        Ok(env)
    }

    /// A record could not be read: leave the mark that stops the next start until the
    /// outbox is checked and repaired ([`start_check`]), and say so once in the log.
    pub fn note_damage(&self, e: &StoreError) {
        let StoreError::Corrupt(why) = e else { return };
        if matches!(self.get_note(start_check::DAMAGE_NOTE), Ok(Some(_))) {
            return;
        }
        tracing::error!(error = %why, "the outbox holds a record it cannot read; the bus goes on, and will not start again until `lienthong outbox check --repair` has run");
        let _ = self.put_note(start_check::DAMAGE_NOTE, why.as_bytes());
    }

    /// Count the KPIs of every event accepted from now on with `finder` (once; later
    /// calls are ignored).
    pub fn count_with(&self, finder: Arc<dyn tally::FactFinder>) {
        let _ = self.inner.facts.set(finder);
    }

    /// The KPI totals per unit, day and procedure ([`tally`]): one record per bucket, so
    /// reading them costs O(units × days × procedures), not O(messages).
    pub fn kpi_buckets(&self) -> Result<Vec<tally::Bucket>, StoreError> {
        let mut out = Vec::new();
        for_each_with_prefix(self.inner.store.as_ref(), &[keys::TALLY_TOTALS], |k, v| {
            if let Some(b) = tally::decode_bucket(k, v) {
                out.push(b);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The daily reconciliation's records of the days `from..=to` ([`ledger`]): one per
    /// unit, day and target, so reading them costs O(units × days × targets).
    pub fn ledger_rows(&self, from: u32, to: u32) -> Result<Vec<ledger::Row>, StoreError> {
        if to < from {
            return Ok(Vec::new());
        }
        let start = [&[ledger::KIND][..], &from.to_be_bytes()].concat();
        let end = [&[ledger::KIND][..], &to.saturating_add(1).to_be_bytes()].concat();
        let mut out = Vec::new();
        let mut after = start;
        loop {
            let rows = self.inner.store.scan(&after, &end, 1000)?;
            let Some((last, _)) = rows.last() else {
                return Ok(out);
            };
            let mut next = last.to_vec();
            next.push(0);
            out.extend(rows.iter().filter_map(|(k, v)| ledger::decode_row(k, v)));
            after = next;
        }
    }

    /// A dossier's record as the KPI tally keeps it, keyed by its unit and code (so that
    /// no unit's dossier can stand in for another's): what it is, whom it names, whether
    /// it is closed. None when this unit never sent the dossier to the bus. One point read.
    pub fn dossier_record(
        &self,
        unit: &str,
        dossier: &str,
    ) -> Result<Option<tally::DossierTally>, StoreError> {
        let key = tally::dossier_key(tally::dossier_id(unit, dossier));
        match self.inner.store.get(&key)? {
            Some(bytes) => decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Open dossiers per unit and due day (`NgayHenTra`), for the overdue count: one
    /// record per unit and day, never the messages.
    pub fn open_due(&self) -> Result<Vec<(String, u32, u64)>, StoreError> {
        let mut out = Vec::new();
        for_each_with_prefix(self.inner.store.as_ref(), &[keys::TALLY_DUE], |k, v| {
            if let Some(d) = tally::decode_due(k, v).filter(|(_, _, n)| *n > 0) {
                out.push(d);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// A stored message by id.
    pub fn message(&self, id: MessageId) -> Result<Option<Envelope>, StoreError> {
        let Some((chunk, index)) = self.inner.chunks.find(self.inner.store.as_ref(), id)? else {
            return Ok(None);
        };
        let rec: MessageRecord = decode(records::chunk_entry(&chunk, index)?)?;
        Ok(Some(envelope(id, rec)))
    }

    pub fn delivered(&self, lease: Lease) {
        self.finished(lease, records::DoneOutcome::Delivered);
    }

    /// Handed to the broker, which confirmed it (`transport = "amqp"`).
    pub fn forwarded(&self, lease: Lease) {
        self.finished(lease, records::DoneOutcome::Forwarded);
    }

    fn finished(&self, lease: Lease, outcome: records::DoneOutcome) {
        let cmd = Command::Delivered {
            target: lease.target().to_string(),
            info: lease.info,
            at_ms: now_ms(),
            outcome,
        };
        lease.finish(false);
        let _ = self.inner.tx.send(cmd);
    }

    /// A worker node delivered what this node forwarded (best effort: the status record
    /// only; nothing depends on it but the views).
    pub fn confirm_delivered(&self, target: &str, id: MessageId, at_ms: u64, attempts: u32) {
        let _ = self.inner.tx.send(Command::ConfirmDelivered {
            target: target.to_string(),
            id,
            at_ms,
            attempts,
        });
    }

    /// Schedule another attempt at `due_ms`.
    pub fn retry(&self, lease: Lease, error: AttemptError, due_ms: u64) {
        let cmd = Command::Failed {
            target: lease.target().to_string(),
            info: lease.info,
            error,
            next_due_ms: due_ms,
        };
        lease.reschedule(due_ms);
        let _ = self.inner.tx.send(cmd);
    }

    /// Give up on this delivery: it becomes a dead letter with `reason`.
    pub fn dead(&self, lease: Lease, error: Option<AttemptError>, reason: String) {
        let block = lease.info.block_on_dead && lease.info.key_hash.is_some();
        let cmd = Command::Dead {
            target: lease.target().to_string(),
            info: lease.info,
            error,
            reason,
        };
        lease.finish(block);
        let _ = self.inner.tx.send(cmd);
    }

    /// Wait until everything sent to the writer so far is durable.
    pub async fn sync(&self) -> Result<(), OpError> {
        self.ask(Command::Sync).await
    }

    async fn ask(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<(), OpError>>) -> Command,
    ) -> Result<(), OpError> {
        let (tx, rx) = oneshot::channel();
        self.inner.tx.send(make(tx)).map_err(|_| OpError::Closed)?;
        rx.await.map_err(|_| OpError::Closed)?
    }

    pub fn stats(&self) -> OutboxStats {
        let c = &self.inner.counters;
        OutboxStats {
            pending: c.pending.load(Ordering::Relaxed),
            pending_bytes: c.pending_bytes.load(Ordering::Relaxed),
            dead: c.dead.load(Ordering::Relaxed),
            accepted_since_start: c.accepted.load(Ordering::Relaxed),
            flushes_since_start: c.flushes.load(Ordering::Relaxed),
            disk_bytes: self.inner.store.size_on_disk(),
            targets: self
                .inner
                .queues
                .iter()
                .map(|(k, q)| (k.clone(), q.counts()))
                .collect(),
        }
    }

    pub fn queue(&self, target: &str) -> Option<&Arc<TargetQueue>> {
        self.inner.queues.get(target)
    }

    fn is_closing(&self) -> bool {
        self.inner.closing.load(Ordering::Relaxed)
    }

    /// Stop handing out deliveries (shutdown); claimers return `None`, a running sweep
    /// stops after its current step.
    pub fn close(&self) {
        self.inner.closing.store(true, Ordering::Relaxed);
        for q in self.inner.queues.values() {
            q.close();
        }
    }

    /// Flush, stop the writer and wait for it. Later enqueues, on any clone, fail with
    /// `Closed`.
    pub async fn shutdown(self) -> Result<(), OpError> {
        self.close();
        let result = self.ask(Command::Stop).await;
        let handle = self.inner.writer.lock().unwrap().take();
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
        result
    }
}

fn envelope(id: MessageId, rec: MessageRecord) -> Envelope {
    Envelope {
        id,
        unit: rec.unit,
        flow: rec.flow,
        key: rec.key,
        payload: rec.payload,
        received_ms: id.timestamp_ms(),
        trace_id: rec.trace_id,
        attempts: 0,
        idempotency_key: rec.idempotency_key,
        targets: rec.targets,
    }
}

/// The per-unit counts of an outbox written before they were kept (layout version 0):
/// one pass over the pending and dead records, once, when such a directory is opened.
fn count_per_unit(
    store: &dyn Store,
    targets: &[String],
) -> Result<records::UnitCounts, StoreError> {
    let mut counts = records::UnitCounts::new();
    let started = std::time::Instant::now();
    for target in targets {
        for (kind, pending, dead) in [(keys::PENDING, 1, 0), (keys::DEAD, 0, 1)] {
            let prefix = keys::target_prefix(kind, target);
            for_each_with_prefix(store, &prefix, |k, v| {
                let unit = if kind == keys::PENDING {
                    PendingRecord::from_bytes(v)?.unit
                } else {
                    decode::<DeadRecord>(v)?.unit
                };
                let unit = if unit.is_empty() {
                    // Written before records named their unit: ask the message.
                    keys::id_suffix(k)
                        .and_then(|id| message_at(store, id).ok().flatten())
                        .map(|m| m.unit)
                        .unwrap_or_default()
                } else {
                    unit
                };
                records::count_unit(&mut counts, target, &unit, pending, dead);
                Ok(())
            })?;
        }
    }
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "outbox: per-unit counts taken once (directory of an earlier version)"
    );
    Ok(counts)
}

/// A message read straight from the store (no cache).
fn message_at(store: &dyn Store, id: MessageId) -> Result<Option<Envelope>, StoreError> {
    let Some((key, chunk)) = store.get_at_or_before(&[keys::MESSAGE], &keys::message(&id))? else {
        return Ok(None);
    };
    let Some(first) = keys::id_suffix(&key) else {
        return Ok(None);
    };
    let chunk = records::open_chunk(chunk)?;
    let index = id.0.as_u128().wrapping_sub(first.0.as_u128());
    if index >= records::chunk_len(&chunk) as u128 {
        return Ok(None);
    }
    let rec: MessageRecord = decode(records::chunk_entry(&chunk, index as usize)?)?;
    Ok(Some(envelope(id, rec)))
}

/// Keys held back by dead letters of `target` (route `on_dead = "block"`).
fn blocked_keys(
    store: &dyn Store,
    target: &str,
) -> Result<HashMap<KeyHash, MessageId>, StoreError> {
    let mut blocked = HashMap::new();
    let prefix = keys::target_prefix(keys::DEAD, target);
    for_each_with_prefix(store, &prefix, |k, v| {
        let rec: DeadRecord = decode(v)?;
        if let (true, Some(h), Some(id)) = (rec.block_on_dead, rec.key_hash, keys::id_suffix(k)) {
            blocked.entry(h).or_insert(id);
        }
        Ok(())
    })?;
    Ok(blocked)
}

/// Every record under `prefix`, in key order, read in pages so memory stays flat.
fn for_each_with_prefix(
    store: &dyn Store,
    prefix: &[u8],
    mut f: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    store::for_each_page(store, prefix, 1024, |rows| {
        rows.iter().try_for_each(|(k, v)| f(k, v))
    })
}
