//! The pending delivery (`q` record) and its compact binary form on disk.
//!
//! Every (message × target) waits as one of these until it is delivered, so an outage
//! of the portal leaves two of them per event (the portal's and the ministry's): at
//! 1,000,000 events they were 2,000,000 JSON records of about 126 bytes (a 128-bit hash
//! written as 39 decimal digits, twice, and the field names), three quarters of the
//! outbox's live bytes. The binary form keeps the same fields in about 30 bytes.
//!
//! Layout (version 1):
//!
//! | bytes | field |
//! |---|---|
//! | 1 | [`BINARY_V1`] (a JSON record starts with `{`, a sealed one with its magic) |
//! | 1 | flags: block on dead, has key hash, has its own tally id, tally id = key hash, has errors |
//! | varint | attempts |
//! | varint | next due (ms since 1970) |
//! | varint | payload length |
//! | 16 | key hash, big-endian, when flagged |
//! | 16 | tally id, when flagged and not the key hash |
//! | varint + bytes | unit |
//! | rest | the attempt errors as a JSON array, when flagged |
//!
//! Records written as JSON by earlier versions are read as they are and rewritten in this
//! form the next time their delivery changes. The errors stay JSON because they are text
//! (and rare), and because the encryption layer seals a record that has them
//! ([`has_errors`]).

use super::varint::{put as put_varint, take, take_u128};
use super::{AttemptError, KeyHash};
use crate::outbox::store::StoreError;
use serde::Deserialize;

/// The first byte of a binary pending record.
pub const BINARY_V1: u8 = 0x01;

const BLOCK_ON_DEAD: u8 = 1;
const KEY_HASH: u8 = 1 << 1;
const OWN_TALLY: u8 = 1 << 2;
const TALLY_IS_KEY_HASH: u8 = 1 << 3;
const ERRORS: u8 = 1 << 4;

/// `q`: a delivery not finished yet: pending, or waiting for a retry at `next_due_ms`.
/// Whether it is in flight is known only to the process holding its lease (in memory), so
/// a crash returns every lease to pending by construction.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PendingRecord {
    /// Hash of (unit, ordering key) when the route orders per key.
    pub key_hash: Option<KeyHash>,
    /// A dead message blocks its key (route `on_dead = "block"`).
    pub block_on_dead: bool,
    pub attempts: u32,
    pub next_due_ms: u64,
    pub payload_len: u32,
    /// Kept only when there are some: a pending record is sealed on disk only then
    /// ([`crate::outbox::encryption`]).
    pub errors: Vec<AttemptError>,
    /// The unit that sent the message, for per-unit status (empty in older records).
    pub unit: String,
    /// The dossier whose KPI state this delivery settles (deliveries to the portal).
    pub tally: Option<u128>,
}

/// The JSON form of earlier versions, read only.
#[derive(Deserialize)]
struct PendingJson {
    #[serde(default)]
    key_hash: Option<KeyHash>,
    block_on_dead: bool,
    #[serde(default)]
    attempts: u32,
    #[serde(default)]
    next_due_ms: u64,
    payload_len: u32,
    #[serde(default)]
    errors: Vec<AttemptError>,
    #[serde(default)]
    unit: String,
    #[serde(default)]
    tally: Option<u128>,
}

impl PendingRecord {
    /// The record as stored (binary, version 1).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(40 + self.unit.len());
        out.push(BINARY_V1);
        let mut flags = 0u8;
        if self.block_on_dead {
            flags |= BLOCK_ON_DEAD;
        }
        if self.key_hash.is_some() {
            flags |= KEY_HASH;
        }
        match self.tally {
            Some(t) if Some(t) == self.key_hash => flags |= TALLY_IS_KEY_HASH,
            Some(_) => flags |= OWN_TALLY,
            None => {}
        }
        if !self.errors.is_empty() {
            flags |= ERRORS;
        }
        out.push(flags);
        put_varint(&mut out, self.attempts as u64);
        put_varint(&mut out, self.next_due_ms);
        put_varint(&mut out, self.payload_len as u64);
        if let Some(h) = self.key_hash {
            out.extend_from_slice(&h.to_be_bytes());
        }
        if flags & OWN_TALLY != 0 {
            out.extend_from_slice(&self.tally.unwrap_or_default().to_be_bytes());
        }
        put_varint(&mut out, self.unit.len() as u64);
        out.extend_from_slice(self.unit.as_bytes());
        if !self.errors.is_empty() {
            serde_json::to_writer(&mut out, &self.errors).expect("errors always serialize");
        }
        out
    }

    /// A stored record, binary or the JSON of earlier versions.
    pub fn from_bytes(bytes: &[u8]) -> Result<PendingRecord, StoreError> {
        match bytes.first() {
            Some(&BINARY_V1) => decode_binary(&bytes[1..]),
            _ => {
                let j: PendingJson = super::decode(bytes)?;
                Ok(PendingRecord {
                    key_hash: j.key_hash,
                    block_on_dead: j.block_on_dead,
                    attempts: j.attempts,
                    next_due_ms: j.next_due_ms,
                    payload_len: j.payload_len,
                    errors: j.errors,
                    unit: j.unit,
                    tally: j.tally,
                })
            }
        }
    }
}

/// Whether a stored, unsealed pending record carries attempt errors (text a platform
/// wrote, which may quote the message), without decoding it.
pub fn has_errors(plain: &[u8]) -> bool {
    super::flags_errors(plain, BINARY_V1, ERRORS)
}

const WHAT: &str = "pending record";

fn decode_binary(mut b: &[u8]) -> Result<PendingRecord, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("pending record: {what}"));
    let (&flags, rest) = b.split_first().ok_or_else(|| corrupt("no flags"))?;
    b = rest;
    let attempts = u32::try_from(take(&mut b, WHAT)?).map_err(|_| corrupt("attempts"))?;
    let next_due_ms = take(&mut b, WHAT)?;
    let payload_len = u32::try_from(take(&mut b, WHAT)?).map_err(|_| corrupt("length"))?;
    let key_hash = if flags & KEY_HASH != 0 {
        Some(take_u128(&mut b, WHAT)?)
    } else {
        None
    };
    let tally = if flags & OWN_TALLY != 0 {
        Some(take_u128(&mut b, WHAT)?)
    } else if flags & TALLY_IS_KEY_HASH != 0 {
        key_hash
    } else {
        None
    };
    let unit_len = usize::try_from(take(&mut b, WHAT)?).map_err(|_| corrupt("unit"))?;
    let (unit, rest) = b
        .split_at_checked(unit_len)
        .ok_or_else(|| corrupt("unit truncated"))?;
    let unit = std::str::from_utf8(unit)
        .map_err(|_| corrupt("unit is not UTF-8"))?
        .to_string();
    let errors = if flags & ERRORS != 0 {
        super::decode(rest)?
    } else if rest.is_empty() {
        Vec::new()
    } else {
        return Err(corrupt("bytes after the unit"));
    };
    Ok(PendingRecord {
        key_hash,
        block_on_dead: flags & BLOCK_ON_DEAD != 0,
        attempts,
        next_due_ms,
        payload_len,
        errors,
        unit,
        tally,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PendingRecord {
        PendingRecord {
            key_hash: Some(u128::MAX - 7),
            block_on_dead: true,
            attempts: 3,
            next_due_ms: 1_765_000_000_123,
            payload_len: 632,
            errors: Vec::new(),
            unit: "nafosted".into(),
            tally: Some(u128::MAX - 7),
        }
    }

    #[test]
    fn every_shape_of_record_comes_back_as_it_was_written() {
        let mut shapes = vec![sample(), PendingRecord::default()];
        shapes.push(PendingRecord {
            tally: Some(42),
            ..sample()
        });
        shapes.push(PendingRecord {
            key_hash: None,
            tally: Some(42),
            ..sample()
        });
        shapes.push(PendingRecord {
            errors: vec![AttemptError {
                at_ms: 1,
                error: "HTTP 500: Nguyễn Văn A".into(),
                status: Some(500),
            }],
            ..sample()
        });
        for rec in shapes {
            let bytes = rec.to_bytes();
            assert_eq!(PendingRecord::from_bytes(&bytes).unwrap(), rec);
            assert_eq!(has_errors(&bytes), !rec.errors.is_empty());
        }
        // The common record (ordered, the portal's tally id = its key hash): small.
        assert!(
            sample().to_bytes().len() <= 36,
            "{}",
            sample().to_bytes().len()
        );
    }

    #[test]
    fn records_of_earlier_versions_are_read_as_json() {
        let json = br#"{"key_hash":340282366920938463463374607431768211448,"block_on_dead":false,"attempts":2,"payload_len":10,"errors":[{"at_ms":5,"error":"refused"}],"unit":"stameq","tally":7}"#;
        let rec = PendingRecord::from_bytes(json).unwrap();
        assert_eq!(rec.key_hash, Some(u128::MAX - 7));
        assert_eq!((rec.attempts, rec.payload_len, rec.tally), (2, 10, Some(7)));
        assert_eq!(rec.errors[0].error, "refused");
        assert!(has_errors(json));
        let plain = br#"{"block_on_dead":false,"payload_len":10}"#;
        assert!(!has_errors(plain));
        assert_eq!(
            PendingRecord::from_bytes(plain).unwrap(),
            PendingRecord {
                payload_len: 10,
                ..Default::default()
            }
        );
    }

    #[test]
    fn a_damaged_record_is_an_error_not_a_panic() {
        let bytes = sample().to_bytes();
        for cut in 1..bytes.len() {
            assert!(
                PendingRecord::from_bytes(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut long = bytes.clone();
        long.push(b'x');
        assert!(PendingRecord::from_bytes(&long).is_err());
        assert!(
            PendingRecord::from_bytes(&[
                BINARY_V1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
            ])
            .is_err()
        );
    }
}
