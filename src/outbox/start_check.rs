//! What makes the bus refuse to start on its outbox, found with a handful of point reads
//! (the full check, `lienthong outbox check`, reads every record and runs offline):
//!
//! - the mark a running bus leaves when it meets a record it cannot read
//!   ([`DAMAGE_NOTE`], written by [`super::Outbox::note_damage`]): rather than fail on the
//!   same record again and again, the next start stops and says what to run;
//! - counters from a newer layout than this version reads;
//! - counters that contradict the records: pending (or dead) deliveries counted where
//!   there are none, or records where the counters say none, for the whole outbox and per
//!   target (the writer changes both in one atomic batch, so they never differ unless the
//!   store was damaged or edited).
//!
//! `lienthong outbox check --repair` rewrites the counters from a recount and removes the
//! mark.

use super::keys;
use super::records::{META_VERSION, Meta};
use super::store::{Store, StoreError};

/// The note a running bus writes when it meets a record it cannot read.
pub const DAMAGE_NOTE: &str = "outbox/damaged";

/// Every reason to refuse to start, in words (empty: start).
pub fn problems(
    store: &dyn Store,
    meta: &Meta,
    targets: &[String],
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    if let Some(note) = store.get(&keys::note(DAMAGE_NOTE))? {
        out.push(format!(
            "while running, the bus met a record it could not read ({})",
            String::from_utf8_lossy(&note)
                .chars()
                .take(300)
                .collect::<String>()
        ));
    }
    if meta.version > META_VERSION {
        out.push(format!(
            "the counters are of layout {}, newer than this lienthong reads ({META_VERSION}): run the version that wrote them",
            meta.version
        ));
    }
    let any = |kind: u8, target: Option<&str>| -> Result<bool, StoreError> {
        let (start, end) = match target {
            Some(t) => {
                let start = [&[kind][..], t.as_bytes(), &[0]].concat();
                let end = [&[kind][..], t.as_bytes(), &[1]].concat();
                (start, end)
            }
            None => (vec![kind], vec![kind + 1]),
        };
        Ok(!store.scan(&start, &end, 1)?.is_empty())
    };
    for (what, kind, counted) in [
        ("pending deliveries", keys::PENDING, meta.pending),
        ("dead letters", keys::DEAD, meta.dead),
    ] {
        let there = any(kind, None)?;
        if (counted > 0) != there {
            out.push(format!(
                "the counters say {counted} {what}, and there {} (the counters and the records are out of step)",
                if there { "are some" } else { "are none" }
            ));
        }
    }
    for target in targets {
        let counts = meta.by_unit.get(target);
        let pending: u64 = counts.map_or(0, |u| u.values().map(|c| c.0).sum());
        if (pending > 0) != any(keys::PENDING, Some(target))? {
            out.push(format!(
                "target `{target}`: the counters say {pending} pending deliveries, and the records say otherwise"
            ));
        }
    }
    Ok(out)
}

/// The error that stops the start, naming what to run.
pub fn refusal(problems: &[String]) -> StoreError {
    StoreError::Corrupt(format!(
        "the outbox is not consistent, so the bus will not start on it: {}. Stop nothing else; run `lienthong outbox check` (it names every problem), then `lienthong outbox check --repair` (it recounts the counters and sets unreadable records aside in a quarantine file, losing no readable record)",
        problems.join("; ")
    ))
}
