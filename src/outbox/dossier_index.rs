//! Reading the dossier index a page at a time: one unit's messages with one ordering key
//! (`j` unit `\0` key `\0` id), oldest first, merged with what the index held before it was
//! kept per unit (`k` key `\0` id, every unit's, filtered by unit while retention has not
//! removed it yet).
//!
//! Why pages: a dossier can hold tens of thousands of events, and its view is read by
//! admin and unit requests; each read costs at most one page, whatever the dossier's size
//! or another unit's traffic under the same code.

use super::store::StoreError;
use super::{Outbox, keys};
use crate::envelope::{Envelope, MessageId};

/// Most old-format index entries one page reads (each costs a message read to learn its
/// unit); a page whose old entries run past this ends early and says there is more.
const LEGACY_ROWS_PER_PAGE: usize = 2_000;

/// Ids of one dossier in acceptance order: a page, and where the next one starts.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct IdPage {
    pub ids: Vec<MessageId>,
    /// More may follow: the next page is read after this id (a page can end on an entry
    /// that was not the unit's, so this is not always the last of `ids`).
    pub next: Option<MessageId>,
}

/// A page of a dossier's messages, oldest first; `next` is the cursor of the following
/// page, when there is one.
#[derive(Debug, Default)]
pub struct DossierPage {
    pub messages: Vec<Envelope>,
    pub next: Option<MessageId>,
}

/// Merge pages of ids from sources that are each in order: the merged page keeps only the
/// ids no source can still put something before (up to the smallest `next` of the
/// sources), at most `limit`.
pub fn merge_pages(pages: Vec<IdPage>, limit: usize) -> IdPage {
    let bound = pages.iter().filter_map(|p| p.next).min();
    let mut ids: Vec<MessageId> = pages
        .into_iter()
        .flat_map(|p| p.ids)
        .filter(|id| bound.is_none_or(|b| *id <= b))
        .collect();
    ids.sort();
    ids.dedup();
    if ids.len() > limit {
        ids.truncate(limit);
        let next = ids.last().copied();
        return IdPage { ids, next };
    }
    IdPage { ids, next: bound }
}

impl Outbox {
    /// Up to `limit` ids of `unit`'s messages with ordering key `key`, after `after`.
    pub fn dossier_ids(
        &self,
        unit: &str,
        key: &str,
        after: Option<MessageId>,
        limit: usize,
    ) -> Result<IdPage, StoreError> {
        let current = self.index_page(&keys::unit_dossier_prefix(unit, key), after, limit)?;
        let legacy = self.legacy_page(unit, key, after, limit)?;
        Ok(merge_pages(vec![current, legacy], limit))
    }

    /// A page of `unit`'s messages of dossier `key` after `after`, oldest first.
    pub fn dossier_page(
        &self,
        unit: &str,
        key: &str,
        after: Option<MessageId>,
        limit: usize,
    ) -> Result<DossierPage, StoreError> {
        let page = self.dossier_ids(unit, key, after, limit)?;
        let mut messages = Vec::with_capacity(page.ids.len());
        for id in page.ids {
            if let Some(env) = self.message(id)? {
                messages.push(env);
            }
        }
        Ok(DossierPage {
            messages,
            next: page.next,
        })
    }

    /// Ids under one index prefix (entries end with the id) after `after`.
    fn index_page(
        &self,
        prefix: &[u8],
        after: Option<MessageId>,
        limit: usize,
    ) -> Result<IdPage, StoreError> {
        let limit = limit.max(1);
        let mut start = prefix.to_vec();
        if let Some(after) = after {
            start.extend_from_slice(after.successor().as_bytes());
        }
        let rows =
            self.inner
                .store
                .scan(&start, &keys::prefix_end(prefix), limit.saturating_add(1))?;
        let more = rows.len() > limit;
        let mut ids: Vec<MessageId> = rows
            .iter()
            .take(limit)
            // An entry of a longer code sharing this prefix is not 16 bytes past it.
            .filter(|(k, _)| k.len() == prefix.len() + 16)
            .filter_map(|(k, _)| keys::id_suffix(k))
            .collect();
        ids.dedup();
        let next = if more {
            rows.get(limit - 1).and_then(|(k, _)| keys::id_suffix(k))
        } else {
            None
        };
        Ok(IdPage { ids, next })
    }

    /// The old-format entries of `key` that are `unit`'s (their message says whose).
    fn legacy_page(
        &self,
        unit: &str,
        key: &str,
        after: Option<MessageId>,
        limit: usize,
    ) -> Result<IdPage, StoreError> {
        let rows = limit.saturating_mul(4).clamp(64, LEGACY_ROWS_PER_PAGE);
        let scanned = self.index_page(&keys::legacy_dossier_prefix(key), after, rows)?;
        let mut ids = Vec::new();
        for id in scanned.ids {
            if let Some(env) = self.message(id)?
                && env.unit == unit
                && env.key.as_deref() == Some(key)
            {
                ids.push(id);
            }
        }
        Ok(IdPage {
            ids,
            next: scanned.next,
        })
    }

    /// The ids of `unit`'s latest `n` messages of dossier `key`, newest first (walked back
    /// from the index's end; old-format entries of other units count against 4 × `n`).
    pub fn dossier_tail(
        &self,
        unit: &str,
        key: &str,
        n: usize,
    ) -> Result<Vec<MessageId>, StoreError> {
        let mut ids = self.walk_back(&keys::unit_dossier_prefix(unit, key), n, |_| Ok(true))?;
        let legacy = self.walk_back(
            &keys::legacy_dossier_prefix(key),
            n.saturating_mul(4),
            |id| {
                Ok(self
                    .message(id)?
                    .is_some_and(|env| env.unit == unit && env.key.as_deref() == Some(key)))
            },
        )?;
        ids.extend(legacy);
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids.dedup();
        ids.truncate(n);
        Ok(ids)
    }

    /// Up to `steps` entries under `prefix` from its end backwards; the ids `keep` accepts.
    fn walk_back(
        &self,
        prefix: &[u8],
        steps: usize,
        keep: impl Fn(MessageId) -> Result<bool, StoreError>,
    ) -> Result<Vec<MessageId>, StoreError> {
        let mut out = Vec::new();
        let mut before = prefix.to_vec();
        before.extend_from_slice(&[0xff; 16]);
        for _ in 0..steps {
            let Some((k, _)) = self.inner.store.get_at_or_before(prefix, &before)? else {
                break;
            };
            let Some(id) = keys::id_suffix(&k).filter(|_| k.len() == prefix.len() + 16) else {
                break;
            };
            if keep(id)? {
                out.push(id);
            }
            // The entry just before this one: the same key with the id one less.
            let Some(prev) = u128::from_be_bytes(*id.as_bytes()).checked_sub(1) else {
                break;
            };
            before.truncate(prefix.len());
            before.extend_from_slice(&prev.to_be_bytes());
        }
        Ok(out)
    }
}
