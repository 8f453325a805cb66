//! Encryption at rest: a [`Store`] wrapper that seals the outbox records holding personal
//! data (message chunks, pending, finished and dead deliveries, notes) with
//! XChaCha20-Poly1305 before they reach the store, and opens them on the way back.
//!
//! # Design
//! - **Keyring.** Keys come from a file or an environment variable, never from the config
//!   file: one `id:base64(32 bytes)` per line, the first line the *current* key (it seals
//!   every new record), the others kept only to open records sealed before a rotation.
//! - **Sealed value.** `MAGIC (4) | id length (1) | id | nonce (24) | ciphertext + tag`.
//!   The record's key is the associated data, so a sealed value moved under another key
//!   fails to open. Nonces are random (24 bytes: no practical risk of reuse).
//!   `MAGIC` cannot start a plain value: JSON starts with `{`/`"`, and a message chunk
//!   starts with its message count, which would have to be ~22 million.
//! - **Plain values** (written before encryption was turned on) are still read; `lienthong
//!   outbox re-encrypt` seals them, and re-seals records of older keys with the current one.
//! - **Key check at start.** Each key that sealed something leaves a canary record
//!   (`zkey:<id>`, sealed by that key). At start every canary must open: a missing key, an
//!   unknown one or a wrong one stops the start with an error naming the key, before
//!   anything is written.
//! - Index records (`i`, `t`, `k`, `zmeta`), the KPI totals (`a`, `c`, `r`) and pending
//!   or finished deliveries without attempt errors stay plain: ids, times, counts, unit
//!   names and dossier codes only.

use super::store::{Rows, Store, StoreError, WriteBatch};
use base64::Engine;
use bytes::Bytes;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::path::Path;
use std::sync::Arc;

const MAGIC: [u8; 4] = [0xE7, b'L', b'T', 0x01];
const NONCE_LEN: usize = 24;
/// Record kinds sealed (see [`super::keys`]).
const SEALED_KINDS: &[u8] = b"mqdxn";
const CANARY_PREFIX: &[u8] = b"zkey:";
const CANARY_TEXT: &[u8] = b"lienthong outbox key check";

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("{source_name}, line {line}: {problem}")]
    Line {
        source_name: String,
        line: usize,
        problem: String,
    },
    #[error("{0} holds no key")]
    Empty(String),
    #[error("cannot read the outbox key file {path}: {error}")]
    Unreadable { path: String, error: String },
    #[error(
        "no outbox encryption key: set {0} (one `id:base64-of-32-bytes` per line, the current key first) or [outbox.encryption] keys_file"
    )]
    Missing(String),
    #[error(
        "the outbox holds records sealed with key `{0}`, and no encryption key is configured: set [outbox.encryption] and provide that key"
    )]
    NotConfigured(String),
    #[error(
        "the outbox holds records sealed with key `{id}`, which is not in the keyring ({source_name}): add it back (after the current key) and run `lienthong outbox re-encrypt` to retire it"
    )]
    UnknownKey { id: String, source_name: String },
    #[error(
        "key `{id}` in {source_name} is not the key the outbox records were sealed with (its check record does not open): restore the right key; nothing was changed"
    )]
    WrongKey { id: String, source_name: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Key {
    id: String,
    cipher: XChaCha20Poly1305,
}

/// The keys the outbox is sealed with: the first one seals, all of them open.
pub struct Keyring {
    keys: Vec<Key>,
    /// Where the keys came from (a file path or a variable name), for error messages.
    pub source_name: String,
}

impl Keyring {
    /// Parse `id:base64` lines (blank lines and `#` comments ignored).
    pub fn parse(text: &str, source_name: &str) -> Result<Keyring, KeyringError> {
        let mut keys: Vec<Key> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |problem: String| KeyringError::Line {
                source_name: source_name.to_string(),
                line: i + 1,
                problem,
            };
            let (id, b64) = line
                .split_once(':')
                .ok_or_else(|| err("expected `id:base64-key`".into()))?;
            let id = id.trim();
            if id.is_empty()
                || id.len() > 64
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(err(
                    "the key id must be 1-64 letters, digits, `-`, `_` or `.`".into(),
                ));
            }
            if keys.iter().any(|k| k.id == id) {
                return Err(err(format!("key id `{id}` appears twice")));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| err(format!("the key is not base64: {e}")))?;
            if bytes.len() != 32 {
                return Err(err(format!(
                    "the key must be 32 bytes (44 base64 characters), not {}; make one with `lienthong outbox new-key <id>`",
                    bytes.len()
                )));
            }
            let cipher = XChaCha20Poly1305::new_from_slice(&bytes).expect("32-byte key");
            keys.push(Key {
                id: id.to_string(),
                cipher,
            });
        }
        if keys.is_empty() {
            return Err(KeyringError::Empty(source_name.to_string()));
        }
        Ok(Keyring {
            keys,
            source_name: source_name.to_string(),
        })
    }

    pub fn read_file(path: &Path) -> Result<Keyring, KeyringError> {
        let text = std::fs::read_to_string(path).map_err(|e| KeyringError::Unreadable {
            path: path.display().to_string(),
            error: e.to_string(),
        })?;
        Keyring::parse(&text, &path.display().to_string())
    }

    /// The id of the key that seals new records.
    pub fn current(&self) -> &str {
        &self.keys[0].id
    }

    fn key(&self, id: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// Seal `plain` under the current key, bound to `record_key`.
    pub(crate) fn seal(&self, record_key: &[u8], plain: &[u8]) -> Vec<u8> {
        let key = &self.keys[0];
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = key
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: record_key,
                },
            )
            .expect("XChaCha20-Poly1305 sealing does not fail");
        let mut out = Vec::with_capacity(5 + key.id.len() + NONCE_LEN + sealed.len());
        out.extend_from_slice(&MAGIC);
        out.push(key.id.len() as u8);
        out.extend_from_slice(key.id.as_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Open a stored value: sealed ones are decrypted, plain ones returned as they are.
    pub(crate) fn open(&self, record_key: &[u8], stored: &[u8]) -> Result<Vec<u8>, StoreError> {
        let Some((id, nonce, sealed)) = split_sealed(stored)? else {
            return Ok(stored.to_vec());
        };
        let key = self.key(id).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "record sealed with key `{id}`, which is not in the keyring ({})",
                self.source_name
            ))
        })?;
        key.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: record_key,
                },
            )
            .map_err(|_| {
                StoreError::Corrupt(format!(
                    "a record sealed with key `{id}` does not open: altered, or the key is wrong"
                ))
            })
    }
}

/// The message log's `full` mode seals bodies as the outbox seals its records, bound to
/// the label `evidence` (a sealed body cannot pass for an outbox record).
impl crate::evidence::BodySealer for Keyring {
    fn seal_body(&self, plain: &[u8]) -> Vec<u8> {
        self.seal(b"evidence", plain)
    }
}

/// The parts of a sealed value: key id, nonce, ciphertext with its tag.
type SealedParts<'a> = (&'a str, &'a [u8], &'a [u8]);

/// The parts of a sealed value, `None` for a plain one.
fn split_sealed(stored: &[u8]) -> Result<Option<SealedParts<'_>>, StoreError> {
    if !stored.starts_with(&MAGIC) {
        return Ok(None);
    }
    let bad = || StoreError::Corrupt("sealed record is truncated".into());
    let id_len = *stored.get(4).ok_or_else(bad)? as usize;
    let id = stored.get(5..5 + id_len).ok_or_else(bad)?;
    let id = std::str::from_utf8(id).map_err(|_| bad())?;
    let nonce = stored
        .get(5 + id_len..5 + id_len + NONCE_LEN)
        .ok_or_else(bad)?;
    let sealed = stored.get(5 + id_len + NONCE_LEN..).ok_or_else(bad)?;
    Ok(Some((id, nonce, sealed)))
}

/// A stored value as the outbox reads it: opened with `ring` when it is sealed (an error
/// when it does not open, or when it is sealed and there is no keyring), else as stored.
/// For tools that read the raw store record by record (`lienthong outbox check`).
pub fn open_stored(
    ring: Option<&Keyring>,
    record_key: &[u8],
    stored: &[u8],
) -> Result<Vec<u8>, StoreError> {
    match ring {
        Some(ring) => ring.open(record_key, stored),
        None if stored.starts_with(&MAGIC) => Err(StoreError::Corrupt(
            "the record is sealed and no outbox key is configured ([outbox.encryption])".into(),
        )),
        None => Ok(stored.to_vec()),
    }
}

/// The key id a stored value was sealed with (`None`: plain).
pub fn sealed_with(stored: &[u8]) -> Option<String> {
    split_sealed(stored)
        .ok()
        .flatten()
        .map(|(id, _, _)| id.to_string())
}

fn is_sealed_kind(record_key: &[u8]) -> bool {
    record_key.first().is_some_and(|k| SEALED_KINDS.contains(k))
}

/// Whether this value must be sealed: every record of a sealed kind, except a pending or
/// finished delivery without attempt errors (the only field of theirs that can hold
/// personal data: a platform's error text may quote the message) — ids, times, counts
/// and the unit's name, like the index records. Those stay plain: a million of them
/// waiting cost half the disk, the queue's loader reads them without opening each, and a
/// delivery costs no sealing. Both records flag their errors ([`super::records`]).
fn must_seal(record_key: &[u8], plain: &[u8]) -> bool {
    match record_key.first().copied() {
        Some(super::keys::PENDING) => super::records::pending_has_errors(plain),
        Some(super::keys::DONE) => super::records::done_has_errors(plain),
        _ => is_sealed_kind(record_key),
    }
}

fn canary_key(id: &str) -> Vec<u8> {
    let mut k = CANARY_PREFIX.to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

/// The ids of the keys that sealed records in `store` (from their canaries).
fn canaries(store: &dyn Store) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let mut end = CANARY_PREFIX.to_vec();
    *end.last_mut().expect("non-empty") += 1;
    Ok(store
        .scan(CANARY_PREFIX, &end, usize::MAX)?
        .into_iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(&k[CANARY_PREFIX.len()..]).into_owned(),
                v,
            )
        })
        .collect())
}

/// Check that `keyring` (or its absence) fits what `store` holds, before anything is
/// written. `None` and no sealed record: the outbox stays plain.
pub fn check_keys(store: &dyn Store, keyring: Option<&Keyring>) -> Result<(), KeyringError> {
    for (id, value) in canaries(store)? {
        let Some(ring) = keyring else {
            return Err(KeyringError::NotConfigured(id));
        };
        if ring.key(&id).is_none() {
            return Err(KeyringError::UnknownKey {
                id,
                source_name: ring.source_name.clone(),
            });
        }
        match ring.open(&canary_key(&id), &value) {
            Ok(text) if text == CANARY_TEXT => {}
            _ => {
                return Err(KeyringError::WrongKey {
                    id,
                    source_name: ring.source_name.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Open the outbox store for use: plain when no keyring is given (refused if it holds
/// sealed records), sealed otherwise. Checks the keys first; writes the current key's
/// canary.
pub fn wrap(
    store: Arc<dyn Store>,
    keyring: Option<Arc<Keyring>>,
) -> Result<Arc<dyn Store>, KeyringError> {
    check_keys(store.as_ref(), keyring.as_deref())?;
    let Some(ring) = keyring else {
        return Ok(store);
    };
    let canary = canary_key(ring.current());
    if store.get(&canary)?.is_none() {
        let mut batch = WriteBatch::default();
        batch.put(canary.clone(), ring.seal(&canary, CANARY_TEXT));
        store.apply(batch)?;
        store.flush()?;
    }
    Ok(Arc::new(EncryptedStore { inner: store, ring }))
}

/// A [`Store`] sealing the values of personal-data records on their way to `inner`.
pub struct EncryptedStore {
    inner: Arc<dyn Store>,
    ring: Arc<Keyring>,
}

impl EncryptedStore {
    fn open_value(&self, key: &[u8], value: &[u8]) -> Result<Vec<u8>, StoreError> {
        if is_sealed_kind(key) {
            self.ring.open(key, value)
        } else {
            Ok(value.to_vec())
        }
    }
}

impl Store for EncryptedStore {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, StoreError> {
        match self.inner.get(key)? {
            Some(v) if is_sealed_kind(key) && v.starts_with(&MAGIC) => {
                Ok(Some(Bytes::from(self.ring.open(key, &v)?)))
            }
            other => Ok(other),
        }
    }

    fn get_at_or_before(
        &self,
        floor: &[u8],
        key: &[u8],
    ) -> Result<Option<(Vec<u8>, Bytes)>, StoreError> {
        match self.inner.get_at_or_before(floor, key)? {
            Some((k, v)) if is_sealed_kind(&k) && v.starts_with(&MAGIC) => {
                let plain = self.ring.open(&k, &v)?;
                Ok(Some((k, Bytes::from(plain))))
            }
            other => Ok(other),
        }
    }

    fn apply(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let ops = batch
            .ops
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Some(v) if must_seal(&k, &v) => Some(self.ring.seal(&k, &v)),
                    other => other,
                };
                (k, v)
            })
            .collect();
        self.inner.apply(WriteBatch { ops })
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush()
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Rows, StoreError> {
        self.inner
            .scan(start, end, limit)?
            .into_iter()
            .map(|(k, v)| {
                let v = self.open_value(&k, &v)?;
                Ok((k, v))
            })
            .collect()
    }

    fn size_on_disk(&self) -> u64 {
        self.inner.size_on_disk()
    }

    fn reclaim(&self) -> Result<Option<super::store::Reclaimed>, StoreError> {
        self.inner.reclaim()
    }
}

/// What `lienthong outbox re-encrypt` did.
#[derive(Debug, Default)]
pub struct Reencrypted {
    /// Records read.
    pub scanned: u64,
    /// Records sealed again with the current key (plain ones included).
    pub resealed: u64,
    /// Keys no record is sealed with any more (their canaries were removed).
    pub retired: Vec<String>,
}

/// Seal every personal-data record of `store` (the raw, unwrapped store) with the current
/// key: plain records and those of older keys. Runs with the bus stopped (the store allows one
/// process). `progress` is called after each page with the records read so far.
pub fn reencrypt(
    store: &dyn Store,
    ring: &Keyring,
    mut progress: impl FnMut(u64),
) -> Result<Reencrypted, KeyringError> {
    check_keys(store, Some(ring))?;
    let mut done = Reencrypted::default();
    for &kind in SEALED_KINDS {
        let mut start = vec![kind];
        let end = vec![kind + 1];
        loop {
            let rows = store.scan(&start, &end, 1000)?;
            let Some((last, _)) = rows.last() else { break };
            start = last.clone();
            start.push(0);
            let mut batch = WriteBatch::default();
            for (k, v) in &rows {
                done.scanned += 1;
                if sealed_with(v).as_deref() == Some(ring.current()) {
                    continue;
                }
                let plain = ring.open(k, v)?;
                if !must_seal(k, &plain) {
                    continue;
                }
                batch.put(k.clone(), ring.seal(k, &plain));
                done.resealed += 1;
            }
            if !batch.is_empty() {
                store.apply(batch)?;
            }
            progress(done.scanned);
        }
    }
    // Every record now uses the current key: the others' canaries go, the current one's
    // is written.
    let mut batch = WriteBatch::default();
    for (id, _) in canaries(store)? {
        if id != ring.current() {
            batch.delete(canary_key(&id));
            done.retired.push(id);
        }
    }
    let canary = canary_key(ring.current());
    batch.put(canary.clone(), ring.seal(&canary, CANARY_TEXT));
    store.apply(batch)?;
    store.flush()?;
    Ok(done)
}

/// The keyring `[outbox.encryption]` points at (`None`: the outbox is not encrypted).
pub fn load_keyring(
    config: &crate::config::Config,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Keyring>, KeyringError> {
    let Some(e) = &config.outbox.encryption else {
        return Ok(None);
    };
    if let Some(text) = env(&e.keys_env) {
        return Keyring::parse(&text, &format!("${}", e.keys_env)).map(Some);
    }
    if let Some(path) = &e.keys_file {
        return Keyring::read_file(path).map(Some);
    }
    match &e.dev_keys_file {
        Some(path) if config.environment != crate::config::Environment::Production => {
            tracing::warn!(file = %path.display(), "the outbox is sealed with the DEVELOPMENT key; set {} before going live", e.keys_env);
            Keyring::read_file(path).map(Some)
        }
        _ => Err(KeyringError::Missing(e.keys_env.clone())),
    }
}

/// A new random key line (`id:base64`), for `lienthong outbox new-key`.
pub fn new_key_line(id: &str) -> String {
    let key: [u8; 32] = rand::random();
    format!(
        "{id}:{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

#[cfg(test)]
mod tests;
