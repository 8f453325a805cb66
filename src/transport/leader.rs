//! One node of the cluster at a time for a periodic task (the payment reconciliation):
//! a lock held as an exclusive queue on the broker.
//!
//! # Design
//!
//! A node takes the lock by declaring the queue `<p>.lock.<name>` exclusive on its
//! connection (exclusive queues belong to a connection, not a channel). The broker lets one connection at a time declare an exclusive queue; any
//! other node's declaration fails (`RESOURCE_LOCKED`) and it tries again at its next
//! round. The queue dies with its connection, so when the holder stops, crashes or loses
//! the broker, the lock is free for the next node that asks, and the old holder — whose
//! channel is then closed — knows it no longer holds it. Nothing is ever published to the
//! queue: it is only a name the broker guards.
//!
//! The lock is not a fence: between the broker deciding the holder's connection is dead
//! (heartbeat) and the holder noticing, two nodes may run one round each. Whatever the
//! reconciliation stores is keyed so that the cost of that is at most a duplicate
//! message to a unit, never a lost one. A node that stops lets the lock go with its
//! connection.

use super::broker::Broker;
use lapin::Channel;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use std::sync::Arc;

/// A named lock of the cluster, held by at most one node.
pub struct ClusterLock {
    broker: Arc<Broker>,
    queue: String,
    /// The channel that declared the queue, while this node holds the lock.
    held: Option<Channel>,
}

impl ClusterLock {
    pub fn new(broker: Arc<Broker>, name: &str) -> ClusterLock {
        let queue = format!("{}.lock.{name}", broker.topology.prefix);
        ClusterLock {
            broker,
            queue,
            held: None,
        }
    }

    /// Whether this node holds the lock now, taking it if it is free.
    pub async fn hold(&mut self) -> bool {
        if let Some(ch) = &self.held {
            if ch.status().connected() {
                return true;
            }
            self.held = None;
            tracing::warn!(lock = %self.queue, "lost the cluster lock (broker connection gone)");
        }
        let Ok(ch) = self.broker.channel().await else {
            return false;
        };
        let declared = self
            .broker
            .timed(ch.queue_declare(
                self.queue.as_str().into(),
                QueueDeclareOptions {
                    exclusive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            ))
            .await;
        match declared {
            Ok(_) => {
                tracing::info!(lock = %self.queue, "this node holds the cluster lock");
                self.held = Some(ch);
                true
            }
            // RESOURCE_LOCKED: another node holds it (the broker closed this channel).
            Err(e) => {
                tracing::debug!(lock = %self.queue, error = %e, "another node holds the cluster lock");
                false
            }
        }
    }
}
