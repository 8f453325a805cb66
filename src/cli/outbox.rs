//! `lienthong outbox new-key | re-encrypt`: the outbox keyring's keys, and sealing every
//! stored record with the current one (the bus stopped).

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
}

pub fn outbox(command: OutboxCommand) -> ExitCode {
    use crate::outbox::encryption;
    match command {
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
