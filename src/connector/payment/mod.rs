//! The payment platform connector: sends `INIT` (a fee request, mapped) signed with
//! `MaXacThuc`; the callback endpoint verifies the platform's `CONFIRM`s with the same
//! key, and the reconciliation (`reconcile.rs`) asks `QUERY` about payments whose
//! `CONFIRM` never came and fetches receipts with `GET_BILL`.
//!
//! `MaXacThuc` is the SHA-256 (lower-case hex) of the message's fields joined with `|`,
//! followed by `|` and the shared key; the fields of each message type are listed in
//! `signature.rs`. (The HMAC-SHA256 `check_sum` some sources show belongs to another
//! payment API, not to an older version of this one.)
//!
//! Before sending, the connector notes which unit the `MaThamChieu` belongs to, so the
//! callback can be relayed to that unit, and that the payment is open, so that it is
//! reconciled if its callback is lost. The `INIT` reply (`MaGiaoDich`, `UrlThanhToan`)
//! goes back to the unit when the route says so (`replies = { payment = "payment_link" }`).

mod callback_guard;
pub mod config;
pub mod reconcile;
mod signature;

pub use callback_guard::CallbackGuard;
pub use signature::{
    CONFIRM_FIELDS, INIT_FIELDS, OPEN_PREFIX, QUERY_FIELDS, SETTLED_PREFIX, field_text, open_note,
    reference_note, settled_note, signature, verify_confirm,
};

use super::reply_code::{CodeMeans, ReplyCodes};
use super::{BoxFuture, Connector, Outbound, RawOutcome, RetryClassifier, Verdict};
use crate::envelope::Envelope;
use crate::outbox::Notes;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The partner identity and shared key agreed with the platform.
#[derive(Clone)]
pub struct PaymentCredentials {
    pub partner_code: String,
    pub shared_key: String,
}

impl std::fmt::Debug for PaymentCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentCredentials")
            .field("partner_code", &self.partner_code)
            .field("shared_key", &"<secret>")
            .finish()
    }
}

pub struct PaymentConnector {
    client: reqwest::Client,
    url: reqwest::Url,
    creds: PaymentCredentials,
    notes: Arc<dyn Notes>,
}

impl PaymentConnector {
    pub fn new(
        url: &str,
        timeout: Duration,
        creds: PaymentCredentials,
        notes: Arc<dyn Notes>,
        tls: Option<&super::client::TlsConfig>,
    ) -> Result<Self, String> {
        let url = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
        let client = super::client::client(timeout, tls)?;
        Ok(PaymentConnector {
            client,
            url,
            creds,
            notes,
        })
    }

    /// The partner code and key (the reconciliation signs with them too).
    pub fn credentials(&self) -> &PaymentCredentials {
        &self.creds
    }

    async fn init(&self, unit: &str, trace: &str, mut request: Value) -> RawOutcome {
        if request["MaDoiTac"].is_null() {
            request["MaDoiTac"] = json!(self.creds.partner_code);
        }
        let reference = field_text(&request["MaThamChieu"]);
        if reference.is_empty() {
            return RawOutcome::Invalid("Init without MaThamChieu".into());
        }
        request["MaXacThuc"] = json!(signature(&request, &INIT_FIELDS, &self.creds.shared_key));
        // Noted first: the callback may come before this call returns. A reference
        // belongs to the unit that first used it: another unit's Init for it would take
        // over the owner's confirmation (and count the platform's "05 duplicate" as sent).
        match self
            .notes
            .claim_note(&reference_note(&reference), unit.as_bytes())
        {
            Ok(None) => {}
            Ok(Some(owner)) => {
                return RawOutcome::Invalid(format!(
                    "payment reference MaThamChieu `{reference}` belongs to unit `{}`; \
                     a unit cannot reuse another unit's reference (give this fee its own)",
                    String::from_utf8_lossy(&owner)
                ));
            }
            Err(e) => {
                return RawOutcome::Transport(format!("cannot note the payment reference: {e}"));
            }
        }
        // Open until its CONFIRM comes (or QUERY settles it); kept on a retried INIT.
        let open = reconcile::OpenPayment::new(unit);
        if let Err(e) = self
            .notes
            .claim_note(&open_note(&reference), &open.encode())
            .map(|_| ())
        {
            return RawOutcome::Transport(format!("cannot note the open payment: {e}"));
        }
        let mut call = self.client.post(self.url.clone()).json(&request);
        // The INIT is a span of the fee request's trace (W3C Trace Context).
        if let Some(tp) = crate::tracecontext::traceparent_for(trace) {
            call = call.header("traceparent", tp);
        }
        let sent = call.send().await;
        super::client::outcome(sent, super::client::BodyKept::Always).await
    }
}

/// `LoaiBanTin` is `INIT` (current clients) or `Init` (older ones).
fn is_init(request: &Value) -> bool {
    request["LoaiBanTin"]
        .as_str()
        .is_some_and(|k| k.eq_ignore_ascii_case("init"))
}

/// The payment platform's verdict is its `MaLoi` inside a 200 reply.
const REPLY_CODES: ReplyCodes = ReplyCodes {
    platform: "payment platform",
    field: "MaLoi",
    code: |reply| reply["MaLoi"].as_str().map(str::to_string),
    message: |reply| reply["MoTaLoi"].as_str().unwrap_or_default(),
    means: |code| match code {
        // 05: the reference is already used — by this same Init whose reply was lost.
        "00" | "05" => CodeMeans::Delivered,
        "01" | "07" => CodeMeans::Permanent,
        _ => CodeMeans::Retry(""),
    },
};

impl RetryClassifier for PaymentConnector {
    fn classify(&self, outcome: &RawOutcome) -> Verdict {
        REPLY_CODES.classify(outcome)
    }
}

impl Connector for PaymentConnector {
    fn send<'a>(&'a self, message: &'a Envelope, body: &'a Outbound) -> BoxFuture<'a, RawOutcome> {
        Box::pin(async move {
            match serde_json::from_slice::<Value>(&body.body) {
                Ok(request) if is_init(&request) => {
                    self.init(&message.unit, &message.trace_id, request).await
                }
                _ => RawOutcome::Invalid(
                    "the payment platform takes an INIT message (map the route's events with a payment mapping)".into(),
                ),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_agree_with_the_bundled_mock() {
        use lienthong_mocks::payment as mock;
        let init = json!({"LoaiBanTin": "INIT", "PhienBan": "1.0.6", "MaDoiTac": "BKHCN",
            "MaThamChieu": "R1", "SoTien": 500000, "LoaiHinhThanhToan": "PAY",
            "MaKenhThanhToan": "1", "MaThietBi": "", "NgonNgu": "vi", "MaTienTe": "VND",
            "MaNganHang": "", "ThongTinGiaoDich": "Nop phi", "ThoiGianGD": "20240308091245",
            "Ip": "127.0.0.1"});
        assert_eq!(INIT_FIELDS, mock::INIT_SIGNED);
        assert_eq!(QUERY_FIELDS, mock::QUERY_SIGNED);
        assert_eq!(CONFIRM_FIELDS, mock::CONFIRM_SIGNED);
        let texts: Vec<String> = INIT_FIELDS.iter().map(|f| field_text(&init[*f])).collect();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        assert_eq!(signature(&init, &INIT_FIELDS, "k"), mock::sign(&texts, "k"));
        let mut confirm = json!({"LoaiBanTin": "CONFIRM", "MaLoi": "00", "MaDoiTac": "BKHCN",
            "MaThamChieu": "R1", "SoTien": "500000", "MaTienTe": "VND", "MaGiaoDich": "GD1",
            "MaNganHang": "970436", "ThoiGianGD": "20240308091245", "ThongTinGiaoDich": "Nop phi"});
        confirm["MaXacThuc"] = json!(mock::sign(
            &[
                "CONFIRM",
                "00",
                "BKHCN",
                "R1",
                "500000",
                "VND",
                "GD1",
                "970436",
                "20240308091245",
                "Nop phi"
            ],
            "k"
        ));
        assert!(verify_confirm(&confirm, "k"));
        confirm["MaLoi"] = json!("01");
        assert!(!verify_confirm(&confirm, "k"), "an altered outcome fails");
    }
}
