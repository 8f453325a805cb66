//! How fast the data directory's disk makes a write durable, measured once at start: a few
//! 4 KiB writes each followed by `fdatasync`, as the outbox's own commits are. Every
//! acknowledged request waits for at least one such sync, so a slow disk (a network volume,
//! a spinning disk, a throttled cloud volume) shows up at once in the log, in
//! `/metrics` (`lienthong_outbox_fsync_seconds`) and on the operator's mind, instead of as
//! an unexplained slowness later.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// Syncs measured at most (fewer when they take over [`MOST_TIME`] together).
const SAMPLES: usize = 5;
/// Longest the measurement may delay the start.
const MOST_TIME: Duration = Duration::from_secs(1);
/// A sync slower than this (at the median) is worth a warning: an SSD takes well under.
pub const SLOW: Duration = Duration::from_millis(20);

/// What the measurement found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskSpeed {
    pub median: Duration,
    pub worst: Duration,
    pub samples: usize,
}

/// Measure in `dir` (a probe file, removed after).
pub fn measure(dir: &Path) -> std::io::Result<DiskSpeed> {
    let path = dir.join(".disk-speed-probe");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)?;
    let block = [0u8; 4096];
    let started = Instant::now();
    let mut times = Vec::with_capacity(SAMPLES);
    let result = (|| {
        while times.len() < SAMPLES && (times.is_empty() || started.elapsed() < MOST_TIME) {
            let t = Instant::now();
            file.write_all(&block)?;
            file.sync_data()?;
            times.push(t.elapsed());
        }
        Ok::<_, std::io::Error>(())
    })();
    drop(file);
    let _ = std::fs::remove_file(&path);
    result?;
    times.sort_unstable();
    Ok(DiskSpeed {
        median: times[times.len() / 2],
        worst: times[times.len() - 1],
        samples: times.len(),
    })
}

impl DiskSpeed {
    /// A warning for the operator when the disk is slow for durable writes, with what it
    /// means at `requests_per_second` (the units' configured rate limits together, when
    /// every unit has one).
    pub fn warning(&self, requests_per_second: Option<u64>) -> Option<String> {
        if self.median <= SLOW {
            return None;
        }
        let ms = self.median.as_secs_f64() * 1000.0;
        let mut text = format!(
            "the data directory's disk takes {ms:.0} ms to make a write durable (median of \
             {} syncs; an SSD takes under {} ms): every acknowledged request waits at least \
             that long",
            self.samples,
            SLOW.as_millis()
        );
        if let Some(rate) = requests_per_second {
            let waiting = rate as f64 * self.median.as_secs_f64();
            text.push_str(&format!(
                "; at the units' configured {rate} requests/s, about {waiting:.0} wait on each write"
            ));
        }
        text.push_str(". Put outbox.data_dir on a local SSD.");
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_directory_is_measured_and_left_clean() {
        let dir = tempfile::tempdir().unwrap();
        let speed = measure(dir.path()).unwrap();
        assert!(speed.samples >= 1 && speed.median <= speed.worst);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(measure(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn only_a_slow_disk_is_warned_about_with_what_it_means_for_the_load() {
        let speed = |ms| DiskSpeed {
            median: Duration::from_millis(ms),
            worst: Duration::from_millis(ms * 2),
            samples: 5,
        };
        assert_eq!(speed(2).warning(Some(500)), None);
        let w = speed(40).warning(Some(500)).unwrap();
        assert!(
            w.contains("40 ms") && w.contains("500 requests/s, about 20 wait"),
            "{w}"
        );
        assert!(!speed(40).warning(None).unwrap().contains("requests/s"));
    }
}
