//! The delay queues' mover: a delivery waiting for its retry (and the later events of its
//! dossier behind it) sits in `<p>.delay.<ms>` until its time is up, then this task puts
//! it back on its partition queue — published, confirmed, and only then acknowledged.
//!
//! Why not the broker's own TTL and dead-lettering: a quorum queue's at-least-once
//! dead-lettering stopped for good on RabbitMQ 3.10 after one of three broker nodes was
//! lost (thousands of retries held until the whole broker was restarted, seen in
//! `tests/it/cluster/`), and at-most-once dead-lettering drops a message when its partition
//! queue is electing a leader. Moving them ourselves keeps the guarantee on what the
//! broker does reliably: persistent publishes with confirms into quorum queues.
//!
//! Each delay queue has a single active consumer (one mover in the cluster at a time,
//! every worker node standing by) and is first-in first-out; the mover takes its
//! messages in order, waits until the first is due, and puts back together every one
//! already due, in order on one channel, so a dossier's head and the events that followed
//! it into the same queue return to the partition in the order they left it.

use super::broker::{Broker, BrokerError};
use futures_lite::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The header a delivery handed to a delay queue carries: when it is due (ms since the
/// Unix epoch).
pub const DUE_HEADER: &str = "lienthong-due-ms";

/// Most deliveries put back together (one confirm wait for all).
const MOVE_BATCH: u16 = 64;

/// `properties` with the time a delivery handed to the `delay_ms` queue now is due.
pub fn due_in(properties: lapin::BasicProperties, delay_ms: u64) -> lapin::BasicProperties {
    let mut headers = properties.headers().clone().unwrap_or_default();
    let due = crate::time::now_ms().saturating_add(delay_ms);
    headers.insert(DUE_HEADER.into(), AMQPValue::LongLongInt(due as i64));
    properties.with_headers(headers)
}

/// When a delivery in a delay queue is due (now when it says nothing).
fn due_of(delivery: &Delivery) -> u64 {
    delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(DUE_HEADER))
        .and_then(|v| match v {
            AMQPValue::LongLongInt(n) => u64::try_from(*n).ok(),
            AMQPValue::LongUInt(n) => Some(u64::from(*n)),
            _ => None,
        })
        .unwrap_or(0)
}

/// Run the mover of the `delay_ms` queue until `stop`: subscribed again after
/// `reconnect_delay` whenever the broker connection or a publish fails.
pub async fn serve(
    broker: Arc<Broker>,
    node: String,
    delay_ms: u64,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        match serve_once(&broker, &node, delay_ms, &mut stop).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(delay_ms, error = %e, "delay queue mover stopped; subscribing again")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(broker.settings().reconnect_delay) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn serve_once(
    broker: &Broker,
    node: &str,
    delay_ms: u64,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), BrokerError> {
    let t = &broker.topology;
    let queue = t.delay_queue(delay_ms);
    let ch = broker.confirm_channel().await?;
    broker
        .timed(ch.basic_qos(MOVE_BATCH, BasicQosOptions::default()))
        .await?;
    let mut consumer = broker
        .timed(ch.basic_consume(
            queue.as_str().into(),
            format!("delay-mover-{node}-{delay_ms}").as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ))
        .await?;
    let result = move_until_stopped(broker, &ch, &mut consumer, stop).await;
    // Closed with the consumer still held: what it had not put back returns to the queue,
    // first, for the next mover (see the partition consumers in `worker.rs`).
    let _ = broker
        .timed(ch.close(200, "delay mover leaving".into()))
        .await;
    drop(consumer);
    result
}

async fn move_until_stopped(
    broker: &Broker,
    ch: &lapin::Channel,
    consumer: &mut lapin::Consumer,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), BrokerError> {
    let deliver = broker.topology.deliver_exchange();
    let mut held: Option<Delivery> = None;
    loop {
        let first = match held.take() {
            Some(d) => d,
            None => tokio::select! {
                d = consumer.next() => match d {
                    Some(d) => d?,
                    None => return Err(BrokerError::Refused("the broker cancelled the delay queue's consumer".into())),
                },
                _ = stop.changed() => return Ok(()),
            },
        };
        let wait = due_of(&first).saturating_sub(crate::time::now_ms());
        if wait > 0 {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                _ = stop.changed() => return Ok(()),
            }
        }
        // Everything already here and due goes back with it; the first not due waits.
        let mut batch = vec![first];
        while batch.len() < MOVE_BATCH as usize {
            match futures_lite::future::poll_once(consumer.next()).await {
                Some(Some(d)) => {
                    let d = d?;
                    if due_of(&d) > crate::time::now_ms() {
                        held = Some(d);
                        break;
                    }
                    batch.push(d);
                }
                _ => break,
            }
        }
        let mut confirms = Vec::with_capacity(batch.len());
        for d in &batch {
            let confirm = broker
                .start_publish(
                    ch,
                    &deliver,
                    d.routing_key.as_str(),
                    &d.data,
                    d.properties.clone(),
                )
                .await?;
            confirms.push((confirm, d.routing_key.to_string()));
        }
        for (confirm, key) in confirms {
            broker.confirmed(confirm, &deliver, &key).await?;
        }
        let last = batch.last().expect("a batch has its first delivery");
        broker
            .timed(last.ack(BasicAckOptions { multiple: true }))
            .await?;
        tracing::debug!(
            moved = batch.len(),
            "delayed deliveries back on their partitions"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_handed_to_a_delay_queue_says_when_it_is_due() {
        let before = crate::time::now_ms();
        let props = due_in(lapin::BasicProperties::default(), 5_000);
        let due = match props.headers().as_ref().unwrap().inner().get(DUE_HEADER) {
            Some(AMQPValue::LongLongInt(n)) => *n as u64,
            other => panic!("{other:?}"),
        };
        assert!(due >= before + 5_000 && due <= crate::time::now_ms() + 5_000);
    }
}
