//! The worker side: one consumer per partition queue of every target, each processing its
//! queue in order (single active consumer: one node at a time holds a partition). A
//! delivery is acknowledged only after the target accepted it, or after it was handed on,
//! confirmed, to a delay queue (retry) or to the dead-letter exchange; a batch from an
//! ingress node ([`WireBatch`]) once every delivery in it is.

use super::broker::{Broker, BrokerError};
use super::forward::{publish, publish_delayed};
use super::parked::{Parked, ParkedSnapshot, Settled, adopt_legacy};
use super::status::{DeadInfo, StatusEvent, StatusKind, StatusPublisher, Summary};
use super::wire::{WireMessage, open_delivery};
use super::{RETRY_DELAYS_MS, Topology};
use crate::delivery::{self, Outcome, TargetRuntime, permission};
use crate::mappings::MappingSet;
use crate::outbox::{AttemptError, KeyHash};
use crate::time::now_ms;
use futures_lite::StreamExt;
use lapin::Channel;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::FieldTable;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::watch;

/// Everything a partition consumer needs.
#[derive(Clone)]
pub struct WorkerContext {
    pub broker: Arc<Broker>,
    pub mappings: Arc<MappingSet>,
    /// Replies that go on as events of another flow: stored in this node's outbox before
    /// the delivery is acknowledged, and forwarded from there like any event.
    pub replies: Arc<dyn delivery::Replies>,
    pub status: Arc<StatusPublisher>,
    pub node: String,
    /// True once this node has declared the whole topology (partition queues, delay
    /// queues, retry and dead-letter exchanges). A partition consumer waits for it: a
    /// failed delivery handed on to a retry exchange not declared yet closes the channel
    /// with an error, and the partition changes hands in the middle of a dossier.
    pub topology_ready: watch::Receiver<bool>,
}

/// One partition of one target, consumed in order (see the module docs).
pub(super) struct PartitionConsumer {
    ctx: WorkerContext,
    target: Arc<TargetRuntime>,
    partition: u16,
    parked: HashMap<KeyHash, Parked>,
    /// Parked keys from a snapshot of a release before the SHA-256 key hash, by their
    /// FNV hash; each moves to `parked` when its next event shows its key.
    legacy_parked: HashMap<u64, Parked>,
    /// Events of once-parked keys settled lately: a copy of one that comes back (from a
    /// delay queue, or in a batch redelivered after a crash) is dropped.
    settled: HashMap<KeyHash, Settled>,
    /// Ordered keys of the broker messages acknowledged since the broker last showed it
    /// had processed the acknowledgements ([`PartitionConsumer::ack_barrier`]).
    acked_keys: HashSet<KeyHash>,
    publish_channel: Option<Channel>,
}

impl PartitionConsumer {
    /// A consumer of `target`'s `partition` with nothing parked yet (the snapshot is read
    /// when the partition becomes its own).
    pub(super) fn new(
        ctx: WorkerContext,
        target: Arc<TargetRuntime>,
        partition: u16,
    ) -> PartitionConsumer {
        PartitionConsumer {
            ctx,
            target,
            partition,
            parked: HashMap::new(),
            legacy_parked: HashMap::new(),
            settled: HashMap::new(),
            acked_keys: HashSet::new(),
            publish_channel: None,
        }
    }

    /// Subscribe and consume until stopped (`Ok`) or the broker fails (`Err`). Parked
    /// dossiers and settled copies are kept across calls.
    pub(super) async fn run(
        &mut self,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), BrokerError> {
        self.publish_channel = None;
        let broker = Arc::clone(&self.ctx.broker);
        let t = &broker.topology;
        let ch = broker.channel().await?;
        broker
            .timed(ch.basic_qos(broker.settings().prefetch, BasicQosOptions::default()))
            .await?;
        let queue = t.partition_queue(&self.target.name, self.partition);
        let tag = format!("{}-{}", self.ctx.node, queue);
        let mut consumer = broker
            .timed(ch.basic_consume(
                queue.as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            ))
            .await?;
        let result = self.consume(&ch, &mut consumer, stop).await;
        // Leave by closing the channel while the consumer handle still lives. Dropping the
        // handle first would send basic.cancel: a quorum queue keeps a cancelled consumer's
        // unacknowledged deliveries checked out to it and at once hands the partition to the
        // standby consumer, which would then deliver a dossier's later events before the
        // earlier ones come back. A closed channel returns them in the same step that
        // activates the next consumer, so they come first.
        let _ = broker
            .timed(ch.close(200, "partition consumer leaving".into()))
            .await;
        drop(consumer);
        result
    }

    /// Process the partition's deliveries one at a time until stopped or an error.
    async fn consume(
        &mut self,
        ch: &Channel,
        consumer: &mut lapin::Consumer,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), BrokerError> {
        // A standby consumer (single active consumer) receives nothing until the partition
        // becomes its own: its first delivery is the moment to take over the parked
        // dossiers the previous holder saved.
        let mut taken_over = false;
        loop {
            let next = tokio::select! {
                d = consumer.next() => d,
                _ = stop.changed() => return Ok(()),
            };
            let Some(delivery) = next else {
                return Err(BrokerError::Refused(
                    "the broker cancelled the consumer".into(),
                ));
            };
            if !taken_over {
                self.load_parked(ch).await?;
                self.acked_keys.clear();
                taken_over = true;
            }
            self.handle(ch, delivery?, stop).await?;
            if *stop.borrow() {
                return Ok(());
            }
        }
    }

    /// Take over the partition's parked dossiers from the snapshot the previous holder
    /// saved (left in its queue for the next one). No snapshot: none parked.
    async fn load_parked(&mut self, ch: &Channel) -> Result<(), BrokerError> {
        let broker = &self.ctx.broker;
        let queue = broker
            .topology
            .parked_queue(&self.target.name, self.partition);
        let got = broker
            .timed(ch.basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false }))
            .await?;
        if let Some(message) = got {
            // The snapshot is at least as new as this worker's memory: every change is
            // saved before the delivery that made it is acknowledged.
            match ParkedSnapshot::read(&message.delivery.data) {
                Ok(snapshot) => {
                    let dossiers = snapshot.parked.len() + snapshot.legacy.len();
                    if dossiers > 0 {
                        tracing::info!(target_system = %self.target.name, partition = self.partition, dossiers, "parked dossiers taken over");
                    }
                    self.parked = snapshot.parked.into_iter().collect();
                    self.legacy_parked = snapshot.legacy.into_iter().collect();
                    self.settled = snapshot.settled.into_iter().collect();
                }
                Err(e) => tracing::error!(error = %e, "unreadable parked snapshot ignored"),
            }
            // Left in the queue for whoever holds the partition next.
            broker
                .timed(message.delivery.nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                }))
                .await?;
        } else {
            self.parked.clear();
            self.legacy_parked.clear();
            self.settled.clear();
        }
        Ok(())
    }

    /// Save the parked set, confirmed, before the delivery that changed it is acknowledged.
    async fn save_parked(&mut self) -> Result<(), BrokerError> {
        let now = now_ms();
        self.settled.retain(|_, s| s.expire(now));
        let snapshot = ParkedSnapshot {
            version: ParkedSnapshot::VERSION,
            parked: self.parked.iter().map(|(h, p)| (*h, p.clone())).collect(),
            legacy: self
                .legacy_parked
                .iter()
                .map(|(h, p)| (*h, p.clone()))
                .collect(),
            settled: self.settled.iter().map(|(h, s)| (*h, s.clone())).collect(),
        };
        let body = serde_json::to_vec(&snapshot).expect("parked sets serialize");
        let queue = self
            .ctx
            .broker
            .topology
            .parked_queue(&self.target.name, self.partition);
        let ch = self.publisher().await?;
        let broker = Arc::clone(&self.ctx.broker);
        let result = broker
            .publish_on(
                &ch,
                "",
                &queue,
                &body,
                lapin::BasicProperties::default().with_delivery_mode(2),
            )
            .await;
        if result.is_err() {
            self.publish_channel = None;
        }
        result
    }

    async fn publisher(&mut self) -> Result<Channel, BrokerError> {
        if let Some(ch) = &self.publish_channel
            && ch.status().connected()
        {
            return Ok(ch.clone());
        }
        let ch = self.ctx.broker.confirm_channel().await?;
        self.publish_channel = Some(ch.clone());
        Ok(ch)
    }

    /// Hand a delivery on, confirmed, before it is acknowledged here: to the dead-letter
    /// exchange, or to a delay queue it comes back from when due ([`super::delay`]).
    async fn hand_on(&mut self, to: HandOn<'_>, wire: &WireMessage) -> Result<(), BrokerError> {
        let ch = self.publisher().await?;
        let key = Topology::routing_key(&self.target.name, self.partition);
        let broker = &self.ctx.broker;
        let r = match to {
            HandOn::Exchange(exchange) => publish(broker, &ch, exchange, &key, wire).await,
            HandOn::Delay(delay_ms) => publish_delayed(broker, &ch, delay_ms, &key, wire).await,
        };
        if r.is_err() {
            self.publish_channel = None;
        }
        r
    }

    /// One broker message: a delivery or a batch of them, settled in order, then
    /// acknowledged. Stopping before anything in it was settled leaves it unacknowledged
    /// (it goes back to the partition, first, when the channel closes); stopping part-way
    /// through a batch defers the rest ([`PartitionConsumer::defer`]).
    async fn handle(
        &mut self,
        ch: &Channel,
        delivery: Delivery,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), BrokerError> {
        let messages = match open_delivery(&self.ctx.broker, &self.target.name, &delivery) {
            Ok(m) => m,
            Err(e) => {
                // Not ours to deliver; keep it for inspection in the dead-letter queue.
                tracing::error!(target_system = %self.target.name, error = %e, "unreadable message moved to dead letters");
                let _ = self
                    .ctx
                    .broker
                    .timed(delivery.nack(BasicNackOptions {
                        requeue: false,
                        ..Default::default()
                    }))
                    .await;
                return Ok(());
            }
        };
        let keys: Vec<KeyHash> = messages.iter().filter_map(ordered_key).collect();
        self.ack_barrier(ch, &keys).await?;
        let mut reports = Vec::new();
        let mut messages = messages.into_iter();
        while let Some(wire) = messages.next() {
            match self.process(wire, stop).await? {
                Processed::Settled(report) => reports.push(report),
                Processed::Stopped(_) if reports.is_empty() => return Ok(()),
                Processed::Stopped(wire) => {
                    self.defer(std::iter::once(wire).chain(messages).collect())
                        .await?;
                    break;
                }
            }
        }
        ack(&self.ctx.broker, delivery).await?;
        self.acked_keys.extend(keys);
        for event in reports.iter().flatten() {
            self.ctx.status.publish(event).await;
        }
        Ok(())
    }

    /// Before a dossier's next event is attempted, the broker must have processed the
    /// acknowledgement of the message that carried its previous one. An acknowledgement
    /// has no answer in AMQP: one still in this process's socket when it is killed is lost,
    /// that message comes back to the partition's next holder, and its event would reach
    /// the target after the later one attempted here. A method with an answer on the same
    /// channel (`basic.qos`, channels process methods in order) shows that every
    /// acknowledgement before it arrived; it is asked only when a key repeats.
    async fn ack_barrier(&mut self, ch: &Channel, keys: &[KeyHash]) -> Result<(), BrokerError> {
        if keys.iter().any(|k| self.acked_keys.contains(k)) || self.acked_keys.len() > 100_000 {
            let broker = &self.ctx.broker;
            broker
                .timed(ch.basic_qos(broker.settings().prefetch, BasicQosOptions::default()))
                .await?;
            self.acked_keys.clear();
        }
        Ok(())
    }

    /// One delivery: follow its parked dossier into the delay queue, or attempt it and
    /// hand on what the outcome asks for. Nothing is acknowledged here (the caller acks
    /// the broker message once everything in it is settled).
    ///
    /// Every change to the parked set is saved before the copy it describes is handed on
    /// to a delay queue, and a settled event is remembered ([`Settled`]) in the save after
    /// it was settled: whatever point a crash interrupts, the partition's next holder
    /// either attempts the event as its dossier's head or drops a copy already settled.
    async fn process(
        &mut self,
        mut wire: WireMessage,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Processed, BrokerError> {
        let env = &wire.envelope;
        let key_hash = ordered_key(&wire);
        if let Some(h) = key_hash
            && self.is_settled(h, env.id)
        {
            tracing::debug!(target_system = %self.target.name, partition = self.partition, id = %env.id, "a copy of an event already settled: dropped");
            return Ok(Processed::Settled(None));
        }
        if let (Some(h), Some(k)) = (key_hash, &env.key)
            && self.adopt_legacy(h, &env.unit, k)
        {
            self.save_parked().await?;
        }
        // A later event of a dossier whose head waits for a retry follows it.
        if let Some(h) = key_hash
            && let Some(p) = self.parked.get_mut(&h)
            && p.head != Some(env.id)
        {
            let new_follower = !p.followers.contains(&env.id);
            if new_follower {
                p.followers.push_back(env.id);
            }
            let delay_ms = p.delay_ms;
            tracing::debug!(target_system = %self.target.name, partition = self.partition, id = %env.id, head = ?p.head, "follows its dossier's head into the delay queue");
            if new_follower {
                self.save_parked().await?;
            }
            self.hand_on(HandOn::Delay(delay_ms), &wire).await?;
            return Ok(Processed::Settled(None));
        }
        if !permission::wait_while_paused(&self.target, stop).await
            || !permission::wait_for_permission(&self.target, stop).await
        {
            return Ok(Processed::Stopped(wire));
        }
        let mut envelope = wire.envelope.clone();
        let attempts = wire.attempts + 1;
        envelope.attempts = attempts;
        let outcome = delivery::attempt(
            &self.target,
            &self.ctx.mappings,
            Some(self.ctx.replies.as_ref()),
            &envelope,
            attempts,
        )
        .await;
        wire.attempts = attempts;
        let report = match outcome {
            Outcome::Delivered | Outcome::Forwarded => {
                tracing::debug!(target_system = %self.target.name, partition = self.partition, id = %wire.envelope.id, attempts, "delivered");
                if self.head_done(key_hash) {
                    self.save_parked().await?;
                }
                self.event(&wire, StatusKind::Delivered, None, None)
            }
            Outcome::Retry { delay, error } => {
                let reason = error.error.clone();
                let mut level = Topology::retry_delay_for(delay.as_millis() as u64);
                if let Some(h) = key_hash {
                    let p = self.parked.entry(h).or_default();
                    // Never ahead of where the key's later events already wait.
                    level = level.max(p.delay_ms);
                    p.head = Some(wire.envelope.id);
                    p.delay_ms = level;
                }
                delivery::push_error(&mut wire.errors, error);
                tracing::info!(target_system = %self.target.name, partition = self.partition, id = %wire.envelope.id, attempts, delay_ms = level, %reason, "delivery failed; retrying through the delay queue");
                if key_hash.is_some() {
                    self.save_parked().await?;
                }
                self.hand_on(HandOn::Delay(level), &wire).await?;
                self.event(&wire, StatusKind::Failed, Some(reason), None)
            }
            Outcome::Dead { reason, error } => self.dead(wire, key_hash, reason, error).await?,
        };
        Ok(Processed::Settled(Some(report)))
    }

    /// The deliveries of a batch not yet attempted when the worker was asked to stop:
    /// handed on, in order and without counting an attempt, to the shortest delay queue
    /// (or behind their dossier's head), their dossiers parked so that the partition's
    /// next holder keeps each one's order. They come back in about a second.
    async fn defer(&mut self, messages: Vec<WireMessage>) -> Result<(), BrokerError> {
        let mut parked_changed = false;
        let mut hand_ons = Vec::with_capacity(messages.len());
        for wire in messages {
            let id = wire.envelope.id;
            let mut delay = RETRY_DELAYS_MS[0];
            if let Some(h) = ordered_key(&wire) {
                if self.is_settled(h, id) {
                    continue;
                }
                let p = self.parked.entry(h).or_default();
                if p.head.is_none() {
                    p.head = Some(id);
                    p.delay_ms = p.delay_ms.max(delay);
                } else if p.head != Some(id) && !p.followers.contains(&id) {
                    p.followers.push_back(id);
                }
                delay = p.delay_ms;
                parked_changed = true;
            }
            hand_ons.push((delay, wire));
        }
        // Saved first: a crash before the copies are made leaves the batch to come back
        // with its events parked, each then attempted as its dossier's head or following it.
        if parked_changed {
            self.save_parked().await?;
        }
        for (delay, wire) in hand_ons {
            self.hand_on(HandOn::Delay(delay), &wire).await?;
        }
        Ok(())
    }

    /// A dead letter: to the dead-letter exchange and to the cluster's dead-letter log
    /// (where operators on every node see it); its dossier goes on with its next event. Its status event
    /// is returned for the caller to publish once the broker message is acknowledged.
    async fn dead(
        &mut self,
        mut wire: WireMessage,
        key_hash: Option<KeyHash>,
        reason: String,
        error: AttemptError,
    ) -> Result<StatusEvent, BrokerError> {
        tracing::warn!(target_system = %self.target.name, id = %wire.envelope.id, %reason, "dead letter");
        delivery::push_error(&mut wire.errors, error);
        // Handed on before its key goes on: a crash in between leaves it its dossier's
        // head, dead-lettered again by the next holder, never dropped as settled.
        let exchange = self.ctx.broker.topology.dead_exchange();
        self.hand_on(HandOn::Exchange(&exchange), &wire).await?;
        // The key goes on with its next event (an operator replays this one).
        if self.head_done(key_hash) {
            self.save_parked().await?;
        }
        // The figures need no envelope: the log below carries it.
        let event = self.event(&wire, StatusKind::Dead, Some(reason.clone()), None);
        // To the cluster's dead-letter log, which every node lists.
        let entry = super::dead_letters::Entry::Dead {
            target: self.target.name.clone(),
            at_ms: event.at_ms,
            reason,
            errors: wire.errors.clone(),
            envelope: wire.envelope.clone(),
        };
        if let Err(e) = super::dead_letters::append(&self.ctx.broker, &entry).await {
            tracing::error!(origin = %wire.origin, id = %wire.envelope.id, error = %e, "dead letter not logged for the nodes to list (it stays in the dead-letter queue)");
        }
        Ok(event)
    }

    /// Whether `id` of the key `h` was settled already (what comes now is a copy).
    fn is_settled(&self, h: KeyHash, id: crate::envelope::MessageId) -> bool {
        self.settled.get(&h).is_some_and(|s| s.contains(id))
    }

    /// A key parked under its FNV hash by a worker of an earlier release moves to its
    /// SHA-256 hash when its next event arrives. `true` when the parked set changed.
    fn adopt_legacy(&mut self, h: KeyHash, unit: &str, key: &str) -> bool {
        adopt_legacy(&mut self.parked, &mut self.legacy_parked, h, unit, key)
    }

    /// The head of a parked key was delivered or died: it is remembered as settled (a
    /// copy of it may still be in a delay queue) and the next one in line takes over.
    /// `true` when the parked set changed.
    fn head_done(&mut self, key_hash: Option<KeyHash>) -> bool {
        let Some(h) = key_hash else { return false };
        let Some(p) = self.parked.get_mut(&h) else {
            return false;
        };
        if let Some(head) = p.head {
            self.settled.entry(h).or_default().remember(head, now_ms());
        }
        if !p.advance() {
            self.parked.remove(&h);
        }
        true
    }

    fn event(
        &self,
        wire: &WireMessage,
        kind: StatusKind,
        error: Option<String>,
        dead: Option<DeadInfo>,
    ) -> StatusEvent {
        let e = &wire.envelope;
        StatusEvent {
            node: self.ctx.node.clone(),
            origin: wire.origin.clone(),
            target: self.target.name.clone(),
            kind,
            at_ms: now_ms(),
            attempts: wire.attempts,
            error,
            dead,
            envelope_summary: Summary {
                id: e.id,
                unit: e.unit.clone(),
                key: e.key.clone(),
                received_ms: e.received_ms,
            },
        }
    }
}

/// Where a delivery is handed on to.
enum HandOn<'a> {
    Exchange(&'a str),
    /// The delay queue of this many milliseconds.
    Delay(u64),
}

/// What became of one delivery of a broker message.
enum Processed {
    /// Attempted or handed on; the status event to publish, if any.
    Settled(Option<StatusEvent>),
    /// Not attempted: the worker is stopping.
    Stopped(WireMessage),
}

/// The hash a delivery's order is kept by, if its route orders its key.
fn ordered_key(wire: &WireMessage) -> Option<KeyHash> {
    match (&wire.envelope.key, wire.ordered) {
        (Some(k), true) => Some(crate::outbox::key_hash(&wire.envelope.unit, k)),
        _ => None,
    }
}

async fn ack(broker: &Broker, delivery: Delivery) -> Result<(), BrokerError> {
    broker
        .timed(delivery.ack(BasicAckOptions::default()))
        .await
        .map(|_| ())
}

/// Keep the compiler honest about the delay list being sorted (the level choice relies on
/// it).
const _: () = {
    let mut i = 1;
    while i < RETRY_DELAYS_MS.len() {
        assert!(RETRY_DELAYS_MS[i - 1] < RETRY_DELAYS_MS[i]);
        i += 1;
    }
};
