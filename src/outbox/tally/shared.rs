//! The KPI tally of a cluster: every node counts every node's dossiers.
//!
//! # Design
//!
//! ```text
//!  node A's writer: an event counted, a sync delivery finished, a fee paid
//!        │ the same batch also writes the change as a journal record `s` seq (A's own)
//!        ▼
//!  publisher (transport): a page of the journal ─► stream <p>.kpi-ops, confirmed ─► deleted
//!        ▼ every node reads the stream from its saved offset
//!  node B's writer: A's changes after B's mark for A, applied to B's tally; the new mark
//! ```
//!
//! A change is journalled in the batch that makes it, so it is shared exactly when it is
//! counted, through any crash: a journal record is deleted only once the broker confirmed
//! it. A record published twice (a crash between the confirm and the delete) or read twice
//! (a node reads again from its last saved offset) is taken once: each outbox has its own
//! origin id, made with the data directory, its records carry increasing sequence numbers,
//! and a node keeps per origin the last number it took (`zkpi-from` origin).
//!
//! Each node applies the same changes, each origin's in its order, so the totals agree once
//! the stream is read. What is not ordered is changes of one dossier made on two nodes at
//! once; a Confirm that reaches a node before its fee request is counted when the request
//! comes ([`super::TallyBatch::on_paid`]).

use super::{EventFacts, TallyBatch, TallyIo, people};
use crate::outbox::records::{decode, encode};
use serde::{Deserialize, Serialize};

/// One change of the tally, as another node applies it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TallyOp {
    /// An accepted event of `unit` with `sync_deliveries` deliveries to sync targets, counted
    /// at `at_ms` (its day is the dossier's bucket on every node).
    Event {
        unit: String,
        /// Boxed: the facts are most of the op's size, the other kinds are small.
        facts: Box<EventFacts>,
        sync_deliveries: u32,
        at_ms: u64,
    },
    /// A sync delivery of this dossier (its id in hex) finished.
    SyncFinished { dossier: String },
    /// The fee with this reference was paid online.
    Paid { reference: String },
    /// The citizen's rating of a dossier on the portal (`MucDoHaiLong`).
    Rated {
        unit: String,
        dossier: String,
        level: u8,
    },
}

impl TallyOp {
    /// The change a local event makes: its people go as tags, never as numbers.
    pub fn event(unit: &str, facts: &EventFacts, sync_deliveries: u32, at_ms: u64) -> TallyOp {
        let mut facts = facts.clone();
        let tags = facts
            .people
            .iter()
            .map(|p| people::tag(unit, &facts.dossier, p));
        facts.people_tags = tags.collect();
        facts.people.clear();
        TallyOp::Event {
            unit: unit.to_string(),
            facts: Box::new(facts),
            sync_deliveries,
            at_ms,
        }
    }

    pub fn sync_finished(id: u128) -> TallyOp {
        TallyOp::SyncFinished {
            dossier: crate::hex::encode(&id.to_be_bytes()),
        }
    }

    /// Apply another node's change to this node's tally.
    pub(crate) fn apply(&self, batch: &mut TallyBatch, io: &mut dyn TallyIo) {
        match self {
            TallyOp::Event {
                unit,
                facts,
                sync_deliveries,
                at_ms,
            } => {
                batch.on_event(io, unit, facts, *sync_deliveries, *at_ms);
            }
            TallyOp::SyncFinished { dossier } => {
                let id = crate::hex::decode(dossier)
                    .and_then(|b| <[u8; 16]>::try_from(b).ok())
                    .map(u128::from_be_bytes);
                if let Some(id) = id {
                    batch.on_sync_finished(io, id);
                }
            }
            TallyOp::Paid { reference } => batch.on_paid(io, reference),
            TallyOp::Rated {
                unit,
                dossier,
                level,
            } => batch.on_rated(io, unit, dossier, *level),
        }
    }
}

/// A page of one node's journal, as published.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SharedOps {
    /// The outbox that made the changes ([`ORIGIN`]).
    pub origin: String,
    /// Its changes with their sequence numbers, in order.
    pub ops: Vec<(u64, TallyOp)>,
}

/// Kind byte of the journal's records: `s` seq(be u64) → a [`TallyOp`].
pub const JOURNAL: u8 = b's';

/// The next journal sequence number of this outbox.
pub const JOURNAL_NEXT: &[u8] = b"zkpi-next";

/// This outbox's origin id (random, made when the cluster first shares its tally).
pub const ORIGIN: &[u8] = b"zkpi-origin";

pub fn journal_key(seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(JOURNAL);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub fn journal_seq(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(1..9)?.try_into().ok()?))
}

/// The last sequence number taken in from `origin`.
pub fn mark_key(origin: &str) -> Vec<u8> {
    let mut k = b"zkpi-from\0".to_vec();
    k.extend_from_slice(origin.as_bytes());
    k
}

/// Take another node's changes in: those after the mark kept for its origin; the mark
/// moves to the last one. Returns how many were applied.
pub fn take_in(batch: &mut TallyBatch, io: &mut dyn TallyIo, shared: &SharedOps) -> usize {
    let key = mark_key(&shared.origin);
    let mark: Option<u64> = io.read(&key).and_then(|v| decode(&v).ok());
    let mut last = mark;
    let mut applied = 0;
    for (seq, op) in &shared.ops {
        if last.is_some_and(|m| *seq <= m) {
            continue;
        }
        op.apply(batch, io);
        last = Some(*seq);
        applied += 1;
    }
    if let Some(seq) = last.filter(|_| last != mark) {
        io.put(key, encode(&seq));
    }
    applied
}

/// The outbox's side of the sharing: what the transport's publisher and reader call.
impl crate::outbox::Outbox {
    /// Journal every KPI change from now on, for the cluster. The command goes to the
    /// writer now, so every event accepted after this call is journalled; the future says
    /// when it is durable and gives this outbox's origin id.
    pub fn share_tally(
        &self,
    ) -> impl std::future::Future<Output = Result<String, crate::outbox::OpError>> + use<> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self
            .inner
            .tx
            .send(crate::outbox::writer::Command::ShareTally(tx));
        let outbox = self.clone();
        async move {
            use crate::outbox::OpError;
            sent.map_err(|_| OpError::Closed)?;
            rx.await.map_err(|_| OpError::Closed)??;
            let origin = outbox
                .inner
                .store
                .get(ORIGIN)
                .map_err(|e| OpError::Storage(e.to_string()))?
                .ok_or_else(|| OpError::Storage("no KPI origin id after sharing".into()))?;
            Ok(String::from_utf8_lossy(&origin).into_owned())
        }
    }

    /// The oldest `limit` journal records not yet published, in order.
    pub fn journal_page(
        &self,
        limit: usize,
    ) -> Result<Vec<(u64, TallyOp)>, crate::outbox::StoreError> {
        let rows = self.inner.store.scan(&[JOURNAL], &[JOURNAL + 1], limit)?;
        let mut out = Vec::with_capacity(rows.len());
        for (key, value) in rows {
            match (journal_seq(&key), decode::<TallyOp>(&value)) {
                (Some(seq), Ok(op)) => out.push((seq, op)),
                (_, Err(e)) => return Err(e),
                (None, _) => {}
            }
        }
        Ok(out)
    }

    /// The broker confirmed these journal records: they are deleted.
    pub async fn journal_published(&self, seqs: &[u64]) -> Result<(), crate::outbox::OpError> {
        let mut batch = crate::outbox::WriteBatch::default();
        for seq in seqs {
            batch.delete(journal_key(*seq));
        }
        self.ask(|reply| crate::outbox::writer::Command::Batch(batch, reply))
            .await
    }

    /// Ratings the portal gave (`TallyOp::Rated`): counted here, and journalled for the
    /// cluster when the tally is shared. Setting a dossier's rating again changes nothing.
    pub async fn count_ratings(&self, ops: Vec<TallyOp>) -> Result<(), crate::outbox::OpError> {
        self.ask(|reply| crate::outbox::writer::Command::Tally(ops, reply))
            .await
    }

    /// Another node's KPI changes, taken in once ([`take_in`]).
    pub async fn take_shared(&self, ops: SharedOps) -> Result<(), crate::outbox::OpError> {
        self.ask(|reply| crate::outbox::writer::Command::TakeShared(ops, reply))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::Io;
    use super::super::{FIELDS, decode_bucket, field};
    use super::*;

    fn totals(io: &Io) -> [u64; FIELDS.len()] {
        let mut sum = [0; FIELDS.len()];
        for b in io.0.iter().filter_map(|(k, v)| decode_bucket(k, v)) {
            for (s, t) in sum.iter_mut().zip(b.totals) {
                *s += t;
            }
        }
        sum
    }

    fn ops() -> SharedOps {
        let facts = EventFacts {
            dossier: "HS-1".into(),
            sync_targets: vec!["portal".into()],
            people: vec!["001040144502".into()],
            ..EventFacts::default()
        };
        SharedOps {
            origin: "a".into(),
            ops: vec![
                (0, TallyOp::event("naf", &facts, 1, 1_800_000_000_000)),
                (
                    1,
                    TallyOp::sync_finished(super::super::dossier_id("naf", "HS-1")),
                ),
            ],
        }
    }

    #[test]
    fn changes_read_twice_are_taken_once() {
        let mut io = Io::default();
        for _ in 0..2 {
            let mut b = TallyBatch::default();
            take_in(&mut b, &mut io, &ops());
            b.finish(&mut io);
        }
        let t = totals(&io);
        assert_eq!(
            (t[field::DOSSIERS], t[field::PORTAL], t[field::SYNCED]),
            (1, 1, 1)
        );
        // A later page with the first change again: only the new one counts.
        let mut again = ops();
        again.ops.push((
            2,
            TallyOp::event(
                "naf",
                &EventFacts {
                    dossier: "HS-2".into(),
                    ..EventFacts::default()
                },
                0,
                1_800_000_000_000,
            ),
        ));
        let mut b = TallyBatch::default();
        assert_eq!(take_in(&mut b, &mut io, &again), 1);
        b.finish(&mut io);
        assert_eq!(totals(&io)[field::DOSSIERS], 2);
    }

    #[test]
    fn people_travel_as_tags_never_as_numbers() {
        let json = serde_json::to_string(&ops()).unwrap();
        assert!(!json.contains("001040144502"), "{json}");
        let mut io = Io::default();
        let mut b = TallyBatch::default();
        take_in(&mut b, &mut io, &serde_json::from_str(&json).unwrap());
        b.finish(&mut io);
        let record =
            io.0.get(&super::super::dossier_key(super::super::dossier_id(
                "naf", "HS-1",
            )));
        let d: super::super::DossierTally = decode(record.unwrap()).unwrap();
        assert!(d.names("001040144502") && !d.names("001040144503"));
    }
}
