//! The forward connector (cluster ingress), the cluster's own kind of connector: "delivers" an outbox delivery by publishing
//! it, unmapped, to the broker — persistent, mandatory, and finished only when the broker
//! confirms it. A worker then delivers it to the platform. Broker trouble is retryable.
//! A batch of deliveries goes out as one message per partition ([`WireBatch`]), all
//! published before their confirms are awaited.

use crate::connector::{
    BoxFuture, Connector, HttpStatusClassifier, Outbound, RawOutcome, RetryClassifier, Verdict,
};
use crate::envelope::Envelope;
use crate::transport::Topology;
use crate::transport::broker::{Broker, BrokerError};
use crate::transport::forward::{publish, start_publish_batch};
use crate::transport::wire::{WireBatch, WireMessage};
use lapin::Channel;
use std::sync::Arc;
use tokio::sync::watch;

pub struct ForwardConnector {
    broker: Arc<Broker>,
    target: String,
    origin: String,
    /// Confirm-mode channels, each used by one publishing task at a time (a returned
    /// message is matched to its publish only among the publishes of its channel); a
    /// channel that failed is not put back.
    channels: std::sync::Mutex<Vec<Channel>>,
    /// Nothing is published before this node has declared the topology: a message sent
    /// to a partition queue that does not exist yet is returned, and only retried.
    topology_ready: watch::Receiver<bool>,
}

impl ForwardConnector {
    pub fn new(
        broker: Arc<Broker>,
        target: &str,
        origin: &str,
        topology_ready: watch::Receiver<bool>,
    ) -> ForwardConnector {
        ForwardConnector {
            broker,
            target: target.to_string(),
            origin: origin.to_string(),
            channels: std::sync::Mutex::new(Vec::new()),
            topology_ready,
        }
    }

    /// A channel for this task alone: an idle one, or a new one once the topology is
    /// declared (waiting at most the broker timeout).
    async fn take_channel(&self) -> Result<Channel, BrokerError> {
        let idle = self.channels.lock().expect("channel pool").pop();
        if let Some(ch) = idle
            && ch.status().connected()
        {
            return Ok(ch);
        }
        let mut ready = self.topology_ready.clone();
        let timeout = self.broker.settings().publish_timeout;
        match tokio::time::timeout(timeout, ready.wait_for(|declared| *declared)).await {
            Ok(Ok(_)) => {}
            _ => return Err(BrokerError::Timeout(timeout)),
        }
        self.broker.confirm_channel().await
    }

    /// Put a channel back for the next publish. One whose publish failed is closed: a
    /// confirm or a return still owed to it could be taken for the next publish's.
    fn give_back(&self, channel: Channel, failed: bool) {
        if !failed {
            self.channels.lock().expect("channel pool").push(channel);
            return;
        }
        let broker = Arc::clone(&self.broker);
        tokio::spawn(async move {
            let _ = broker
                .timed(channel.close(200, "publish failed".into()))
                .await;
        });
    }

    /// What a first attempt of `envelope` travels as.
    fn wire(&self, envelope: &Envelope) -> WireMessage {
        WireMessage {
            target: self.target.clone(),
            attempts: 0,
            origin: self.origin.clone(),
            ordered: envelope.key.is_some(),
            errors: Vec::new(),
            envelope: Envelope {
                attempts: 0,
                ..envelope.clone()
            },
        }
    }

    fn partition(&self, envelope: &Envelope) -> u16 {
        self.broker
            .topology
            .partition_of(&envelope.unit, envelope.key.as_deref(), &envelope.id)
    }

    /// Publish one delivery and wait for the broker's confirm.
    pub async fn publish(&self, envelope: &Envelope) -> Result<(), BrokerError> {
        let t = &self.broker.topology;
        let partition = self.partition(envelope);
        let wire = self.wire(envelope);
        let channel = self.take_channel().await?;
        let result = publish(
            &self.broker,
            &channel,
            &t.deliver_exchange(),
            &Topology::routing_key(&self.target, partition),
            &wire,
        )
        .await;
        self.give_back(channel, result.is_err());
        result
    }

    /// Publish several deliveries, one message per partition (the envelopes' order kept
    /// within each), every message sent before the confirms are awaited. The outcome of
    /// each envelope is its message's.
    pub async fn publish_many(&self, envelopes: &[Envelope]) -> Vec<RawOutcome> {
        // (partition, envelopes, their payload bytes); a partition's messages go in more
        // than one batch when they would pass MAX_BATCH_BYTES (documents), published in
        // order on one channel, so its queue keeps their order.
        let mut partitions: Vec<(u16, Vec<usize>, usize)> = Vec::new();
        for (i, e) in envelopes.iter().enumerate() {
            let p = self.partition(e);
            let size = e.payload.get().len();
            match partitions
                .iter_mut()
                .rev()
                .find(|(q, _, _)| *q == p)
                .filter(|(_, _, bytes)| bytes + size <= MAX_BATCH_BYTES)
            {
                Some((_, items, bytes)) => {
                    items.push(i);
                    *bytes += size;
                }
                None => partitions.push((p, vec![i], size)),
            }
        }
        let channel = match self.take_channel().await {
            Ok(ch) => ch,
            Err(e) => return envelopes.iter().map(|_| raw(Err(&e))).collect(),
        };
        let t = &self.broker.topology;
        let exchange = t.deliver_exchange();
        let mut publishes = Vec::with_capacity(partitions.len());
        for (partition, items, _) in &partitions {
            let key = Topology::routing_key(&self.target, *partition);
            let batch = WireBatch {
                target: self.target.clone(),
                id: uuid::Uuid::now_v7().to_string(),
                messages: items.iter().map(|i| self.wire(&envelopes[*i])).collect(),
            };
            let started =
                start_publish_batch(&self.broker, &channel, &exchange, &key, &batch).await;
            publishes.push((batch.id, started));
        }
        let results = self.broker.confirmed_together(publishes).await;
        self.give_back(channel, results.iter().any(|r| r.is_err()));
        let mut outcomes: Vec<Option<RawOutcome>> = envelopes.iter().map(|_| None).collect();
        for ((_, items, _), result) in partitions.iter().zip(&results) {
            for i in items {
                outcomes[*i] = Some(raw(result.as_ref().map(|_| ())));
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.expect("every envelope is in one partition"))
            .collect()
    }
}

/// The most payload bytes put in one broker message of several deliveries (a single larger
/// delivery still goes alone): brokers cap message sizes (RabbitMQ 4 at 16 MiB by default).
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// A publish's result as the connector reports it.
fn raw(result: Result<(), &BrokerError>) -> RawOutcome {
    match result {
        Ok(()) => RawOutcome::Response {
            status: 200,
            retry_after: None,
            body: String::new(),
        },
        Err(BrokerError::Timeout(_)) => RawOutcome::Timeout,
        Err(e) => RawOutcome::Transport(e.to_string()),
    }
}

impl RetryClassifier for ForwardConnector {
    fn classify(&self, outcome: &RawOutcome) -> Verdict {
        HttpStatusClassifier.classify(outcome)
    }
}

impl Connector for ForwardConnector {
    fn send<'a>(&'a self, message: &'a Envelope, _body: &'a Outbound) -> BoxFuture<'a, RawOutcome> {
        Box::pin(async move { raw(self.publish(message).await.as_ref().map(|_| ())) })
    }

    fn deliver_each<'a>(&'a self, messages: &'a [Envelope]) -> Option<BoxFuture<'a, Vec<Verdict>>> {
        Some(Box::pin(async move {
            let outcomes = self.publish_many(messages).await;
            outcomes.iter().map(|o| self.classify(o)).collect()
        }))
    }
}
