//! Cluster-wide status: every worker publishes each delivery outcome to the status exchange
//! (fanout); every node consumes them into the same per-target counters, recent-activity
//! windows and failure lists its admin API and dashboard read in embedded mode, so any
//! node shows the whole cluster. Dead letters go to the cluster's log
//! ([`super::dead_letters`]); notes (payment references) go to every node's durable queue.

use super::broker::{Broker, BrokerError};
use crate::delivery::TargetRuntime;
use crate::delivery::activity::{Failure, Outcome};
use crate::envelope::{Envelope, UnitTag};
use crate::outbox::{AttemptError, Outbox};
use futures_lite::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, QueueBindOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

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

/// What travels on the status exchange.
#[derive(Clone, Debug, Serialize, Deserialize)]
// Externally tagged: an internally tagged enum would buffer the content, which the raw
// JSON payload of a dead letter's envelope cannot go through.
#[serde(rename_all = "snake_case")]
pub enum StatusMessage {
    /// A delivery's outcome, for every node's figures (status fanout).
    Outcome(StatusEvent),
    /// Several outcomes in one message: a worker gathers what it settles within a few
    /// milliseconds, so the broker carries one status message per batch, not per event.
    Outcomes(Vec<StatusEvent>),
    /// A dead letter, for the node that accepted the event (its durable queue). Sent by
    /// releases before the cluster's dead-letter log; still read.
    DeadLetter(StatusEvent),
    /// A durable fact one node learned that others need: which unit a payment reference
    /// belongs to (the worker sent the Init; the platform's Confirm reaches an ingress
    /// node).
    Note { name: String, value: Vec<u8> },
}

/// A status message as it goes on the broker (sealed when the node seals its bodies).
pub fn broker_body(broker: &Broker, message: &StatusMessage) -> Vec<u8> {
    broker.seal(
        super::broker::BodyKind::Status,
        serde_json::to_vec(message).expect("status messages serialize"),
    )
}

/// A status message as it came off the broker.
fn read_message(broker: &Broker, body: &[u8]) -> Result<StatusMessage, String> {
    let body = broker.open(super::broker::BodyKind::Status, body)?;
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

/// The only notes nodes share, each about a short payment reference (at most 64
/// characters): `payment-ref/<MaThamChieu>` and `payment-settled/<MaThamChieu>` naming a
/// unit (an id of the config's form), and `payment-open/<MaThamChieu>` holding an open
/// payment of such a unit. Anything else on the notes exchange did not come from a node
/// and is ignored.
pub fn acceptable_note(name: &str, value: &[u8]) -> bool {
    use crate::connector::payment::{OPEN_PREFIX, SETTLED_PREFIX};
    let unit_id = |v: &[u8]| {
        !v.is_empty()
            && v.len() <= 64
            && v.iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_')
    };
    let short = |r: &str| !r.is_empty() && r.chars().count() <= 64;
    if let Some(reference) = name
        .strip_prefix("payment-ref/")
        .or_else(|| name.strip_prefix(SETTLED_PREFIX))
    {
        return short(reference) && unit_id(value);
    }
    if let Some(reference) = name.strip_prefix(OPEN_PREFIX) {
        return short(reference)
            && value.len() <= 256
            && crate::connector::payment::reconcile::OpenPayment::decode(value)
                .is_some_and(|open| unit_id(open.unit.as_bytes()));
    }
    false
}

/// The node's notes, shared with the cluster: written locally and published to every
/// node.
pub struct ClusterNotes {
    pub local: Outbox,
    pub status: Arc<StatusPublisher>,
}

impl ClusterNotes {
    /// Send a note to the other nodes, in the background, retried a few times.
    fn share(&self, name: &str, value: &[u8]) {
        let broker = Arc::clone(&self.status.broker);
        let body = broker_body(
            &broker,
            &StatusMessage::Note {
                name: name.to_string(),
                value: value.to_vec(),
            },
        );
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let exchange = broker.topology.notes_exchange();
                for attempt in 1..=10u32 {
                    match broker.publish_confirmed(&exchange, "", &body).await {
                        Ok(()) => return,
                        Err(e) => {
                            tracing::warn!(attempt, error = %e, "note not yet shared with the cluster");
                            tokio::time::sleep(broker.settings().reconnect_delay * attempt).await;
                        }
                    }
                }
                tracing::error!("a note could not be shared with the cluster");
            });
        }
    }
}

impl crate::outbox::Notes for ClusterNotes {
    fn put_note(&self, name: &str, value: &[u8]) -> Result<(), crate::outbox::StoreError> {
        self.local.put_note(name, value)?;
        self.share(name, value);
        Ok(())
    }

    fn put_notes(&self, notes: &[(String, Vec<u8>)]) -> Result<(), crate::outbox::StoreError> {
        self.local.put_notes(notes)?;
        for (name, value) in notes {
            self.share(name, value);
        }
        Ok(())
    }

    fn get_note(&self, name: &str) -> Result<Option<bytes::Bytes>, crate::outbox::StoreError> {
        self.local.get_note(name)
    }
}

/// Publishes outcomes (best effort: a lost status event costs a figure, not a message).
/// Outcomes are gathered and go out together ([`StatusMessage::Outcomes`]): at most
/// [`BATCH_MAX`] per message, and none waits longer than [`BATCH_WAIT`].
pub struct StatusPublisher {
    pub broker: Arc<Broker>,
    channel: tokio::sync::Mutex<Option<Channel>>,
    pending: std::sync::Mutex<Vec<StatusEvent>>,
    /// Wakes the task that sends a batch.
    wake: tokio::sync::Notify,
    flusher: std::sync::OnceLock<tokio::task::JoinHandle<()>>,
}

/// Most outcomes in one status message.
pub const BATCH_MAX: usize = 256;
/// Longest an outcome waits for others to go with it.
pub const BATCH_WAIT: Duration = Duration::from_millis(20);
/// Outcomes kept while the broker is slow; past it they are dropped (figures only).
const PENDING_CAP: usize = 50_000;

impl StatusPublisher {
    pub fn new(broker: Arc<Broker>) -> StatusPublisher {
        StatusPublisher {
            broker,
            channel: tokio::sync::Mutex::new(None),
            pending: std::sync::Mutex::new(Vec::new()),
            wake: tokio::sync::Notify::new(),
            flusher: std::sync::OnceLock::new(),
        }
    }

    /// Queue an outcome; it goes out with the others of the next few milliseconds.
    pub async fn publish(self: &Arc<Self>, event: &StatusEvent) {
        self.flusher
            .get_or_init(|| tokio::spawn(Arc::clone(self).send_batches()));
        let full = {
            let mut pending = self.pending.lock().unwrap();
            if pending.len() >= PENDING_CAP {
                tracing::debug!("status outcomes dropped: the broker is not taking them");
                return;
            }
            pending.push(event.clone());
            pending.len() >= BATCH_MAX
        };
        if full {
            self.wake.notify_one();
        }
    }

    /// Send what gathered, a batch at a time, until the publisher is dropped.
    async fn send_batches(self: Arc<Self>) {
        loop {
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(BATCH_WAIT) => {}
            }
            self.flush().await;
            if Arc::strong_count(&self) == 1 {
                return;
            }
        }
    }

    /// Send every outcome gathered so far.
    pub async fn flush(&self) {
        loop {
            let batch: Vec<StatusEvent> = {
                let mut pending = self.pending.lock().unwrap();
                let n = pending.len().min(BATCH_MAX);
                pending.drain(..n).collect()
            };
            if batch.is_empty() {
                return;
            }
            self.confirm_to_origins(&batch).await;
            match batch.len() {
                1 => {
                    let one = batch.into_iter().next().expect("one");
                    self.publish_message(&StatusMessage::Outcome(one)).await;
                }
                _ => self.publish_message(&StatusMessage::Outcomes(batch)).await,
            }
        }
    }

    /// The deliveries of `batch` that were delivered, to the durable queue of each node that
    /// accepted them: the status fanout reaches only the nodes running at the time, and a
    /// node that was down must still learn that what it forwarded was delivered (its
    /// records, its KPI figures). Persistent; a node takes a confirmation twice harmlessly.
    async fn confirm_to_origins(&self, batch: &[StatusEvent]) {
        let mut by_origin: std::collections::BTreeMap<&str, Vec<StatusEvent>> = Default::default();
        for e in batch.iter().filter(|e| e.kind == StatusKind::Delivered) {
            by_origin.entry(&e.origin).or_default().push(e.clone());
        }
        let exchange = self.broker.topology.node_exchange();
        for (origin, events) in by_origin {
            let message = StatusMessage::Outcomes(events);
            if let Err(e) = self.try_publish(&exchange, origin, 2, &message).await {
                tracing::debug!(error = %e, %origin, "delivery confirmations not sent to their node");
                *self.channel.lock().await = None;
            }
        }
    }

    pub async fn publish_message(&self, message: &StatusMessage) {
        let exchange = self.broker.topology.status_exchange();
        if let Err(e) = self.try_publish(&exchange, "", 1, message).await {
            tracing::debug!(error = %e, "status event not published");
            *self.channel.lock().await = None;
        }
    }

    async fn try_publish(
        &self,
        exchange: &str,
        routing_key: &str,
        delivery_mode: u8,
        message: &StatusMessage,
    ) -> Result<(), BrokerError> {
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
        let body = broker_body(&self.broker, message);
        let props = BasicProperties::default()
            .with_content_type(self.broker.content_type().into())
            .with_delivery_mode(delivery_mode);
        self.broker
            .timed(ch.basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                &body,
                props,
            ))
            .await?;
        Ok(())
    }
}

/// Apply one outcome to this node's view of the cluster.
pub fn apply(
    event: &StatusEvent,
    node: &str,
    targets: &HashMap<String, Arc<TargetRuntime>>,
    outbox: &Outbox,
) {
    // The accepting node's record of the delivery: delivered, not just forwarded.
    if event.kind == StatusKind::Delivered && event.origin == node {
        outbox.confirm_delivered(
            &event.target,
            event.envelope_summary.id,
            event.at_ms,
            event.attempts,
        );
    }
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
                .observe(event.at_ms.saturating_sub(envelope_ref.received_ms), None);
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
}

/// Record a dead letter addressed to this node (it accepted the event) by a worker of a
/// release before the cluster's dead-letter log ([`super::dead_letters`]).
async fn import(event: &StatusEvent, outbox: &Outbox) {
    let Some(dead) = &event.dead else { return };
    match outbox
        .import_dead(
            &event.target,
            &dead.envelope,
            &dead.reason,
            &dead.errors,
            event.at_ms,
        )
        .await
    {
        Ok(()) => {}
        Err(crate::outbox::OpError::NotFound) => {
            tracing::warn!(id = %dead.envelope.id, "dead letter for a message retention already removed")
        }
        Err(e) => {
            tracing::error!(target_system = %event.target, id = %dead.envelope.id, error = %e, "cannot record a dead letter from the cluster")
        }
    }
}

/// Consume the status exchange (figures) and this node's durable queue (its dead letters,
/// the cluster's notes) for as long as the bus runs, re-subscribing after broker failures.
pub async fn consume(
    broker: Arc<Broker>,
    node: String,
    targets: HashMap<String, Arc<TargetRuntime>>,
    outbox: Outbox,
    mut topology_ready: tokio::sync::watch::Receiver<bool>,
) {
    // Subscribed as soon as the topology is there (not a failed try and a reconnect delay
    // later): outcomes published before the figures' queue is bound are not counted.
    if topology_ready.wait_for(|declared| *declared).await.is_err() {
        return;
    }
    let figures = {
        let (broker, node, outbox) = (Arc::clone(&broker), node.clone(), outbox.clone());
        async move {
            loop {
                if let Err(e) = consume_figures(&broker, &node, &targets, &outbox).await {
                    tracing::warn!(error = %e, "status consumer stopped; subscribing again");
                }
                tokio::time::sleep(broker.settings().reconnect_delay).await;
            }
        }
    };
    let own = async move {
        loop {
            if let Err(e) = consume_node_queue(&broker, &node, &outbox).await {
                tracing::warn!(error = %e, "node queue consumer stopped; subscribing again");
            }
            tokio::time::sleep(broker.settings().reconnect_delay).await;
        }
    };
    tokio::join!(figures, own);
}

/// This node's durable queue: acknowledged only once recorded.
async fn consume_node_queue(
    broker: &Broker,
    node: &str,
    outbox: &Outbox,
) -> Result<(), BrokerError> {
    let ch = broker.channel().await?;
    let mut consumer = broker
        .timed(ch.basic_consume(
            broker.topology.node_queue(node).as_str().into(),
            format!("node-{node}").as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ))
        .await?;
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery?;
        match read_message(broker, &delivery.data) {
            Ok(StatusMessage::DeadLetter(event)) => import(&event, outbox).await,
            Ok(StatusMessage::Note { name, value }) if !acceptable_note(&name, &value) => {
                tracing::warn!(name = %name.chars().take(40).collect::<String>(), "a note from the broker that no node writes: ignored");
            }
            Ok(StatusMessage::Note { name, value }) => {
                // Payment notes never move a payment backwards, whatever order they
                // arrive in.
                if let Err(e) =
                    crate::connector::payment::reconcile::take_shared(outbox, &name, &value)
                {
                    tracing::error!(%name, error = %e, "cannot record a note from the cluster");
                    continue; // not acknowledged: it comes back
                }
            }
            Ok(StatusMessage::Outcome(event)) => {
                if !confirmed(&[event], node, outbox).await {
                    continue; // not acknowledged: it comes back
                }
            }
            Ok(StatusMessage::Outcomes(events)) => {
                if !confirmed(&events, node, outbox).await {
                    continue;
                }
            }
            Err(e) => tracing::warn!(error = %e, "unreadable message in the node queue"),
        }
        broker
            .timed(delivery.ack(BasicAckOptions::default()))
            .await?;
    }
    Ok(())
}

/// Deliveries this node forwarded that a worker delivered: recorded (durably) before the
/// confirmation is acknowledged.
async fn confirmed(events: &[StatusEvent], node: &str, outbox: &Outbox) -> bool {
    let mine = events
        .iter()
        .filter(|e| e.kind == StatusKind::Delivered && e.origin == node);
    for e in mine {
        outbox.confirm_delivered(&e.target, e.envelope_summary.id, e.at_ms, e.attempts);
    }
    match outbox.sync().await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, "cannot record delivery confirmations from the cluster");
            false
        }
    }
}

async fn consume_figures(
    broker: &Broker,
    node: &str,
    targets: &HashMap<String, Arc<TargetRuntime>>,
    outbox: &Outbox,
) -> Result<(), BrokerError> {
    let ch = broker.channel().await?;
    let q = broker.private_queue(&ch).await?;
    broker
        .timed(ch.queue_bind(
            q.as_str().into(),
            broker.topology.status_exchange().as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        ))
        .await?;
    let mut consumer = broker
        .timed(ch.basic_consume(
            q.as_str().into(),
            format!("status-{node}").as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ))
        .await?;
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery?;
        match read_message(broker, &delivery.data) {
            Ok(StatusMessage::Outcome(event)) => apply(&event, node, targets, outbox),
            Ok(StatusMessage::Outcomes(events)) => {
                for event in &events {
                    apply(event, node, targets, outbox);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "unreadable status event"),
        }
        let _ = delivery.ack(BasicAckOptions::default()).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_payment_reference_notes_naming_a_unit_are_taken_from_the_broker() {
        assert!(acceptable_note("payment-ref/NAF-PAY-0001", b"nafosted"));
        assert!(!acceptable_note("payment-forged/x", b"nafosted"));
        assert!(!acceptable_note("kpi/anything", b"nafosted"));
        assert!(!acceptable_note("payment-ref/", b"nafosted"));
        assert!(!acceptable_note(
            &format!("payment-ref/{}", "R".repeat(65)),
            b"nafosted"
        ));
        assert!(!acceptable_note("payment-ref/NAF-1", b"Nafosted; DROP"));
        assert!(!acceptable_note("payment-ref/NAF-1", &[b'a'; 65]));
    }

    #[test]
    fn open_and_settled_payment_notes_of_a_unit_are_taken_from_the_broker() {
        let open = br#"{"unit":"nafosted","since_ms":1700000000000,"paid":false}"#;
        assert!(acceptable_note("payment-open/NAF-1", open));
        assert!(acceptable_note("payment-settled/NAF-1", b"nafosted"));
        assert!(!acceptable_note("payment-open/NAF-1", b"nafosted"));
        let forged = br#"{"unit":"NAF; DROP","since_ms":1,"paid":true}"#;
        assert!(!acceptable_note("payment-open/NAF-1", forged));
        assert!(!acceptable_note("payment-settled/NAF-1", b"Nafosted!"));
        assert!(!acceptable_note("payment-open/", open));
    }
}
