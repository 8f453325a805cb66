//! The national public service portal connector (Cổng Dịch vụ công quốc gia).
//!
//! The mapped body (`{"service": "DongBoHoSoMC", "data": [...]}` or
//! `CapNhatTienDoHoSoMC`) is completed here with what only the connector knows:
//! - `session`: from `POST {url}/login`, kept until the portal says it expired (error 2),
//!   then renewed and the call made again at once;
//! - `madonvi`: the code of the unit the dossier belongs to (`unit_codes`, else the
//!   ministry's), and the `dstcode` header naming the portal's gateway adapter;
//! - `isUpdating` for `DongBoHoSoMC`: whether the portal already has the dossier, asked
//!   with `TraCuuHoSo` (`mahoso`; a non-empty `result[]` means it exists) the first time
//!   and remembered per dossier; a mismatch reported by the portal (error 5, or a
//!   message saying the dossier "đã tồn tại", already exists) flips the memory and the
//!   call is made again at once, as an update.
//!
//! - every `DongBoHoSoMC` row whole: the portal replaces the row it holds with the one it
//!   is sent, so a result (which names only the dossier and its documents) is laid over
//!   the dossier's last row, which the connector keeps ([`rows`]), with the national
//!   databases the unit's lookups consulted for the dossier (`DSKetNoiCSDL`, [`consulted`]).
//!
//! A dossier's `DongBoHoSoMC` reaches the portal before its `CapNhatTienDoHoSoMC` because the
//! outbox delivers a unit's events of one dossier in order (one ordering key for both flows).
//!
//! The ministry's TTHC information system (`kind = "ministry"`) uses this connector too:
//! its interface is not public, and the ministry's system is modelled on the portal's
//! messages (assumed), under its own name in every reason and log line.
//!
//! Replies are HTTP 200 with `error_code`; success is 0, "0" or "00". Codes 3 and -3
//! (business rejection: assumed, their meaning is not public) and 9 (unknown service) are
//! permanent: the message is wrong. The others (1
//! credentials, 2 session, 4 dossier not there yet, 5 isUpdating) and anything unreadable
//! are retried with backoff.

pub mod config;
pub mod consulted;
pub mod ratings;
pub mod rows;

use super::reply_code::{CodeMeans, ReplyCodes};
use super::{BoxFuture, Connector, Outbound, RawOutcome, RetryClassifier, Verdict};
use crate::envelope::Envelope;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Error codes of the portal (as the bundled mock documents them; the real list is not
/// published).
pub const WRONG_CREDENTIALS: i64 = 1;
pub const SESSION_EXPIRED: i64 = 2;
pub const INVALID_FIELD: i64 = 3;
/// Seen in integration code beside 3; assumed to be a business rejection too.
pub const REJECTED: i64 = -3;
pub const NOT_FOUND: i64 = 4;
pub const UPDATE_MISMATCH: i64 = 5;
pub const UNKNOWN_SERVICE: i64 = 9;

/// Most dossiers whose existence at the portal is remembered; past it the memory starts
/// over (a forgotten dossier costs one `TraCuuHoSo`).
const KNOWN_CAP: usize = 200_000;

/// What the connector needs to log in and identify the ministry.
#[derive(Clone, Debug)]
pub struct PortalCredentials {
    pub username: String,
    pub password: String,
    /// The code sent as `madonvi` for units without their own, e.g. `000.00.01.H22`.
    pub madonvi: String,
    /// Each unit's own `madonvi`.
    pub unit_codes: std::collections::BTreeMap<String, String>,
    /// The `dstcode` header.
    pub dstcode: String,
}

impl PortalCredentials {
    /// The `madonvi` of `unit`'s dossiers.
    pub fn unit_code(&self, unit: &str) -> &str {
        self.unit_codes.get(unit).unwrap_or(&self.madonvi)
    }
}

/// Whether a reply says the dossier already exists (sent as new, but it is not).
fn says_already_exists(reply: &Value) -> bool {
    reply["message"]
        .as_str()
        .is_some_and(|m| m.to_lowercase().contains("đã tồn tại"))
}

/// Why `TraCuuHoSo` gave no answer.
enum Lookup {
    SessionExpired,
    Failed(RawOutcome),
}

pub struct PortalConnector {
    /// How reasons and logs name the platform: `portal`, or `ministry TTHC system`.
    platform: &'static str,
    client: reqwest::Client,
    login_url: reqwest::Url,
    api_url: reqwest::Url,
    creds: PortalCredentials,
    session: tokio::sync::Mutex<Option<String>>,
    /// MaHoSo → whether the portal has it.
    known: Mutex<HashMap<String, bool>>,
    /// Each dossier's last row delivered.
    rows: rows::KeptRows,
}

/// The portal's `error_code` as a number (it may come as 0, "0" or "00").
pub fn error_code(reply: &Value) -> Option<i64> {
    match &reply["error_code"] {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl PortalConnector {
    pub fn new(
        url: &str,
        timeout: Duration,
        creds: PortalCredentials,
        tls: Option<&super::client::TlsConfig>,
        rows: rows::KeptRows,
    ) -> Result<Self, String> {
        let base = url.trim_end_matches('/');
        let parse = |u: String| reqwest::Url::parse(&u).map_err(|e| format!("{u}: {e}"));
        let client = super::client::client(timeout, tls)?;
        Ok(PortalConnector {
            platform: "portal",
            client,
            login_url: parse(format!("{base}/login"))?,
            api_url: parse(format!("{base}/api"))?,
            creds,
            session: tokio::sync::Mutex::new(None),
            known: Mutex::new(HashMap::new()),
            rows,
        })
    }

    /// The same connector, naming the platform `platform` in reasons and logs.
    pub fn named(mut self, platform: &'static str) -> Self {
        self.platform = platform;
        self
    }

    /// POST a JSON body; the reply's status and body (or why there is none). A call made
    /// for a message is a span of its trace (`traceparent`; a merged call carries the
    /// trace of the message it was built around).
    async fn post(
        &self,
        url: &reqwest::Url,
        body: &Value,
        trace: Option<&str>,
    ) -> Result<(u16, String), RawOutcome> {
        let mut request = self
            .client
            .post(url.clone())
            .header("dstcode", &self.creds.dstcode)
            .json(body);
        if let Some(tp) = trace.and_then(crate::tracecontext::traceparent_for) {
            request = request.header("traceparent", tp);
        }
        let sent = request.send().await;
        match super::client::outcome(sent, super::client::BodyKept::Always).await {
            RawOutcome::Response {
                status: 200, body, ..
            } => Ok((200, body)),
            other => Err(other),
        }
    }

    /// The current session, logging in when there is none.
    async fn session(&self) -> Result<String, RawOutcome> {
        let mut guard = self.session.lock().await;
        if let Some(s) = guard.as_ref() {
            return Ok(s.clone());
        }
        let body = json!({"username": self.creds.username, "password": self.creds.password});
        let (status, text) = self.post(&self.login_url, &body, None).await?;
        let reply: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match (error_code(&reply), reply["session"].as_str()) {
            (Some(0), Some(s)) => {
                tracing::info!(platform = self.platform, "logged in");
                *guard = Some(s.to_string());
                Ok(s.to_string())
            }
            _ => Err(RawOutcome::Response {
                status,
                retry_after: None,
                body: format!("login: {text}"),
            }),
        }
    }

    async fn forget_session(&self, stale: &str) {
        let mut guard = self.session.lock().await;
        if guard.as_deref() == Some(stale) {
            *guard = None;
        }
    }

    /// Whether the portal has any of `codes`: remembered, or asked with `TraCuuHoSo`.
    async fn any_exists(
        &self,
        codes: &[String],
        session: &str,
        madonvi: &str,
        trace: Option<&str>,
    ) -> Result<bool, Lookup> {
        let mut any = false;
        for code in codes {
            let known = self.known.lock().unwrap().get(code).copied();
            let exists = match known {
                Some(e) => e,
                None => {
                    let body = json!({"service": "TraCuuHoSo", "session": session, "madonvi": madonvi, "mahoso": code});
                    let (status, text) = self
                        .post(&self.api_url, &body, trace)
                        .await
                        .map_err(Lookup::Failed)?;
                    let reply: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    let e = match error_code(&reply) {
                        // A non-empty result[] means it exists (older portals: code 0).
                        Some(0) => reply["result"].as_array().is_none_or(|r| !r.is_empty()),
                        Some(NOT_FOUND) => false,
                        Some(SESSION_EXPIRED) => return Err(Lookup::SessionExpired),
                        _ => {
                            return Err(Lookup::Failed(RawOutcome::Response {
                                status,
                                retry_after: None,
                                body: format!("TraCuuHoSo: {text}"),
                            }));
                        }
                    };
                    self.remember(code, e);
                    e
                }
            };
            any |= exists;
        }
        Ok(any)
    }

    /// Each row of a `DongBoHoSoMC` call made whole ([`rows`]): laid over the row kept
    /// for its dossier (or over the row before it in this call), else over the portal's
    /// own copy. A row that stays partial refuses the call, naming the dossier.
    async fn whole_rows(
        &self,
        madonvi: &str,
        request: &Value,
        session: &str,
        trace: &str,
    ) -> Result<Vec<Value>, Lookup> {
        let mut made: HashMap<String, Value> = HashMap::new();
        let mut whole = Vec::new();
        for item in request["data"].as_array().into_iter().flatten() {
            let Some(code) = item["MaHoSo"].as_str() else {
                whole.push(item.clone());
                continue;
            };
            let mut base = match made.get(code) {
                Some(row) => Some(row.clone()),
                None => self.rows.kept(madonvi, code).map_err(|e| {
                    Lookup::Failed(RawOutcome::Transport(format!("the outbox: {e}")))
                })?,
            };
            if base.is_none() && !rows::missing(item).is_empty() {
                base = self.portal_copy(code, session, madonvi, trace).await?;
            }
            let mut row = rows::lay_over(base.as_ref(), item);
            let databases = self
                .rows
                .consulted(code)
                .map_err(|e| Lookup::Failed(RawOutcome::Transport(format!("the outbox: {e}"))))?;
            consulted::add_to_row(&mut row, &databases);
            let missing = rows::missing(&row);
            if !missing.is_empty() {
                return Err(Lookup::Failed(RawOutcome::Invalid(format!(
                    "dossier {code}: the {} takes a dossier's whole row on every sync, and neither this message nor an earlier row the bus sent has {} (send the dossier's own sync first, then replay this)",
                    self.platform,
                    missing.join(", ")
                ))));
            }
            made.insert(code.to_string(), row.clone());
            whole.push(row);
        }
        Ok(whole)
    }

    /// The portal's own copy of dossier `code` (`TraCuuHoSo`'s `result[0].HoSo`), if it has one.
    async fn portal_copy(
        &self,
        code: &str,
        session: &str,
        madonvi: &str,
        trace: &str,
    ) -> Result<Option<Value>, Lookup> {
        let body = json!({"service": "TraCuuHoSo", "session": session, "madonvi": madonvi, "mahoso": code});
        let (status, text) = self
            .post(&self.api_url, &body, Some(trace))
            .await
            .map_err(Lookup::Failed)?;
        let reply: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match error_code(&reply) {
            Some(0) => Ok(Some(reply["result"][0]["HoSo"].clone()).filter(Value::is_object)),
            Some(NOT_FOUND) => Ok(None),
            Some(SESSION_EXPIRED) => Err(Lookup::SessionExpired),
            _ => Err(Lookup::Failed(RawOutcome::Response {
                status,
                retry_after: None,
                body: format!("TraCuuHoSo: {text}"),
            })),
        }
    }

    /// Keep the rows the portal took ([`rows::KeptRows::keep`]: in memory at once, written
    /// in the background). A row not kept costs the next sync of its dossier a
    /// `TraCuuHoSo`, not a message.
    fn keep_rows(&self, madonvi: &str, data: &Value) {
        self.rows.keep(
            madonvi,
            data.as_array().map(Vec::as_slice).unwrap_or_default(),
        );
    }

    fn remember(&self, code: &str, exists: bool) {
        let mut known = self.known.lock().unwrap();
        if known.len() >= KNOWN_CAP {
            known.clear();
        }
        known.insert(code.to_string(), exists);
    }

    async fn call(&self, unit: &str, trace: &str, mut request: Value) -> RawOutcome {
        let madonvi = self.creds.unit_code(unit).to_string();
        let service = request["service"].as_str().unwrap_or_default().to_string();
        let codes: Vec<String> = request["data"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i["MaHoSo"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let mut last = RawOutcome::Transport("no attempt made".into());
        // A renewed session or a corrected isUpdating is worth an immediate second try;
        // anything else goes back to the relay to be retried with backoff.
        for _ in 0..3 {
            let session = match self.session().await {
                Ok(s) => s,
                Err(outcome) => return outcome,
            };
            if service == "DongBoHoSoMC" {
                let updating = match self
                    .any_exists(&codes, &session, &madonvi, Some(trace))
                    .await
                {
                    Ok(u) => u,
                    Err(Lookup::SessionExpired) => {
                        self.forget_session(&session).await;
                        continue;
                    }
                    Err(Lookup::Failed(outcome)) => return outcome,
                };
                request["isUpdating"] = json!(if updating { "True" } else { "False" });
                match self.whole_rows(&madonvi, &request, &session, trace).await {
                    Ok(rows) => request["data"] = Value::Array(rows),
                    Err(Lookup::SessionExpired) => {
                        self.forget_session(&session).await;
                        continue;
                    }
                    Err(Lookup::Failed(outcome)) => return outcome,
                }
            }
            request["session"] = json!(session);
            request["madonvi"] = json!(madonvi);
            let (status, text) = match self.post(&self.api_url, &request, Some(trace)).await {
                Ok(r) => r,
                Err(outcome) => return outcome,
            };
            let reply: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            match error_code(&reply) {
                Some(0) if service == "DongBoHoSoMC" => {
                    for code in &codes {
                        self.remember(code, true);
                    }
                    self.keep_rows(&madonvi, &request["data"]);
                }
                Some(SESSION_EXPIRED) => {
                    tracing::info!(
                        target_system = "portal",
                        "portal session expired; logging in again"
                    );
                    self.forget_session(&session).await;
                }
                Some(UPDATE_MISMATCH) => {
                    let was = request["isUpdating"] == "True";
                    for code in &codes {
                        self.remember(code, !was);
                    }
                }
                Some(c) if c != 0 && service == "DongBoHoSoMC" && says_already_exists(&reply) => {
                    // Sent as new, but the portal has it: send it again as an update.
                    for code in &codes {
                        self.remember(code, true);
                    }
                }
                _ => {}
            }
            last = RawOutcome::Response {
                status,
                retry_after: None,
                body: text,
            };
            let again = matches!(error_code(&reply), Some(SESSION_EXPIRED | UPDATE_MISMATCH))
                || (error_code(&reply) != Some(0)
                    && service == "DongBoHoSoMC"
                    && request["isUpdating"] == "False"
                    && says_already_exists(&reply));
            if !again {
                break;
            }
        }
        last
    }
}

/// The portal's verdict is its `error_code` inside a 200 reply.
const fn reply_codes(platform: &'static str) -> ReplyCodes {
    ReplyCodes {
        platform,
        field: "error_code",
        code: |reply| error_code(reply).map(|c| c.to_string()),
        message: |reply| reply["message"].as_str().unwrap_or_default(),
        means: |code| match code.parse::<i64>() {
            Ok(0) => CodeMeans::Delivered,
            Ok(INVALID_FIELD | REJECTED | UNKNOWN_SERVICE) => CodeMeans::Permanent,
            Ok(WRONG_CREDENTIALS) => CodeMeans::Retry(" (check the portal username and password)"),
            // A per-dossier answer of a portal that works: the dossier must wait for its
            // creation, the portal's circuit stays closed.
            Ok(NOT_FOUND) => CodeMeans::NotYet(" (the dossier is not at the portal yet)"),
            _ => CodeMeans::Retry(""),
        },
    }
}

impl RetryClassifier for PortalConnector {
    fn classify(&self, outcome: &RawOutcome) -> Verdict {
        reply_codes(self.platform).classify(outcome)
    }
}

impl Connector for PortalConnector {
    /// `CapNhatTienDoHoSoMC` calls merge freely; `DongBoHoSoMC` only for dossiers whose
    /// existence at the portal is known and the same (one `isUpdating` per call).
    /// Calls are merged only within one unit (one `madonvi` per call).
    fn batch_group(&self, message: &Envelope, body: &Outbound) -> Option<String> {
        let request: Value = serde_json::from_slice(&body.body).ok()?;
        let unit = self.creds.unit_code(&message.unit);
        match request["service"].as_str()? {
            "CapNhatTienDoHoSoMC" => Some(format!("{unit}/CapNhatTienDoHoSoMC")),
            "DongBoHoSoMC" => {
                let known = self.known.lock().unwrap();
                let mut state = None;
                for item in request["data"].as_array()? {
                    let exists = *known.get(item["MaHoSo"].as_str()?)?;
                    if state.is_some_and(|s| s != exists) {
                        return None;
                    }
                    state = Some(exists);
                }
                state.map(|e| format!("{unit}/DongBoHoSoMC/{e}"))
            }
            _ => None,
        }
    }

    fn merge(&self, bodies: &[&Outbound]) -> Option<Outbound> {
        let mut merged: Value = serde_json::from_slice(&bodies.first()?.body).ok()?;
        for b in &bodies[1..] {
            let other: Value = serde_json::from_slice(&b.body).ok()?;
            if other["service"] != merged["service"] {
                return None;
            }
            let items = other["data"].as_array()?.clone();
            merged["data"].as_array_mut()?.extend(items);
        }
        Some(Outbound {
            content_type: bodies[0].content_type,
            body: serde_json::to_vec(&merged).ok()?.into(),
        })
    }

    fn send<'a>(&'a self, message: &'a Envelope, body: &'a Outbound) -> BoxFuture<'a, RawOutcome> {
        Box::pin(async move {
            match serde_json::from_slice::<Value>(&body.body) {
                Ok(request) if request["service"].is_string() => {
                    self.call(&message.unit, &message.trace_id, request).await
                }
                _ => RawOutcome::Invalid(
                    "the portal takes a JSON object with `service` (map the route's events with a portal mapping)".into(),
                ),
            }
        })
    }
}
