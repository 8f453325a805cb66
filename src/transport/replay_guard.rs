//! One memory, for the whole cluster, of the signed requests already accepted: a captured
//! signed request is accepted once by the cluster, not once per ingress node.
//!
//! # Design
//!
//! ```text
//!  ingress node ── ask {mac, forget_at} ──► <p>.replay-guard (single active consumer)
//!        ▲                                        │ the active node's guard:
//!        └──── answer {first} ◄── reply queue ◄───┤  seen before? → "replayed"
//!                                                 └─ new → append to <p>.replay-seen
//!                                                          (a stream, 15 min), then "first"
//! ```
//!
//! Every ingress node runs a guard consumer on `<p>.replay-guard`; the queue has a single
//! active consumer, so one guard at a time decides, in the order the asks arrive, and two
//! nodes asked for the same signature at the same moment get one "first" between them.
//! The guard answers "first" only after the signature is appended (confirmed) to the
//! stream `<p>.replay-seen`. A guard that becomes active (at start, or when the previous
//! one died) first appends a marker of its own to the stream and reads the stream from
//! `MAX_SKEW × 2` ago up to that marker: everything the previous guard ever answered
//! "first" for is in its memory before it answers anything. The stream keeps 15 minutes
//! (more than the window a signature can be replayed in), in small segments.
//!
//! When the broker cannot be reached, signed requests are refused with 503 and
//! `Retry-After` (fail closed): the guarantee holds or nothing is accepted. Units without
//! a signing secret are not affected. A single node (embedded transport) keeps the same
//! memory in process ([`SeenSignatures`]).

use super::broker::{Broker, BrokerError};
use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// How far a request's timestamp may be from the bus's clock (and how long signatures are
/// remembered to refuse replays).
pub const MAX_SKEW: std::time::Duration = std::time::Duration::from_secs(300);

/// The signatures seen within their window: each is remembered until its `forget_at`
/// (unix seconds), and forgetting costs nothing in proportion to how many are kept.
#[derive(Default)]
pub struct SeenSignatures {
    until: HashMap<[u8; 32], u64>,
    by_time: BTreeSet<(u64, [u8; 32])>,
}

impl SeenSignatures {
    /// Remember `mac` until `forget_at`; `false` if it is remembered already (a replay).
    pub fn first_time(&mut self, mac: [u8; 32], forget_at: u64, now_secs: u64) -> bool {
        while let Some(&(at, old)) = self.by_time.first() {
            if at > now_secs {
                break;
            }
            self.by_time.pop_first();
            if self.until.get(&old) == Some(&at) {
                self.until.remove(&old);
            }
        }
        if self.until.contains_key(&mac) {
            return false;
        }
        self.until.insert(mac, forget_at);
        self.by_time.insert((forget_at, mac));
        true
    }

    pub fn len(&self) -> usize {
        self.until.len()
    }

    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }
}

/// What an ingress node asks the guard.
#[derive(Serialize, Deserialize)]
struct Ask {
    /// The request's HMAC, hex.
    mac: String,
    forget_at: u64,
}

#[derive(Serialize, Deserialize)]
struct Answer {
    first: bool,
}

/// What the stream holds: an accepted signature, or a guard's marker.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Record {
    Seen { mac: String, forget_at: u64 },
    Marker { id: String },
}

/// The longest a signature may ask to be remembered beyond now (its timestamp may be
/// `MAX_SKEW` ahead, and it is kept for twice that); anything longer is refused, so no
/// one who can publish to the broker can fill the guard's memory for good.
fn longest_memory() -> u64 {
    3 * MAX_SKEW.as_secs() + 60
}

/// How long the stream keeps what it was given (RabbitMQ's `x-max-age`).
const STREAM_MAX_AGE: &str = "15m";

/// Declare the guard's queue (replicated) and stream (part of [`Broker::declare`]).
pub async fn declare(broker: &Broker, ch: &mut Channel) -> Result<(), BrokerError> {
    let t = &broker.topology;
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
        AMQPValue::LongString(STREAM_MAX_AGE.into()),
    );
    // Small segments: the stream's age limit removes whole segments.
    stream_args.insert(
        "x-stream-max-segment-size-bytes".into(),
        AMQPValue::LongLongInt(1_000_000),
    );
    broker
        .declare_replicated(ch, &t.replay_guard_queue(), guard_args)
        .await?;
    broker
        .timed(ch.queue_declare(
            t.replay_stream().as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            stream_args,
        ))
        .await?;
    Ok(())
}

/// The client side: asks the cluster's guard whether a signature is new.
pub struct ReplayGuard {
    broker: Arc<Broker>,
    rpc: tokio::sync::Mutex<Option<Rpc>>,
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<bool>>>>,
}

/// A confirm channel with this node's private reply queue.
struct Rpc {
    channel: Channel,
    reply_queue: String,
}

impl ReplayGuard {
    pub fn new(broker: Arc<Broker>) -> ReplayGuard {
        ReplayGuard {
            broker,
            rpc: tokio::sync::Mutex::new(None),
            waiting: Arc::default(),
        }
    }

    /// `Ok(true)`: the cluster had not seen `mac` and now remembers it until `forget_at`.
    pub async fn first_time(&self, mac: [u8; 32], forget_at: u64) -> Result<bool, BrokerError> {
        let id = uuid::Uuid::now_v7().to_string();
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().unwrap().insert(id.clone(), tx);
        let sent = self.send(&id, mac, forget_at).await;
        let answer = match sent {
            Ok(()) => {
                match tokio::time::timeout(self.broker.settings().publish_timeout, rx).await {
                    Ok(Ok(first)) => Ok(first),
                    Ok(Err(_)) => Err(BrokerError::Refused(
                        "the reply channel to the replay guard closed".into(),
                    )),
                    Err(_) => Err(BrokerError::Timeout(self.broker.settings().publish_timeout)),
                }
            }
            Err(e) => Err(e),
        };
        self.waiting.lock().unwrap().remove(&id);
        answer
    }

    async fn send(&self, id: &str, mac: [u8; 32], forget_at: u64) -> Result<(), BrokerError> {
        let mut rpc = self.rpc.lock().await;
        if rpc.as_ref().is_none_or(|r| !r.channel.status().connected()) {
            *rpc = Some(self.open().await?);
        }
        let r = rpc.as_ref().expect("just opened");
        let body = serde_json::to_vec(&Ask {
            mac: crate::hex::encode(&mac),
            forget_at,
        })
        .expect("asks serialize");
        let props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_reply_to(r.reply_queue.as_str().into())
            .with_correlation_id(id.into());
        let queue = self.broker.topology.replay_guard_queue();
        let result = self
            .broker
            .publish_on(&r.channel, "", &queue, &body, props)
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
                "replay-answers".into(),
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
                let Ok(answer) = serde_json::from_slice::<Answer>(&delivery.data) else {
                    continue;
                };
                if let Some(tx) = waiting.lock().unwrap().remove(id.as_str()) {
                    let _ = tx.send(answer.first);
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
pub async fn serve(broker: Arc<Broker>, node: String) {
    loop {
        if let Err(e) = serve_once(&broker, &node).await {
            tracing::warn!(error = %e, "replay guard stopped; subscribing again");
        }
        tokio::time::sleep(broker.settings().reconnect_delay).await;
    }
}

async fn serve_once(broker: &Broker, node: &str) -> Result<(), BrokerError> {
    let ch = broker.confirm_channel().await?;
    broker
        .timed(ch.basic_qos(64, BasicQosOptions::default()))
        .await?;
    let mut consumer = broker
        .timed(ch.basic_consume(
            broker.topology.replay_guard_queue().as_str().into(),
            format!("replay-guard-{node}").as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ))
        .await?;
    // Active only once the first ask arrives (single active consumer): that is when the
    // memory is rebuilt from the stream.
    let mut seen: Option<SeenSignatures> = None;
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery?;
        let memory = match &mut seen {
            Some(m) => m,
            None => {
                let rebuilt = match rebuild(broker, node).await {
                    Ok(m) => m,
                    Err(e) => {
                        let _ = delivery
                            .nack(BasicNackOptions {
                                requeue: true,
                                ..Default::default()
                            })
                            .await;
                        return Err(e);
                    }
                };
                tracing::info!(%node, remembered = rebuilt.len(), "replay guard active");
                seen.insert(rebuilt)
            }
        };
        let now = crate::time::now_ms() / 1000;
        let ask = serde_json::from_slice::<Ask>(&delivery.data)
            .ok()
            .and_then(|a| Some((parse_mac(&a.mac)?, a.forget_at)));
        let first = match ask {
            // Refused outright: no valid signature asks to be kept that long.
            Some((_, forget_at)) if forget_at > now + longest_memory() => false,
            Some((mac, forget_at)) => {
                let first = memory.first_time(mac, forget_at, now);
                if first {
                    let record = Record::Seen {
                        mac: crate::hex::encode(&mac),
                        forget_at,
                    };
                    // Answered "first" only once the stream holds it.
                    if let Err(e) = append(broker, &ch, &record).await {
                        let _ = delivery
                            .nack(BasicNackOptions {
                                requeue: true,
                                ..Default::default()
                            })
                            .await;
                        return Err(e);
                    }
                }
                first
            }
            None => false,
        };
        if let (Some(reply_to), Some(id)) = (
            delivery.properties.reply_to(),
            delivery.properties.correlation_id(),
        ) {
            let body = serde_json::to_vec(&Answer { first }).expect("answers serialize");
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

fn parse_mac(hex: &str) -> Option<[u8; 32]> {
    crate::hex::decode(hex)?.try_into().ok()
}

async fn append(broker: &Broker, ch: &Channel, record: &Record) -> Result<(), BrokerError> {
    let body = serde_json::to_vec(record).expect("records serialize");
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2);
    broker
        .publish_on(ch, "", &broker.topology.replay_stream(), &body, props)
        .await
}

/// Everything the previous guards accepted within the window: append a marker, then read
/// the stream from the window's start up to it.
async fn rebuild(broker: &Broker, node: &str) -> Result<SeenSignatures, BrokerError> {
    let marker = format!("{node}-{}", uuid::Uuid::now_v7());
    let ch = broker.confirm_channel().await?;
    append(broker, &ch, &Record::Marker { id: marker.clone() }).await?;
    broker
        .timed(ch.basic_qos(1000, BasicQosOptions::default()))
        .await?;
    let now = crate::time::now_ms() / 1000;
    let from = now.saturating_sub(2 * MAX_SKEW.as_secs() + 60);
    let mut args = FieldTable::default();
    args.insert("x-stream-offset".into(), AMQPValue::Timestamp(from));
    let mut consumer = broker
        .timed(ch.basic_consume(
            broker.topology.replay_stream().as_str().into(),
            format!("replay-rebuild-{marker}").as_str().into(),
            BasicConsumeOptions::default(),
            args,
        ))
        .await?;
    let mut seen = SeenSignatures::default();
    let read = async {
        while let Some(delivery) = consumer.next().await {
            let delivery = delivery?;
            let record = serde_json::from_slice::<Record>(&delivery.data);
            // Streams count acknowledgements as credit for the next messages.
            delivery.ack(BasicAckOptions::default()).await?;
            match record {
                Ok(Record::Marker { id }) if id == marker => return Ok(()),
                Ok(Record::Seen { mac, forget_at }) => {
                    if let Some(mac) = parse_mac(&mac) {
                        seen.first_time(mac, forget_at, now);
                    }
                }
                _ => {}
            }
        }
        Err(BrokerError::Refused(
            "the replay stream ended before this guard's marker".into(),
        ))
    };
    let outcome = tokio::time::timeout(Duration::from_secs(30), read).await;
    let _ = broker.timed(ch.close(200, "rebuilt".into())).await;
    match outcome {
        Ok(r) => r.map(|()| seen),
        Err(_) => Err(BrokerError::Timeout(Duration::from_secs(30))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_seen_once_within_its_window_and_forgotten_after() {
        let mut s = SeenSignatures::default();
        assert!(s.first_time([1; 32], 1_000, 400));
        assert!(!s.first_time([1; 32], 1_000, 500));
        assert!(s.first_time([2; 32], 900, 500));
        assert_eq!(s.len(), 2);
        // At 950 the second is forgotten, the first still held.
        assert!(!s.first_time([1; 32], 1_000, 950));
        assert_eq!(s.len(), 1);
        assert!(s.first_time([2; 32], 1_500, 950));
        // Past its window the first may come again (its timestamp is then refused as
        // stale by the signature check before it gets here).
        assert!(s.first_time([1; 32], 2_000, 1_001));
    }
}
