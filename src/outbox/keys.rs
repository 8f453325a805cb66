//! Key layout of the single outbox tree. Every key starts with a one-byte record kind;
//! ids are big-endian UUIDv7 bytes, so range scans come out in acceptance order.
//!
//! | kind | key                                 | value              |
//! |------|-------------------------------------|--------------------|
//! | `m`  | `m` first id                         | chunk of a request's messages ([`encode_chunk`](super::records::encode_chunk)) |
//! | `q`  | `q` target `\0` id                   | pending delivery   |
//! | `d`  | `d` target `\0` id                   | finished delivery (delivered or dropped) |
//! | `x`  | `x` target `\0` id                   | dead letter        |
//! | `i`  | `i` unit `\0` idempotency key        | ids it produced    |
//! | `t`  | `t` created-ms(be) unit `\0` key     | expiry index of `i`|
//! | `j`  | `j` unit `\0` ordering key `\0` id   | empty: index of one unit's messages of a dossier (by `MaHoSo`), removed with the message |
//! | `k`  | `k` ordering key `\0` id             | empty: the same index before it was kept per unit (read and removed, no longer written) |
//! | `n`  | `n` name                             | a note ([`super::Notes`]): e.g. which unit a payment reference belongs to |
//! | `e`  | `e` first-written-ms(be) name        | empty: expiry index of `n` |
//! | `a`  | `a` dossier id (16 bytes)            | KPI state of one dossier ([`super::tally`]) |
//! | `c`  | `c` unit `\0` day(be u32) MaTTHC      | KPI totals of the dossiers first seen that day |
//! | `r`  | `r` payment reference                | the dossier id its fee belongs to (KPIs) |
//! | `u`  | `u` unit `\0` due day(be u32)        | open dossiers due that day (`NgayHenTra`): the overdue count |
//! | `l`  | `l` day(be u32) unit `\0` target     | deliveries by state, for the daily reconciliation ([`super::ledger`]) |
//! | `s`  | `s` seq(be u64)                      | a KPI change not yet published to the cluster ([`super::tally::shared`]) |
//! | `z`  | `zmeta`                              | counters           |
//! | `z`  | `zkpi-next`, `zkpi-origin`, `zkpi-from\0` origin | the KPI journal's next number, this outbox's origin id, the last change taken from each other node |

use crate::envelope::MessageId;

pub const MESSAGE: u8 = b'm';
pub const PENDING: u8 = b'q';
pub const DONE: u8 = b'd';
pub const DEAD: u8 = b'x';
pub const IDEMPOTENCY: u8 = b'i';
pub const IDEMPOTENCY_EXPIRY: u8 = b't';
pub const NOTE: u8 = b'n';
pub const NOTE_EXPIRY: u8 = b'e';
pub const UNIT_DOSSIER: u8 = b'j';
pub const LEGACY_DOSSIER: u8 = b'k';
pub const TALLY_DOSSIER: u8 = b'a';
pub const TALLY_TOTALS: u8 = b'c';
pub const TALLY_REFERENCE: u8 = b'r';
pub const TALLY_DUE: u8 = b'u';
pub const META: &[u8] = b"zmeta";

pub fn note(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + name.len());
    k.push(NOTE);
    k.extend_from_slice(name.as_bytes());
    k
}

/// The expiry index entry of a note first written at `written_ms`.
pub fn note_expiry(written_ms: u64, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + name.len());
    k.push(NOTE_EXPIRY);
    k.extend_from_slice(&written_ms.to_be_bytes());
    k.extend_from_slice(name.as_bytes());
    k
}

/// Prefix of one unit's index entries of one ordering key (a dossier's `MaHoSo`): a
/// dossier is the unit's and its code's, so another unit's events with the same code are
/// never read with it.
pub fn unit_dossier_prefix(unit: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + unit.len() + key.len() + 16);
    k.push(UNIT_DOSSIER);
    k.extend_from_slice(unit.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k.push(0);
    k
}

/// The index entry of message `id` of `unit`'s dossier `key`.
pub fn unit_dossier(unit: &str, key: &str, id: &MessageId) -> Vec<u8> {
    let mut k = unit_dossier_prefix(unit, key);
    k.extend_from_slice(id.as_bytes());
    k
}

/// Prefix of the index entries written before the index was kept per unit (every unit's
/// messages with this ordering key): read, filtered by unit, until retention removes them.
pub fn legacy_dossier_prefix(key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + key.len() + 16);
    k.push(LEGACY_DOSSIER);
    k.extend_from_slice(key.as_bytes());
    k.push(0);
    k
}

/// A pre-per-unit index entry (removed with its message).
pub fn legacy_dossier(key: &str, id: &MessageId) -> Vec<u8> {
    let mut k = legacy_dossier_prefix(key);
    k.extend_from_slice(id.as_bytes());
    k
}

pub fn message(id: &MessageId) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(MESSAGE);
    k.extend_from_slice(id.as_bytes());
    k
}

/// Key of a per-target record (`q`, `d` or `x`).
pub fn delivery(kind: u8, target: &str, id: &MessageId) -> Vec<u8> {
    let mut k = target_prefix(kind, target);
    k.extend_from_slice(id.as_bytes());
    k
}

/// Prefix of all per-target records of one kind for one target.
pub fn target_prefix(kind: u8, target: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + target.len() + 16);
    k.push(kind);
    k.extend_from_slice(target.as_bytes());
    k.push(0);
    k
}

/// The id at the end of a per-target or message key.
pub fn id_suffix(key: &[u8]) -> Option<MessageId> {
    let tail: [u8; 16] = key.get(key.len().checked_sub(16)?..)?.try_into().ok()?;
    Some(MessageId::from_bytes(tail))
}

/// An `Idempotency-Key` as the outbox keeps it: the flow's, so that a key a unit used for
/// one flow never answers a request of another (nor the bus's own keys, which are its
/// internal flows'). Keys are visible ASCII and flows ids: the separator is in neither.
pub fn scoped_idempotency(flow: &str, key: &str) -> String {
    format!("{flow}\u{1f}{key}")
}

pub fn idempotency(unit: &str, key: &str) -> Vec<u8> {
    let mut k = vec![IDEMPOTENCY];
    k.extend_from_slice(unit.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

pub fn idempotency_expiry(created_ms: u64, unit: &str, key: &str) -> Vec<u8> {
    let mut k = vec![IDEMPOTENCY_EXPIRY];
    k.extend_from_slice(&created_ms.to_be_bytes());
    k.extend_from_slice(unit.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

/// The smallest key after every key that starts with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_keys_sort_by_id_within_a_target() {
        let a = MessageId(uuid::Uuid::from_u128(1));
        let b = MessageId(uuid::Uuid::from_u128(2));
        assert!(delivery(PENDING, "portal", &a) < delivery(PENDING, "portal", &b));
        let p = target_prefix(PENDING, "portal");
        assert!(delivery(PENDING, "portal", &b) < prefix_end(&p));
        // "portal2" must not fall inside "portal"'s range.
        assert!(delivery(PENDING, "portal2", &a) >= prefix_end(&p));
        assert_eq!(id_suffix(&delivery(DEAD, "x", &b)), Some(b));
    }
}
