//! `lienthong audit verify`: the audit log's hash chain checked offline, with the head to
//! keep elsewhere; `lienthong audit lookups`: a period's lookups per unit and officer
//! ([`super::audit_lookups`]).

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
    /// The population and business lookups of a period, per unit and officer, as CSV
    /// (from the audit trail, read once with a progress line every 100,000 records).
    Lookups {
        /// The configuration file.
        #[arg(long, default_value = "config/lienthong.toml")]
        config: PathBuf,
        /// The log file to read (default: [audit] path, or audit.log in the data directory).
        #[arg(long)]
        file: Option<PathBuf>,
        /// The period: a month (2026-12), a quarter (2026-Q4), a year, ytd or all.
        #[arg(long)]
        period: String,
    },
}

/// The audit log named by `file`, else the configuration's.
fn log_path(config: &std::path::Path, file: Option<PathBuf>) -> Result<PathBuf, String> {
    match file {
        Some(f) => Ok(f),
        None => config::load_file(config)
            .map(|cfg| cfg.audit_path())
            .map_err(|e| format!("{e} (or name the log with --file)")),
    }
}

fn lookups(config: &std::path::Path, file: Option<PathBuf>, period: &str) -> ExitCode {
    let period = match crate::admin::period::Period::parse(period) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: --period: {e}");
            return ExitCode::from(2);
        }
    };
    let path = match log_path(config, file) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let now = crate::time::now_ms();
    let counted =
        crate::cli::audit_lookups::count(&path, &period, now, |n| eprintln!("  {n} records read"));
    match counted {
        Ok(c) => {
            print!("{}", crate::cli::audit_lookups::csv(&period, &c));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

pub fn audit(command: AuditCommand) -> ExitCode {
    let (config, file, head) = match command {
        AuditCommand::Verify { config, file, head } => (config, file, head),
        AuditCommand::Lookups {
            config,
            file,
            period,
        } => return lookups(&config, file, &period),
    };
    let path = match log_path(&config, file) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
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
