//! Mock of the portal's payment platform (`POST /payment`, the message type in
//! `LoaiBanTin`): `Init` creates a transaction and returns its id and a payment URL;
//! `GetBill` reports it; after `callback_delay` the mock sends a signed `Confirm` to the
//! bus's callback URL with a paid / failed / expired outcome (proportions configurable,
//! deterministic from the seed and `MaThamChieu`), resending until acknowledged.
//!
//! Signatures (`MaXacThuc`): lowercase hex SHA-256 of the listed fields joined with `|`,
//! followed by `|` and the shared key — the platform's current scheme as integration code
//! shows it (older versions used HMAC-SHA256, not modelled here):
//! - `Init`: `LoaiBanTin|PhienBan|MaDoiTac|MaThamChieu|SoTien|ThoiGianGD|key`
//! - `Confirm`: `LoaiBanTin|MaDoiTac|MaThamChieu|MaGiaoDich|MaLoi|SoTien|key`
//!
//! `MaLoi` answers: `00` success · `01` invalid field (named in `MoTaLoi`) · `05` duplicate
//! `MaThamChieu` · `07` wrong signature · `04` transaction not found. In a `Confirm`: `00`
//! paid, `01` failed, `02` expired. The bus acknowledges a `Confirm` with HTTP 2xx and
//! `{"MaLoi": "00"}`; anything else is resent every `retry_every`.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct PaymentConfig {
    pub partner_code: String,
    pub shared_key: String,
    /// Where `Confirm` callbacks go (the bus's `/callbacks/payment`).
    pub callback_url: Option<String>,
    pub callback_delay: Duration,
    pub retry_every: Duration,
    /// Most callback attempts per transaction.
    pub max_callbacks: u32,
    /// Shares of paid and failed outcomes; the rest expire.
    pub paid: f64,
    pub failed: f64,
    pub seed: u64,
}

impl Default for PaymentConfig {
    fn default() -> Self {
        PaymentConfig {
            partner_code: "BKHCN".into(),
            shared_key: "mock-payment-shared-key".into(),
            callback_url: Some("http://127.0.0.1:8080/callbacks/payment".into()),
            callback_delay: Duration::from_secs(2),
            retry_every: Duration::from_secs(2),
            max_callbacks: 50,
            paid: 0.8,
            failed: 0.1,
            seed: crate::DEFAULT_SEED,
        }
    }
}

/// A transaction as the mock holds it.
#[derive(Clone, Debug, Serialize)]
pub struct Transaction {
    pub ma_giao_dich: String,
    pub ma_tham_chieu: String,
    pub so_tien: u64,
    pub ma_ho_so: String,
    /// `pending` until the callback is sent, then `paid`, `failed` or `expired`.
    pub state: String,
    pub callbacks_sent: u32,
    pub acknowledged: bool,
}

#[derive(Default)]
struct Inner {
    by_reference: BTreeMap<String, Transaction>,
}

#[derive(Clone)]
pub struct Payment {
    config: PaymentConfig,
    inner: Arc<Mutex<Inner>>,
    http: reqwest::Client,
}

/// `MaXacThuc` over `fields` with the shared key.
pub fn sign(fields: &[&str], key: &str) -> String {
    let mut text = fields.join("|");
    text.push('|');
    text.push_str(key);
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn answer(code: &str, message: impl Into<String>) -> Json<Value> {
    Json(json!({ "MaLoi": code, "MoTaLoi": message.into() }))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

impl Payment {
    pub fn new(config: PaymentConfig) -> Payment {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client");
        Payment {
            config,
            inner: Arc::default(),
            http,
        }
    }

    /// Forget every transaction (`POST /_mock/reset`).
    pub fn reset(&self) {
        self.inner.lock().unwrap().by_reference.clear();
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/payment", post(handle))
            .route("/_mock/payment/transactions", get(transactions))
            .with_state(self.clone())
    }

    pub fn transactions(&self) -> Vec<Transaction> {
        self.inner
            .lock()
            .unwrap()
            .by_reference
            .values()
            .cloned()
            .collect()
    }

    /// The outcome for a reference: deterministic from the seed and the reference.
    fn outcome(&self, reference: &str) -> (&'static str, &'static str) {
        let h = Sha256::digest(format!("{}:{reference}", self.config.seed).as_bytes());
        let roll = u64::from_be_bytes(h[..8].try_into().expect("8 bytes")) as f64 / u64::MAX as f64;
        if roll < self.config.paid {
            ("00", "paid")
        } else if roll < self.config.paid + self.config.failed {
            ("01", "failed")
        } else {
            ("02", "expired")
        }
    }

    fn init(&self, body: &Value) -> Json<Value> {
        let f = |name: &str| text(&body[name]);
        for required in [
            "PhienBan",
            "MaDoiTac",
            "MaThamChieu",
            "SoTien",
            "ThoiGianGD",
            "MaXacThuc",
        ] {
            if f(required).is_empty() {
                return answer("01", format!("{required} là bắt buộc"));
            }
        }
        let reference = f("MaThamChieu");
        if reference.chars().count() > 20 {
            return answer("01", "MaThamChieu tối đa 20 ký tự");
        }
        let Ok(amount) = f("SoTien").parse::<u64>() else {
            return answer("01", "SoTien phải là số nguyên dương");
        };
        if amount == 0 {
            return answer("01", "SoTien phải là số nguyên dương");
        }
        let time = f("ThoiGianGD");
        if time.len() != 14 || !time.bytes().all(|b| b.is_ascii_digit()) {
            return answer("01", "ThoiGianGD phải có dạng yyyyMMddHHmmss");
        }
        let dossier = text(&body["ThongTinBienLai"]["MaHoSo"]);
        if dossier.is_empty() {
            return answer("01", "ThongTinBienLai.MaHoSo là bắt buộc");
        }
        let expected = sign(
            &[
                "Init",
                &f("PhienBan"),
                &f("MaDoiTac"),
                &reference,
                &f("SoTien"),
                &time,
            ],
            &self.config.shared_key,
        );
        if f("MaXacThuc") != expected {
            return answer("07", "Sai chữ ký MaXacThuc");
        }
        let mut g = self.inner.lock().unwrap();
        if g.by_reference.contains_key(&reference) {
            return answer("05", format!("MaThamChieu {reference} đã được sử dụng"));
        }
        let id = format!("GD{:010}", g.by_reference.len() + 1);
        g.by_reference.insert(
            reference.clone(),
            Transaction {
                ma_giao_dich: id.clone(),
                ma_tham_chieu: reference.clone(),
                so_tien: amount,
                ma_ho_so: dossier,
                state: "pending".into(),
                callbacks_sent: 0,
                acknowledged: false,
            },
        );
        drop(g);
        if let Some(url) = self.config.callback_url.clone() {
            tokio::spawn(self.clone().confirm(url, reference));
        }
        Json(json!({
            "MaLoi": "00", "MoTaLoi": "Thành công", "MaGiaoDich": id,
            "UrlThanhToan": format!("https://thanhtoan.mock/pay/{id}"),
        }))
    }

    /// Send the signed `Confirm` until the bus acknowledges it.
    async fn confirm(self, url: String, reference: String) {
        tokio::time::sleep(self.config.callback_delay).await;
        let (code, state) = self.outcome(&reference);
        let tx = {
            let mut g = self.inner.lock().unwrap();
            let Some(tx) = g.by_reference.get_mut(&reference) else {
                return;
            };
            tx.state = state.into();
            tx.clone()
        };
        let amount = tx.so_tien.to_string();
        let signature = sign(
            &[
                "Confirm",
                &self.config.partner_code,
                &reference,
                &tx.ma_giao_dich,
                code,
                &amount,
            ],
            &self.config.shared_key,
        );
        let body = json!({
            "LoaiBanTin": "Confirm", "MaDoiTac": self.config.partner_code, "MaThamChieu": reference,
            "MaGiaoDich": tx.ma_giao_dich, "MaLoi": code, "SoTien": amount, "MaXacThuc": signature,
        });
        for _ in 0..self.config.max_callbacks {
            let acked = match self.http.post(&url).json(&body).send().await {
                Ok(r) if r.status().is_success() => {
                    r.json::<Value>().await.is_ok_and(|v| v["MaLoi"] == "00")
                }
                _ => false,
            };
            {
                let mut g = self.inner.lock().unwrap();
                if let Some(tx) = g.by_reference.get_mut(&reference) {
                    tx.callbacks_sent += 1;
                    tx.acknowledged = acked;
                }
            }
            if acked {
                return;
            }
            tokio::time::sleep(self.config.retry_every).await;
        }
    }

    fn bill(&self, body: &Value) -> Json<Value> {
        let reference = text(&body["MaThamChieu"]);
        match self.inner.lock().unwrap().by_reference.get(&reference) {
            Some(tx) => Json(json!({
                "MaLoi": "00", "MoTaLoi": "Thành công", "MaGiaoDich": tx.ma_giao_dich,
                "MaThamChieu": tx.ma_tham_chieu, "SoTien": tx.so_tien, "TrangThai": tx.state,
            })),
            None => answer("04", format!("không tìm thấy giao dịch {reference}")),
        }
    }
}

async fn handle(State(payment): State<Payment>, Json(body): Json<Value>) -> Json<Value> {
    match body["LoaiBanTin"].as_str().unwrap_or_default() {
        "Init" => payment.init(&body),
        "GetBill" => payment.bill(&body),
        other => answer(
            "01",
            format!("LoaiBanTin `{other}` không được hỗ trợ (Init, GetBill)"),
        ),
    }
}

async fn transactions(State(payment): State<Payment>) -> Json<Value> {
    Json(json!({ "transactions": payment.transactions() }))
}
