//! The last 24 hours of each platform's backlog, oldest pending and delivery rate, for the
//! dashboard's charts: a sample every `[admin] history_every` (5 minutes) kept in memory,
//! at most a day of them (288 at the default), so it costs the same however long the bus
//! runs. Each sample reads running counts only (the writer's per-target totals, the
//! scheduler's oldest, the relay's counters), never the outbox's records. It starts again
//! empty after a restart: the history that must survive (the KPIs) is in the outbox.

use super::AdminState;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// One target's figures at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetSample {
    pub target: String,
    /// Deliveries not yet delivered or dead (exact: the writer's running count).
    pub pending: u64,
    /// Age of the oldest pending delivery the scheduler holds, seconds.
    pub oldest_s: u64,
    /// Deliveries per minute since the previous sample.
    pub delivered_per_min: f64,
    delivered_total: u64,
}

#[derive(Clone, Debug)]
pub struct Sample {
    pub at_ms: u64,
    pub targets: Vec<TargetSample>,
}

/// The samples of the last day.
#[derive(Default)]
pub struct History {
    samples: Mutex<VecDeque<Sample>>,
}

/// How long the history reaches back.
pub const SPAN: Duration = Duration::from_secs(24 * 3600);

impl History {
    /// Take a sample of every target now.
    pub fn record(&self, s: &AdminState, now_ms: u64) {
        let mut samples = self.samples.lock().unwrap();
        let previous = samples.back().cloned();
        let targets = s
            .targets
            .iter()
            .map(|t| {
                let pending = s.outbox.per_unit(&t.name).values().map(|(p, _)| p).sum();
                let oldest_s = s
                    .outbox
                    .queue(&t.name)
                    .and_then(|q| q.per_unit().values().filter_map(|c| c.oldest).min())
                    .map_or(0, |id| now_ms.saturating_sub(id.timestamp_ms()) / 1000);
                let delivered_total = t.stats.delivered.load(Ordering::Relaxed);
                let delivered_per_min = previous
                    .as_ref()
                    .and_then(|p| {
                        let before = p.targets.iter().find(|x| x.target == t.name)?;
                        let minutes = now_ms.saturating_sub(p.at_ms) as f64 / 60_000.0;
                        (minutes > 0.0).then(|| {
                            delivered_total.saturating_sub(before.delivered_total) as f64 / minutes
                        })
                    })
                    .unwrap_or(0.0);
                TargetSample {
                    target: t.name.clone(),
                    pending,
                    oldest_s,
                    delivered_per_min,
                    delivered_total,
                }
            })
            .collect();
        samples.push_back(Sample {
            at_ms: now_ms,
            targets,
        });
        let horizon = now_ms.saturating_sub(SPAN.as_millis() as u64);
        while samples.front().is_some_and(|f| f.at_ms < horizon) {
            samples.pop_front();
        }
    }

    /// The samples of the last day, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().unwrap().iter().cloned().collect()
    }
}

/// Sample every `every` for as long as the bus runs.
pub async fn sample_periodically(state: std::sync::Arc<AdminState>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        state.history.record(&state, crate::time::now_ms());
    }
}
