//! The cluster's KPI tally on the wire: this node's journal of KPI changes published to
//! the stream `<p>.kpi-ops`, and the other nodes' changes taken into this node's tally
//! (the mechanism and its guarantees: [`crate::outbox::tally::shared`]).
//!
//! ```text
//!  outbox journal `s` ─► publisher: a page (≤ 500 changes) as one record, confirmed ─► deleted
//!                                          ▼
//!                          stream <p>.kpi-ops (kept 400 days)
//!                                          ▼ every node, from its saved offset
//!          outbox.take_shared: each origin's changes after its mark (its own skipped)
//! ```

use super::broker::{BodyKind, Broker};
use super::stream_log::{self, StreamLog};
use crate::outbox::Outbox;
use crate::outbox::tally::shared::SharedOps;
use std::sync::Arc;
use std::time::Duration;

/// How long the broker keeps the changes: a node that joins later counts the dossiers of
/// this long (the KPIs' year and its first month).
pub const KEPT: &str = "400D";

/// The most the stream holds; its oldest records go first beyond it.
const MAX_BYTES: i64 = 20_000_000_000;

/// The outbox note holding the offset of the last record this node took in.
const OFFSET_NOTE: &str = "cluster/kpi-ops-offset";

/// Changes published as one record at most.
const PAGE: usize = 500;

/// How long the publisher waits when the journal is empty.
const IDLE: Duration = Duration::from_millis(100);

/// The changes as a stream every node follows.
pub fn log(broker: &Broker) -> StreamLog {
    StreamLog {
        stream: broker.topology.kpi_stream(),
        kept: KEPT,
        max_bytes: MAX_BYTES,
        offset_note: OFFSET_NOTE,
    }
}

/// Start journalling this node's KPI changes now (call it before the node accepts
/// anything); the future shares them and takes the other nodes' for as long as the bus
/// runs.
pub fn start(
    broker: Arc<Broker>,
    outbox: &Outbox,
    topology_ready: tokio::sync::watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let sharing = outbox.share_tally();
    let outbox = outbox.clone();
    async move {
        match sharing.await {
            Ok(origin) => run(broker, outbox, origin, topology_ready).await,
            Err(e) => {
                tracing::error!(error = %e, "cannot share the KPI tally with the cluster: this node's figures stay its own");
            }
        }
    }
}

/// Share this node's KPI changes and take the others' for as long as the bus runs.
/// `origin` is this outbox's ([`Outbox::share_tally`]).
async fn run(
    broker: Arc<Broker>,
    outbox: Outbox,
    origin: String,
    mut topology_ready: tokio::sync::watch::Receiver<bool>,
) {
    if !stream_log::declared(&mut topology_ready).await {
        return;
    }
    tokio::join!(
        publish(&broker, &outbox, &origin),
        take(&broker, &outbox, &origin)
    );
}

/// Publish the journal, oldest first, a page at a time; a page is deleted once confirmed.
async fn publish(broker: &Broker, outbox: &Outbox, origin: &str) {
    let stream = broker.topology.kpi_stream();
    loop {
        let page = match outbox.journal_page(PAGE) {
            Ok(page) => page,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the KPI journal; the other nodes miss this node's figures until it can");
                tokio::time::sleep(broker.settings().reconnect_delay).await;
                continue;
            }
        };
        if page.is_empty() {
            tokio::time::sleep(IDLE).await;
            continue;
        }
        let seqs: Vec<u64> = page.iter().map(|(seq, _)| *seq).collect();
        let shared = SharedOps {
            origin: origin.to_string(),
            ops: page,
        };
        let body = broker.seal(
            BodyKind::Status,
            serde_json::to_vec(&shared).expect("KPI changes serialize"),
        );
        if let Err(e) = broker.publish_confirmed("", &stream, &body).await {
            tracing::warn!(error = %e, "cannot publish this node's KPI changes; trying again");
            tokio::time::sleep(broker.settings().reconnect_delay).await;
            continue;
        }
        if let Err(e) = outbox.journal_published(&seqs).await {
            // Published again later: the other nodes take a change once.
            tracing::warn!(error = %e, "cannot delete published KPI changes from the journal");
            tokio::time::sleep(broker.settings().reconnect_delay).await;
        }
    }
}

/// Take the other nodes' changes in, subscribing again after broker failures.
async fn take(broker: &Broker, outbox: &Outbox, origin: &str) {
    log(broker)
        .follow(broker, outbox, |body| {
            let shared = broker
                .open(BodyKind::Status, &body)
                .and_then(|b| serde_json::from_slice::<SharedOps>(&b).map_err(|e| e.to_string()));
            async move {
                match shared {
                    Ok(shared) if shared.origin == origin => Ok(()),
                    Ok(shared) => outbox.take_shared(shared).await.map_err(|e| e.to_string()),
                    Err(e) => {
                        tracing::warn!(error = %e, "unreadable record in the KPI changes");
                        Ok(())
                    }
                }
            }
        })
        .await;
}
