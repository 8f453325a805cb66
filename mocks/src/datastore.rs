//! Mock of the personal/organisational electronic data store (Kho quản lý dữ liệu điện tử
//! của tổ chức, cá nhân) and of the citizen notification channels (SMS, Zalo).
//!
//! Neither has a public specification; these are plausible REST interfaces, documented
//! here and in the README, for the connectors to target:
//! - `POST /datastore/documents` `{"owner", "fileName", "contentType", "content" (base64)}`
//!   → `{"fileId", "sha256", "url"}`. `owner` is a 12-digit số định danh or a 10-digit mã
//!   số doanh nghiệp (optionally `-NNN` for a branch). The same content for the same owner
//!   gives the same `fileId`, so a retried upload never stores twice. A document said to
//!   be a PDF must be one (`%PDF-`). `url` is where the file can be fetched
//!   (`GET /datastore/files/{fileId}`): what the portal's `DuongDanTepTinKetQua` names.
//! - `GET /datastore/owners/{owner}/documents` lists an owner's documents.
//! - `POST /notify/messages` → `{"messageId"}`: an SMS `{"channel": "sms", "phone",
//!   "text"}`, or a Zalo template message `{"channel": "zalo", "phone", "templateId",
//!   "params": {...}}` — Zalo's notification service sends registered templates with
//!   their parameters, never free text. Templates of this mock (assumed ids): `KQ_SAN_SANG`
//!   result ready {`ma_ho_so`, `so_giay_to`}, `YC_BO_SUNG` supplement requested
//!   {`ma_ho_so`, `noi_dung`}, `NOP_PHI` fee due {`ma_ho_so`, `so_tien`, `duong_dan`};
//!   `GET /_mock/notify/messages` lists what was sent.
//!
//! Errors are 400 `{"error": {"field", "message"}}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A stored document (its content is kept for inspection as its length and hash).
#[derive(Clone, Debug, Serialize)]
pub struct Document {
    pub file_id: String,
    pub owner: String,
    pub file_name: String,
    pub content_type: String,
    pub sha256: String,
    pub size: usize,
}

/// A message sent to a citizen.
#[derive(Clone, Debug, Serialize)]
pub struct Notification {
    pub message_id: String,
    pub channel: String,
    pub phone: String,
    /// The SMS text; for Zalo, the template rendered with its parameters.
    pub text: String,
    /// Zalo only: the template and its parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<serde_json::Map<String, Value>>,
}

/// The Zalo templates the mock knows: id, required parameters, text.
const ZALO_TEMPLATES: [(&str, &[&str], &str); 3] = [
    (
        "KQ_SAN_SANG",
        &["ma_ho_so", "so_giay_to"],
        "Hồ sơ {ma_ho_so} đã có kết quả ({so_giay_to}).",
    ),
    (
        "YC_BO_SUNG",
        &["ma_ho_so", "noi_dung"],
        "Hồ sơ {ma_ho_so} cần bổ sung: {noi_dung}.",
    ),
    (
        "NOP_PHI",
        &["ma_ho_so", "so_tien", "duong_dan"],
        "Hồ sơ {ma_ho_so} chờ nộp phí {so_tien} đồng: {duong_dan}",
    ),
];

/// A Zalo message: its template id, parameters and rendered text.
type ZaloMessage = (String, serde_json::Map<String, Value>, String);

/// A field of a notification request that the mock refuses, and why.
pub type Refusal = (String, String);

/// A Zalo template message, or which field is wrong and why.
fn zalo_text(body: &Value) -> Result<ZaloMessage, Refusal> {
    let bad = |field: &str, why: &str| (field.to_string(), why.to_string());
    if body.get("text").is_some_and(|t| !t.is_null()) {
        return Err(bad(
            "text",
            "Zalo takes a registered template (templateId, params), not free text",
        ));
    }
    let id = body["templateId"].as_str().unwrap_or_default();
    let Some((_, needed, text)) = ZALO_TEMPLATES.iter().find(|(t, _, _)| *t == id) else {
        return Err(bad(
            "templateId",
            "one of the registered templates: KQ_SAN_SANG, YC_BO_SUNG, NOP_PHI",
        ));
    };
    let Some(params) = body["params"].as_object() else {
        return Err(bad("params", "the template's parameters, as an object"));
    };
    let mut out = text.to_string();
    for name in *needed {
        let field = format!("params.{name}");
        let v = match params.get(*name) {
            None | Some(Value::Null) => {
                return Err(bad(&field, &format!("required by the template {id}")));
            }
            // Zalo's template parameters are text: a number must be sent as "2500000".
            Some(Value::String(v)) => v,
            Some(other) => {
                let kind = match other {
                    Value::Number(_) => "a number",
                    Value::Bool(_) => "true/false",
                    Value::Array(_) => "a list",
                    _ => "an object",
                };
                return Err(bad(
                    &field,
                    &format!("must be text (Zalo template parameters are strings), not {kind}"),
                ));
            }
        };
        if v.trim().is_empty() {
            return Err(bad(
                &field,
                &format!("required by the template {id}; it is empty"),
            ));
        }
        out = out.replace(&format!("{{{name}}}"), v);
    }
    Ok((id.to_string(), params.clone(), out))
}

/// A notification the mock takes: channel, phone, the text sent, and for Zalo the
/// template and its parameters.
pub struct CheckedNotification {
    pub channel: String,
    pub phone: String,
    pub text: String,
    pub template_id: Option<String>,
    pub params: Option<serde_json::Map<String, Value>>,
}

/// The notification service's own check of a request body (`POST /notify/messages`):
/// the suite applies it to every mapping's expected output for this target too.
pub fn check_notification(body: &Value) -> Result<CheckedNotification, Refusal> {
    let bad = |field: &str, why: &str| Err((field.to_string(), why.to_string()));
    let channel = body["channel"].as_str().unwrap_or_default();
    if !matches!(channel, "sms" | "zalo") {
        return bad("channel", "sms or zalo");
    }
    let phone = body["phone"].as_str().unwrap_or_default();
    if !valid_phone(phone) {
        return bad(
            "phone",
            "a Vietnamese phone number: 0 and 9 digits, or +84 and 9 digits",
        );
    }
    let (text, template_id, params) = if channel == "zalo" {
        let (id, params, text) = zalo_text(body)?;
        (text, Some(id), Some(params))
    } else {
        let text = body["text"].as_str().unwrap_or_default();
        if text.trim().is_empty() || text.chars().count() > 500 {
            return bad("text", "1 to 500 characters");
        }
        (text.to_string(), None, None)
    };
    Ok(CheckedNotification {
        channel: channel.to_string(),
        phone: phone.to_string(),
        text,
        template_id,
        params,
    })
}

#[derive(Default)]
struct Inner {
    documents: BTreeMap<String, Document>,
    contents: BTreeMap<String, Vec<u8>>,
    notifications: Vec<Notification>,
}

#[derive(Clone, Default)]
pub struct DataStore {
    inner: Arc<Mutex<Inner>>,
}

fn bad(field: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": { "field": field, "message": message } })),
    )
        .into_response()
}

/// A 12-digit số định danh, or a 10-digit mã số doanh nghiệp with an optional `-NNN`.
pub fn valid_owner(owner: &str) -> bool {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    digits(owner, 12)
        || digits(owner, 10)
        || owner
            .split_once('-')
            .is_some_and(|(mst, branch)| digits(mst, 10) && digits(branch, 3))
}

/// A Vietnamese phone number: `0` and 9 digits, or `+84`/`84` and 9 digits.
pub fn valid_phone(phone: &str) -> bool {
    let rest = phone
        .strip_prefix("+84")
        .or_else(|| phone.strip_prefix("84"))
        .or_else(|| phone.strip_prefix('0'));
    rest.is_some_and(|r| r.len() == 9 && r.bytes().all(|b| b.is_ascii_digit()))
}

impl DataStore {
    /// Forget every document and notification (`POST /_mock/reset`).
    pub fn reset(&self) {
        let mut g = self.inner.lock().unwrap();
        g.documents.clear();
        g.contents.clear();
        g.notifications.clear();
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/datastore/documents", post(upload))
            .route("/datastore/owners/{owner}/documents", get(list))
            .route("/datastore/files/{file_id}", get(file))
            .route("/notify/messages", post(notify))
            .route("/_mock/notify/messages", get(sent))
            .route("/_mock/datastore/documents", get(all_documents))
            // Signed scans of results run to tens of megabytes.
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(self.clone())
    }

    pub fn documents(&self) -> Vec<Document> {
        self.inner
            .lock()
            .unwrap()
            .documents
            .values()
            .cloned()
            .collect()
    }

    pub fn notifications(&self) -> Vec<Notification> {
        self.inner.lock().unwrap().notifications.clone()
    }
}

async fn upload(
    State(store): State<DataStore>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let owner = body["owner"].as_str().unwrap_or_default();
    if !valid_owner(owner) {
        return bad(
            "owner",
            "a 12-digit số định danh or a 10-digit mã số doanh nghiệp (-NNN for a branch)",
        );
    }
    let Some(file_name) = body["fileName"].as_str().filter(|s| !s.trim().is_empty()) else {
        return bad("fileName", "required");
    };
    let content_type = body["contentType"].as_str().unwrap_or("application/pdf");
    let Some(content) = body["content"].as_str() else {
        return bad("content", "required, base64");
    };
    let bytes = match base64::engine::general_purpose::STANDARD.decode(content) {
        Ok(b) if !b.is_empty() => b,
        Ok(_) => return bad("content", "the document is empty"),
        Err(e) => return bad("content", &format!("not base64: {e}")),
    };
    if content_type == "application/pdf" && !bytes.starts_with(b"%PDF-") {
        return bad(
            "content",
            "contentType is application/pdf but the content is not a PDF",
        );
    }
    let sha256 = hex(&Sha256::digest(&bytes));
    // Same owner and content → same id: a retried upload is not stored twice.
    let file_id = format!(
        "KDL-{}",
        &hex(&Sha256::digest(format!("{owner}:{sha256}").as_bytes()))[..24]
    );
    let doc = Document {
        file_id: file_id.clone(),
        owner: owner.to_string(),
        file_name: file_name.to_string(),
        content_type: content_type.to_string(),
        sha256: sha256.clone(),
        size: bytes.len(),
    };
    {
        let mut g = store.inner.lock().unwrap();
        g.documents.entry(file_id.clone()).or_insert(doc);
        g.contents.entry(file_id.clone()).or_insert(bytes);
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let url = format!("http://{host}/datastore/files/{file_id}");
    Json(json!({ "fileId": file_id, "sha256": sha256, "url": url })).into_response()
}

async fn file(State(store): State<DataStore>, Path(file_id): Path<String>) -> Response {
    let g = store.inner.lock().unwrap();
    match (g.contents.get(&file_id), g.documents.get(&file_id)) {
        (Some(bytes), Some(doc)) => (
            [(axum::http::header::CONTENT_TYPE, doc.content_type.clone())],
            bytes.clone(),
        )
            .into_response(),
        _ => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

async fn list(State(store): State<DataStore>, Path(owner): Path<String>) -> Json<Value> {
    let docs: Vec<Document> = store
        .inner
        .lock()
        .unwrap()
        .documents
        .values()
        .filter(|d| d.owner == owner)
        .cloned()
        .collect();
    Json(json!({ "owner": owner, "documents": docs }))
}

async fn notify(State(store): State<DataStore>, Json(body): Json<Value>) -> Response {
    let checked = match check_notification(&body) {
        Ok(c) => c,
        Err((field, why)) => return bad(&field, &why),
    };
    let mut g = store.inner.lock().unwrap();
    let message_id = format!("MSG-{:08}", g.notifications.len() + 1);
    g.notifications.push(Notification {
        message_id: message_id.clone(),
        channel: checked.channel,
        phone: checked.phone,
        text: checked.text,
        template_id: checked.template_id,
        params: checked.params,
    });
    Json(json!({ "messageId": message_id })).into_response()
}

async fn all_documents(State(store): State<DataStore>) -> Json<Value> {
    Json(json!({ "documents": store.documents() }))
}

async fn sent(State(store): State<DataStore>) -> Json<Value> {
    Json(json!({ "messages": store.notifications() }))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
