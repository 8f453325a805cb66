//! A decision the cluster makes once, whichever node is asked: one active guard decides,
//! and a stream remembers what it decided so the next guard knows it too.
//!
//! # Design
//!
//! ```text
//!  ingress node ── ask ──► <p>.<name>-guard (single active consumer)
//!        ▲                      │ the active node's guard: its memory decides
//!        └── answer ◄── reply ◄─┤  a decision that changes the memory is appended
//!                               └─ to the stream <p>.<name>-seen (confirmed) before
//!                                  the answer goes out
//! ```
//!
//! Every ingress node runs a guard consumer on the queue; the queue has a single active
//! consumer, so one guard at a time decides, in the order the asks arrive, and two nodes
//! asking about the same thing at the same moment get one decision between them. A guard
//! that becomes active (at start, or when the previous one died) first appends a marker of
//! its own to the stream and reads the stream from `read_back` ago up to that marker:
//! everything the previous guards decided is in its memory before it answers anything.
//!
//! What is decided is the [`Memory`]'s: the replay guard's memory of accepted signatures
//! ([`super::replay_guard`]) and the idempotency guard's memory of keys
//! ([`super::idempotency`]) are two of them.

use super::broker::{Broker, BrokerError};
use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// What one guard remembers and how it decides.
pub trait Memory: Default + Send + 'static {
    type Ask: Serialize + DeserializeOwned + Send + Sync;
    type Answer: Serialize + DeserializeOwned + Send + 'static;
    /// What the stream keeps of a decision.
    type Record: Serialize + DeserializeOwned + Send;

    /// Decide `ask` at `now_ms`; the record, if any, is appended (confirmed) to the stream
    /// before the answer is given, and [`Memory::replay`]ed by the next guard.
    fn decide(&mut self, ask: Self::Ask, now_ms: u64) -> (Self::Answer, Option<Self::Record>);
    /// The answer to an ask that cannot be read.
    fn unreadable() -> Self::Answer;
    /// Take in a decision an earlier guard made.
    fn replay(&mut self, record: Self::Record, now_ms: u64);
    /// How many things are remembered (logged when a guard becomes active).
    fn remembered(&self) -> usize;
}

/// Where a guard's queue and stream are, and how far back its memory reaches.
#[derive(Clone, Debug)]
pub struct GuardSpec {
    /// For logs and consumer tags.
    pub name: &'static str,
    pub queue: String,
    pub stream: String,
    /// RabbitMQ's `x-max-age` of the stream, e.g. `"15m"`, `"7D"`.
    pub stream_max_age: String,
    /// How far back a new guard reads the stream.
    pub read_back: Duration,
}

/// What the stream holds: a decision, or a guard's marker.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Entry<R> {
    Seen(R),
    Marker { id: String },
}

/// How long a new guard may take to read its stream back before it gives up (and the
/// next attempt starts over).
const READ_BACK_TIMEOUT: Duration = Duration::from_secs(60);

/// Declare the guard's queue (replicated) and stream (part of [`Broker::declare`]).
pub async fn declare(
    broker: &Broker,
    ch: &mut Channel,
    spec: &GuardSpec,
) -> Result<(), BrokerError> {
    let mut guard_args = FieldTable::default();
    guard_args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    // An ask nobody answered within the timeout is of no use to anyone.
    guard_args.insert(
        "x-message-ttl".into(),
        AMQPValue::LongLongInt(broker.settings().publish_timeout.as_millis() as i64),
    );
    let mut stream_args = FieldTable::default();
    stream_args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("stream".into()),
    );
    stream_args.insert(
        "x-max-age".into(),
        AMQPValue::LongString(spec.stream_max_age.as_str().into()),
    );
    // Small segments: the stream's age limit removes whole segments.
    stream_args.insert(
        "x-stream-max-segment-size-bytes".into(),
        AMQPValue::LongLongInt(1_000_000),
    );
    broker
        .declare_replicated(ch, &spec.queue, guard_args)
        .await?;
    broker
        .timed(ch.queue_declare(
            spec.stream.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            stream_args,
        ))
        .await?;
    Ok(())
}

/// The client side: asks the cluster's guard and waits for its answer.
pub struct GuardClient<M: Memory> {
    broker: Arc<Broker>,
    spec: GuardSpec,
    rpc: tokio::sync::Mutex<Option<Rpc>>,
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Vec<u8>>>>>,
    memory: PhantomData<fn() -> M>,
}

/// A confirm channel with this node's private reply queue.
struct Rpc {
    channel: Channel,
    reply_queue: String,
}

impl<M: Memory> GuardClient<M> {
    pub fn new(broker: Arc<Broker>, spec: GuardSpec) -> Self {
        GuardClient {
            broker,
            spec,
            rpc: tokio::sync::Mutex::new(None),
            waiting: Arc::default(),
            memory: PhantomData,
        }
    }

    /// Ask the active guard; an error when the broker cannot be reached or no guard
    /// answered within `publish_timeout`.
    pub async fn ask(&self, ask: &M::Ask) -> Result<M::Answer, BrokerError> {
        let id = uuid::Uuid::now_v7().to_string();
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().unwrap().insert(id.clone(), tx);
        let timeout = self.broker.settings().publish_timeout;
        let answer = match self.send(&id, ask).await {
            Ok(()) => match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(body)) => serde_json::from_slice(&body).map_err(|e| {
                    BrokerError::Refused(format!("the {} guard's answer: {e}", self.spec.name))
                }),
                Ok(Err(_)) => Err(BrokerError::Refused(format!(
                    "the reply channel to the {} guard closed",
                    self.spec.name
                ))),
                Err(_) => Err(BrokerError::Timeout(timeout)),
            },
            Err(e) => Err(e),
        };
        self.waiting.lock().unwrap().remove(&id);
        answer
    }

    async fn send(&self, id: &str, ask: &M::Ask) -> Result<(), BrokerError> {
        let mut rpc = self.rpc.lock().await;
        if rpc.as_ref().is_none_or(|r| !r.channel.status().connected()) {
            *rpc = Some(self.open().await?);
        }
        let r = rpc.as_ref().expect("just opened");
        let body = serde_json::to_vec(ask).expect("asks serialize");
        let props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_reply_to(r.reply_queue.as_str().into())
            .with_correlation_id(id.into());
        let result = self
            .broker
            .publish_on(&r.channel, "", &self.spec.queue, &body, props)
            .await;
        if result.is_err() {
            *rpc = None;
        }
        result
    }

    /// A channel, a server-named exclusive reply queue, and a task handing answers to
    /// whoever waits for them (it ends with the channel; the next ask opens another).
    async fn open(&self) -> Result<Rpc, BrokerError> {
        let b = &self.broker;
        let channel = b.confirm_channel().await?;
        let reply_queue = b.private_queue(&channel).await?;
        let mut consumer = b
            .timed(channel.basic_consume(
                reply_queue.as_str().into(),
                format!("{}-answers", self.spec.name).as_str().into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            ))
            .await?;
        let waiting = Arc::clone(&self.waiting);
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let Some(id) = delivery.properties.correlation_id() else {
                    continue;
                };
                if let Some(tx) = waiting.lock().unwrap().remove(id.as_str()) {
                    let _ = tx.send(delivery.data);
                }
            }
        });
        Ok(Rpc {
            channel,
            reply_queue,
        })
    }
}

/// The guard consumer every ingress node runs; the broker makes one of them active.
pub async fn serve<M: Memory>(broker: Arc<Broker>, node: String, spec: GuardSpec) {
    loop {
        if let Err(e) = serve_once::<M>(&broker, &node, &spec).await {
            tracing::warn!(guard = spec.name, error = %e, "guard stopped; subscribing again");
        }
        tokio::time::sleep(broker.settings().reconnect_delay).await;
    }
}

async fn serve_once<M: Memory>(
    broker: &Broker,
    node: &str,
    spec: &GuardSpec,
) -> Result<(), BrokerError> {
    let ch = broker.confirm_channel().await?;
    broker
        .timed(ch.basic_qos(64, BasicQosOptions::default()))
        .await?;
    let mut consumer = broker
        .timed(ch.basic_consume(
            spec.queue.as_str().into(),
            format!("{}-guard-{node}", spec.name).as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ))
        .await?;
    // Active only once the first ask arrives (single active consumer): that is when the
    // memory is rebuilt from the stream.
    let mut active: Option<M> = None;
    let requeue = BasicNackOptions {
        requeue: true,
        ..Default::default()
    };
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery?;
        let memory = match &mut active {
            Some(m) => m,
            None => match rebuild::<M>(broker, node, spec).await {
                Ok(m) => {
                    tracing::info!(%node, remembered = m.remembered(), "{} guard active", spec.name);
                    active.insert(m)
                }
                Err(e) => {
                    let _ = delivery.nack(requeue).await;
                    return Err(e);
                }
            },
        };
        let now = crate::time::now_ms();
        let (answer, record) = match serde_json::from_slice::<M::Ask>(&delivery.data) {
            Ok(ask) => memory.decide(ask, now),
            Err(_) => (M::unreadable(), None),
        };
        if let Some(record) = record {
            // Answered only once the stream holds the decision.
            if let Err(e) = append(broker, &ch, spec, &Entry::Seen(record)).await {
                let _ = delivery.nack(requeue).await;
                return Err(e);
            }
        }
        if let (Some(reply_to), Some(id)) = (
            delivery.properties.reply_to(),
            delivery.properties.correlation_id(),
        ) {
            let body = serde_json::to_vec(&answer).expect("answers serialize");
            let props = BasicProperties::default().with_correlation_id(id.clone());
            // Not mandatory: the asking node may be gone, and then no one needs it.
            let _ = broker
                .timed(ch.basic_publish(
                    "".into(),
                    reply_to.as_str().into(),
                    BasicPublishOptions::default(),
                    &body,
                    props,
                ))
                .await;
        }
        broker
            .timed(delivery.ack(BasicAckOptions::default()))
            .await?;
    }
    Ok(())
}

async fn append<R: Serialize>(
    broker: &Broker,
    ch: &Channel,
    spec: &GuardSpec,
    entry: &Entry<R>,
) -> Result<(), BrokerError> {
    let body = serde_json::to_vec(entry).expect("records serialize");
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2);
    broker.publish_on(ch, "", &spec.stream, &body, props).await
}

/// Everything the previous guards decided within the read-back window: append a marker,
/// then read the stream from the window's start up to it.
async fn rebuild<M: Memory>(
    broker: &Broker,
    node: &str,
    spec: &GuardSpec,
) -> Result<M, BrokerError> {
    let marker = format!("{node}-{}", uuid::Uuid::now_v7());
    let ch = broker.confirm_channel().await?;
    append::<M::Record>(broker, &ch, spec, &Entry::Marker { id: marker.clone() }).await?;
    broker
        .timed(ch.basic_qos(1000, BasicQosOptions::default()))
        .await?;
    let now = crate::time::now_ms();
    let from = (now / 1000).saturating_sub(spec.read_back.as_secs());
    let mut args = FieldTable::default();
    args.insert("x-stream-offset".into(), AMQPValue::Timestamp(from));
    let mut consumer = broker
        .timed(ch.basic_consume(
            spec.stream.as_str().into(),
            format!("{}-rebuild-{marker}", spec.name).as_str().into(),
            BasicConsumeOptions::default(),
            args,
        ))
        .await?;
    let mut memory = M::default();
    let read = async {
        while let Some(delivery) = consumer.next().await {
            let delivery = delivery?;
            let entry = serde_json::from_slice::<Entry<M::Record>>(&delivery.data);
            // Streams count acknowledgements as credit for the next messages.
            delivery.ack(BasicAckOptions::default()).await?;
            match entry {
                Ok(Entry::Marker { id }) if id == marker => return Ok(()),
                Ok(Entry::Seen(record)) => memory.replay(record, now),
                _ => {}
            }
        }
        Err(BrokerError::Refused(format!(
            "the {} stream ended before this guard's marker",
            spec.name
        )))
    };
    let outcome = tokio::time::timeout(READ_BACK_TIMEOUT, read).await;
    let _ = broker.timed(ch.close(200, "rebuilt".into())).await;
    match outcome {
        Ok(r) => r.map(|()| memory),
        Err(_) => Err(BrokerError::Timeout(READ_BACK_TIMEOUT)),
    }
}
