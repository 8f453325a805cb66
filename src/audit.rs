//! The tamper-evident audit trail: personal-data lookups, dead-letter replays and drops,
//! admin sign-in failures, appended to a JSON-lines file where each record carries the
//! SHA-256 hash of the one before it.
//!
//! A record is `{"seq", "at_ms", "event", "actor", "details", "prev", "hash"}`; `hash` is
//! SHA-256 over `prev` and the record's other fields as written (compact JSON, fixed field
//! order), so altering a record breaks its own hash, removing or reordering records breaks
//! the `seq` run and the `prev` links. [`verify`] (`lienthong audit verify`) walks the file
//! and names the first line where the chain breaks. Removing records from the *end* leaves a
//! shorter valid chain: compare the head (`seq` and `hash`, printed by `verify`) with one
//! kept elsewhere (`--head`) to catch that.
//!
//! Records hold no personal data: who asked, what for, how it went, never whom it found.
//! Each record is written and synced before the action it records is answered.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {path}: {error}")]
    Io { path: String, error: String },
    #[error(
        "audit log {path}, line {line}: {problem} (run `lienthong audit verify` to see where the chain breaks)"
    )]
    Broken {
        path: String,
        line: usize,
        problem: String,
    },
    #[error(
        "audit log {path}: its last line is not an audit record ({problem}); appending would hide the damage: run `lienthong audit verify`"
    )]
    BadTail { path: String, problem: String },
}

/// The part of a record its hash covers, in the order it is written.
#[derive(Serialize)]
struct Body<'a> {
    seq: u64,
    at_ms: u64,
    event: &'a str,
    actor: &'a str,
    details: &'a Value,
    prev: &'a str,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Record {
    pub seq: u64,
    pub at_ms: u64,
    pub event: String,
    pub actor: String,
    pub details: Value,
    pub prev: String,
    pub hash: String,
}

impl Record {
    fn expected_hash(&self) -> String {
        hash_of(&Body {
            seq: self.seq,
            at_ms: self.at_ms,
            event: &self.event,
            actor: &self.actor,
            details: &self.details,
            prev: &self.prev,
        })
    }
}

fn hash_of(body: &Body) -> String {
    let json = serde_json::to_vec(body).expect("audit records serialize");
    crate::hex::encode(&Sha256::digest(&json))
}

struct Head {
    file: File,
    seq: u64,
    hash: String,
}

/// The open audit log. Appends are serialized; each is synced before it returns.
pub struct AuditLog {
    path: PathBuf,
    head: Mutex<Head>,
}

impl AuditLog {
    /// Open (or create, owner-only) the log at `path`, continuing its chain. A log whose
    /// last record does not parse is refused: appending would hide the damage.
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        let io = |e: std::io::Error| AuditError::Io {
            path: path.display().to_string(),
            error: e.to_string(),
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut options = OpenOptions::new();
        options.create(true).append(true).read(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path).map_err(io)?;
        // Only the last record is needed to go on with the chain: reading the whole log
        // at every start would grow with it.
        let (seq, hash) = match last_line(path).map_err(io)? {
            None => (0, GENESIS.to_string()),
            Some(line) => {
                let r: Record = serde_json::from_str(&line).map_err(|e| AuditError::BadTail {
                    path: path.display().to_string(),
                    problem: e.to_string(),
                })?;
                (r.seq, r.hash)
            }
        };
        Ok(AuditLog {
            path: path.to_path_buf(),
            head: Mutex::new(Head { file, seq, hash }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one record and sync it. `details` must hold no personal data.
    pub fn append(&self, event: &str, actor: &str, details: Value) -> Result<(), AuditError> {
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        let seq = head.seq + 1;
        let at_ms = crate::time::now_ms();
        let body = Body {
            seq,
            at_ms,
            event,
            actor,
            details: &details,
            prev: &head.hash,
        };
        let hash = hash_of(&body);
        let record = Record {
            seq,
            at_ms,
            event: event.to_string(),
            actor: actor.to_string(),
            details,
            prev: head.hash.clone(),
            hash: hash.clone(),
        };
        let mut line = serde_json::to_vec(&record).expect("audit records serialize");
        line.push(b'\n');
        let io = |e: std::io::Error| AuditError::Io {
            path: self.path.display().to_string(),
            error: e.to_string(),
        };
        head.file.write_all(&line).map_err(io)?;
        head.file.sync_data().map_err(io)?;
        head.seq = seq;
        head.hash = hash;
        Ok(())
    }

    /// Append, logging (never failing the caller) when the disk refuses: the action has
    /// its answer already decided; the error is loud in the log.
    pub fn record(&self, event: &str, actor: &str, details: Value) {
        if let Err(e) = self.append(event, actor, details) {
            tracing::error!(error = %e, event, "AUDIT RECORD NOT WRITTEN");
        }
    }
}

/// The last non-empty line of the file, read from its end.
fn last_line(path: &Path) -> std::io::Result<Option<String>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut tail: Vec<u8> = Vec::new();
    let mut pos = len;
    loop {
        // The last line is whole once a newline precedes its text (or the file starts).
        let text_end = tail
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map(|i| i + 1);
        if let Some(end) = text_end {
            if let Some(nl) = tail[..end].iter().rposition(|b| *b == b'\n') {
                return Ok(Some(
                    String::from_utf8_lossy(&tail[nl + 1..end]).into_owned(),
                ));
            }
            if pos == 0 {
                return Ok(Some(String::from_utf8_lossy(&tail[..end]).into_owned()));
            }
        } else if pos == 0 {
            return Ok(None);
        }
        let step = pos.min(64 * 1024);
        pos -= step;
        let mut chunk = vec![0u8; step as usize];
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&tail);
        tail = chunk;
    }
}

/// What [`verify`] found in an intact log.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    pub records: u64,
    pub head_seq: u64,
    pub head_hash: String,
}

/// Walk the log and check every link. The error names the first broken line and why.
pub fn verify(path: &Path, mut progress: impl FnMut(u64)) -> Result<Verified, AuditError> {
    let io = |e: std::io::Error| AuditError::Io {
        path: path.display().to_string(),
        error: e.to_string(),
    };
    let broken = |line: usize, problem: String| AuditError::Broken {
        path: path.display().to_string(),
        line,
        problem,
    };
    let (mut seq, mut hash, mut records) = (0u64, GENESIS.to_string(), 0u64);
    for (i, line) in BufReader::new(File::open(path).map_err(io)?)
        .lines()
        .enumerate()
    {
        let line_no = i + 1;
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let r: Record = serde_json::from_str(&line)
            .map_err(|e| broken(line_no, format!("not an audit record: {e}")))?;
        if r.hash != r.expected_hash() {
            return Err(broken(
                line_no,
                format!(
                    "record {} was altered (its hash does not match its content)",
                    r.seq
                ),
            ));
        }
        if r.seq != seq + 1 {
            let what = if r.seq <= seq {
                "records are out of order or repeated"
            } else {
                "records are missing before it"
            };
            return Err(broken(
                line_no,
                format!("record {} follows record {seq}: {what}", r.seq),
            ));
        }
        if r.prev != hash {
            return Err(broken(
                line_no,
                format!(
                    "record {} does not link to the record before it (a record was replaced or removed)",
                    r.seq
                ),
            ));
        }
        seq = r.seq;
        hash = r.hash;
        records += 1;
        if records.is_multiple_of(10_000) {
            progress(records);
        }
    }
    Ok(Verified {
        records,
        head_seq: seq,
        head_hash: hash,
    })
}

/// The hash of record `seq` in the log at `path`, if it holds one.
pub fn record_at(path: &Path, seq: u64) -> Result<Option<String>, AuditError> {
    let io = |e: std::io::Error| AuditError::Io {
        path: path.display().to_string(),
        error: e.to_string(),
    };
    for line in BufReader::new(File::open(path).map_err(io)?).lines() {
        let line = line.map_err(io)?;
        if let Ok(r) = serde_json::from_str::<Record>(&line)
            && r.seq == seq
        {
            return Ok(Some(r.hash));
        }
    }
    Ok(None)
}

/// Mask an identifier for an audit record or a log line: the first 2 and last 2
/// characters stay, so operators can tell records apart without reading the number.
pub fn mask_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 4 {
        return "*".repeat(chars.len());
    }
    let mut out: String = chars[..2].iter().collect();
    out.push_str(&"*".repeat(chars.len() - 4));
    out.extend(&chars[chars.len() - 2..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn log_with(n: u64) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path).unwrap();
        for i in 0..n {
            log.append("dead_letter_replay", "operator", json!({"id": i}))
                .unwrap();
        }
        (dir, path)
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn write(path: &Path, lines: &[String]) {
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    }

    #[test]
    fn an_intact_chain_verifies_and_continues_after_reopening() {
        let (_d, path) = log_with(3);
        let log = AuditLog::open(&path).unwrap();
        log.append("admin_login_failed", "unknown", json!({}))
            .unwrap();
        let v = verify(&path, |_| {}).unwrap();
        assert_eq!((v.records, v.head_seq), (4, 4));
    }

    #[test]
    fn an_altered_record_is_named() {
        let (_d, path) = log_with(3);
        let mut l = lines(&path);
        l[1] = l[1].replace("\"id\":1", "\"id\":7");
        write(&path, &l);
        let e = verify(&path, |_| {}).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("altered"), "{e}");
    }

    #[test]
    fn a_removed_record_is_named() {
        let (_d, path) = log_with(3);
        let mut l = lines(&path);
        l.remove(1);
        write(&path, &l);
        let e = verify(&path, |_| {}).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("missing"), "{e}");
    }

    #[test]
    fn reordered_records_are_named() {
        let (_d, path) = log_with(3);
        let mut l = lines(&path);
        l.swap(1, 2);
        write(&path, &l);
        let e = verify(&path, |_| {}).unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn a_record_rewritten_with_a_fresh_hash_breaks_the_link() {
        let (_d, path) = log_with(3);
        let mut l = lines(&path);
        let mut r: Record = serde_json::from_str(&l[1]).unwrap();
        r.details = json!({"id": 99});
        r.hash = r.expected_hash();
        l[1] = serde_json::to_string(&r).unwrap();
        write(&path, &l);
        let e = verify(&path, |_| {}).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("link"), "{e}");
    }

    #[test]
    fn the_chain_goes_on_from_the_last_record_and_a_damaged_end_is_refused() {
        let (_d, path) = log_with(3);
        // A long log: the last record is found from the end, across read chunks.
        let log = AuditLog::open(&path).unwrap();
        let big = "x".repeat(100_000);
        log.append("dead_letter_drop", "operator", json!({ "reason": big }))
            .unwrap();
        drop(log);
        let log = AuditLog::open(&path).unwrap();
        log.append("admin_login_failed", "unknown", json!({}))
            .unwrap();
        assert_eq!(verify(&path, |_| {}).unwrap().head_seq, 5);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"seq\": 6, trunc\n\n");
        std::fs::write(&path, text).unwrap();
        let e = AuditLog::open(&path).err().unwrap();
        assert!(matches!(e, AuditError::BadTail { .. }), "{e}");
    }

    #[test]
    fn ids_are_masked() {
        assert_eq!(mask_id("001099012345"), "00********45");
        assert_eq!(mask_id("abc"), "***");
    }
}
