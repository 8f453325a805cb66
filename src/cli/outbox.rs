//! `lienthong outbox new-key | re-encrypt | usage | compact | check`: the outbox
//! keyring's keys, sealing every stored record with the current one, what the disk is
//! spent on, giving its free space back, and checking (and repairing) every record (all
//! but the first with the bus stopped).

use super::checked::load;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum OutboxCommand {
    /// Print a new random key line (`id:base64`) for the outbox keyring. To rotate, put it
    /// first in the keyring, keep the old key after it, restart, then run `re-encrypt`.
    NewKey {
        /// The key's name, e.g. the year or date it was made.
        id: String,
    },
    /// Seal every stored record with the current (first) key: records of older keys and
    /// records written before encryption was on. Run it with the bus stopped. Afterwards the
    /// old keys can leave the keyring.
    ReEncrypt {
        /// The configuration file.
        #[arg(long, default_value = "config/lienthong.toml")]
        config: PathBuf,
        /// Overrides outbox.data_dir.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Read every record (the bus stopped): each sealed one must open, each must decode,
    /// and the running totals must equal a recount. Says what is wrong, in words; exits 1
    /// when something is. With `--repair`, unreadable records go to a quarantine file in
    /// the data directory (their keys and bytes) and are deleted, and the totals (and the
    /// count of bytes that decides when the file gives space back) are rewritten from the
    /// recount; no readable record is touched.
    Check {
        /// The configuration file (for outbox.data_dir and the outbox's keys).
        #[arg(long, default_value = "config/lienthong.toml")]
        config: PathBuf,
        /// Overrides outbox.data_dir.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Quarantine the unreadable records and rewrite the totals.
        #[arg(long)]
        repair: bool,
    },
    /// What the outbox's disk is spent on: records and bytes per record kind (messages,
    /// pending and finished deliveries, dead letters, indexes, KPI records), and the file's
    /// size. Reads the whole store: run it with the bus stopped.
    Usage {
        /// The configuration file.
        #[arg(long, default_value = "config/lienthong.toml")]
        config: PathBuf,
        /// Overrides outbox.data_dir.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Give the outbox file's free space back to the file system: the pages in use move to
    /// the start of the file and the rest is cut. The running bus does this by itself
    /// after a retention sweep when what must move is small (256 MiB at most); this is for
    /// larger files, with the bus stopped. Takes about as long as reading the live records.
    Compact {
        /// The configuration file.
        #[arg(long, default_value = "config/lienthong.toml")]
        config: PathBuf,
        /// Overrides outbox.data_dir.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

pub fn outbox(command: OutboxCommand) -> ExitCode {
    use crate::outbox::encryption;
    match command {
        OutboxCommand::Usage { config, data_dir } => usage(&config, data_dir),
        OutboxCommand::Compact { config, data_dir } => compact(&config, data_dir),
        OutboxCommand::Check {
            config,
            data_dir,
            repair,
        } => super::outbox_check::run(&config, data_dir, repair),
        OutboxCommand::NewKey { id } => {
            let line = encryption::new_key_line(&id);
            if let Err(e) = encryption::Keyring::parse(&line, "the new key") {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            println!("{line}");
            ExitCode::SUCCESS
        }
        OutboxCommand::ReEncrypt { config, data_dir } => {
            let (mut cfg, _) = match load(&config) {
                Ok(v) => v,
                Err(code) => return code,
            };
            if let Some(dir) = data_dir {
                cfg.outbox.data_dir = dir;
            }
            let ring = match encryption::load_keyring(&cfg, |v| std::env::var(v).ok()) {
                Ok(Some(ring)) => ring,
                Ok(None) => {
                    eprintln!(
                        "error: {} has no [outbox.encryption]: there is no key to seal with",
                        config.display()
                    );
                    return ExitCode::from(2);
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let dir = &cfg.outbox.data_dir;
            let store = match crate::outbox::RedbStore::open(dir, cfg.outbox.cache_mb) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!(
                        "error: cannot open the outbox in {}: {e} (stop the bus first: only one process may open it)",
                        dir.display()
                    );
                    return ExitCode::FAILURE;
                }
            };
            println!(
                "sealing the outbox in {} with key `{}` ...",
                dir.display(),
                ring.current()
            );
            let mut last = std::time::Instant::now();
            let result = encryption::reencrypt(&store, &ring, |n| {
                if last.elapsed() >= std::time::Duration::from_secs(1) {
                    println!("  {n} records read");
                    last = std::time::Instant::now();
                }
            });
            match result {
                Ok(done) => {
                    println!(
                        "done: {} records read, {} sealed again with `{}`",
                        done.scanned,
                        done.resealed,
                        ring.current()
                    );
                    for id in done.retired {
                        println!("key `{id}` seals nothing any more: it may leave the keyring");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// The config of `config` (`data_dir` overriding its outbox.data_dir) and its outbox,
/// opened alone, or say why not.
pub(super) fn open_stopped(
    config: &std::path::Path,
    data_dir: Option<PathBuf>,
) -> Result<(crate::config::Config, crate::outbox::RedbStore), ExitCode> {
    let (mut cfg, _) = load(config)?;
    if let Some(dir) = data_dir {
        cfg.outbox.data_dir = dir;
    }
    let dir = &cfg.outbox.data_dir;
    match crate::outbox::RedbStore::open(dir, cfg.outbox.cache_mb) {
        Ok(store) => Ok((cfg, store)),
        Err(e) => {
            eprintln!(
                "error: cannot open the outbox in {}: {e} (stop the bus first: only one process may open it; \
                 if the file itself is damaged, restore the data directory from its backup)",
                dir.display()
            );
            Err(ExitCode::FAILURE)
        }
    }
}

/// `lienthong outbox compact`: the file compacted whatever its size.
fn compact(config: &std::path::Path, data_dir: Option<PathBuf>) -> ExitCode {
    let (_, store) = match open_stopped(config, data_dir) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    eprintln!(
        "compacting the outbox file ({:.1} MiB, {:.1} MiB of records)...",
        mib(crate::outbox::Store::size_on_disk(&store)),
        mib(store.live_bytes())
    );
    match store.reclaim_up_to(u64::MAX, 0) {
        Ok(Some(r)) => {
            println!(
                "compacted in {:.1}s: {:.1} MiB -> {:.1} MiB",
                r.took.as_secs_f64(),
                mib(r.file_before),
                mib(r.file_after)
            );
            ExitCode::SUCCESS
        }
        Ok(None) => {
            println!("nothing to give back: the file is within its records' space");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "error: {e} (the file is unchanged or compacted in part; the bus opens it either way)"
            );
            ExitCode::FAILURE
        }
    }
}

/// `lienthong outbox usage`: the store read a page at a time, with progress.
fn usage(config: &std::path::Path, data_dir: Option<PathBuf>) -> ExitCode {
    use crate::outbox::Store;
    use crate::outbox::usage::by_kind;
    let (_, store) = match open_stopped(config, data_dir) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let mut last = std::time::Instant::now();
    let kinds = match by_kind(&store, |n| {
        if last.elapsed() >= std::time::Duration::from_secs(1) {
            eprintln!("  {n} records read");
            last = std::time::Instant::now();
        }
    }) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pages = store
        .file_stats()
        .map_err(|e| eprintln!("warning: the file's page counts could not be read: {e}"))
        .ok();
    print!(
        "{}",
        crate::outbox::usage::render(&kinds, store.size_on_disk(), pages.as_ref())
    );
    ExitCode::SUCCESS
}
