//! This node's partition consumers and delay-queue movers, started and stopped together
//! (`Workers`); each partition is worked by a [`PartitionConsumer`] (`worker.rs`), which
//! subscribes again after `reconnect_delay` whenever the broker fails it.

use super::RETRY_DELAYS_MS;
use super::status::StatusPublisher;
use super::worker::{PartitionConsumer, WorkerContext};
use crate::delivery::TargetRuntime;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The running partition consumers of this node.
pub struct Workers {
    tasks: JoinSet<()>,
    stop: watch::Sender<bool>,
    status: Arc<StatusPublisher>,
}

impl Workers {
    /// Subscribe to every partition of every target. Subscriptions are made in a shuffled
    /// order, a few milliseconds apart, so that workers starting together share the
    /// partitions; a worker that comes later stands by and takes over a partition whose
    /// consumer goes away.
    pub fn start(ctx: WorkerContext, targets: Vec<Arc<TargetRuntime>>) -> Workers {
        let (stop, stop_rx) = watch::channel(false);
        let mut jobs: Vec<(Arc<TargetRuntime>, u16)> = targets
            .iter()
            .flat_map(|t| (0..ctx.broker.topology.partitions).map(move |p| (Arc::clone(t), p)))
            .collect();
        // Fisher-Yates with the thread RNG.
        for i in (1..jobs.len()).rev() {
            let j = rand::random_range(0..=i);
            jobs.swap(i, j);
        }
        let mut tasks = JoinSet::new();
        // The delay queues' movers (one active in the cluster for each delay).
        for delay_ms in RETRY_DELAYS_MS {
            let broker = Arc::clone(&ctx.broker);
            let node = ctx.node.clone();
            let mut ready = ctx.topology_ready.clone();
            let mut stop_rx = stop_rx.clone();
            tasks.spawn(async move {
                tokio::select! {
                    r = ready.wait_for(|declared| *declared) => if r.is_err() { return },
                    _ = stop_rx.changed() => return,
                }
                super::delay::serve(broker, node, delay_ms, stop_rx).await;
            });
        }
        for (i, (target, partition)) in jobs.into_iter().enumerate() {
            let ctx = ctx.clone();
            let mut stop_rx = stop_rx.clone();
            tasks.spawn(async move {
                let mut ready = ctx.topology_ready.clone();
                tokio::select! {
                    r = ready.wait_for(|declared| *declared) => if r.is_err() { return },
                    _ = stop_rx.changed() => return,
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(5 * i as u64)) => {}
                    _ = stop_rx.changed() => return,
                }
                partition_loop(ctx, target, partition, stop_rx).await;
            });
        }
        Workers {
            tasks,
            stop,
            status: Arc::clone(&ctx.status),
        }
    }

    /// Stop consuming; unacknowledged deliveries go back to their queues.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
        // The outcomes gathered for the next status message go out now.
        self.status.flush().await;
    }
}

async fn partition_loop(
    ctx: WorkerContext,
    target: Arc<TargetRuntime>,
    partition: u16,
    mut stop: watch::Receiver<bool>,
) {
    // Kept across reconnections: a key parked before a broker outage stays parked after
    // it, so its later events still wait behind the one being retried.
    let mut consumer = PartitionConsumer::new(ctx.clone(), Arc::clone(&target), partition);
    loop {
        if *stop.borrow() {
            return;
        }
        match consumer.run(&mut stop).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(target_system = %target.name, partition, error = %e, "partition consumer stopped; subscribing again");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(ctx.broker.settings().reconnect_delay) => {}
            _ = stop.changed() => return,
        }
    }
}
