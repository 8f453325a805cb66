//! A small cache of recently read message chunks. Deliveries of one request's messages
//! follow each other closely, and a chunk is tens of kilobytes, so
//! without it every delivery would read its whole chunk from disk again.

use super::keys;
use super::records::chunk_len;
use super::store::{Store, StoreError};
use crate::envelope::MessageId;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Mutex;

/// Most bytes of chunks kept.
const MAX_BYTES: usize = 8 * 1024 * 1024;

#[derive(Default)]
pub struct ChunkCache {
    /// (first id, message count, chunk), most recent at the back.
    entries: Mutex<VecDeque<(MessageId, usize, Bytes)>>,
}

impl ChunkCache {
    /// The chunk holding message `id` and the message's index in it.
    pub fn find(
        &self,
        store: &dyn Store,
        id: MessageId,
    ) -> Result<Option<(Bytes, usize)>, StoreError> {
        {
            let g = self.entries.lock().unwrap();
            for (first, count, chunk) in g.iter().rev() {
                let index = id.0.as_u128().wrapping_sub(first.0.as_u128());
                if index < *count as u128 {
                    return Ok(Some((chunk.clone(), index as usize)));
                }
            }
        }
        let Some((key, chunk)) = store.get_at_or_before(&[keys::MESSAGE], &keys::message(&id))?
        else {
            return Ok(None);
        };
        let Some(first) = keys::id_suffix(&key) else {
            return Ok(None);
        };
        let chunk = super::records::open_chunk(chunk)?;
        let count = chunk_len(&chunk);
        let index = id.0.as_u128().wrapping_sub(first.0.as_u128());
        if index >= count as u128 {
            return Ok(None);
        }
        let mut g = self.entries.lock().unwrap();
        g.push_back((first, count, chunk.clone()));
        let mut total: usize = g.iter().map(|(_, _, c)| c.len()).sum();
        while total > MAX_BYTES && g.len() > 1 {
            if let Some((_, _, old)) = g.pop_front() {
                total -= old.len();
            }
        }
        Ok(Some((chunk, index as usize)))
    }

    /// Forget everything (chunks were removed by retention).
    pub fn clear(&self) {
        self.entries.lock().unwrap().clear();
    }
}
