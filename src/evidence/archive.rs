//! The archive's format, one line at a time, and its offline check.
//!
//! A line is `<hash> <json>\n`: `hash` is the hex SHA-256 of the previous line's hash (32
//! bytes), then the JSON text exactly as written. The check recomputes it from the bytes,
//! so a changed byte anywhere — in the JSON, the hash, or a removed or reordered line —
//! breaks the chain where it happened. Every line's JSON has a `t` (what it is) and a
//! `seq` (one more than the line before, across days). The kinds:
//!
//! - `open`: the first line of a day's file: the `day`, the signing `key` (hex Ed25519
//!   public key) and `prev`, the hash of the previous day's last line (the chain link
//!   between files; all zeros for the first file), so that a file checks on its own and
//!   against its predecessor when both are there;
//! - `accepted`, `attempt`: the records ([`super::Entry`]);
//! - `seal`: `head` is the hash of the line before it, `sig` the Ed25519 signature of
//!   [`SEAL_CONTEXT`] followed by those 32 bytes. A seal vouches for every line before it:
//!   rewriting a record and every hash after it still fails at the next seal.
//!
//! Lines after a file's last seal were written but not yet signed (the bus was killed
//! between seals; it seals them when it starts again): the check counts them apart.

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// What a seal's signature covers, before the head hash: the format and its version.
pub const SEAL_CONTEXT: &[u8] = b"lienthong-evidence-seal-v1";

/// The link before the first line of the first file.
pub const GENESIS: [u8; 32] = [0; 32];

/// A day's file: `YYYY-MM-DD.jsonl`, the day in Vietnam's time.
pub const SUFFIX: &str = ".jsonl";

/// The hash of a line whose JSON is `json`, after the line whose hash is `prev`.
pub fn line_hash(prev: &[u8; 32], json: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(json);
    h.finalize().into()
}

/// What a seal signs.
pub fn seal_message(head: &[u8; 32]) -> Vec<u8> {
    [SEAL_CONTEXT, head.as_slice()].concat()
}

/// The fields every line has, and those of `open` and `seal` lines the check reads.
#[derive(Deserialize)]
pub struct LineHead {
    pub t: String,
    pub seq: u64,
    #[serde(default)]
    pub day: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub prev: Option<String>,
    #[serde(default)]
    pub head: Option<String>,
    #[serde(default)]
    pub sig: Option<String>,
    #[serde(default)]
    pub at_ms: Option<u64>,
    /// An `accepted` line's events (counted, not read).
    #[serde(default)]
    pub events: Vec<serde::de::IgnoredAny>,
}

/// A line split into its hash and JSON text. The hash is 64 lowercase hex digits, as
/// written: another spelling of the same bytes is a change too.
pub fn split_line(line: &str) -> Option<([u8; 32], &str)> {
    let (hash, json) = line.split_once(' ')?;
    if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let bytes: [u8; 32] = crate::hex::decode(hash)?.try_into().ok()?;
    Some((bytes, json))
}

/// The day files of an archive directory, oldest first.
pub fn day_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(SUFFIX) && n.len() == 10 + SUFFIX.len())
        })
        .collect();
    files.sort();
    Ok(files)
}

/// What the check found in an archive.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub files: usize,
    pub accepted: u64,
    pub attempts: u64,
    pub seals: u64,
    /// Lines after the last seal of the newest file (not signed yet).
    pub unsealed: u64,
    /// The first and last `seq` checked.
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// The hash of the last line: the chain's head, to keep elsewhere and compare.
    pub head: Option<String>,
    /// The signing keys met (hex), in order.
    pub keys: Vec<String>,
    /// The archive's first file links to a day that is not in the directory.
    pub starts_mid_chain: bool,
}

/// A place where the chain breaks: the file, its line (1-based) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}, line {line}: {problem}")]
pub struct Broken {
    pub file: String,
    pub line: usize,
    pub problem: String,
}

/// Where the check stands between lines and files.
struct Walk<'a> {
    report: Report,
    prev: Option<[u8; 32]>,
    key: Option<VerifyingKey>,
    pinned: Option<&'a VerifyingKey>,
}

/// Check every day file of `dir` in order: hashes, sequence, links between files, seals'
/// signatures (against `pinned` when given, else the key each file names). Returns what
/// was found, or the first break. Reads one line at a time.
pub fn verify_dir(dir: &Path, pinned: Option<&VerifyingKey>) -> Result<Report, Broken> {
    verify_files(
        &day_files_of(dir)?,
        pinned,
        &mut |_, _, _| {},
        &mut |_, _| {},
    )
}

/// The day files of `dir`, or why they cannot be listed.
pub fn day_files_of(dir: &Path) -> Result<Vec<PathBuf>, Broken> {
    day_files(dir).map_err(|e| Broken {
        file: dir.display().to_string(),
        line: 0,
        problem: format!("cannot list the directory: {e}"),
    })
}

/// As [`verify_dir`] over `files` (oldest first), calling `each` with every record line
/// checked (its JSON, its hash and the seal that signs it, `None` when it is not signed
/// yet) — `lienthong evidence show` picks a dossier's records this way, each with its
/// proof — and `done` after each file (progress).
pub fn verify_files(
    files: &[PathBuf],
    pinned: Option<&VerifyingKey>,
    each: &mut dyn FnMut(&str, &str, Option<&str>),
    done: &mut dyn FnMut(&Path, &Report),
) -> Result<Report, Broken> {
    let mut walk = Walk {
        report: Report::default(),
        prev: None,
        key: None,
        pinned,
    };
    let last = files.len().saturating_sub(1);
    for (i, file) in files.iter().enumerate() {
        walk.file(file, i == last, each)?;
        done(file, &walk.report);
    }
    Ok(walk.report)
}

impl Walk<'_> {
    /// One day file. Records wait for their seal before `each` hears of them.
    fn file(
        &mut self,
        path: &Path,
        newest: bool,
        each: &mut dyn FnMut(&str, &str, Option<&str>),
    ) -> Result<(), Broken> {
        use std::io::BufRead;
        let name = path.display().to_string();
        let broken = |line: usize, problem: String| Broken {
            file: name.clone(),
            line,
            problem,
        };
        let file = std::fs::File::open(path).map_err(|e| broken(0, e.to_string()))?;
        self.report.files += 1;
        let mut waiting: Vec<(String, String)> = Vec::new();
        let mut ended_sealed = false;
        let mut reader = std::io::BufReader::new(file);
        let mut text = String::new();
        let mut number = 0;
        loop {
            text.clear();
            let read = reader
                .read_line(&mut text)
                .map_err(|e| broken(number + 1, format!("unreadable: {e}")))?;
            if read == 0 {
                break;
            }
            number += 1;
            let Some(line) = text.strip_suffix('\n') else {
                return Err(broken(number, "the line is cut short (no line end)".into()));
            };
            let (hash, json) =
                split_line(line).ok_or_else(|| broken(number, "not `<hash> <json>`".into()))?;
            let head: LineHead = serde_json::from_str(json)
                .map_err(|e| broken(number, format!("not a record: {e}")))?;
            self.line(number, &hash, json, &head)
                .map_err(|p| broken(number, p))?;
            ended_sealed = head.t == "seal";
            match head.t.as_str() {
                "seal" => {
                    let proof = format!(
                        "sealed by line {} (seq {}) at {}, signature valid",
                        number,
                        head.seq,
                        head.at_ms.map(crate::time::rfc3339_ms).unwrap_or_default()
                    );
                    for (json, hash) in waiting.drain(..) {
                        each(&json, &hash, Some(&proof));
                    }
                }
                "accepted" | "attempt" => {
                    waiting.push((json.to_string(), crate::hex::encode(&hash)))
                }
                _ => {}
            }
        }
        if number == 0 {
            return Err(broken(
                0,
                "the file is empty (a day file starts with its `open` line)".into(),
            ));
        }
        if !ended_sealed {
            if !newest {
                return Err(broken(
                    number,
                    "a closed day ends without a seal: lines were removed from its end".into(),
                ));
            }
            self.report.unsealed = waiting.len() as u64;
            for (json, hash) in waiting.drain(..) {
                each(&json, &hash, None);
            }
        }
        Ok(())
    }

    /// One line: its place in the chain, then what its kind requires.
    fn line(
        &mut self,
        number: usize,
        hash: &[u8; 32],
        json: &str,
        head: &LineHead,
    ) -> Result<(), String> {
        if number == 1 {
            if head.t != "open" {
                return Err(format!("a day file starts with `open`, not `{}`", head.t));
            }
            let link: [u8; 32] =
                fixed_hex(head.prev.as_deref()).ok_or("the `open` line has no `prev` hash")?;
            match self.prev {
                Some(prev) if prev != link => {
                    return Err("`prev` is not the previous day's last line: a line or a day is missing or changed".into());
                }
                None if link != GENESIS => self.report.starts_mid_chain = true,
                _ => {}
            }
            self.prev = Some(link);
            let key = head.key.as_deref().ok_or("the `open` line names no key")?;
            let bytes: [u8; 32] = crate::hex::decode(key)
                .and_then(|b| b.try_into().ok())
                .ok_or("the `open` line's key is not 32 bytes of hex")?;
            let key = VerifyingKey::from_bytes(&bytes)
                .map_err(|e| format!("the key is not an Ed25519 key: {e}"))?;
            if let Some(pinned) = self.pinned
                && pinned != &key
            {
                return Err("the file is signed with another key than the one given".into());
            }
            if !self.report.keys.iter().any(|k| k == key_hex(&key).as_str()) {
                self.report.keys.push(key_hex(&key));
            }
            self.key = Some(key);
        } else if head.t == "open" {
            return Err("`open` in the middle of a file".into());
        }
        let prev = self.prev.unwrap_or(GENESIS);
        if &line_hash(&prev, json.as_bytes()) != hash {
            return Err("its hash does not match its text and the line before: changed".into());
        }
        match self.report.last_seq {
            Some(last) if head.seq != last + 1 => {
                return Err(format!(
                    "seq {} follows {last}: lines are missing or out of order",
                    head.seq
                ));
            }
            None => self.report.first_seq = Some(head.seq),
            _ => {}
        }
        match head.t.as_str() {
            "seal" => {
                let signed: [u8; 32] =
                    fixed_hex(head.head.as_deref()).ok_or("the seal has no `head` hash")?;
                if signed != prev {
                    return Err("the seal's `head` is not the line before it".into());
                }
                let sig: [u8; 64] =
                    fixed_hex(head.sig.as_deref()).ok_or("the seal has no 64-byte `sig`")?;
                let key = self.key.as_ref().ok_or("a seal before any key")?;
                key.verify(&seal_message(&signed), &Signature::from_bytes(&sig))
                    .map_err(|_| "the seal's signature does not verify".to_string())?;
                self.report.seals += 1;
            }
            "accepted" => self.report.accepted += head.events.len() as u64,
            "attempt" => self.report.attempts += 1,
            "open" => {}
            other => return Err(format!("unknown line kind `{other}`")),
        }
        self.report.last_seq = Some(head.seq);
        self.prev = Some(*hash);
        self.report.head = Some(crate::hex::encode(hash));
        Ok(())
    }
}

/// `N` bytes written as hex, if `text` is that.
fn fixed_hex<const N: usize>(text: Option<&str>) -> Option<[u8; N]> {
    crate::hex::decode(text?)?.try_into().ok()
}

/// The last whole line of a file (without its line end) and the length up to its end,
/// read backwards a block at a time: the cost is the last line's, not the file's.
pub fn last_line(file: &mut std::fs::File) -> std::io::Result<(Option<String>, u64)> {
    const BLOCK: u64 = 64 * 1024;
    let mut start = file.metadata()?.len();
    // The bytes from `start` to the end of the file.
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        match tail.iter().rposition(|b| *b == b'\n') {
            Some(last) => {
                let end = start + last as u64 + 1;
                if let Some(before) = tail[..last].iter().rposition(|b| *b == b'\n') {
                    return Ok((Some(text(&tail[before + 1..last])), end));
                }
                if start == 0 {
                    return Ok((Some(text(&tail[..last])), end));
                }
            }
            None if start == 0 => return Ok((None, 0)),
            None => {}
        }
        let from = start.saturating_sub(BLOCK);
        let mut block = vec![0; (start - from) as usize];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut block)?;
        block.extend_from_slice(&tail);
        tail = block;
        start = from;
    }
}

/// The chain's head at the end of `day`'s file (`YYYY-MM-DD`): the hash of its last whole
/// line (a closed day ends with its seal). Reads the file's end only.
pub fn day_head(dir: &Path, day: &str) -> Option<String> {
    let mut file = std::fs::File::open(dir.join(format!("{day}{SUFFIX}"))).ok()?;
    let (line, _) = last_line(&mut file).ok()?;
    split_line(&line?).map(|(hash, _)| crate::hex::encode(&hash))
}

/// A record line as one record per event: an `accepted` line's events each with the
/// request's unit, flow, trace, time and targets; an `attempt` line as it is.
pub fn records_of(line: &serde_json::Value) -> Vec<serde_json::Value> {
    let Some(events) = line["events"]
        .as_array()
        .filter(|_| line["t"] == "accepted")
    else {
        return vec![line.clone()];
    };
    events
        .iter()
        .map(|e| {
            let mut r = line.clone();
            r.as_object_mut().map(|o| o.remove("events"));
            if let (Some(r), Some(e)) = (r.as_object_mut(), e.as_object()) {
                for (k, v) in e {
                    r.insert(k.clone(), v.clone());
                }
            }
            r
        })
        .collect()
}

/// A public key as the archive writes it.
pub fn key_hex(key: &VerifyingKey) -> String {
    crate::hex::encode(key.as_bytes())
}
