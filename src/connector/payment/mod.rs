//! The payment platform connector: sends `Init` (a fee request, mapped) with the
//! `MaXacThuc` signature, and verifies the signature of the platform's `Confirm` callbacks.
//!
//! `MaXacThuc` is the SHA-256 (lower-case hex) of the message's fields joined with `|`,
//! followed by `|` and the shared key: for `Init` the fields are `LoaiBanTin`, `PhienBan`,
//! `MaDoiTac`, `MaThamChieu`, `SoTien`, `ThoiGianGD`; for `Confirm` they are `LoaiBanTin`,
//! `MaDoiTac`, `MaThamChieu`, `MaGiaoDich`, `MaLoi`, `SoTien`. (Older platform versions used
//! HMAC-SHA256; the bundled mock and this connector use the plain-hash form.)
//!
//! Before sending, the connector notes which unit the `MaThamChieu` belongs to, so the
//! callback can be relayed to that unit.

pub mod config;
mod signature;

pub use signature::{
    CONFIRM_FIELDS, INIT_FIELDS, field_text, reference_note, signature, verify_confirm,
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

    async fn init(&self, unit: &str, mut request: Value) -> RawOutcome {
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
        let sent = self
            .client
            .post(self.url.clone())
            .json(&request)
            .send()
            .await;
        super::client::outcome(sent, super::client::BodyKept::Always).await
    }
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
                Ok(request) if request["LoaiBanTin"] == "Init" => self.init(&message.unit, request).await,
                _ => RawOutcome::Invalid(
                    "the payment platform takes an Init message (map the route's events with a payment mapping)".into(),
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
        let init = json!({"LoaiBanTin": "Init", "PhienBan": "2.0.0", "MaDoiTac": "BKHCN", "MaThamChieu": "R1", "SoTien": 500000, "ThoiGianGD": "20240308091245"});
        let ours = signature(&init, &INIT_FIELDS, "k");
        let mock = lienthong_mocks::payment::sign(
            &["Init", "2.0.0", "BKHCN", "R1", "500000", "20240308091245"],
            "k",
        );
        assert_eq!(ours, mock);
        let mut confirm = json!({"LoaiBanTin": "Confirm", "MaDoiTac": "BKHCN", "MaThamChieu": "R1", "MaGiaoDich": "GD1", "MaLoi": "00", "SoTien": "500000"});
        confirm["MaXacThuc"] = json!(lienthong_mocks::payment::sign(
            &["Confirm", "BKHCN", "R1", "GD1", "00", "500000"],
            "k"
        ));
        assert!(verify_confirm(&confirm, "k"));
        confirm["MaLoi"] = json!("01");
        assert!(!verify_confirm(&confirm, "k"), "an altered outcome fails");
    }
}
