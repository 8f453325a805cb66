//! `lienthong evidence`: the message log checked offline (`verify`), a dossier's
//! exchanges with their proof (`show`), and the public key to publish (`key`).

use crate::config;
use crate::evidence::archive::{self, Broken, Report};
use clap::Subcommand;
use ed25519_dalek::VerifyingKey;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum EvidenceCommand {
    /// Check a message-log archive: every line's hash, the links between days, every
    /// seal's signature. A changed, removed or reordered byte is reported with its file
    /// and line. Works on a copy of the directory, without the bus.
    Verify {
        /// The archive directory (default: [evidence] dir, or evidence/ in the data directory).
        dir: Option<PathBuf>,
        #[arg(long, default_value = "config/lienthong.toml")]
        config: PathBuf,
        /// The bus's public key (hex, from `lienthong evidence key`): every file must be
        /// signed with it. Without it the key each file names is used, and printed.
        #[arg(long)]
        key: Option<String>,
    },
    /// What was exchanged for a dossier: each accepted event and delivery attempt, with
    /// its line's hash and the seal that signs it. The whole archive is checked on the way.
    Show {
        /// The dossier's code (the route's ordering key, e.g. `MaHoSo`).
        #[arg(long)]
        dossier: String,
        /// The archive directory (default: [evidence] dir, or evidence/ in the data directory).
        dir: Option<PathBuf>,
        #[arg(long, default_value = "config/lienthong.toml")]
        config: PathBuf,
        /// Only this day's file (`YYYY-MM-DD`, Vietnam's time).
        #[arg(long)]
        day: Option<String>,
        /// The bus's public key (hex): as for `verify`.
        #[arg(long)]
        key: Option<String>,
        /// One JSON object per record (with `proof`), instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the bus's public signing key (hex), to publish or keep with the archives.
    Key {
        #[arg(long, default_value = "config/lienthong.toml")]
        config: PathBuf,
    },
}

pub fn evidence(command: EvidenceCommand) -> ExitCode {
    match run(command) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(command: EvidenceCommand) -> Result<ExitCode, String> {
    match command {
        EvidenceCommand::Verify { dir, config, key } => {
            let dir = archive_dir(dir, &config)?;
            let key = pinned(key.as_deref())?;
            let files = archive::day_files_of(&dir).map_err(|e| e.to_string())?;
            if files.is_empty() {
                return Err(format!(
                    "{}: no day files (YYYY-MM-DD.jsonl) in it",
                    dir.display()
                ));
            }
            let checked =
                archive::verify_files(&files, key.as_ref(), &mut |_, _, _| {}, &mut progress);
            Ok(verdict(&dir, checked))
        }
        EvidenceCommand::Show {
            dossier,
            dir,
            config,
            day,
            key,
            json,
        } => {
            let dir = archive_dir(dir, &config)?;
            let key = pinned(key.as_deref())?;
            let mut files = archive::day_files_of(&dir).map_err(|e| e.to_string())?;
            if let Some(day) = &day {
                files.retain(|f| f.file_stem().is_some_and(|s| s == day.as_str()));
                if files.is_empty() {
                    return Err(format!("{}: no file for {day}", dir.display()));
                }
            }
            let mut found = 0u64;
            let checked = archive::verify_files(
                &files,
                key.as_ref(),
                &mut |line, hash, proof| {
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                        return;
                    };
                    for record in archive::records_of(&v) {
                        if let Some(text) = show_line(record, hash, proof, &dossier, json) {
                            found += 1;
                            println!("{text}");
                        }
                    }
                },
                &mut progress,
            );
            let code = verdict(&dir, checked);
            eprintln!("{found} records for dossier {dossier}");
            Ok(code)
        }
        EvidenceCommand::Key { config } => {
            let cfg = config::load_file(&config).map_err(|e| e.to_string())?;
            let path = cfg.evidence_key_file();
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!(
                    "{}: {e} (the bus makes the key on its first start)",
                    path.display()
                )
            })?;
            let seed: [u8; 32] = crate::hex::decode(text.trim())
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| format!("{}: not 64 hex digits", path.display()))?;
            let key = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
            println!("{}", archive::key_hex(&key));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn archive_dir(dir: Option<PathBuf>, config: &Path) -> Result<PathBuf, String> {
    match dir {
        Some(dir) => Ok(dir),
        None => config::load_file(config)
            .map(|cfg| cfg.evidence_dir())
            .map_err(|e| format!("{e} (or name the archive directory)")),
    }
}

fn pinned(key: Option<&str>) -> Result<Option<VerifyingKey>, String> {
    let Some(key) = key else { return Ok(None) };
    let bytes: [u8; 32] = crate::hex::decode(key.trim())
        .and_then(|b| b.try_into().ok())
        .ok_or("--key must be 64 hex digits (as `lienthong evidence key` prints)")?;
    VerifyingKey::from_bytes(&bytes)
        .map(Some)
        .map_err(|e| format!("--key is not an Ed25519 public key: {e}"))
}

fn progress(file: &Path, report: &Report) {
    eprintln!(
        "  {}: checked ({} lines so far)",
        file.display(),
        report
            .last_seq
            .map_or(0, |l| l + 1 - report.first_seq.unwrap_or(0))
    );
}

/// What the check found, printed; the exit code says it.
fn verdict(dir: &Path, checked: Result<Report, Broken>) -> ExitCode {
    match checked {
        Ok(r) => {
            println!(
                "{}: OK, {} day files, {} accepted events, {} delivery attempts, {} seals; seq {}..{}; head {}",
                dir.display(),
                r.files,
                r.accepted,
                r.attempts,
                r.seals,
                r.first_seq.unwrap_or(0),
                r.last_seq.unwrap_or(0),
                r.head.as_deref().unwrap_or("-"),
            );
            println!("signed with key {}", r.keys.join(", "));
            if r.unsealed > 0 {
                println!(
                    "{} records after the last seal are not signed yet (the bus is running, or was killed: it seals them when it starts)",
                    r.unsealed
                );
            }
            if r.starts_mid_chain {
                println!(
                    "the first file links to an earlier day that is not in this directory: keep the archive whole to check the chain from its start"
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("BROKEN: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A record of `dossier`, as text or JSON with its proof; `None` for another dossier's.
fn show_line(
    mut v: serde_json::Value,
    hash: &str,
    proof: Option<&str>,
    dossier: &str,
    json: bool,
) -> Option<String> {
    if v.get("dossier").and_then(|d| d.as_str()) != Some(dossier) {
        return None;
    }
    let proof_text = proof.unwrap_or("not sealed yet");
    if json {
        v["proof"] = serde_json::json!({ "line_sha256": hash, "seal": proof });
        return Some(v.to_string());
    }
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("-").to_string();
    let n = |k: &str| v.get(k).and_then(|x| x.as_u64());
    let time = |k: &str| n(k).map(crate::time::rfc3339_ms).unwrap_or_default();
    let text = match s("t").as_str() {
        "accepted" => format!(
            "{} accepted {}/{} message {} → {}; body sha256 {}",
            time("at_ms"),
            s("unit"),
            s("flow"),
            s("id"),
            v.get("targets").map(|t| t.to_string()).unwrap_or_default(),
            s("body_sha256"),
        ),
        _ => format!(
            "{} attempt {} to {}: {} (HTTP {}); message {}; sent sha256 {}, answer sha256 {}",
            time("sent_ms"),
            n("attempt").unwrap_or(0),
            s("target"),
            s("outcome"),
            n("answer_status").map_or_else(|| s("no_answer"), |c| c.to_string()),
            s("id"),
            s("request_sha256"),
            s("answer_sha256"),
        ),
    };
    Some(format!(
        "{text}\n    proof: line sha256 {hash}; {proof_text}"
    ))
}
