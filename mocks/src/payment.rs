//! Mock of the portal's payment platform (`POST /payment`, the message type in
//! `LoaiBanTin`, upper case as current clients send it; the older mixed-case names are
//! taken too): `INIT` creates a transaction and returns its id and a payment URL;
//! `QUERY` reports its state (`TrangThaiGD`: 1 paid, 3 pending, 4 failed); `GET_BILL`
//! returns the receipt of a paid one. After `callback_delay` the transaction is settled
//! (paid / failed / expired, proportions configurable, deterministic from the seed and
//! `MaThamChieu`) and a signed `CONFIRM` goes to the bus's callback URL, resent until
//! acknowledged — unless callbacks are being lost (`POST /_mock/payment/callbacks
//! {"lose": true}`), which is what the bus's reconciliation by `QUERY` is for.
//!
//! Signatures (`MaXacThuc`): lowercase hex SHA-256 of the listed fields joined with `|`,
//! followed by `|` and the shared key, in the field orders of current integration code:
//! - `INIT`: `LoaiBanTin|PhienBan|MaDoiTac|MaThamChieu|SoTien|LoaiHinhThanhToan|
//!   MaKenhThanhToan|MaThietBi|NgonNgu|MaTienTe|MaNganHang|ThongTinGiaoDich|ThoiGianGD|Ip`
//! - `GET_BILL`, `QUERY`: `LoaiBanTin|PhienBan|MaDoiTac|MaThamChieu|ThoiGianGD`
//! - `CONFIRM`: `LoaiBanTin|MaLoi|MaDoiTac|MaThamChieu|SoTien|MaTienTe|MaGiaoDich|
//!   MaNganHang|ThoiGianGD|ThongTinGiaoDich`
//!
//! `ThongTinBienLai` of an `INIT` must carry `MaDonVi`, `TenDonVi`, `MaHoSo`, `MaDVC`,
//! `TenDVC`, `MaTTHC`, `TenTTHC`, the beneficiary account `TKThuHuong`, `MaNHThuHuong`,
//! `TenTKThuHuong`, `NoiDungThanhToan`, the payer `HoTenNguoiNop`, and `DSKhoanNop[]
//! {NoiDung, SoTien}` adding up to `SoTien`.
//!
//! `MaLoi` answers: `00` success · `01` invalid field (named in `MoTaLoi`) · `05` duplicate
//! `MaThamChieu` · `07` wrong signature · `04` transaction not found · `08` not paid, no
//! receipt (assumed: the code for this case is not public). In a `CONFIRM`: `00` paid,
//! `01` failed, `02` expired. The bus acknowledges a `CONFIRM` with HTTP 2xx and
//! `{"MaLoi": "00"}`; anything else is resent every `retry_every`. The receipt's fields
//! (`BienLai {SoBienLai, KyHieu, NgayThu, DuongDanBienLai}`) are assumed.

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
    /// The `QUERY` and `GET_BILL` requests made for it.
    pub queries: u32,
    pub bills: u32,
    /// The W3C `traceparent` its INIT came with, if any.
    pub traceparent: Option<String>,
    #[serde(skip)]
    init: Value,
}

#[derive(Default)]
struct Inner {
    by_reference: BTreeMap<String, Transaction>,
    /// Callbacks are not sent while this is set (the bus must reconcile by `QUERY`).
    lose_callbacks: bool,
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
        let http = crate::http_client()
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
        let mut g = self.inner.lock().unwrap();
        g.by_reference.clear();
        g.lose_callbacks = false;
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/payment", post(handle))
            .route("/_mock/payment/transactions", get(transactions))
            .route("/_mock/payment/callbacks", post(switch_callbacks))
            .with_state(self.clone())
    }

    /// Record the `traceparent` the INIT of `reference` came with.
    fn note_traceparent(&self, reference: &str, traceparent: Option<String>) {
        let mut g = self.inner.lock().unwrap();
        if let Some(t) = g.by_reference.get_mut(reference) {
            t.traceparent = traceparent;
        }
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
        if f("MaXacThuc").is_empty() {
            return answer("01", "MaXacThuc là bắt buộc");
        }
        let amount = match check_init(body) {
            Ok(amount) => amount,
            Err(e) => return answer("01", e),
        };
        let reference = f("MaThamChieu");
        let signed: Vec<String> = INIT_SIGNED.iter().map(|n| f(n)).collect();
        let signed: Vec<&str> = signed.iter().map(String::as_str).collect();
        if f("MaXacThuc") != sign(&signed, &self.config.shared_key) {
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
                ma_ho_so: text(&body["ThongTinBienLai"]["MaHoSo"]),
                state: "pending".into(),
                callbacks_sent: 0,
                acknowledged: false,
                queries: 0,
                bills: 0,
                traceparent: None,
                init: body.clone(),
            },
        );
        drop(g);
        tokio::spawn(self.clone().settle(reference.clone()));
        Json(json!({
            "MaLoi": "00", "MoTaLoi": "Thành công", "MaGiaoDich": id, "MaThamChieu": reference,
            "UrlThanhToan": format!("https://thanhtoan.mock/pay/{id}"),
        }))
    }

    /// After `callback_delay`, the citizen has paid (or not): settle the transaction and
    /// send the signed `CONFIRM` until the bus acknowledges it.
    async fn settle(self, reference: String) {
        tokio::time::sleep(self.config.callback_delay).await;
        let (code, state) = self.outcome(&reference);
        let (tx, lose) = {
            let mut g = self.inner.lock().unwrap();
            let lose = g.lose_callbacks;
            let Some(tx) = g.by_reference.get_mut(&reference) else {
                return;
            };
            tx.state = state.into();
            (tx.clone(), lose)
        };
        let Some(url) = self.config.callback_url.clone().filter(|_| !lose) else {
            return;
        };
        let init = |name: &str| text(&tx.init[name]);
        let mut body = json!({
            "LoaiBanTin": "CONFIRM", "MaLoi": code, "MaDoiTac": self.config.partner_code,
            "MaThamChieu": reference, "SoTien": tx.so_tien.to_string(),
            "MaTienTe": init("MaTienTe"), "MaGiaoDich": tx.ma_giao_dich,
            "MaNganHang": "970436", "ThoiGianGD": init("ThoiGianGD"),
            "ThongTinGiaoDich": init("ThongTinGiaoDich"),
        });
        let signed: Vec<String> = CONFIRM_SIGNED.iter().map(|n| text(&body[*n])).collect();
        let signed: Vec<&str> = signed.iter().map(String::as_str).collect();
        body["MaXacThuc"] = json!(sign(&signed, &self.config.shared_key));
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

    /// A signed `QUERY` or `GET_BILL`: the transaction it names, or the answer to give.
    fn lookup(&self, body: &Value) -> Result<Transaction, Json<Value>> {
        let f = |name: &str| text(&body[name]);
        let signed: Vec<String> = QUERY_SIGNED.iter().map(|n| f(n)).collect();
        let signed: Vec<&str> = signed.iter().map(String::as_str).collect();
        if f("MaXacThuc") != sign(&signed, &self.config.shared_key) {
            return Err(answer("07", "Sai chữ ký MaXacThuc"));
        }
        let reference = f("MaThamChieu");
        let mut g = self.inner.lock().unwrap();
        let Some(tx) = g.by_reference.get_mut(&reference) else {
            return Err(answer(
                "04",
                format!("không tìm thấy giao dịch {reference}"),
            ));
        };
        if f("LoaiBanTin").eq_ignore_ascii_case("QUERY") {
            tx.queries += 1;
        } else {
            tx.bills += 1;
        }
        Ok(tx.clone())
    }

    fn query(&self, body: &Value) -> Json<Value> {
        let tx = match self.lookup(body) {
            Ok(tx) => tx,
            Err(answer) => return answer,
        };
        let state = match tx.state.as_str() {
            "paid" => 1,
            "pending" => 3,
            _ => 4,
        };
        Json(json!({
            "MaLoi": "00", "MoTaLoi": "Thành công", "MaGiaoDich": tx.ma_giao_dich,
            "MaThamChieu": tx.ma_tham_chieu, "SoTien": tx.so_tien, "TrangThaiGD": state,
        }))
    }

    fn bill(&self, body: &Value) -> Json<Value> {
        let tx = match self.lookup(body) {
            Ok(tx) => tx,
            Err(answer) => return answer,
        };
        if tx.state != "paid" {
            return answer(
                "08",
                format!("giao dịch {} chưa được thanh toán", tx.ma_tham_chieu),
            );
        }
        let number = tx.ma_giao_dich.trim_start_matches("GD");
        Json(json!({
            "MaLoi": "00", "MoTaLoi": "Thành công", "MaGiaoDich": tx.ma_giao_dich,
            "MaThamChieu": tx.ma_tham_chieu, "SoTien": tx.so_tien,
            "BienLai": {
                "SoBienLai": format!("BL{number}"), "KyHieu": "BKHCN/26E",
                "NgayThu": text(&tx.init["ThoiGianGD"]),
                "DuongDanBienLai": format!("https://thanhtoan.mock/bienlai/{}", tx.ma_giao_dich),
            },
        }))
    }

    /// Lose (or stop losing) the `CONFIRM` callbacks of transactions settled from now on.
    pub fn lose_callbacks(&self, lose: bool) {
        self.inner.lock().unwrap().lose_callbacks = lose;
    }
}

/// Fields signed in an `INIT`, in order.
pub const INIT_SIGNED: [&str; 14] = [
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
/// Fields signed in a `QUERY` or `GET_BILL`, in order.
pub const QUERY_SIGNED: [&str; 5] = [
    "LoaiBanTin",
    "PhienBan",
    "MaDoiTac",
    "MaThamChieu",
    "ThoiGianGD",
];
/// Fields signed in a `CONFIRM`, in order.
pub const CONFIRM_SIGNED: [&str; 10] = [
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

/// The platform's own check of an `INIT` body, but for its signature (`MaXacThuc`, which
/// the bus's connector adds to what the mapping produces): the amount, or what is wrong.
/// The suite applies it to every fee mapping's expected output.
pub fn check_init(body: &Value) -> Result<u64, String> {
    let f = |name: &str| text(&body[name]);
    for required in [
        "PhienBan",
        "MaDoiTac",
        "MaThamChieu",
        "SoTien",
        "ThoiGianGD",
    ] {
        if f(required).is_empty() {
            return Err(format!("{required} là bắt buộc"));
        }
    }
    if f("MaThamChieu").chars().count() > 20 {
        return Err("MaThamChieu tối đa 20 ký tự".into());
    }
    let amount = f("SoTien")
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or("SoTien phải là số nguyên dương")?;
    let time = f("ThoiGianGD");
    if time.len() != 14 || !time.bytes().all(|b| b.is_ascii_digit()) {
        return Err("ThoiGianGD phải có dạng yyyyMMddHHmmss".into());
    }
    check_receipt_info(&body["ThongTinBienLai"], amount)?;
    Ok(amount)
}

/// `ThongTinBienLai` of a procedure fee: every required field, and the items adding up.
fn check_receipt_info(info: &Value, amount: u64) -> Result<(), String> {
    for required in [
        "MaDonVi",
        "TenDonVi",
        "MaHoSo",
        "MaDVC",
        "TenDVC",
        "MaTTHC",
        "TenTTHC",
        "TKThuHuong",
        "MaNHThuHuong",
        "TenTKThuHuong",
        "NoiDungThanhToan",
        "HoTenNguoiNop",
    ] {
        if text(&info[required]).trim().is_empty() {
            return Err(format!("ThongTinBienLai.{required} là bắt buộc"));
        }
    }
    let Some(items) = info["DSKhoanNop"].as_array().filter(|a| !a.is_empty()) else {
        return Err("ThongTinBienLai.DSKhoanNop là bắt buộc".into());
    };
    let mut total = 0u64;
    for (i, item) in items.iter().enumerate() {
        if text(&item["NoiDung"]).trim().is_empty() {
            return Err(format!(
                "ThongTinBienLai.DSKhoanNop[{i}].NoiDung là bắt buộc"
            ));
        }
        let Ok(n) = text(&item["SoTien"]).parse::<u64>() else {
            return Err(format!(
                "ThongTinBienLai.DSKhoanNop[{i}].SoTien phải là số nguyên"
            ));
        };
        total += n;
    }
    if total != amount {
        return Err(format!("tổng DSKhoanNop ({total}) khác SoTien ({amount})"));
    }
    Ok(())
}

async fn handle(
    State(payment): State<Payment>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    let kind = body["LoaiBanTin"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_uppercase();
    match kind.as_str() {
        "INIT" => {
            let answer = payment.init(&body);
            let traceparent = headers
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            payment.note_traceparent(&text(&body["MaThamChieu"]), traceparent);
            answer
        }
        "GET_BILL" | "GETBILL" => payment.bill(&body),
        "QUERY" => payment.query(&body),
        _ => answer(
            "01",
            format!(
                "LoaiBanTin `{}` không được hỗ trợ (INIT, QUERY, GET_BILL)",
                text(&body["LoaiBanTin"])
            ),
        ),
    }
}

#[derive(serde::Deserialize)]
struct CallbackSwitch {
    lose: bool,
}

async fn switch_callbacks(
    State(payment): State<Payment>,
    Json(switch): Json<CallbackSwitch>,
) -> Json<Value> {
    payment.lose_callbacks(switch.lose);
    Json(json!({ "lose": switch.lose }))
}

async fn transactions(State(payment): State<Payment>) -> Json<Value> {
    Json(json!({ "transactions": payment.transactions() }))
}
