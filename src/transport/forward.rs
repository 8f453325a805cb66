//! The ingress side: the relay runtime that forwards a target's outbox deliveries to the
//! broker ([`crate::connector::forward::ForwardConnector`], in the delivery core's forward
//! mode), and how a delivery's wire message is published. Plugged into the ordinary relay,
//! forwarding inherits the outbox's guarantees: a delivery is finished only when the broker
//! has confirmed it, it is retried with backoff while the broker is away, and the events of
//! one dossier are published in order.

use super::broker::{Broker, BrokerError};
use super::wire::{WireBatch, WireMessage};
use crate::config::{CircuitBreakerConfig, RetryConfig, TargetConfig};
use crate::connector::forward::ForwardConnector;
use crate::delivery::TargetRuntime;
use lapin::Channel;
use std::sync::Arc;
use std::time::Duration;

/// A delivery's wire message, persistent and confirmed (see [`Broker::publish_on`]).
pub async fn publish(
    broker: &Broker,
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    wire: &WireMessage,
) -> Result<(), BrokerError> {
    let properties = wire
        .properties()
        .with_content_type(broker.content_type().into());
    broker
        .publish_on(
            channel,
            exchange,
            routing_key,
            &broker.seal(
                super::broker::BodyKind::Delivery {
                    target: &wire.target,
                    message_id: &wire.envelope.id.to_string(),
                },
                wire.encode(),
            ),
            properties,
        )
        .await
}

/// Several deliveries of one partition as one message ([`WireBatch`]), sent; its confirm
/// is the caller's to await (see [`Broker::start_publish`]).
pub async fn start_publish_batch(
    broker: &Broker,
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    batch: &WireBatch,
) -> Result<lapin::PublisherConfirm, BrokerError> {
    let properties = batch
        .properties()
        .with_content_type(broker.content_type().into());
    let body = broker.seal(
        super::broker::BodyKind::Batch {
            target: &batch.target,
            batch_id: &batch.id,
        },
        batch.encode(),
    );
    broker
        .start_publish(channel, exchange, routing_key, &body, properties)
        .await
}

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
) -> TargetRuntime {
    let forward_cfg = TargetConfig {
        rate_limit: None,
        batch: broker.settings().publish_batch.max(1),
        concurrency: broker.settings().publish_concurrency.max(1),
        retry: RetryConfig {
            max_attempts: u32::MAX,
            max_age: Duration::from_secs(10 * 365 * 24 * 3600),
            base_delay: Duration::from_millis(200),
            max_delay: broker
                .settings()
                .reconnect_delay
                .max(Duration::from_secs(2)),
        },
        circuit_breaker: CircuitBreakerConfig::default(),
        ..cfg.clone()
    };
    // Workers map; the broker carries the event as the unit sent it.
    TargetRuntime::with_connector(
        target,
        &forward_cfg,
        Arc::new(ForwardConnector::new(
            broker,
            target,
            origin,
            topology_ready,
        )),
    )
    .forwarding()
}
