//! Cluster-wide status: every worker publishes each delivery outcome to the status exchange
//! (fanout); every node consumes them into the same per-target counters, recent-activity
//! windows and failure lists its admin API and dashboard read in embedded mode, so any
//! node shows the whole cluster. A dead letter is also recorded in the outbox of the node
//! that accepted the event, where operators see it, replay it or drop it.

use super::broker::{Broker, BrokerError};
use crate::envelope::{Envelope, UnitTag};
use crate::outbox::{AttemptError, Outbox};
use crate::relay::TargetRuntime;
use crate::relay::activity::{Failure, Outcome};
use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StatusKind {
    Delivered,
    /// Failed; a retry is scheduled.
    Failed,
    Dead,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StatusEvent {
    /// The worker that made the attempt.
    pub node: String,
    /// The node that accepted the event.
    pub origin: String,
    pub target: String,
    pub kind: StatusKind,
    pub at_ms: u64,
    pub attempts: u32,
    pub error: Option<String>,
    /// Dead letters carry what the accepting node needs to show and replay them.
    pub dead: Option<DeadInfo>,
    pub envelope_summary: Summary,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    pub id: crate::envelope::MessageId,
    pub unit: String,
    pub key: Option<String>,
    pub received_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeadInfo {
    pub reason: String,
    pub errors: Vec<AttemptError>,
    pub envelope: Envelope,
}

/// Publishes outcomes (best effort: a lost status event costs a figure, not a message).
pub struct StatusPublisher {
    broker: Arc<Broker>,
    channel: tokio::sync::Mutex<Option<Channel>>,
}

impl StatusPublisher {
    pub fn new(broker: Arc<Broker>) -> StatusPublisher {
        StatusPublisher {
            broker,
            channel: tokio::sync::Mutex::new(None),
        }
    }

    pub async fn publish(&self, event: &StatusEvent) {
        if let Err(e) = self.try_publish(event).await {
            tracing::debug!(error = %e, "status event not published");
            *self.channel.lock().await = None;
        }
    }

    async fn try_publish(&self, event: &StatusEvent) -> Result<(), BrokerError> {
        let ch = {
            let mut guard = self.channel.lock().await;
            match guard.as_ref() {
                Some(ch) if ch.status().connected() => ch.clone(),
                _ => {
                    let ch = self.broker.channel().await?;
                    *guard = Some(ch.clone());
                    ch
                }
            }
        };
        let body = serde_json::to_vec(event).expect("status events serialize");
        // Dead letters are kept by the accepting node: those go persistent and confirmed
        // by the broker's queue semantics; the rest are figures.
        let props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(if event.dead.is_some() { 2 } else { 1 });
        self.broker
            .timed(ch.basic_publish(
                self.broker.topology.status_exchange().as_str().into(),
                "".into(),
                BasicPublishOptions::default(),
                &body,
                props,
            ))
            .await?;
        Ok(())
    }
}

/// Apply one outcome to this node's view of the cluster.
pub async fn apply(
    event: &StatusEvent,
    node: &str,
    targets: &HashMap<String, Arc<TargetRuntime>>,
    outbox: &Outbox,
) {
    let Some(t) = targets.get(&event.target) else {
        return;
    };
    let unit = UnitTag::of(&event.envelope_summary.unit);
    let envelope_ref = &event.envelope_summary;
    match event.kind {
        StatusKind::Delivered => {
            t.stats.delivered.fetch_add(1, Ordering::Relaxed);
            t.stats
                .latency
                .record(event.at_ms.saturating_sub(envelope_ref.received_ms));
            t.stats.recent.record(unit, Outcome::Delivered, event.at_ms);
        }
        StatusKind::Failed | StatusKind::Dead => {
            let dead = event.kind == StatusKind::Dead;
            if dead {
                t.stats.dead.fetch_add(1, Ordering::Relaxed);
                t.stats.recent.record(unit, Outcome::Dead, event.at_ms);
            } else {
                t.stats.retried.fetch_add(1, Ordering::Relaxed);
                t.stats.recent.record(unit, Outcome::Failed, event.at_ms);
            }
            t.stats.failures.push(Failure {
                at_ms: event.at_ms,
                unit: envelope_ref.unit.clone(),
                id: envelope_ref.id,
                error: event.error.clone().unwrap_or_default(),
                dead,
            });
        }
    }
    if let Some(dead) = &event.dead
        && event.origin == node
        && let Err(e) = outbox
            .import_dead(&event.target, &dead.envelope, &dead.reason, &dead.errors)
            .await
    {
        tracing::error!(target_system = %event.target, id = %envelope_ref.id, error = %e, "cannot record a dead letter from the cluster");
    }
}

/// Consume the status exchange for as long as the bus runs, re-subscribing after broker
/// failures.
pub async fn consume(
    broker: Arc<Broker>,
    node: String,
    targets: HashMap<String, Arc<TargetRuntime>>,
    outbox: Outbox,
) {
    loop {
        if let Err(e) = consume_once(&broker, &node, &targets, &outbox).await {
            tracing::warn!(error = %e, "status consumer stopped; subscribing again");
        }
        tokio::time::sleep(broker.settings().reconnect_delay).await;
    }
}

async fn consume_once(
    broker: &Broker,
    node: &str,
    targets: &HashMap<String, Arc<TargetRuntime>>,
    outbox: &Outbox,
) -> Result<(), BrokerError> {
    let ch = broker.channel().await?;
    let q = broker
        .timed(ch.queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        ))
        .await?;
    broker
        .timed(ch.queue_bind(
            q.name().clone(),
            broker.topology.status_exchange().as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        ))
        .await?;
    let mut consumer = broker
        .timed(ch.basic_consume(
            q.name().clone(),
            format!("status-{node}").as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ))
        .await?;
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery?;
        match serde_json::from_slice::<StatusEvent>(&delivery.data) {
            Ok(event) => apply(&event, node, targets, outbox).await,
            Err(e) => tracing::warn!(error = %e, "unreadable status event"),
        }
        let _ = delivery.ack(BasicAckOptions::default()).await;
    }
    Ok(())
}
