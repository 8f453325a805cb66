//! The relay runtime that forwards a target's outbox deliveries to the broker (cluster
//! mode, `transport = "amqp"`): the forward connector in the delivery core's forward mode.
//! Plugged into the ordinary relay, forwarding inherits the outbox's guarantees: a
//! delivery is finished only when the broker has confirmed it, it is retried with backoff
//! while the broker is away, and the events of one dossier are published in order.

use crate::config::{CircuitBreakerConfig, RetryConfig, TargetConfig};
use crate::delivery::TargetRuntime;
use crate::delivery::settlements::Settlements;
use crate::transport::broker::Broker;
use crate::transport::forward_connector::ForwardConnector;
use std::sync::Arc;
use std::time::Duration;

/// The relay runtime that forwards one target's deliveries to the broker: retried for as
/// long as it takes (the broker coming back is a matter of time, not of the message), never
/// rate-limited; up to `[amqp] publish_batch` deliveries claimed together and published
/// as one message per partition, `[amqp] publish_concurrency` such batches in flight.
pub fn forward_runtime(
    broker: Arc<Broker>,
    target: &str,
    cfg: &TargetConfig,
    origin: &str,
    topology_ready: tokio::sync::watch::Receiver<bool>,
    settlements: Option<&Arc<Settlements>>,
) -> TargetRuntime {
    // Tried again soon after the broker comes back: requests of the replicated mode wait
    // for these forwards (`[amqp] acknowledge`).
    let again = broker
        .settings()
        .reconnect_delay
        .max(Duration::from_secs(2));
    let forward_cfg = TargetConfig {
        rate_limit: None,
        batch: broker.settings().publish_batch.max(1),
        concurrency: broker.settings().publish_concurrency.max(1),
        retry: RetryConfig {
            max_attempts: u32::MAX,
            max_age: Duration::from_secs(10 * 365 * 24 * 3600),
            base_delay: Duration::from_millis(200),
            max_delay: again,
        },
        circuit_breaker: CircuitBreakerConfig {
            cooldown: again,
            ..CircuitBreakerConfig::default()
        },
        ..cfg.clone()
    };
    // Workers map; the broker carries the event as the unit sent it.
    let runtime = TargetRuntime::with_connector(
        target,
        &forward_cfg,
        Arc::new(ForwardConnector::new(
            broker,
            target,
            origin,
            topology_ready,
        )),
    )
    .forwarding();
    match settlements {
        Some(s) => runtime.settling(Arc::clone(s)),
        None => runtime,
    }
}
