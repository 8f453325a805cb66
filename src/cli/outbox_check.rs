//! `lienthong outbox check [--repair]`: every record of a stopped bus's outbox read and
//! judged, what is wrong said in words, and the repair on request
//! ([`crate::outbox::check`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn run(config: &Path, data_dir: Option<PathBuf>, repair: bool) -> ExitCode {
    use crate::outbox::check::{check, repair as repair_store};
    let (cfg, store) = match super::outbox::open_stopped(config, data_dir) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let ring = match crate::outbox::encryption::load_keyring(&cfg, |v| std::env::var(v).ok()) {
        Ok(ring) => ring,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let dir = cfg.outbox.data_dir.clone();
    println!("checking the outbox in {} ...", dir.display());
    let mut last = std::time::Instant::now();
    let checked = match check(&store, ring.as_ref(), |n| {
        if last.elapsed() >= std::time::Duration::from_secs(1) {
            eprintln!("  {n} records read");
            last = std::time::Instant::now();
        }
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: the outbox could not be read through: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{} records read", checked.records);
    let unreadable = checked.unreadable.len() as u64 + checked.unreadable_not_listed;
    for u in &checked.unreadable {
        println!(
            "unreadable: {} ({})",
            String::from_utf8_lossy(&u.key).escape_debug(),
            u.problem
        );
    }
    if checked.unreadable_not_listed > 0 {
        println!("... and {} more unreadable", checked.unreadable_not_listed);
    }
    let out_of_step = checked.totals_out_of_step();
    for line in &out_of_step {
        println!("totals out of step: {line}");
    }
    if checked.damage_noted {
        println!(
            "the bus met a record it could not read while it ran, and will not start until the repair has run"
        );
    }
    // The store's count of its bytes (when to give space back) is an estimate a crash can
    // move by a second's changes: said, and put right by the repair, never a failure.
    let counted = store.live_bytes();
    if counted.abs_diff(checked.bytes) > checked.bytes / 100 {
        println!(
            "the outbox's count of its bytes (which decides when the file gives space back) \
             says {counted}, the records hold {}{}",
            checked.bytes,
            if repair {
                ": recounted"
            } else {
                ": --repair recounts it"
            }
        );
        if repair && let Err(e) = store.set_live_bytes(checked.bytes) {
            eprintln!("error: the byte count could not be rewritten: {e}");
            return ExitCode::FAILURE;
        }
    }
    if checked.is_sound() && checked.unreadable_not_listed == 0 {
        println!("the outbox is sound");
        return ExitCode::SUCCESS;
    }
    if !repair {
        println!(
            "{unreadable} unreadable record(s), {} total(s) out of step: run `lienthong outbox check --repair` \
             (the bus stopped) to quarantine the unreadable records and rewrite the totals",
            out_of_step.len()
        );
        return ExitCode::FAILURE;
    }
    let quarantine = dir.join(format!(
        "quarantine-{}.jsonl",
        crate::time::rfc3339_ms(crate::time::now_ms()).replace(':', "-")
    ));
    match repair_store(&store, &checked, &quarantine) {
        Ok(done) => {
            if done.quarantined > 0 {
                println!(
                    "{} record(s) moved to {} and deleted",
                    done.quarantined,
                    quarantine.display()
                );
            }
            if done.totals_rewritten {
                println!("the totals were rewritten from the recount");
            }
            println!("the outbox is ready: the bus will start on it");
            if checked.unreadable_not_listed > 0 {
                println!("more unreadable records remain: run the repair again");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "error: the repair failed, nothing of it was deleted unless its quarantine file was written: {e}"
            );
            ExitCode::FAILURE
        }
    }
}
