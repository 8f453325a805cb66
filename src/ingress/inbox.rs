//! File drop per unit: files put in `<data dir>/inbox/<unit>/<flow>/` (or straight in
//! `<data dir>/inbox/<unit>/` when the unit routes one flow) are taken as if the unit had
//! posted them: JSON, XML or CSV by extension, in the unit's own format.
//!
//! - A file is taken once it is complete: its name does not end in `.part` or `.tmp` (write
//!   under such a name, then rename), and its size and time have not changed for
//!   `[inbox] settle`.
//! - **A file is all or nothing**: every record of it is stored, or none is. Then it moves
//!   to `processed/` with `<name>.report.txt` listing the stored ids, or to `rejected/` with
//!   a report naming the line, the field and the problem. Nothing is ever half-ingested.
//! - Dropping the same file again (same name and content) stores nothing new: its report
//!   says the events were already there.

use super::{ApiError, IngressState, accept};
use axum::http::{HeaderMap, HeaderValue};
use lienthong_mapping::Format;
use sha2::Digest;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Where each unit's drop folders are, and how often to look.
#[derive(Clone, Debug)]
pub struct InboxSettings {
    pub dir: PathBuf,
    pub poll: Duration,
    pub settle: Duration,
}

/// What the watcher saw of a file last time: (size, modified).
type Seen = HashMap<PathBuf, (u64, SystemTime, std::time::Instant)>;

/// Watch the drop folders until the task is dropped.
pub async fn watch(state: Arc<IngressState>, settings: InboxSettings, units: Vec<String>) {
    for unit in &units {
        let _ = std::fs::create_dir_all(settings.dir.join(unit));
    }
    let mut seen: Seen = HashMap::new();
    let mut tick = tokio::time::interval(settings.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for unit in &units {
            for (file, flow) in candidates(&settings.dir.join(unit)) {
                let Ok(meta) = std::fs::metadata(&file) else {
                    continue;
                };
                let stamp = (
                    meta.len(),
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                );
                let now = std::time::Instant::now();
                let entry = seen.entry(file.clone()).or_insert((stamp.0, stamp.1, now));
                if (entry.0, entry.1) != stamp {
                    *entry = (stamp.0, stamp.1, now);
                    continue;
                }
                if entry.2.elapsed() < settings.settle {
                    continue;
                }
                seen.remove(&file);
                take(&state, unit, flow.as_deref(), &file).await;
            }
        }
    }
}

/// Files ready to look at: `<unit>/<file>` (flow None) and `<unit>/<flow>/<file>`.
fn candidates(unit_dir: &Path) -> Vec<(PathBuf, Option<String>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(unit_dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if name == "processed" || name == "rejected" {
                continue;
            }
            if let Ok(inner) = std::fs::read_dir(&path) {
                for f in inner.flatten() {
                    if f.path().is_file() && wanted(&f.file_name().to_string_lossy()) {
                        out.push((f.path(), Some(name.clone())));
                    }
                }
            }
        } else if wanted(&name) {
            out.push((path, None));
        }
    }
    out.sort();
    out
}

fn wanted(name: &str) -> bool {
    !name.starts_with('.') && !name.ends_with(".part") && !name.ends_with(".tmp")
}

fn format_of(path: &Path) -> Option<Format> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "json" => Some(Format::Json),
        "xml" => Some(Format::Xml),
        "csv" => Some(Format::Csv),
        _ => None,
    }
}

/// Take one complete file: store it all or reject it, move it, write its report.
pub async fn take(state: &IngressState, unit: &str, flow: Option<&str>, file: &Path) {
    let name = file
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let result = ingest(state, unit, flow, file).await;
    let base = file.parent().unwrap_or(Path::new("."));
    // processed/ and rejected/ sit beside the file (in the flow folder, or the unit's).
    let (folder, report) = match &result {
        Ok((n, ids, dup)) => (
            "processed",
            format!(
                "{name}: {n} event(s) stored{}\n{}\n",
                if *dup {
                    " earlier (the same file was dropped before)"
                } else {
                    ""
                },
                ids.join("\n")
            ),
        ),
        Err(e) => {
            let mut where_ = String::new();
            if let Some(l) = e.line {
                where_.push_str(&format!("line {l}, column {}: ", e.column.unwrap_or(0)));
            }
            if let Some(f) = &e.field {
                where_.push_str(&format!("field {f}: "));
            }
            (
                "rejected",
                format!(
                    "{name}: REJECTED, nothing from this file was stored.\n{where_}{} ({})\n",
                    e.message, e.code
                ),
            )
        }
    };
    let dest_dir = base.join(folder);
    let _ = std::fs::create_dir_all(&dest_dir);
    let dest = dest_dir.join(&name);
    if let Err(e) = std::fs::rename(file, &dest) {
        tracing::error!(unit, file = %file.display(), error = %e, "cannot move a dropped file");
    }
    let _ = std::fs::write(dest_dir.join(format!("{name}.report.txt")), &report);
    match &result {
        Ok((n, _, _)) => tracing::info!(unit, file = %name, events = n, "dropped file stored"),
        Err(e) => tracing::warn!(unit, file = %name, problem = %e.message, "dropped file rejected"),
    }
}

/// (events stored, their ids, whether the file had been taken before).
async fn ingest(
    state: &IngressState,
    unit: &str,
    flow: Option<&str>,
    file: &Path,
) -> Result<(usize, Vec<String>, bool), ApiError> {
    let format = format_of(file).ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "name the file .json, .xml or .csv so the bus knows its format",
        )
    })?;
    let route = state.router.resolve(unit, flow).map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "unknown_flow",
            format!("{e} (the folder name is the flow)"),
        )
    })?;
    let bytes = std::fs::read(file).map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "unreadable",
            format!("cannot read the file: {e}"),
        )
    })?;
    if bytes.len() > state.max_body_bytes {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "the file is {} bytes, over server.max_body_bytes ({}); split it",
                bytes.len(),
                state.max_body_bytes
            ),
        ));
    }
    // Same name and content → same key → stored once however often it is dropped.
    let digest = sha2::Sha256::digest(&bytes);
    let hex = crate::hex::encode(&digest[..16]);
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let mut headers = HeaderMap::new();
    let key: String = format!("file:{name}:{hex}").chars().take(200).collect();
    if let Ok(v) = HeaderValue::from_str(&key) {
        headers.insert("idempotency-key", v);
    }
    let accepted = accept(state, route, format, bytes.into(), &headers).await?;
    let ids: Vec<String> = accepted.iter().map(|a| a.id.to_string()).collect();
    Ok((accepted.len(), ids, accepted.iter().all(|a| a.duplicate)))
}
