//! LEB128 numbers (seven bits a byte, low first) for the binary delivery records.

use crate::outbox::store::StoreError;

pub(super) fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The number at the start of `b`, which moves past it; `what` names the record.
pub(super) fn take(b: &mut &[u8], what: &str) -> Result<u64, StoreError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b
            .split_first()
            .ok_or_else(|| StoreError::Corrupt(format!("{what}: truncated number")))?;
        *b = rest;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(StoreError::Corrupt(format!("{what}: number too long")))
}

/// The 16 big-endian bytes at the start of `b`, which moves past them.
pub(super) fn take_u128(b: &mut &[u8], what: &str) -> Result<u128, StoreError> {
    let (head, rest) = b
        .split_at_checked(16)
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: truncated")))?;
    *b = rest;
    Ok(u128::from_be_bytes(head.try_into().expect("16 bytes")))
}
