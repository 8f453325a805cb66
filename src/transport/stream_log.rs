//! A cluster-wide log on a RabbitMQ stream that every node reads into its own outbox, from
//! the offset it saved there (the dead letters, the KPI changes): declared, appended to
//! (confirmed), and followed for as long as the bus runs.
//!
//! A node saves the offset of the last record it took in every [`SAVE_EVERY`] records or
//! when the log goes quiet, so after a crash it reads a few records again: what it does
//! with a record must give the same result when done twice.

use super::broker::{Broker, BrokerError};
use crate::outbox::{Notes, Outbox};
use futures_lite::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use std::future::Future;
use std::time::Duration;

/// The offset is saved after this many records, or when the log goes quiet.
const SAVE_EVERY: u64 = 256;
const QUIET: Duration = Duration::from_millis(500);

/// A log: its stream and how long the broker keeps it.
pub struct StreamLog {
    pub stream: String,
    /// How far back a node that joins later catches up (a RabbitMQ age, e.g. `31D`).
    pub kept: &'static str,
    /// The most the stream holds; its oldest records go first beyond it.
    pub max_bytes: i64,
    /// The outbox note holding the offset of the last record this node took in.
    pub offset_note: &'static str,
}

impl StreamLog {
    /// Declare the stream (part of [`Broker::declare`]).
    pub async fn declare(
        &self,
        broker: &Broker,
        ch: &mut lapin::Channel,
    ) -> Result<(), BrokerError> {
        let mut args = FieldTable::default();
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("stream".into()),
        );
        args.insert("x-max-age".into(), AMQPValue::LongString(self.kept.into()));
        args.insert(
            "x-max-length-bytes".into(),
            AMQPValue::LongLongInt(self.max_bytes),
        );
        args.insert(
            "x-stream-max-segment-size-bytes".into(),
            AMQPValue::LongLongInt(10_000_000),
        );
        broker
            .timed(ch.queue_declare(
                self.stream.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                args,
            ))
            .await?;
        Ok(())
    }

    fn saved_offset(&self, outbox: &Outbox) -> Option<u64> {
        let v = outbox.get_note(self.offset_note).ok()??;
        std::str::from_utf8(&v).ok()?.parse().ok()
    }

    fn save(&self, outbox: &Outbox, unsaved: &mut Option<u64>, since_save: &mut u64) {
        if let Some(offset) = unsaved.take() {
            if let Err(e) = outbox.put_note(self.offset_note, offset.to_string().as_bytes()) {
                tracing::warn!(stream = %self.stream, error = %e, "cannot save where the log was read to (it is read again)");
            }
            *since_save = 0;
        }
    }

    /// [`StreamLog::follow_once`] for as long as the bus runs, subscribing again after
    /// broker failures.
    pub async fn follow<F, Fut>(&self, broker: &Broker, outbox: &Outbox, mut take: F)
    where
        F: FnMut(Vec<u8>) -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        loop {
            if let Err(e) = self.follow_once(broker, outbox, &mut take).await {
                tracing::warn!(stream = %self.stream, error = %e, "stopped reading the log; subscribing again");
            }
            tokio::time::sleep(broker.settings().reconnect_delay).await;
        }
    }

    /// Read the log from after the saved offset (from its start the first time), giving
    /// each record's body to `take`, until the subscription ends. A record `take` fails
    /// on is not passed: the log is read again from the saved offset.
    async fn follow_once<F, Fut>(
        &self,
        broker: &Broker,
        outbox: &Outbox,
        take: &mut F,
    ) -> Result<(), BrokerError>
    where
        F: FnMut(Vec<u8>) -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        let ch = broker.channel().await?;
        // Streams count acknowledgements as credit for the next records.
        broker
            .timed(ch.basic_qos(500, BasicQosOptions::default()))
            .await?;
        let mut args = FieldTable::default();
        let from = match self.saved_offset(outbox) {
            Some(last) => AMQPValue::LongLongInt(last.saturating_add(1) as i64),
            None => AMQPValue::LongString("first".into()),
        };
        args.insert("x-stream-offset".into(), from);
        let tag = format!("{}-{}", self.stream, uuid::Uuid::now_v7());
        let mut consumer = broker
            .timed(ch.basic_consume(
                self.stream.as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                args,
            ))
            .await?;
        let mut unsaved: Option<u64> = None;
        let mut since_save = 0u64;
        loop {
            let next = match tokio::time::timeout(QUIET, consumer.next()).await {
                Ok(next) => next,
                Err(_) => {
                    self.save(outbox, &mut unsaved, &mut since_save);
                    continue;
                }
            };
            let Some(delivery) = next else { break };
            let mut delivery = delivery?;
            let offset = offset_of(&delivery);
            if let Err(e) = take(std::mem::take(&mut delivery.data)).await {
                // Not past it: read again from the saved offset.
                self.save(outbox, &mut unsaved, &mut since_save);
                return Err(BrokerError::Refused(format!(
                    "cannot record {}: {e}",
                    self.stream
                )));
            }
            broker
                .timed(delivery.ack(BasicAckOptions::default()))
                .await?;
            if let Some(offset) = offset {
                unsaved = Some(offset);
                since_save += 1;
                if since_save >= SAVE_EVERY {
                    self.save(outbox, &mut unsaved, &mut since_save);
                }
            }
        }
        self.save(outbox, &mut unsaved, &mut since_save);
        Ok(())
    }
}

/// Wait until the topology is declared (`false` when the bus stops first).
pub async fn declared(topology_ready: &mut tokio::sync::watch::Receiver<bool>) -> bool {
    topology_ready.wait_for(|declared| *declared).await.is_ok()
}

fn offset_of(delivery: &lapin::message::Delivery) -> Option<u64> {
    match delivery
        .properties
        .headers()
        .as_ref()?
        .inner()
        .get("x-stream-offset")?
    {
        AMQPValue::LongLongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongUInt(n) => Some(u64::from(*n)),
        _ => None,
    }
}
