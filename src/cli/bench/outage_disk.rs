//! The outage scenario's disk: what the outbox holds by record kind ([`store_usage`]),
//! and its last phase, where the drained outage passes retention. The bus is
//! started again on the same data directory with `retention` and `sweep_interval` of a
//! second, every platform up, and the outbox file is watched until the retention sweep has
//! removed what was delivered and the file has given its space back (the store compacts
//! itself after a sweep when most of it is free: [`crate::outbox::redb_store`]).

use super::BusProcess;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long the phase waits for the file to settle.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(300);
/// The file is taken as settled when its size has not changed for this long.
const SETTLED_AFTER: Duration = Duration::from_secs(20);
/// A file that has not shrunk by then will not (sweeps run every second).
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, Default, Clone, Copy)]
pub struct SweepFigures {
    pub file_before_mib: f64,
    pub file_after_mib: f64,
    /// From the bus's start to the file's last change.
    pub seconds: f64,
}

/// Run the phase on the scenario's `config` (the bus stopped); `port` is the bus's.
pub async fn run(exe: &Path, config: &Path, port: u16) -> Result<SweepFigures, String> {
    let text = std::fs::read_to_string(config).map_err(|e| e.to_string())?;
    let mut table: toml::Table = toml::from_str(&text).map_err(|e| e.to_string())?;
    let outbox = table
        .get_mut("outbox")
        .and_then(|o| o.as_table_mut())
        .ok_or("the scenario's config has no [outbox]")?;
    outbox.insert("retention".into(), "1s".into());
    outbox.insert("sweep_interval".into(), "1s".into());
    let data_file = Path::new(
        outbox
            .get("data_dir")
            .and_then(|d| d.as_str())
            .ok_or("the scenario's config has no outbox.data_dir")?,
    )
    .join(crate::outbox::redb_store::FILE_NAME);
    let swept = config.with_file_name("outage-retention.toml");
    std::fs::write(&swept, toml::to_string(&table).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;

    let size = || std::fs::metadata(&data_file).map(|m| m.len()).unwrap_or(0);
    let mib = |b: u64| b as f64 / 1_048_576.0;
    let mut figures = SweepFigures {
        file_before_mib: mib(size()),
        ..SweepFigures::default()
    };
    eprintln!("outage: retention passes (1s); waiting for the sweep to give the file back:");
    let (bus, _) = BusProcess::spawn(exe, &swept, port, "all")?;
    let started = Instant::now();
    let mut last = (size(), Instant::now());
    let mut last_print = Instant::now();
    while started.elapsed() < SETTLE_TIMEOUT {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = size();
        if now != last.0 {
            last = (now, Instant::now());
        }
        if last_print.elapsed() >= Duration::from_secs(5) {
            eprintln!("  outage: the outbox file is {:.0} MiB", mib(now));
            last_print = Instant::now();
        }
        // Settled: unchanged for a while, after giving space back — or never going to (a
        // file too small to be worth compacting).
        let shrunk = now < size_floor(figures.file_before_mib);
        if last.1.elapsed() >= SETTLED_AFTER && (shrunk || started.elapsed() >= GIVE_UP_AFTER) {
            break;
        }
    }
    figures.file_after_mib = mib(last.0);
    figures.seconds = last.1.duration_since(started).as_secs_f64();
    bus.stop();
    Ok(figures)
}

/// Below this the file has given space back (a tenth under where it started).
fn size_floor(before_mib: f64) -> u64 {
    (before_mib * 0.9 * 1_048_576.0) as u64
}

/// What the outbox under `data_dir` holds, by record kind, and how its file's pages are
/// spent (`lienthong outbox usage`): read whole, with the bus stopped.
pub fn store_usage(data_dir: &Path) -> Result<String, String> {
    use crate::outbox::Store;
    let store = crate::outbox::RedbStore::open(data_dir, 64).map_err(|e| e.to_string())?;
    let kinds = crate::outbox::usage::by_kind(&store, |_| {}).map_err(|e| e.to_string())?;
    let pages = store.file_stats().ok();
    Ok(crate::outbox::usage::render(
        &kinds,
        store.size_on_disk(),
        pages.as_ref(),
    ))
}
