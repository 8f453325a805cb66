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
use super::stream_log::{self, StreamLog};
use crate::envelope::{Envelope, MessageId};
use crate::outbox::{AttemptError, OpError, Outbox, Resolution, ResolutionLog};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// How long the broker keeps the log: how far back a node that joins later catches up.
pub const KEPT: &str = "31D";

/// The most the log may hold; its oldest records go first beyond it.
const MAX_BYTES: i64 = 2_000_000_000;

/// The outbox note holding the offset of the last record this node took in.
const OFFSET_NOTE: &str = "cluster/dead-letters-offset";

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

/// The log as a stream every node follows.
pub fn log(broker: &Broker) -> StreamLog {
    StreamLog {
        stream: broker.topology.dead_letter_stream(),
        kept: KEPT,
        max_bytes: MAX_BYTES,
        offset_note: OFFSET_NOTE,
    }
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
    if !stream_log::declared(&mut topology_ready).await {
        return;
    }
    log(&broker)
        .follow(&broker, &outbox, |body| {
            let entry = read(&broker, &body);
            let outbox = &outbox;
            async move {
                match entry {
                    Ok(entry) => take_in(outbox, entry).await.map_err(|e| e.to_string()),
                    Err(e) => {
                        tracing::warn!(error = %e, "unreadable record in the dead-letter log");
                        Ok(())
                    }
                }
            }
        })
        .await;
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
