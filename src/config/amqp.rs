//! The `[amqp]` section: the broker, the names, the partitions, and how ingress nodes
//! forward (batches and confirms in flight), as the cluster ([`crate::transport`]) reads
//! it; checked with the rest of the config in `config/validate/platform.rs`.

use super::TlsConfig;
use serde::Deserialize;
use std::time::Duration;

/// The RabbitMQ transport (`[amqp]`).
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AmqpConfig {
    /// Broker URLs (`amqp://user:pass@host:5672/vhost`, or `amqps://` for TLS); tried in
    /// turn when a connection fails.
    pub urls: Vec<String>,
    /// Prefix of every exchange and queue the bus declares.
    pub prefix: String,
    /// Partitions per target: each is a quorum queue with one active consumer, so the
    /// messages of one key (one dossier) are delivered in order by whichever node holds it.
    pub partitions: u16,
    /// Unacknowledged deliveries a worker holds per partition.
    pub prefetch: u16,
    /// Batches an ingress node keeps waiting for their confirms, per target. The broker
    /// confirms a quorum-queue message once it is on disk on a majority, so throughput
    /// comes from many events per message and several messages in flight.
    pub publish_concurrency: usize,
    /// Most outbox deliveries an ingress node forwards together, per target: they go out
    /// as one broker message per partition (the broker's cost is per message, not per
    /// event). 1: one message per event, as releases before batching sent (workers of
    /// those releases cannot read batches: upgrade the workers first).
    pub publish_batch: usize,
    /// Longest wait for a publish and its confirm, and for a connection.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub publish_timeout: Duration,
    /// Wait before connecting again after the broker was lost.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub reconnect_delay: Duration,
    /// When an ingress node answers a unit `202`: `local`, once the events are on this
    /// node's disk (they are forwarded after, and units are served through a broker
    /// outage); `replicated`, once the broker has also confirmed each into its quorum
    /// queue (on disk on a majority of the broker's nodes), so losing this node with its
    /// disk loses nothing acknowledged; while the broker cannot take them, requests are
    /// answered `503 not_replicated`.
    pub acknowledge: Acknowledge,
    /// With `acknowledge = "replicated"`: the longest a request waits for the broker's
    /// confirms before it is answered `503 not_replicated` (its events stay stored here
    /// and are forwarded when the broker takes them).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub replicate_timeout: Duration,
    /// This node's name in the cluster (default: host name and process id).
    pub node: Option<String>,
    /// For `amqps://` brokers: extra CA and a client certificate (mutual TLS).
    pub tls: Option<TlsConfig>,
}

/// When an ingress node acknowledges what a unit sent (`[amqp] acknowledge`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Acknowledge {
    /// On this node's disk (fsync), forwarded after: survives a broker outage.
    #[default]
    Local,
    /// Also confirmed by the broker into its quorum queue: survives losing this node.
    Replicated,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        AmqpConfig {
            urls: vec!["amqp://guest:guest@127.0.0.1:5672/%2f".into()],
            prefix: "lienthong".into(),
            partitions: 16,
            prefetch: 32,
            publish_concurrency: 8,
            publish_batch: 256,
            publish_timeout: Duration::from_secs(5),
            reconnect_delay: Duration::from_secs(1),
            acknowledge: Acknowledge::Local,
            replicate_timeout: Duration::from_secs(10),
            node: None,
            tls: None,
        }
    }
}
