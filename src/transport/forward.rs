//! The ingress side: how a delivery's wire message is published to the broker (the
//! forwarding relay runtime is wired in `app/forwarding.rs`, its connector is
//! `forward_connector.rs`).

use super::broker::{Broker, BrokerError};
use super::wire::{WireBatch, WireMessage};
use lapin::Channel;

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
    publish_with(broker, channel, exchange, routing_key, wire, properties).await
}

/// A delivery's wire message handed to the `delay_ms` delay queue, marked with when it is
/// due (see [`super::delay`]); confirmed.
pub async fn publish_delayed(
    broker: &Broker,
    channel: &Channel,
    delay_ms: u64,
    routing_key: &str,
    wire: &WireMessage,
) -> Result<(), BrokerError> {
    let properties = super::delay::due_in(
        wire.properties()
            .with_content_type(broker.content_type().into()),
        delay_ms,
    );
    let exchange = broker.topology.delay_queue(delay_ms);
    publish_with(broker, channel, &exchange, routing_key, wire, properties).await
}

/// The wire message's body, sealed for its target and id, published with `properties`.
async fn publish_with(
    broker: &Broker,
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    wire: &WireMessage,
    properties: lapin::BasicProperties,
) -> Result<(), BrokerError> {
    let body = broker.seal(
        super::broker::BodyKind::Delivery {
            target: &wire.target,
            message_id: &wire.envelope.id.to_string(),
        },
        wire.encode(),
    );
    broker
        .publish_on(channel, exchange, routing_key, &body, properties)
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
