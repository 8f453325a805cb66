//! Mock unit systems: receivers for what the bus sends back to a unit (payment
//! confirmations, lookup replies), and traffic generators that write events the way each
//! unit's own system does — STAMEQ SOAP, NAFOSTED JSON, IP Office CSV and XML exports in
//! TCVN3, VARANS JSON with PDF results — for dossiers going through their whole life.
//!
//! Receivers (here): `POST /units/{unit}/{channel}` records the body (any content type) and
//! answers 200 `{"received": n}`; `GET /_mock/units/{unit}/received` lists what came; the
//! IP Office's import folder is read like its import job does. The traffic generator is
//! in `traffic.rs`.

mod traffic;

pub use traffic::{Traffic, UnitEvent};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The units the generators know.
pub const UNITS: [&str; 4] = ["stameq", "nafosted", "ipo", "varans"];

/// Something the bus sent back to a unit.
#[derive(Clone, Debug, Serialize)]
pub struct UnitMessage {
    pub channel: String,
    pub content_type: String,
    pub body: String,
}

/// Receivers of every unit, recording what arrives.
#[derive(Clone, Default)]
pub struct UnitReceivers {
    inner: Arc<Mutex<BTreeMap<String, Vec<UnitMessage>>>>,
}

impl UnitReceivers {
    pub fn router(&self) -> Router {
        Router::new()
            .route("/units/{unit}/{channel}", post(receive))
            .route("/_mock/units/{unit}/received", get(list))
            .with_state(self.clone())
    }

    /// Import the files written into `dir` for `unit`, as its import job does: every
    /// 200 ms, each whole file (not a `.`-file still being written) is read as TCVN3,
    /// recorded, and moved to `dir/processed/`. Stops when the returned handle is dropped
    /// with the runtime.
    pub fn import_folder(
        &self,
        unit: &str,
        dir: std::path::PathBuf,
    ) -> tokio::task::JoinHandle<()> {
        let (receivers, unit) = (self.clone(), unit.to_string());
        tokio::spawn(async move {
            let done = dir.join("processed");
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .collect();
                names.sort();
                for name in names {
                    let path = dir.join(&name);
                    let Ok(bytes) = std::fs::read(&path) else {
                        continue;
                    };
                    let text = lienthong_mapping::text::decode_legacy_bytes(
                        &bytes,
                        lienthong_mapping::text::Legacy::Tcvn3,
                    );
                    let _ = std::fs::create_dir_all(&done);
                    let _ = std::fs::rename(&path, done.join(&name));
                    receivers
                        .inner
                        .lock()
                        .unwrap()
                        .entry(unit.clone())
                        .or_default()
                        .push(UnitMessage {
                            channel: format!("file:{name}"),
                            content_type: "text/csv; charset=TCVN3".into(),
                            body: text,
                        });
                }
            }
        })
    }

    pub fn received(&self, unit: &str) -> Vec<UnitMessage> {
        self.inner
            .lock()
            .unwrap()
            .get(unit)
            .cloned()
            .unwrap_or_default()
    }

    /// Forget everything received (`POST /_mock/reset`).
    pub fn reset(&self) {
        self.inner.lock().unwrap().clear();
    }
}

async fn receive(
    State(r): State<UnitReceivers>,
    Path((unit, channel)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Json<Value> {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut g = r.inner.lock().unwrap();
    let list = g.entry(unit).or_default();
    list.push(UnitMessage {
        channel,
        content_type,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    Json(json!({ "received": list.len() }))
}

async fn list(State(r): State<UnitReceivers>, Path(unit): Path<String>) -> Json<Value> {
    Json(json!({ "unit": unit, "received": r.received(&unit) }))
}
