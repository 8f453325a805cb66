//! The cluster's dead letters: one log every node reads, so that any node lists, replays
//! and drops any dead letter, whichever node accepted its event.
//!
//! ```text
//!  worker gives up ──Dead{target, envelope, reason, errors, at}──┐
//!  operator replays/drops on node N ──Resolved{target, id, dead_at, how}──┤
//!                                                                 ▼
//!                  stream <p>.dead-letters (confirmed appends, kept 31 days)
//!                                                                 │ every node reads it
//!                                                                 ▼ from its saved offset
//!            outbox: import_dead (the message comes along) / resolved_elsewhere
//! ```
//!
//! Records may arrive more than once and out of order (a node re-reads from its last
//! saved offset after a crash): the outbox keeps the newest death of a delivery, and a
//! resolution removes only the death it names, so reading again changes nothing. A node
//! that joins later reads the stream from its start: it lists what died in the last 31
//! days and is still unresolved.

use super::broker::{BodyKind, Broker, BrokerError};
use crate::envelope::{Envelope, MessageId};
use crate::outbox::{AttemptError, Notes, OpError, Outbox, Resolution, ResolutionLog};
use futures_lite::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// How long the broker keeps the log: how far back a node that joins later catches up.
pub const KEPT: &str = "31D";

/// The most the log may hold; its oldest records go first beyond it.
const MAX_BYTES: i64 = 2_000_000_000;

/// The outbox note holding the offset of the last record this node took in.
const OFFSET_NOTE: &str = "cluster/dead-letters-offset";

/// The offset is saved after this many records, or when the log goes quiet.
const SAVE_EVERY: u64 = 256;
const QUIET: Duration = Duration::from_millis(500);

/// One record of the log.
#[derive(Clone, Debug, Serialize, Deserialize)]
// Externally tagged: the envelope's raw JSON payload cannot go through the buffering an
// internally tagged enum does.
#[serde(rename_all = "snake_case")]
pub enum Entry {
    /// A worker gave up on a delivery.
    Dead {
        target: String,
        at_ms: u64,
        reason: String,
        errors: Vec<AttemptError>,
        envelope: Envelope,
    },
    /// An operator replayed or dropped it on `node`.
    Resolved {
        target: String,
        id: MessageId,
        dead_at_ms: u64,
        how: Resolution,
        node: String,
    },
}

/// Declare the log (part of [`Broker::declare`]).
pub async fn declare(broker: &Broker, ch: &mut lapin::Channel) -> Result<(), BrokerError> {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("stream".into()),
    );
    args.insert("x-max-age".into(), AMQPValue::LongString(KEPT.into()));
    args.insert(
        "x-max-length-bytes".into(),
        AMQPValue::LongLongInt(MAX_BYTES),
    );
    args.insert(
        "x-stream-max-segment-size-bytes".into(),
        AMQPValue::LongLongInt(10_000_000),
    );
    broker
        .timed(ch.queue_declare(
            broker.topology.dead_letter_stream().as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            args,
        ))
        .await?;
    Ok(())
}

/// Append `entry` to the log; `Ok` once the broker has confirmed it.
pub async fn append(broker: &Broker, entry: &Entry) -> Result<(), BrokerError> {
    let body = broker.seal(
        BodyKind::Status,
        serde_json::to_vec(entry).expect("log entries serialize"),
    );
    broker
        .publish_confirmed("", &broker.topology.dead_letter_stream(), &body)
        .await
}

/// Tells the log what operators resolve on this node.
pub struct ClusterResolutions {
    pub broker: Arc<Broker>,
    pub node: String,
}

impl ResolutionLog for ClusterResolutions {
    fn resolved(
        &self,
        target: &str,
        id: MessageId,
        dead_at_ms: u64,
        how: Resolution,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let broker = Arc::clone(&self.broker);
        let entry = Entry::Resolved {
            target: target.to_string(),
            id,
            dead_at_ms,
            how,
            node: self.node.clone(),
        };
        Box::pin(async move {
            if let Err(e) = append(&broker, &entry).await {
                tracing::error!(%id, error = %e, "the cluster was not told of a resolved dead letter: other nodes still list it (drop it there)");
            }
        })
    }
}

/// Take the log in for as long as the bus runs, from where this node left off,
/// subscribing again after broker failures.
pub async fn consume(
    broker: Arc<Broker>,
    outbox: Outbox,
    mut topology_ready: tokio::sync::watch::Receiver<bool>,
) {
    if topology_ready.wait_for(|declared| *declared).await.is_err() {
        return;
    }
    loop {
        if let Err(e) = consume_once(&broker, &outbox).await {
            tracing::warn!(error = %e, "dead-letter log consumer stopped; subscribing again");
        }
        tokio::time::sleep(broker.settings().reconnect_delay).await;
    }
}

fn saved_offset(outbox: &Outbox) -> Option<u64> {
    let v = outbox.get_note(OFFSET_NOTE).ok()??;
    std::str::from_utf8(&v).ok()?.parse().ok()
}

async fn consume_once(broker: &Broker, outbox: &Outbox) -> Result<(), BrokerError> {
    let ch = broker.channel().await?;
    // Streams count acknowledgements as credit for the next records.
    broker
        .timed(ch.basic_qos(500, BasicQosOptions::default()))
        .await?;
    let mut args = FieldTable::default();
    let from = match saved_offset(outbox) {
        Some(last) => AMQPValue::LongLongInt(last.saturating_add(1) as i64),
        None => AMQPValue::LongString("first".into()),
    };
    args.insert("x-stream-offset".into(), from);
    let mut consumer = broker
        .timed(
            ch.basic_consume(
                broker.topology.dead_letter_stream().as_str().into(),
                format!("dead-letters-{}", uuid::Uuid::now_v7())
                    .as_str()
                    .into(),
                BasicConsumeOptions::default(),
                args,
            ),
        )
        .await?;
    let mut unsaved: Option<u64> = None;
    let mut since_save = 0u64;
    loop {
        let next = match tokio::time::timeout(QUIET, consumer.next()).await {
            Ok(next) => next,
            Err(_) => {
                save(outbox, &mut unsaved, &mut since_save);
                continue;
            }
        };
        let Some(delivery) = next else { break };
        let delivery = delivery?;
        let offset = offset_of(&delivery);
        match read(broker, &delivery.data) {
            Ok(entry) => {
                if let Err(e) = take_in(outbox, entry).await {
                    // Not past it: read again from the saved offset.
                    save(outbox, &mut unsaved, &mut since_save);
                    return Err(BrokerError::Refused(format!(
                        "cannot record the dead-letter log: {e}"
                    )));
                }
            }
            Err(e) => tracing::warn!(error = %e, "unreadable record in the dead-letter log"),
        }
        broker
            .timed(delivery.ack(BasicAckOptions::default()))
            .await?;
        if let Some(offset) = offset {
            unsaved = Some(offset);
            since_save += 1;
            if since_save >= SAVE_EVERY {
                save(outbox, &mut unsaved, &mut since_save);
            }
        }
    }
    save(outbox, &mut unsaved, &mut since_save);
    Ok(())
}

fn save(outbox: &Outbox, unsaved: &mut Option<u64>, since_save: &mut u64) {
    if let Some(offset) = unsaved.take() {
        if let Err(e) = outbox.put_note(OFFSET_NOTE, offset.to_string().as_bytes()) {
            tracing::warn!(error = %e, "cannot save where the dead-letter log was read to (it is read again)");
        }
        *since_save = 0;
    }
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

fn read(broker: &Broker, body: &[u8]) -> Result<Entry, String> {
    let body = broker.open(BodyKind::Status, body)?;
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

/// Record one entry of the log in this node's outbox.
pub async fn take_in(outbox: &Outbox, entry: Entry) -> Result<(), OpError> {
    match entry {
        Entry::Dead {
            target,
            at_ms,
            reason,
            errors,
            envelope,
        } => match outbox
            .import_dead(&target, &envelope, &reason, &errors, at_ms)
            .await
        {
            Err(OpError::NotFound) => {
                tracing::warn!(target_system = %target, id = %envelope.id, "a dead letter for a target this node does not have: not listed here");
                Ok(())
            }
            other => other,
        },
        Entry::Resolved {
            target,
            id,
            dead_at_ms,
            how,
            ..
        } => {
            outbox
                .resolved_elsewhere(&target, id, dead_at_ms, how)
                .await
        }
    }
}
