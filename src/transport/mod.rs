//! Scale-out over RabbitMQ (`transport = "amqp"`): several processes on several machines
//! share the deliveries, coordinated by the broker.
//!
//! # Design
//!
//! ```text
//!  unit ─► ingress node: outbox (redb, fsync before 202) ─► forwarder ─► exchange <p>.deliver
//!                                                                          │ routing key <target>.<partition>
//!          worker nodes: one consumer per partition queue ◄────────────────┘
//!                        render mapping ─► connector ─► ack
//!                        retry: <p>.delay.<ms> (moved back when due)      dead: <p>.dead, <p>.dead-letters
//!          every node:   outcomes ─► exchange <p>.status ─► each node's status view
//! ```
//!
//! **Ingress keeps its guarantee.** An event is acknowledged to the unit only once it is in
//! the local outbox, exactly as in embedded mode. The relay then "delivers" each (message,
//! target) to the broker through [`forward_connector::ForwardConnector`]: a persistent, mandatory
//! publish whose confirm is awaited (with a timeout); only a confirmed publish finishes the
//! outbox delivery. While the broker is unreachable the deliveries stay pending in the
//! outbox (up to its cap) and go out when it returns: the relay's retry, backoff and per-key
//! order apply unchanged, so a dossier's events are published in order.
//!
//! **Order across nodes.** Each target has `partitions` quorum queues; a message goes to
//! partition hash(unit, key) mod N, and every partition queue has single-active-consumer, so
//! one node at a time consumes it, in order, whatever the number of nodes. A worker that
//! dies leaves its unacknowledged deliveries to the next consumer, which gets them first.
//! A worker that stops (or whose consumer fails) leaves the same way: it closes the
//! consumer's channel, never cancels the consumer alone, because a quorum queue keeps a
//! cancelled consumer's unacknowledged deliveries checked out to it while the next
//! consumer already receives the dossiers' later events (see `worker.rs`).
//!
//! **Retries without holding the partition.** A delivery that fails is acknowledged and
//! published to a delay queue (`<p>.delay.<ms>`, one per delay so it stays first-in
//! first-out); the delay queue's mover ([`delay`], one active in the cluster) puts it back
//! on its partition, confirmed, when it is due. For routes that order per key,
//! the key is parked on the worker: later events of the same dossier follow it into the same
//! delay queue, behind it, so they come back after it; other dossiers go on at once. The
//! parked set is saved, confirmed, to `<p>.<target>.<n>.parked` (a queue that keeps only
//! its newest message) before the delivery that changed it is acknowledged, so the worker
//! that takes a partition over after a crash starts from it.
//!
//! **Sealed bodies.** With `[outbox.encryption]`, every body a node publishes (wire
//! messages, status, dead letters, notes) is sealed with the outbox's keyring
//! ([`broker::Broker::seal`]); every node needs the same keys. Bodies in clear are still
//! read, so nodes can be switched to sealing one at a time.
//!
//! **Dead letters** go to `<p>.dead` (a quorum queue kept for audit) and to the stream
//! `<p>.dead-letters`, which every node reads into its outbox ([`dead_letters`]): any
//! node's admin API and dashboard list them, a replay on any node sends the message through
//! the broker again, and a replay or drop is appended to the stream so the other nodes stop
//! listing it. Facts every node needs (which unit a payment
//! reference belongs to: the worker sent the `Init`, an ingress node takes the `Confirm`;
//! which payments are open, paid or settled, for the reconciler) go to every node's
//! durable queue through `<p>.notes`. Periodic work done once per cluster (the payment
//! reconciliation) runs on the node holding its lock ([`leader`]). Figures (delivered, failed) go to
//! `<p>.status`, a fanout every node reads into its own counters; the deliveries a worker
//! delivered also go, persistent, to the durable queue of the node that accepted them, which
//! records them delivered even when it was down at the time.
//!
//! **KPIs are the cluster's.** Each node journals the changes its writer makes to the KPI
//! tally (an event counted, a sync delivery finished, a fee paid) in the same batch, and
//! publishes them, confirmed, to the stream `<p>.kpi-ops`; every node applies the other
//! nodes' changes to its own tally ([`shared_tally`]), so `/api/v1/kpis` gives the same
//! figures on every node, and a node that joins later reads the stream from its start.
//!
//! **Signed requests once per cluster.** The memory of accepted HMAC signatures is the
//! cluster's, not a node's: every ingress node asks one active guard (see
//! [`replay_guard`]), so a captured signed request sent to another node is still a replay.
//!
//! **Recovery.** Connections are opened on demand and replaced when they fail; consumers
//! re-subscribe after `reconnect_delay`; every publish and confirm wait has
//! `publish_timeout`.

pub mod broker;
/// The `[amqp]` section, as the config reads it.
pub use crate::config::amqp as config;
pub mod dead_letters;
mod declare;
pub mod delay;
pub mod forward;
pub mod forward_connector;
pub mod guard;
pub mod idempotency;
pub mod leader;
mod parked;
pub mod replay_guard;
pub mod shared_tally;
pub mod status;
mod stream_log;
pub mod wire;
pub mod worker;
pub mod workers;

use config::AmqpConfig;

/// Names of everything the bus declares, from the configured prefix.
#[derive(Clone, Debug)]
pub struct Topology {
    pub prefix: String,
    pub partitions: u16,
}

/// Delay queues, shortest first: a retry waits in the first one at least as long as the
/// retry policy asks (the last one for anything longer).
pub const RETRY_DELAYS_MS: [u64; 5] = [1_000, 5_000, 30_000, 300_000, 1_800_000];

impl Topology {
    pub fn new(cfg: &AmqpConfig) -> Topology {
        Topology {
            prefix: cfg.prefix.clone(),
            partitions: cfg.partitions.max(1),
        }
    }

    pub fn deliver_exchange(&self) -> String {
        format!("{}.deliver", self.prefix)
    }

    pub fn dead_exchange(&self) -> String {
        format!("{}.dead", self.prefix)
    }

    pub fn dead_queue(&self) -> String {
        format!("{}.dead", self.prefix)
    }

    /// The cluster's dead letters and their resolutions, read by every node
    /// ([`dead_letters`]).
    pub fn dead_letter_stream(&self) -> String {
        format!("{}.dead-letters", self.prefix)
    }

    /// The KPI tally's changes, read by every node ([`shared_tally`]).
    pub fn kpi_stream(&self) -> String {
        format!("{}.kpi-ops", self.prefix)
    }

    pub fn status_exchange(&self) -> String {
        format!("{}.status", self.prefix)
    }

    /// Messages for one node (routing key: the node's name): dead letters of the events
    /// it accepted.
    pub fn node_exchange(&self) -> String {
        format!("{}.node", self.prefix)
    }

    /// Facts for every node (fanout): payment references.
    pub fn notes_exchange(&self) -> String {
        format!("{}.notes", self.prefix)
    }

    /// A node's durable queue: what is addressed to it, and the notes; kept while it is
    /// down, so nothing addressed to it is lost.
    pub fn node_queue(&self, node: &str) -> String {
        format!("{}.node.{node}", self.prefix)
    }

    /// Asks to the cluster's replay guard (single active consumer).
    pub fn replay_guard_queue(&self) -> String {
        format!("{}.replay-guard", self.prefix)
    }

    /// The stream of signatures the replay guard accepted (its memory across takeovers).
    pub fn replay_stream(&self) -> String {
        format!("{}.replay-seen", self.prefix)
    }

    /// Asks to the cluster's idempotency guard (single active consumer).
    pub fn idempotency_guard_queue(&self) -> String {
        format!("{}.idempotency-guard", self.prefix)
    }

    /// The stream of the idempotency guard's decisions (its memory across takeovers).
    pub fn idempotency_stream(&self) -> String {
        format!("{}.idempotency-seen", self.prefix)
    }

    /// The delay queue, and the fanout exchange in front of it, for one delay (moved back
    /// to the partitions by [`delay`]). Releases before it named them `<p>.retry.<ms>` and
    /// let the broker's TTL and dead-lettering move them.
    pub fn delay_queue(&self, delay_ms: u64) -> String {
        format!("{}.delay.{delay_ms}", self.prefix)
    }

    pub fn partition_queue(&self, target: &str, partition: u16) -> String {
        format!("{}.{target}.{partition}", self.prefix)
    }

    /// The partition's parked dossiers, as one snapshot message (the queue keeps only the
    /// newest): the worker that takes the partition over knows which dossiers wait.
    pub fn parked_queue(&self, target: &str, partition: u16) -> String {
        format!("{}.{target}.{partition}.parked", self.prefix)
    }

    pub fn routing_key(target: &str, partition: u16) -> String {
        format!("{target}.{partition}")
    }

    /// The partition of a message: by (unit, key) so a dossier always lands in the same
    /// queue; messages without a key spread by id.
    pub fn partition_of(
        &self,
        unit: &str,
        key: Option<&str>,
        id: &crate::envelope::MessageId,
    ) -> u16 {
        // The legacy FNV hash on purpose: sharing a partition is harmless (workers order
        // by the collision-resistant hash within it), and keeping the assignment every
        // release made means nodes of two versions, and events already queued, agree on
        // where a dossier's events go during a rolling upgrade.
        let h = match key {
            Some(k) => crate::outbox::key_hash::legacy_key_hash(unit, k),
            None => crate::outbox::key_hash::legacy_key_hash(unit, &id.to_string()),
        };
        (h % self.partitions as u64) as u16
    }

    /// The delay queue for a wanted delay.
    pub fn retry_delay_for(wanted_ms: u64) -> u64 {
        RETRY_DELAYS_MS
            .iter()
            .copied()
            .find(|d| *d >= wanted_ms)
            .unwrap_or(RETRY_DELAYS_MS[RETRY_DELAYS_MS.len() - 1])
    }
}

/// This node's name in the cluster: `[amqp] node`, else the host name. It names the
/// node's durable queue, so it must stay the same across restarts and differ between nodes
/// (set `node` when several run on one host).
pub fn node_name(cfg: &AmqpConfig) -> String {
    cfg.node.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "node".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dossier_always_lands_in_the_same_partition() {
        let t = Topology::new(&AmqpConfig::default());
        let id = crate::envelope::MessageId(uuid::Uuid::now_v7());
        let other = crate::envelope::MessageId(uuid::Uuid::now_v7());
        let p = t.partition_of("nafosted", Some("HS-1"), &id);
        assert_eq!(p, t.partition_of("nafosted", Some("HS-1"), &other));
        assert!(p < t.partitions);
        // Keys spread over the partitions.
        let used: std::collections::HashSet<u16> = (0..200)
            .map(|i| t.partition_of("nafosted", Some(&format!("HS-{i}")), &id))
            .collect();
        assert!(used.len() > t.partitions as usize / 2, "{used:?}");
    }

    #[test]
    fn retries_wait_in_the_first_long_enough_delay_queue() {
        assert_eq!(Topology::retry_delay_for(10), 1_000);
        assert_eq!(Topology::retry_delay_for(4_000), 5_000);
        assert_eq!(Topology::retry_delay_for(86_400_000), 1_800_000);
    }
}
