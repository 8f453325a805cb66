//! The finished delivery (`d` record), kept for the sync-status views until retention
//! removes it, and its compact binary form on disk.
//!
//! One is kept per (message × target) for the retention period (30 days shipped): after
//! a drained outage of 1,000,000 events to two targets, 2,000,000 of them. As JSON they
//! took about 55 bytes each (the outcome's name, a 13-digit time, the tally id in 39
//! digits); the binary form takes about 10, or 26 with a tally id.
//!
//! Layout (version 1):
//!
//! | bytes | field |
//! |---|---|
//! | 1 | [`BINARY_V1`] (a JSON record starts with `{`, a sealed one with its magic) |
//! | 1 | flags: the outcome (two bits: delivered, forwarded, dropped), has a tally id, has errors |
//! | varint | finished at (ms since 1970) |
//! | varint | attempts |
//! | 16 | tally id, big-endian, when flagged |
//! | rest | the attempt errors as a JSON array, when flagged |
//!
//! Records of earlier versions (JSON) are read as they are. A record with errors is
//! sealed by the encryption layer ([`has_errors`]).

use super::varint::{put, take, take_u128};
use super::{AttemptError, DoneOutcome};
use crate::outbox::store::StoreError;
use serde::Deserialize;

/// The first byte of a binary finished-delivery record.
pub const BINARY_V1: u8 = 0x01;

const OUTCOME_MASK: u8 = 0b11;
const TALLY: u8 = 1 << 2;
const ERRORS: u8 = 1 << 3;
const WHAT: &str = "finished delivery record";

/// `d`: a finished delivery, kept for sync-status queries until retention removes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DoneRecord {
    pub outcome: DoneOutcome,
    pub at_ms: u64,
    pub attempts: u32,
    /// The failed attempts before the one that succeeded (the message's journey).
    pub errors: Vec<AttemptError>,
    /// A forwarded delivery's dossier, settled in the KPIs when a worker confirms it.
    pub tally: Option<u128>,
}

/// The JSON form of earlier versions, read only.
#[derive(Deserialize)]
struct DoneJson {
    outcome: DoneOutcome,
    at_ms: u64,
    attempts: u32,
    #[serde(default)]
    errors: Vec<AttemptError>,
    #[serde(default)]
    tally: Option<u128>,
}

impl DoneRecord {
    /// The record as stored (binary, version 1).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        out.push(BINARY_V1);
        let mut flags = match self.outcome {
            DoneOutcome::Delivered => 0,
            DoneOutcome::Forwarded => 1,
            DoneOutcome::Dropped => 2,
        };
        if self.tally.is_some() {
            flags |= TALLY;
        }
        if !self.errors.is_empty() {
            flags |= ERRORS;
        }
        out.push(flags);
        put(&mut out, self.at_ms);
        put(&mut out, self.attempts as u64);
        if let Some(t) = self.tally {
            out.extend_from_slice(&t.to_be_bytes());
        }
        if !self.errors.is_empty() {
            serde_json::to_writer(&mut out, &self.errors).expect("errors always serialize");
        }
        out
    }

    /// A stored record, binary or the JSON of earlier versions.
    pub fn from_bytes(bytes: &[u8]) -> Result<DoneRecord, StoreError> {
        let Some((&BINARY_V1, mut b)) = bytes.split_first() else {
            let j: DoneJson = super::decode(bytes)?;
            return Ok(DoneRecord {
                outcome: j.outcome,
                at_ms: j.at_ms,
                attempts: j.attempts,
                errors: j.errors,
                tally: j.tally,
            });
        };
        let corrupt = |what: &str| StoreError::Corrupt(format!("{WHAT}: {what}"));
        let (&flags, rest) = b.split_first().ok_or_else(|| corrupt("no flags"))?;
        b = rest;
        let outcome = match flags & OUTCOME_MASK {
            0 => DoneOutcome::Delivered,
            1 => DoneOutcome::Forwarded,
            2 => DoneOutcome::Dropped,
            _ => return Err(corrupt("unknown outcome")),
        };
        let at_ms = take(&mut b, WHAT)?;
        let attempts = u32::try_from(take(&mut b, WHAT)?).map_err(|_| corrupt("attempts"))?;
        let tally = if flags & TALLY != 0 {
            Some(take_u128(&mut b, WHAT)?)
        } else {
            None
        };
        let errors = if flags & ERRORS != 0 {
            super::decode(b)?
        } else if b.is_empty() {
            Vec::new()
        } else {
            return Err(corrupt("bytes after the record"));
        };
        Ok(DoneRecord {
            outcome,
            at_ms,
            attempts,
            errors,
            tally,
        })
    }
}

/// Whether a stored, unsealed finished-delivery record carries attempt errors (text a
/// platform wrote, which may quote the message), without decoding it.
pub fn has_errors(plain: &[u8]) -> bool {
    super::flags_errors(plain, BINARY_V1, ERRORS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivered() -> DoneRecord {
        DoneRecord {
            outcome: DoneOutcome::Delivered,
            at_ms: 1_765_000_000_123,
            attempts: 1,
            errors: Vec::new(),
            tally: None,
        }
    }

    #[test]
    fn every_shape_of_record_comes_back_as_it_was_written() {
        let shapes = [
            delivered(),
            DoneRecord {
                outcome: DoneOutcome::Forwarded,
                tally: Some(u128::MAX - 1),
                ..delivered()
            },
            DoneRecord {
                outcome: DoneOutcome::Dropped,
                attempts: 20,
                errors: vec![AttemptError {
                    at_ms: 9,
                    error: "HTTP 400: Nguyễn Văn A".into(),
                    status: Some(400),
                }],
                ..delivered()
            },
        ];
        for rec in shapes {
            let bytes = rec.to_bytes();
            assert_eq!(DoneRecord::from_bytes(&bytes).unwrap(), rec);
            assert_eq!(has_errors(&bytes), !rec.errors.is_empty());
        }
        assert!(
            delivered().to_bytes().len() <= 10,
            "{:?}",
            delivered().to_bytes()
        );
    }

    #[test]
    fn records_of_earlier_versions_are_read_and_damage_is_an_error() {
        let json = br#"{"outcome":"forwarded","at_ms":5,"attempts":2,"tally":7}"#;
        let rec = DoneRecord::from_bytes(json).unwrap();
        assert_eq!(
            (rec.outcome, rec.at_ms, rec.attempts, rec.tally),
            (DoneOutcome::Forwarded, 5, 2, Some(7))
        );
        assert!(!has_errors(json));
        assert!(has_errors(br#"{"outcome":"delivered","errors":[]}"#));
        let bytes = DoneRecord {
            tally: Some(3),
            ..delivered()
        }
        .to_bytes();
        for cut in 1..bytes.len() {
            assert!(
                DoneRecord::from_bytes(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        assert!(DoneRecord::from_bytes(&[BINARY_V1, 3, 0, 0]).is_err());
    }
}
