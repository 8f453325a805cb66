//! The message log: evidence of every exchange, for a dispute ("we sent it on the 3rd" —
//! "we never received it").
//!
//! # Design
//!
//! ```text
//!  ingress (event stored)   delivery (attempt answered)
//!         └──────┬───────────────┘
//!                ▼  Entry, through a bounded channel (full: the caller waits)
//!        the writer thread: an accepted event's digest (SHA-256; an attempt's bodies come
//!        digested), `full` mode seals the bodies
//!                ▼
//!   <data>/evidence/YYYY-MM-DD.jsonl   one line per record, each line's hash chained to
//!                                      the line before; a signed seal line every
//!                                      `seal_every` or `seal_records`, synced to disk
//! ```
//!
//! Each accepted event is logged once stored (before the unit's answer is sent) and each
//! delivery attempt once the platform answered (or did not): unit, flow, dossier, message
//! id, target, times, the digests of what was sent and what came back, and the outcome.
//! By default (`metadata`) the log never holds a body: a digest proves what was exchanged
//! to whoever holds the body (the unit's copy, the platform's). With `full` it keeps the
//! bodies too, sealed with the outbox's key like the outbox's own records.
//!
//! The work is off the serving and delivery paths: callers hand an [`Entry`] over (an
//! attempt's bodies already digested by the delivery thread, see [`Body`]) and the writer
//! thread, waking every 10 ms, writes and seals what is waiting. Lines reach the operating system at
//! each wake, so a killed process loses at most the last 10 ms of the log; a lost machine
//! loses what was not synced by the last seal (at most `seal_every`). Lines written after
//! the last seal are sealed when the bus starts again.
//!
//! The format and its offline check are in [`archive`] (`lienthong evidence verify`), the
//! file handling in `writer`.

pub mod archive;
mod entry;
mod writer;

pub use entry::{AcceptedEvents, Answer, Body, Entry, digest};

#[cfg(test)]
mod tests;

use crate::config::{EvidenceConfig, EvidenceMode};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("message log {path}: {error}")]
    Io { path: String, error: String },
    #[error("message log {path}: {problem}; run `lienthong evidence verify` on the directory")]
    Broken { path: String, problem: String },
    #[error("message log signing key {path}: {problem}")]
    Key { path: String, problem: String },
}

/// Seals bodies in `full` mode (the outbox's keyring implements it).
pub trait BodySealer: Send + Sync {
    fn seal_body(&self, plain: &[u8]) -> Vec<u8>;
}

/// What the writer thread is told. An entry travels by value: boxing it (a 16-byte slot
/// instead of 328 bytes) made the log cost 8 % of the e2e rate instead of 5 % (`bench
/// --scenario evidence`, same machine, same hour): every allocation a delivery thread makes
/// and the writer frees costs an allocator lock.
#[allow(clippy::large_enum_variant)]
enum Message {
    /// One entry (an attempt; a request's events), moved as it is, no vector to allocate.
    Entry(Entry),
    /// Several (a merged call's attempts).
    Entries(Vec<Entry>),
    /// Seal now and say when done.
    Seal(SyncSender<()>),
}

/// Counts since start, for the metrics.
#[derive(Default, Debug)]
pub struct Counts {
    pub records: AtomicU64,
    pub seals: AtomicU64,
    /// Lines that could not be written (the disk refused): the log says which.
    pub errors: AtomicU64,
}

/// The handle the ingress and delivery hold: cheap to call, a no-op when the log is off.
pub struct MessageLog {
    sender: Option<SyncSender<Message>>,
    /// `full` mode with a sealer: entries carry bodies, not only their digests.
    keeps_bodies: bool,
    pub counts: Arc<Counts>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Messages waiting for the writer at most (each a request's events or an attempt). The
/// writer runs behind the serving and delivery threads (nice 10): on a saturated machine it
/// may lag, and a full channel makes a serving or delivery thread wait, so the channel holds
/// some 400 ms of a busy bus's attempts (its slots take 2.7 MB).
const CHANNEL: usize = 8_192;

/// How often the writer takes what is waiting: a killed process loses at most this
/// much of the log (what was handed over and not yet written).
const POLL: Duration = Duration::from_millis(10);

impl MessageLog {
    /// No log: every call does nothing.
    pub fn off() -> MessageLog {
        MessageLog {
            sender: None,
            keeps_bodies: false,
            counts: Arc::default(),
            thread: None,
        }
    }

    /// Open the archive (continuing its chain) and start the writer thread; `Off` mode
    /// gives [`MessageLog::off`]. `sealer` seals bodies in `full` mode.
    pub fn start(
        config: &EvidenceConfig,
        dir: &Path,
        key_file: &Path,
        sealer: Option<Arc<dyn BodySealer>>,
    ) -> Result<MessageLog, EvidenceError> {
        if config.mode == EvidenceMode::Off {
            return Ok(MessageLog::off());
        }
        let key = writer::signing_key(key_file)?;
        let mut archive = writer::Archive::open(dir, key)?;
        // What a kill left unsealed is sealed before anything new is taken.
        archive.seal(crate::time::now_ms())?;
        let (sender, receiver) = std::sync::mpsc::sync_channel(CHANNEL);
        let counts = Arc::new(Counts::default());
        let sealer = sealer.filter(|_| config.mode == EvidenceMode::Full);
        let keeps_bodies = sealer.is_some();
        let thread = Writer {
            archive,
            sealer,
            seal_every: config.seal_every,
            seal_records: config.seal_records,
            counts: Arc::clone(&counts),
        };
        let thread = std::thread::Builder::new()
            .name("message-log".into())
            .spawn(move || thread.run(receiver))
            .map_err(|e| EvidenceError::Io {
                path: dir.display().to_string(),
                error: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(MessageLog {
            sender: Some(sender),
            keeps_bodies,
            counts,
            thread: Some(thread),
        })
    }

    pub fn enabled(&self) -> bool {
        self.sender.is_some()
    }

    /// Whether entries should carry bodies ([`Body::kept`]), not only their digests.
    pub fn keeps_bodies(&self) -> bool {
        self.keeps_bodies
    }

    /// Hand entries to the writer. When it is behind by [`CHANNEL`] messages the caller
    /// waits: evidence is not dropped to go faster.
    pub fn log(&self, mut entries: Vec<Entry>) {
        match entries.len() {
            0 => {}
            1 => self.log_one(entries.pop().expect("one entry")),
            _ => self.send(Message::Entries(entries)),
        }
    }

    /// Hand one entry to the writer (waits as [`MessageLog::log`] does).
    pub fn log_one(&self, entry: Entry) {
        self.send(Message::Entry(entry));
    }

    fn send(&self, message: Message) {
        let Some(sender) = &self.sender else { return };
        if let Err(TrySendError::Full(message)) = sender.try_send(message) {
            let _ = sender.send(message);
        }
    }

    /// Seal what was logged so far and wait until it is on disk (at shutdown; in tests).
    /// Blocking: call it off the async threads.
    pub fn seal_now(&self) {
        let Some(sender) = &self.sender else { return };
        let (done, wait) = std::sync::mpsc::sync_channel(1);
        if sender.send(Message::Seal(done)).is_ok() {
            let _ = wait.recv();
        }
    }
}

impl Drop for MessageLog {
    fn drop(&mut self) {
        // The writer seals and ends when its channel closes.
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The writer thread's state.
struct Writer {
    archive: writer::Archive,
    sealer: Option<Arc<dyn BodySealer>>,
    seal_every: Duration,
    seal_records: u64,
    counts: Arc<Counts>,
}

impl Writer {
    /// The writer wakes every [`POLL`], takes everything waiting, writes it with one
    /// write to the operating system, and seals when a seal is due. It never blocks on
    /// the channel, so a sender never has to wake it: handing an entry over costs a queue
    /// push, not a system call (a full channel is the exception: the sender waits).
    fn run(mut self, receiver: Receiver<Message>) {
        // Evidence is written behind the exchanges, not in their way: on a busy machine
        // the serving and delivery threads go first (nice 10); the channel takes the lag.
        if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10) {
            tracing::debug!(error = %e, "the message log's writer keeps the normal priority");
        }
        let mut last_seal = Instant::now();
        loop {
            let mut wrote = false;
            let mut closed = false;
            loop {
                match receiver.try_recv() {
                    Ok(Message::Entry(entry)) => {
                        self.write(entry);
                        wrote = true;
                    }
                    Ok(Message::Entries(entries)) => {
                        self.write_all(entries);
                        wrote = true;
                    }
                    Ok(Message::Seal(done)) => {
                        self.seal();
                        last_seal = Instant::now();
                        let _ = done.send(());
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
                if self.archive.since_seal >= self.seal_records {
                    self.seal();
                    last_seal = Instant::now();
                }
            }
            if wrote && let Err(e) = self.archive.flush() {
                self.failed(&e);
            }
            if closed {
                self.seal();
                return;
            }
            if last_seal.elapsed() >= self.seal_every {
                self.seal();
                last_seal = Instant::now();
            }
            std::thread::sleep(POLL);
        }
    }

    fn write_all(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            self.write(entry);
        }
    }

    fn write(&mut self, entry: Entry) {
        let sealer = self.sealer.as_deref();
        let written = self.archive.append(crate::time::now_ms(), |seq, out| {
            entry::line_of(seq, &entry, sealer, out)
        });
        match written {
            Ok(()) => {
                self.counts.records.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => self.failed(&e),
        }
    }

    fn seal(&mut self) {
        let had = self.archive.since_seal > 0;
        match self.archive.seal(crate::time::now_ms()) {
            Ok(()) if had => {
                self.counts.seals.fetch_add(1, Ordering::Relaxed);
            }
            Ok(()) => {}
            Err(e) => self.failed(&e),
        }
    }

    fn failed(&self, e: &EvidenceError) {
        self.counts.errors.fetch_add(1, Ordering::Relaxed);
        tracing::error!(error = %e, "the message log could not write; exchanges go on, their evidence is missing until the disk is fixed");
    }
}

/// The name of the day file `ms` is written to: `YYYY-MM-DD`, Vietnam's time.
pub fn day_name(ms: u64) -> String {
    writer::day_of(ms)
}
