//! Delivery latency per target (acceptance to delivery), kept in a Prometheus histogram of
//! the `prometheus-client` crate with the trace id of a delivery in each bucket as its
//! exemplar, so a slow bucket on a dashboard leads to the trace of one such delivery.
//! `/metrics` exposes it as is; the status API's p50 and p99 are read from the same
//! histogram's exposition (one source of truth).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;

/// Upper bounds (seconds) of the buckets: from a fast platform's 5 ms to an outage's hour.
pub const LATENCY_BUCKETS_S: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 300.0, 3600.0,
];

/// The exemplar of a bucket: the W3C trace id of one delivery that fell in it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TraceExemplar {
    pub trace_id: String,
}

#[derive(Clone, Debug)]
pub struct DeliveryLatency(HistogramWithExemplars<TraceExemplar>);

impl Default for DeliveryLatency {
    fn default() -> Self {
        DeliveryLatency(HistogramWithExemplars::new(LATENCY_BUCKETS_S.into_iter()))
    }
}

impl DeliveryLatency {
    /// One delivery `ms` after acceptance, of the trace `trace_id` (a W3C trace id; other
    /// ids are not exemplars).
    pub fn observe(&self, ms: u64, trace_id: Option<&str>) {
        let exemplar = trace_id
            .filter(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|t| TraceExemplar {
                trace_id: t.to_string(),
            });
        self.0.observe(ms as f64 / 1000.0, exemplar, None);
    }

    /// The histogram, for `/metrics`.
    pub fn histogram(&self) -> &HistogramWithExemplars<TraceExemplar> {
        &self.0
    }

    /// Cumulative count per bucket bound, as the crate exposes it.
    fn buckets(&self) -> Vec<(f64, u64)> {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("latency", "", self.0.clone());
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &registry).is_err() {
            return Vec::new();
        }
        text.lines()
            .filter_map(|line| {
                let rest = line.strip_prefix("latency_bucket{le=\"")?;
                let (le, rest) = rest.split_once("\"} ")?;
                let count = rest.split_whitespace().next()?.parse().ok()?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((le, count))
            })
            .collect()
    }

    /// The bucket bound (milliseconds) under which a share `q` of deliveries fell; `None`
    /// before the first delivery, `u64::MAX` past the last bound.
    pub fn quantile_ms(&self, q: f64) -> Option<u64> {
        let buckets = self.buckets();
        let total = buckets.last()?.1;
        if total == 0 {
            return None;
        }
        let want = (total as f64 * q).ceil() as u64;
        let (le, _) = buckets.iter().find(|(_, c)| *c >= want)?;
        Some(if le.is_finite() {
            (le * 1000.0).round() as u64
        } else {
            u64::MAX
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_histogram_buckets() {
        let l = DeliveryLatency::default();
        assert_eq!(l.quantile_ms(0.5), None);
        for _ in 0..98 {
            l.observe(3, None);
        }
        l.observe(700, Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        l.observe(40_000, Some("not-a-trace"));
        assert_eq!(l.quantile_ms(0.5), Some(5));
        assert_eq!(l.quantile_ms(0.99), Some(1000));
        assert_eq!(l.quantile_ms(1.0), Some(300_000));
        assert_eq!(l.quantile_ms(0.0), Some(5));
    }
}
