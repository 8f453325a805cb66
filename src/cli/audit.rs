//! `lienthong audit verify`: the audit log's hash chain checked offline, with the head to
//! keep elsewhere.

use crate::config;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of the audit log: any altered, removed or reordered record is
    /// reported with its line. Prints the head (last record and hash) to keep elsewhere.
    Verify {
        /// The configuration file.
        #[arg(long, default_value = "config/lienthong.toml")]
        config: PathBuf,
        /// The log file to check (default: [audit] path, or audit.log in the data directory).
        #[arg(long)]
        file: Option<PathBuf>,
        /// A head printed by an earlier verify (`<seq>:<hash>`): the log must still hold
        /// that record, unchanged (catches records cut from the end).
        #[arg(long)]
        head: Option<String>,
    },
}

pub fn audit(command: AuditCommand) -> ExitCode {
    let AuditCommand::Verify { config, file, head } = command;
    let path = match file {
        Some(f) => f,
        None => match config::load_file(&config) {
            Ok(cfg) => cfg.audit_path(),
            Err(e) => {
                eprintln!("error: {e} (or name the log with --file)");
                return ExitCode::from(2);
            }
        },
    };
    let expected = match head.as_deref().map(|h| h.split_once(':')) {
        None => None,
        Some(Some((seq, hash))) if seq.parse::<u64>().is_ok() => {
            Some((seq.parse::<u64>().unwrap_or(0), hash.to_string()))
        }
        Some(_) => {
            eprintln!("error: --head must be `<seq>:<hash>` as printed by an earlier verify");
            return ExitCode::from(2);
        }
    };
    let result = crate::audit::verify(&path, |n| eprintln!("  {n} records checked"));
    match result {
        Ok(v) => {
            if let Some((seq, hash)) = expected {
                let kept = crate::audit::record_at(&path, seq).ok().flatten();
                if kept.as_deref() != Some(hash.as_str()) {
                    eprintln!(
                        "BROKEN: {}: record {seq} with hash {hash} is not in the log any more (the log ends at record {}): records were cut from the end or the log was replaced",
                        path.display(),
                        v.head_seq
                    );
                    return ExitCode::FAILURE;
                }
            }
            println!(
                "{}: OK, {} records, chain intact; head {}:{}",
                path.display(),
                v.records,
                v.head_seq,
                v.head_hash
            );
            ExitCode::SUCCESS
        }
        Err(e @ crate::audit::AuditError::Broken { .. }) => {
            eprintln!("BROKEN: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
