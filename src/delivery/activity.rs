//! Recent delivery activity: how many deliveries succeeded, failed and died in the last
//! few minutes, per target and per unit. These are the "delivered in a window" and "error
//! rate" figures of the status API and the dashboard; the counters since start answer a
//! different question (totals for Prometheus).
//!
//! A window is a ring of fixed time buckets, each stamped with the bucket period it counts;
//! a bucket whose stamp is older than the window is stale and read as zero. No background
//! task is needed to age the figures, and recording is a couple of atomic operations.

use crate::envelope::UnitTag;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Length of one bucket.
pub const BUCKET_MS: u64 = 10_000;
/// Buckets in a window: 30 × 10 s = the last 5 minutes.
pub const BUCKETS: usize = 30;
/// The window the figures cover, in seconds.
pub const WINDOW_SECONDS: u64 = BUCKET_MS * BUCKETS as u64 / 1000;

/// Events counted over the last [`WINDOW_SECONDS`].
#[derive(Debug, Default)]
pub struct WindowCounter {
    /// The bucket period (time / BUCKET_MS) each bucket currently counts.
    periods: [AtomicU64; BUCKETS],
    counts: [AtomicU64; BUCKETS],
}

impl WindowCounter {
    pub fn add(&self, now_ms: u64, n: u64) {
        let period = now_ms / BUCKET_MS;
        let i = (period % BUCKETS as u64) as usize;
        let seen = self.periods[i].load(Ordering::Acquire);
        if seen != period
            && self.periods[i]
                .compare_exchange(seen, period, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // An increment racing with this reset may be lost: a monitoring figure, not
            // an account, so one bucket in thirty being off by a few is acceptable.
            self.counts[i].store(0, Ordering::Release);
        }
        self.counts[i].fetch_add(n, Ordering::AcqRel);
    }

    /// Events in the window that ends at `now_ms`.
    pub fn total(&self, now_ms: u64) -> u64 {
        let now = now_ms / BUCKET_MS;
        (0..BUCKETS)
            .filter(|&i| {
                let p = self.periods[i].load(Ordering::Acquire);
                p <= now && now - p < BUCKETS as u64
            })
            .map(|i| self.counts[i].load(Ordering::Acquire))
            .sum()
    }
}

/// What happened to an attempt, as counted here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Failed, a retry is scheduled.
    Failed,
    /// Became a dead letter.
    Dead,
}

#[derive(Debug, Default)]
pub struct Activity {
    pub delivered: WindowCounter,
    pub failed: WindowCounter,
    pub dead: WindowCounter,
    /// Since start, for Prometheus counters: delivered, failed, dead.
    totals: [AtomicU64; 3],
}

/// Figures of one window, ready for a status view.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct ActivitySummary {
    pub window_seconds: u64,
    pub delivered: u64,
    pub failed_attempts: u64,
    pub dead: u64,
    pub delivered_per_minute: f64,
    /// Failed or dead attempts over all attempts in the window (0 when there were none).
    pub error_rate: f64,
}

impl ActivitySummary {
    pub fn from_counts(delivered: u64, failed: u64, dead: u64) -> ActivitySummary {
        let attempts = delivered + failed + dead;
        ActivitySummary {
            window_seconds: WINDOW_SECONDS,
            delivered,
            failed_attempts: failed,
            dead,
            delivered_per_minute: delivered as f64 * 60.0 / WINDOW_SECONDS as f64,
            error_rate: if attempts == 0 {
                0.0
            } else {
                (failed + dead) as f64 / attempts as f64
            },
        }
    }

    /// Sum of several summaries (a unit over its targets).
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a ActivitySummary>) -> ActivitySummary {
        let (mut d, mut f, mut x) = (0, 0, 0);
        for s in all {
            d += s.delivered;
            f += s.failed_attempts;
            x += s.dead;
        }
        ActivitySummary::from_counts(d, f, x)
    }
}

impl Activity {
    pub fn record(&self, outcome: Outcome, now_ms: u64) {
        let (window, i) = match outcome {
            Outcome::Delivered => (&self.delivered, 0),
            Outcome::Failed => (&self.failed, 1),
            Outcome::Dead => (&self.dead, 2),
        };
        window.add(now_ms, 1);
        self.totals[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Outcomes since start: (delivered, failed attempts, dead).
    pub fn totals(&self) -> (u64, u64, u64) {
        (
            self.totals[0].load(Ordering::Relaxed),
            self.totals[1].load(Ordering::Relaxed),
            self.totals[2].load(Ordering::Relaxed),
        )
    }

    pub fn summary(&self, now_ms: u64) -> ActivitySummary {
        ActivitySummary::from_counts(
            self.delivered.total(now_ms),
            self.failed.total(now_ms),
            self.dead.total(now_ms),
        )
    }
}

/// One target's recent activity, split by the unit that sent the messages.
#[derive(Debug, Default)]
pub struct ActivityByUnit {
    units: RwLock<HashMap<UnitTag, Arc<Activity>>>,
}

impl ActivityByUnit {
    pub fn record(&self, unit: UnitTag, outcome: Outcome, now_ms: u64) {
        let found = self.units.read().unwrap().get(&unit).cloned();
        let activity = match found {
            Some(a) => a,
            None => Arc::clone(self.units.write().unwrap().entry(unit).or_default()),
        };
        activity.record(outcome, now_ms);
    }

    /// The summary for each unit seen, by unit name.
    pub fn per_unit(&self, now_ms: u64) -> Vec<(Arc<str>, ActivitySummary)> {
        let units = self.units.read().unwrap();
        units
            .iter()
            .map(|(tag, a)| (tag.name(), a.summary(now_ms)))
            .collect()
    }

    /// Outcomes since start for each unit seen, by unit name.
    pub fn totals_per_unit(&self) -> Vec<(Arc<str>, (u64, u64, u64))> {
        let units = self.units.read().unwrap();
        units
            .iter()
            .map(|(tag, a)| (tag.name(), a.totals()))
            .collect()
    }

    /// All units together.
    pub fn total(&self, now_ms: u64) -> ActivitySummary {
        let per_unit = self.per_unit(now_ms);
        ActivitySummary::sum(per_unit.iter().map(|(_, s)| s))
    }
}

/// The last failures of a target (retryable or not), newest last, for the dashboard's
/// "recent failures". Bounded: older ones fall off.
#[derive(Debug, Default)]
pub struct RecentFailures {
    items: std::sync::Mutex<std::collections::VecDeque<Failure>>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Failure {
    pub at_ms: u64,
    pub unit: String,
    pub id: crate::envelope::MessageId,
    pub error: String,
    /// Whether it became a dead letter (else a retry is scheduled).
    pub dead: bool,
}

impl RecentFailures {
    pub const KEPT: usize = 20;

    pub fn push(&self, failure: Failure) {
        let mut items = self.items.lock().unwrap();
        if items.len() == Self::KEPT {
            items.pop_front();
        }
        items.push_back(failure);
    }

    /// Newest first.
    pub fn list(&self) -> Vec<Failure> {
        self.items.lock().unwrap().iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    #[test]
    fn counts_fall_out_of_the_window_as_time_passes() {
        let c = WindowCounter::default();
        c.add(T0, 3);
        c.add(T0 + 60_000, 2);
        assert_eq!(c.total(T0 + 60_000), 5);
        // Just under five minutes after the first events: all still inside.
        assert_eq!(c.total(T0 + 299_000 - T0 % BUCKET_MS), 5);
        // Five and a half minutes on: only the later two remain.
        assert_eq!(c.total(T0 + 330_000), 2);
        // Ten minutes on: nothing.
        assert_eq!(c.total(T0 + 600_000), 0);
    }

    #[test]
    fn a_reused_bucket_starts_from_zero() {
        let c = WindowCounter::default();
        c.add(T0, 7);
        // Same ring slot, one full turn later.
        let later = T0 + BUCKET_MS * BUCKETS as u64;
        c.add(later, 1);
        assert_eq!(c.total(later), 1);
    }

    #[test]
    fn summaries_give_rates() {
        let by_unit = ActivityByUnit::default();
        let a = UnitTag::of("unit-a-activity-test");
        let b = UnitTag::of("unit-b-activity-test");
        for _ in 0..8 {
            by_unit.record(a, Outcome::Delivered, T0);
        }
        by_unit.record(a, Outcome::Failed, T0);
        by_unit.record(b, Outcome::Dead, T0);
        let total = by_unit.total(T0);
        assert_eq!(
            (total.delivered, total.failed_attempts, total.dead),
            (8, 1, 1)
        );
        assert!((total.error_rate - 0.2).abs() < 1e-9);
        assert!((total.delivered_per_minute - 8.0 / 5.0).abs() < 1e-9);
        let per_unit = by_unit.per_unit(T0);
        let of_a = per_unit
            .iter()
            .find(|(n, _)| &**n == "unit-a-activity-test")
            .unwrap();
        assert_eq!(of_a.1.delivered, 8);
    }
}
