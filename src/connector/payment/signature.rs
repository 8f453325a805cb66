//! The payment platform's message signature (`MaXacThuc`): SHA-256 over the signed
//! fields joined by `|`, then the shared key. The connector signs its `Init`s with it;
//! the callback endpoint (`src/ingress/callback.rs`) verifies the platform's `CONFIRM`s;
//! the reconciliation (`reconcile.rs`) signs its `QUERY` and `GET_BILL`. Field orders are
//! those of current integration code (`docs/src/reference/national-formats.md`, newer section).

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Fields signed in an `INIT`, in order (current integration code).
pub const INIT_FIELDS: [&str; 14] = [
    "LoaiBanTin",
    "PhienBan",
    "MaDoiTac",
    "MaThamChieu",
    "SoTien",
    "LoaiHinhThanhToan",
    "MaKenhThanhToan",
    "MaThietBi",
    "NgonNgu",
    "MaTienTe",
    "MaNganHang",
    "ThongTinGiaoDich",
    "ThoiGianGD",
    "Ip",
];
/// Fields signed in a `QUERY` (status) or `GET_BILL` (receipt), in order.
pub const QUERY_FIELDS: [&str; 5] = [
    "LoaiBanTin",
    "PhienBan",
    "MaDoiTac",
    "MaThamChieu",
    "ThoiGianGD",
];
/// Fields signed in a `CONFIRM` (the platform's callback), in order.
pub const CONFIRM_FIELDS: [&str; 10] = [
    "LoaiBanTin",
    "MaLoi",
    "MaDoiTac",
    "MaThamChieu",
    "SoTien",
    "MaTienTe",
    "MaGiaoDich",
    "MaNganHang",
    "ThoiGianGD",
    "ThongTinGiaoDich",
];

/// A field as the signature sees it: text as is, numbers in their JSON form.
pub fn field_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `MaXacThuc` of `message` over `fields`.
pub fn signature(message: &Value, fields: &[&str], key: &str) -> String {
    let mut text = fields
        .iter()
        .map(|f| field_text(&message[*f]))
        .collect::<Vec<_>>()
        .join("|");
    text.push('|');
    text.push_str(key);
    crate::hex::encode(&Sha256::digest(text.as_bytes()))
}

/// Whether a `Confirm` carries the right signature (compared in constant time).
pub fn verify_confirm(message: &Value, key: &str) -> bool {
    let expected = signature(message, &CONFIRM_FIELDS, key);
    let given = field_text(&message["MaXacThuc"]);
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The note naming the unit of a payment reference.
pub fn reference_note(reference: &str) -> String {
    format!("payment-ref/{reference}")
}

/// Prefix of the notes of payments not settled yet (reconciled by `QUERY`).
pub const OPEN_PREFIX: &str = "payment-open/";

/// The note of a payment not settled yet, or paid with its receipt still to fetch.
pub fn open_note(reference: &str) -> String {
    format!("{OPEN_PREFIX}{reference}")
}

/// Prefix of the marks of settled payments (nothing more to ask or fetch).
pub const SETTLED_PREFIX: &str = "payment-settled/";

/// The mark of a settled payment: kept (until `outbox.note_retention`) so that an open
/// note arriving late from another node cannot reopen it.
pub fn settled_note(reference: &str) -> String {
    format!("{SETTLED_PREFIX}{reference}")
}
