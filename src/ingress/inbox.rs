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
//! - **Only regular files are taken.** A symbolic link is never followed (a link to the
//!   outbox's own files must not be read or moved): it is rejected, and the link itself,
//!   not what it points to, moves to `rejected/`. A linked flow folder is not entered, a
//!   hard link is refused like a link. A file over `server.max_body_bytes` is rejected by
//!   its size, before it is read.
//! - **Only the unit's account drops files.** A file owned by another account than the
//!   owner of its folders, the bus's or root is rejected (`not_the_folders_owner`).

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
    /// How long taken files (and their reports) stay in `processed/` and `rejected/`.
    pub keep: Duration,
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
    // Taken files are looked at for deletion at most this often (a folder listing each).
    let clean_every =
        (settings.keep / 10).clamp(Duration::from_millis(100), Duration::from_secs(60));
    let mut last_clean = std::time::Instant::now() - clean_every;
    loop {
        tick.tick().await;
        if last_clean.elapsed() >= clean_every {
            last_clean = std::time::Instant::now();
            for unit in &units {
                remove_old_taken(&settings.dir.join(unit), settings.keep);
            }
        }
        for unit in &units {
            for (file, flow) in candidates(&settings.dir.join(unit)) {
                // Never through a link: its own size and time.
                let Ok(meta) = std::fs::symlink_metadata(&file) else {
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
    // `DirEntry::file_type` does not follow links: a linked folder is not a folder here,
    // and a link is a candidate only to be rejected.
    let takeable = |t: &std::fs::FileType| t.is_file() || t.is_symlink();
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            if name == "processed" || name == "rejected" {
                continue;
            }
            if let Ok(inner) = std::fs::read_dir(&path) {
                for f in inner.flatten() {
                    if f.file_type().is_ok_and(|t| takeable(&t))
                        && wanted(&f.file_name().to_string_lossy())
                    {
                        out.push((f.path(), Some(name.clone())));
                    }
                }
            }
        } else if takeable(&kind) && wanted(&name) {
            out.push((path, None));
        }
    }
    out.sort();
    out
}

/// Delete what sits in the `processed/` and `rejected/` folders of a unit (and of its
/// flow folders) since longer than `keep`: those files hold the unit's data in clear.
/// Links are removed as links, never followed.
fn remove_old_taken(unit_dir: &Path, keep: Duration) {
    let mut folders = vec![unit_dir.join("processed"), unit_dir.join("rejected")];
    if let Ok(entries) = std::fs::read_dir(unit_dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                folders.push(e.path().join("processed"));
                folders.push(e.path().join("rejected"));
            }
        }
    }
    for folder in folders {
        let Ok(files) = std::fs::read_dir(&folder) else {
            continue;
        };
        for f in files.flatten() {
            let old = f
                .path()
                .symlink_metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= keep);
            if old
                && f.file_type().is_ok_and(|t| !t.is_dir())
                && let Err(e) = std::fs::remove_file(f.path())
            {
                tracing::warn!(file = %f.path().display(), error = %e, "cannot delete an old dropped file");
            }
        }
    }
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
            match (e.line, e.column) {
                (Some(l), Some(c)) => where_.push_str(&format!("line {l}, column {c}: ")),
                (Some(l), None) => where_.push_str(&format!("line {l}, ")),
                _ => {}
            }
            if let Some(f) = &e.field {
                where_.push_str(&format!("field {f}: "));
            }
            let mut report = format!(
                "{name}: REJECTED, nothing from this file was stored.\n{where_}{} ({})\n",
                e.message, e.code
            );
            // A refused record: every problem of the file, one a line.
            for p in &e.problems {
                match p.line {
                    Some(l) => report.push_str(&format!("line {l}, {}: {}\n", p.field, p.problem)),
                    None => report.push_str(&format!("{}: {}\n", p.field, p.problem)),
                }
            }
            ("rejected", report)
        }
    };
    let dest_dir = base.join(folder);
    let _ = std::fs::create_dir_all(&dest_dir);
    let dest = dest_dir.join(&name);
    if let Err(e) = std::fs::rename(file, &dest) {
        tracing::error!(unit, file = %file.display(), error = %e, "cannot move a dropped file");
    } else {
        // Its time says when it was taken, for `[inbox] keep`: set on the file itself only,
        // opened without following a link and judged by the handle (a hard link's time is
        // the file's it names, elsewhere).
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        if let Ok(f) = std::fs::File::options()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&dest)
            && f.metadata().is_ok_and(|m| m.is_file() && m.nlink() == 1)
        {
            let _ = f.set_modified(SystemTime::now());
        }
    }
    let _ = std::fs::write(dest_dir.join(format!("{name}.report.txt")), &report);
    match &result {
        Ok((n, _, _)) => tracing::info!(unit, file = %name, events = n, "dropped file stored"),
        Err(e) => tracing::warn!(unit, file = %name, problem = %e.message, "dropped file rejected"),
    }
}

/// The content of `file` if it is a regular file (not a link, not a device or a pipe) of
/// at most `max` bytes; its size is checked before anything is read, and the read itself
/// is bounded (the file may grow meanwhile).
fn read_regular_file(file: &Path, max: usize, owners: &[u32]) -> Result<Vec<u8>, ApiError> {
    use std::io::Read;
    let unreadable = |e: std::io::Error| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "unreadable",
            format!("cannot read the file: {e}"),
        )
    };
    let too_large = |len: u64| {
        ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "the file is {len} bytes, over its flow's limit ({max}: server.max_body_bytes, or the route's max_body_bytes); split it"
            ),
        )
    };
    let link = || {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "not_a_regular_file",
            "this is a link: the bus takes only regular files, never what a link points to \
             (copy the file itself into the folder)",
        )
    };
    // Opened without following a symbolic link (O_NOFOLLOW), then judged by the handle
    // itself (fstat): what is read is what was checked, whatever is renamed meanwhile.
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(file);
    let mut handle = match opened {
        Ok(h) => h,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(link()),
        Err(e) => return Err(unreadable(e)),
    };
    let meta = handle.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "not_a_regular_file",
            "not a regular file: drop files only",
        ));
    }
    // A hard link is another name of a file that lives elsewhere: refused like a link.
    if meta.nlink() != 1 {
        return Err(link());
    }
    // Only the unit's own account (the owner of its folders), the bus's and root put
    // files here: another account that can write to the folder is not the unit.
    if !owners.contains(&meta.uid()) {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "not_the_folders_owner",
            format!(
                "the file belongs to account {} (uid), not to the owner of the unit's folder \
                 nor to the bus's account: drop files with the unit's own account",
                meta.uid()
            ),
        ));
    }
    if meta.len() > max as u64 {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    (&mut handle)
        .take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() > max {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Whose files a drop folder takes: the owners (uids) of the file's folder, of the
/// unit's folder and of the inbox (the bus's account), and root.
fn trusted_owners(file: &Path, flow: Option<&str>) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;
    let folder = file.parent();
    let unit_dir = if flow.is_some() {
        folder.and_then(Path::parent)
    } else {
        folder
    };
    let inbox = unit_dir.and_then(Path::parent);
    let mut owners = vec![0];
    for dir in [folder, unit_dir, inbox].into_iter().flatten() {
        if let Ok(meta) = std::fs::symlink_metadata(dir) {
            owners.push(meta.uid());
        }
    }
    owners
}

/// (events stored, their ids, whether the file had been taken before).
async fn ingest(
    state: &IngressState,
    unit: &str,
    flow: Option<&str>,
    file: &Path,
) -> Result<(usize, Vec<String>, bool), ApiError> {
    // First what the file is (a link is refused whatever it is named, a file over its
    // route's limit by its size), then its format.
    let route = state.router.resolve_for_unit(unit, flow).map_err(|e| {
        let mut err = super::route_error(e);
        err.message = format!("{} (the folder name is the flow)", err.message);
        err
    });
    let limit = route
        .as_ref()
        .map_or(state.max_body_bytes, |r| super::body_limit(state, r));
    let bytes = read_regular_file(file, limit, &trusted_owners(file, flow))?;
    let route = route?;
    let format = format_of(file).ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "name the file .json, .xml or .csv so the bus knows its format",
        )
    })?;
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
