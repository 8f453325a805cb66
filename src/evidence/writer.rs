//! The archive's writer: appends lines to the day's file, rolls to a new file at
//! midnight (Vietnam's time), seals, and picks the chain up again after a restart.

use super::EvidenceError;
use super::archive::{GENESIS, SUFFIX, day_files, last_line, line_hash, seal_message, split_line};
use ed25519_dalek::{Signer, SigningKey};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The open archive: where the chain stands and the file being written.
pub(super) struct Archive {
    dir: PathBuf,
    key: SigningKey,
    file: Option<BufWriter<File>>,
    /// The day of the file being written, `YYYY-MM-DD`.
    day: String,
    /// The hash of the last line written.
    prev: [u8; 32],
    /// The `seq` of the next line.
    seq: u64,
    /// When the day being written ends (ms since the epoch): before it, no roll.
    day_ends_ms: u64,
    /// Lines written since the last seal.
    pub since_seal: u64,
    /// Reused for each line's text.
    line: Vec<u8>,
}

/// The day of `ms` in Vietnam's time, as the file is named.
pub(super) fn day_of(ms: u64) -> String {
    let compact = crate::time::vn_compact(ms);
    format!("{}-{}-{}", &compact[..4], &compact[4..6], &compact[6..8])
}

impl Archive {
    /// Open the archive in `dir` (made owner-only when new), continuing the chain of its
    /// newest file. A last line cut short by a kill is removed: it was never sealed.
    pub fn open(dir: &Path, key: SigningKey) -> Result<Archive, EvidenceError> {
        let io = |e: std::io::Error| EvidenceError::Io {
            path: dir.display().to_string(),
            error: e.to_string(),
        };
        create_private_dir(dir).map_err(io)?;
        let mut archive = Archive {
            dir: dir.to_path_buf(),
            key,
            file: None,
            day: String::new(),
            prev: GENESIS,
            seq: 0,
            day_ends_ms: 0,
            since_seal: 0,
            line: Vec::with_capacity(1024),
        };
        let Some(newest) = day_files(dir).map_err(io)?.pop() else {
            return Ok(archive);
        };
        let io = |e: std::io::Error| EvidenceError::Io {
            path: newest.display().to_string(),
            error: e.to_string(),
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&newest)
            .map_err(io)?;
        let (last, whole) = last_line(&mut file).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if whole < len {
            tracing::warn!(file = %newest.display(), bytes = len - whole, "the message log's last line was cut short by a kill; removed (it was not sealed)");
            file.set_len(whole).map_err(io)?;
        }
        let Some(last) = last else {
            // Nothing whole in it: written again from its `open` line.
            drop(file);
            std::fs::remove_file(&newest).map_err(io)?;
            return Self::open(dir, archive.key);
        };
        let broken = |problem: &str| EvidenceError::Broken {
            path: newest.display().to_string(),
            problem: problem.to_string(),
        };
        let (hash, json) =
            split_line(&last).ok_or_else(|| broken("its last line is not `<hash> <json>`"))?;
        let head: super::archive::LineHead = serde_json::from_str(json)
            .map_err(|e| broken(&format!("its last line is not a record: {e}")))?;
        archive.prev = hash;
        archive.seq = head.seq + 1;
        archive.since_seal = u64::from(head.t != "seal");
        archive.day = newest
            .file_name()
            .and_then(|n| n.to_str())
            .map(|n| n.trim_end_matches(SUFFIX).to_string())
            .unwrap_or_default();
        file.seek(SeekFrom::End(0)).map_err(io)?;
        archive.file = Some(BufWriter::with_capacity(256 * 1024, file));
        Ok(archive)
    }

    /// Append a line whose JSON `body` writes (given the line's `seq`): into the file of
    /// the day of `now_ms`, sealing and closing the previous day's first.
    pub fn append(
        &mut self,
        now_ms: u64,
        body: impl FnOnce(u64, &mut Vec<u8>),
    ) -> Result<(), EvidenceError> {
        self.roll(now_ms)?;
        let mut json = std::mem::take(&mut self.line);
        json.clear();
        body(self.seq, &mut json);
        let written = self.write_line(&json);
        self.line = json;
        written?;
        self.since_seal += 1;
        Ok(())
    }

    /// A seal over every line so far (when there are unsealed ones), written and synced.
    pub fn seal(&mut self, now_ms: u64) -> Result<(), EvidenceError> {
        if self.since_seal == 0 || self.file.is_none() {
            return Ok(());
        }
        let sig = self.key.sign(&seal_message(&self.prev));
        let json = serde_json::to_vec(&serde_json::json!({
            "t": "seal",
            "seq": self.seq,
            "at_ms": now_ms,
            "head": crate::hex::encode(&self.prev),
            "sig": crate::hex::encode(&sig.to_bytes()),
        }))
        .expect("a seal serializes");
        self.write_line(&json)?;
        self.since_seal = 0;
        self.sync()
    }

    /// Hand what is buffered to the operating system (a killed process loses nothing
    /// written; a lost machine loses what was not synced by a seal).
    pub fn flush(&mut self) -> Result<(), EvidenceError> {
        if let Some(file) = &mut self.file {
            file.flush().map_err(|e| self.io_error(e))?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), EvidenceError> {
        self.flush()?;
        if let Some(file) = &self.file {
            file.get_ref().sync_data().map_err(|e| self.io_error(e))?;
        }
        Ok(())
    }

    /// On a new day: seal the old file and start the day's with its `open` line.
    fn roll(&mut self, now_ms: u64) -> Result<(), EvidenceError> {
        if self.file.is_some() && now_ms < self.day_ends_ms {
            return Ok(());
        }
        // The next midnight in Vietnam (UTC+7).
        let next_day = u64::from(crate::time::vn_day(now_ms)) + 1;
        self.day_ends_ms = (next_day * 86_400 - 7 * 3600) * 1000;
        let day = day_of(now_ms);
        if self.file.is_some() && day <= self.day {
            return Ok(());
        }
        self.seal(now_ms)?;
        let path = self.dir.join(format!("{day}{SUFFIX}"));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| EvidenceError::Io {
                path: path.display().to_string(),
                error: e.to_string(),
            })?;
        // The directory entry is made durable with the first seal's sync of the file.
        self.file = Some(BufWriter::with_capacity(256 * 1024, file));
        self.day = day;
        let json = serde_json::to_vec(&serde_json::json!({
            "t": "open",
            "seq": self.seq,
            "at_ms": now_ms,
            "day": self.day,
            "key": crate::hex::encode(self.key.verifying_key().as_bytes()),
            "prev": crate::hex::encode(&self.prev),
        }))
        .expect("an open line serializes");
        self.write_line(&json)?;
        self.since_seal += 1;
        Ok(())
    }

    fn write_line(&mut self, json: &[u8]) -> Result<(), EvidenceError> {
        let hash = line_hash(&self.prev, json);
        let file = self.file.as_mut().expect("a day file is open");
        let hex = crate::hex::encode(&hash);
        let written = file
            .write_all(hex.as_bytes())
            .and_then(|()| file.write_all(b" "))
            .and_then(|()| file.write_all(json))
            .and_then(|()| file.write_all(b"\n"));
        written.map_err(|e| self.io_error(e))?;
        self.prev = hash;
        self.seq += 1;
        Ok(())
    }

    fn io_error(&self, e: std::io::Error) -> EvidenceError {
        EvidenceError::Io {
            path: self
                .dir
                .join(format!("{}{SUFFIX}", self.day))
                .display()
                .to_string(),
            error: e.to_string(),
        }
    }
}

/// Make `dir` (and its parents) with owner-only permissions when it does not exist.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// The bus's signing key: read from `path`, or made and written there (owner-only) when
/// the file does not exist. The file holds the 32-byte Ed25519 seed in hex.
pub(super) fn signing_key(path: &Path) -> Result<SigningKey, EvidenceError> {
    let io = |e: std::io::Error| EvidenceError::Io {
        path: path.display().to_string(),
        error: e.to_string(),
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let seed: [u8; 32] = crate::hex::decode(text.trim())
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| EvidenceError::Key {
                    path: path.display().to_string(),
                    problem: "it does not hold 64 hex digits (an Ed25519 seed)".into(),
                })?;
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::os::unix::fs::OpenOptionsExt;
            if let Some(parent) = path.parent() {
                create_private_dir(parent).map_err(io)?;
            }
            let seed: [u8; 32] = rand::random();
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(io)?;
            file.write_all(format!("{}\n", crate::hex::encode(&seed)).as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(io)?;
            tracing::info!(path = %path.display(), "made the message log's signing key");
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(e) => Err(io(e)),
    }
}
