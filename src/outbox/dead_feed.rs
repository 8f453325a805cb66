//! A unit's feed of new dead letters: what its system polls, by a cursor, to learn of
//! every message of its own that a platform refused for good (or that could not be
//! mapped), without asking about each message. Each entry is a note written in the same
//! write as the dead letter, named `dead-feed/<unit>/<dead at, ms, 20 digits>/<id>/<target>`,
//! so the unit's entries sort in the order they died; notes expire with the outbox's
//! note retention, so the feed costs a bounded amount of disk. A dead letter replayed
//! and dead again appears again, at its new time.

use super::Outbox;
use super::store::StoreError;
use crate::envelope::MessageId;

const PREFIX: &str = "dead-feed/";

/// The note of one entry.
pub fn entry_name(unit: &str, dead_at_ms: u64, id: &MessageId, target: &str) -> String {
    format!("{PREFIX}{unit}/{dead_at_ms:020}/{id}/{target}")
}

/// One entry of a unit's feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedEntry {
    /// Where the next poll starts to get what came after this one.
    pub cursor: String,
    pub dead_at_ms: u64,
    pub id: MessageId,
    pub target: String,
}

impl Outbox {
    /// The unit's feed after `cursor` (from the oldest kept entry with None), in the order
    /// the letters died, at most `limit`. Reads only the unit's entries.
    pub fn dead_feed(
        &self,
        unit: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FeedEntry>, StoreError> {
        let prefix = format!("{PREFIX}{unit}/");
        let after = cursor.map(|c| format!("{prefix}{c}"));
        let rows = self.notes_after(&prefix, after.as_deref(), limit)?;
        Ok(rows
            .into_iter()
            .filter_map(|(name, _)| {
                let cursor = name.strip_prefix(&prefix)?.to_string();
                let mut parts = cursor.splitn(3, '/');
                let dead_at_ms = parts.next()?.parse().ok()?;
                let id = parts.next()?.parse().ok()?;
                let target = parts.next()?.to_string();
                Some(FeedEntry {
                    cursor,
                    dead_at_ms,
                    id,
                    target,
                })
            })
            .collect())
    }
}
