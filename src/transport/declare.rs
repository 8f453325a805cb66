//! Declaring the bus's topology on the broker (every node, at every start, idempotently)
//! and deleting it (tests and benchmarks clean up after themselves).
//!
//! Every queue that holds something is a quorum queue, replicated to the broker's nodes:
//! a classic queue lives on one node, and losing that node stalls whatever needs it (a
//! partition's parked snapshot, a node's dead letters, the retries waiting in a delay
//! queue) until the node comes back. Releases before this one declared the parked, node
//! and replay-guard queues classic (and their delay queues, `<p>.retry.<ms>`, which drain
//! into the partitions by themselves and are no longer used); a broker that has them keeps them (a queue's
//! type cannot change in place) and the node says so at start, with what to do
//! ([`Broker::declare_replicated`]).

use super::broker::{Broker, BrokerError};
use super::{RETRY_DELAYS_MS, Topology};
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

impl Broker {
    /// Declare every exchange and queue the bus uses (idempotent: every node does it at
    /// start).
    pub async fn declare(&self, targets: &[String], node: &str) -> Result<(), BrokerError> {
        let t = &self.topology;
        let ch = self.channel().await?;
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        // This node's own queue first: nothing addressed to it can be published before it
        // exists (this node forwards nothing until the topology is declared).
        self.timed(ch.exchange_declare(
            t.node_exchange().as_str().into(),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        ))
        .await?;
        self.timed(ch.exchange_declare(
            t.notes_exchange().as_str().into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        ))
        .await?;
        let node_queue = t.node_queue(node);
        let mut ch = ch;
        self.declare_replicated(&mut ch, &node_queue, FieldTable::default())
            .await?;
        for (exchange, key) in [(t.node_exchange(), node), (t.notes_exchange(), "")] {
            self.timed(ch.queue_bind(
                node_queue.as_str().into(),
                exchange.as_str().into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            ))
            .await?;
        }
        self.timed(ch.exchange_declare(
            t.deliver_exchange().as_str().into(),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        ))
        .await?;
        self.timed(ch.exchange_declare(
            t.dead_exchange().as_str().into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        ))
        .await?;
        self.timed(ch.exchange_declare(
            t.status_exchange().as_str().into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        ))
        .await?;
        let durable_queue = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let mut quorum = FieldTable::default();
        quorum.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        self.timed(ch.queue_declare(
            t.dead_queue().as_str().into(),
            durable_queue,
            quorum.clone(),
        ))
        .await?;
        self.timed(ch.queue_bind(
            t.dead_queue().as_str().into(),
            t.dead_exchange().as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        ))
        .await?;
        let mut partition_args = quorum.clone();
        partition_args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
        partition_args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(t.dead_exchange().as_str().into()),
        );
        for target in targets {
            for p in 0..t.partitions {
                let q = t.partition_queue(target, p);
                self.timed(ch.queue_declare(
                    q.as_str().into(),
                    durable_queue,
                    partition_args.clone(),
                ))
                .await?;
                self.timed(ch.queue_bind(
                    q.as_str().into(),
                    t.deliver_exchange().as_str().into(),
                    Topology::routing_key(target, p).as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                ))
                .await?;
                let mut keep_newest = FieldTable::default();
                keep_newest.insert("x-max-length".into(), AMQPValue::LongInt(1));
                self.declare_replicated(&mut ch, &t.parked_queue(target, p), keep_newest)
                    .await?;
            }
        }
        super::replay_guard::declare(self, &mut ch).await?;
        super::idempotency::declare(self, &mut ch).await?;
        super::dead_letters::log(self)
            .declare(self, &mut ch)
            .await?;
        super::shared_tally::log(self)
            .declare(self, &mut ch)
            .await?;
        self.declare_delay_queues(&mut ch).await?;
        let _ = self.timed(ch.close(200, "declared".into())).await;
        Ok(())
    }

    /// Declare a durable quorum queue with `args`. One an earlier release declared classic
    /// under the same name is kept (the broker refuses to change a queue's type), and a
    /// warning says it will not survive the loss of its broker node and how to replace it.
    pub(super) async fn declare_replicated(
        &self,
        ch: &mut Channel,
        name: &str,
        mut args: FieldTable,
    ) -> Result<(), BrokerError> {
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        match self
            .timed(ch.queue_declare(name.into(), durable, args))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("PRECONDITION_FAILED") => {
                // The refusal closed the channel; the queue is there, of the old kind.
                *ch = self.channel().await?;
                self.timed(ch.queue_declare(
                    name.into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                ))
                .await?;
                tracing::warn!(
                    queue = name,
                    "queue declared by an earlier release as a classic queue, on one broker node: \
                     it stops with that node. With every lienthong node stopped and the queue \
                     empty, delete it (rabbitmqctl delete_queue) and start the nodes: they \
                     declare it replicated"
                );
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Delay queues: quorum queues with a single active consumer (the cluster's one mover
    /// of each, [`super::delay`]), each behind its own fanout exchange so a message keeps
    /// its partition routing key, with which the mover puts it back when it is due.
    async fn declare_delay_queues(&self, ch: &mut Channel) -> Result<(), BrokerError> {
        let t = &self.topology;
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        for delay in RETRY_DELAYS_MS {
            let name = t.delay_queue(delay);
            self.timed(ch.exchange_declare(
                name.as_str().into(),
                ExchangeKind::Fanout,
                durable,
                FieldTable::default(),
            ))
            .await?;
            let mut args = FieldTable::default();
            args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
            self.declare_replicated(ch, &name, args).await?;
            self.timed(ch.queue_bind(
                name.as_str().into(),
                name.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            ))
            .await?;
        }
        Ok(())
    }

    /// Delete every exchange and queue [`Broker::declare`] made (tests and benchmarks
    /// clean up after themselves; never needed in operation).
    pub async fn delete_topology(
        &self,
        targets: &[String],
        nodes: &[String],
    ) -> Result<(), BrokerError> {
        use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
        let t = &self.topology;
        let ch = self.channel().await?;
        let mut queues = vec![
            t.dead_queue(),
            t.replay_guard_queue(),
            t.replay_stream(),
            t.idempotency_guard_queue(),
            t.idempotency_stream(),
            t.dead_letter_stream(),
            t.kpi_stream(),
        ];
        queues.extend(nodes.iter().map(|n| t.node_queue(n)));
        let mut exchanges = vec![
            t.deliver_exchange(),
            t.dead_exchange(),
            t.status_exchange(),
            t.node_exchange(),
            t.notes_exchange(),
        ];
        for d in RETRY_DELAYS_MS {
            queues.push(t.delay_queue(d));
            exchanges.push(t.delay_queue(d));
        }
        for target in targets {
            for p in 0..t.partitions {
                queues.push(t.partition_queue(target, p));
                queues.push(t.parked_queue(target, p));
            }
        }
        for q in queues {
            self.timed(ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default()))
                .await?;
        }
        for e in exchanges {
            self.timed(ch.exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default()))
                .await?;
        }
        let _ = self.timed(ch.close(200, "deleted".into())).await;
        Ok(())
    }
}
