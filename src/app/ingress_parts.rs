//! The unit-facing endpoints' state ([`IngressState`]), built from the config and the
//! parts the bus has already assembled.

use crate::config::Config;
use crate::delivery::TargetRuntime;
use crate::ingress::IngressState;
use crate::mappings::MappingSet;
use crate::outbox::{Notes, Outbox};
use crate::web::UnitKeys;
use std::sync::Arc;

/// The targets of kind `portal` (for a dossier's `portal_synced`).
pub(super) fn portal_targets(config: &Config) -> Vec<String> {
    config
        .targets
        .iter()
        .filter(|(_, t)| t.kind == crate::config::TargetKind::Portal)
        .map(|(n, _)| n.clone())
        .collect()
}

/// What the unit-facing endpoints are built from, besides the config.
pub struct IngressInputs<'a> {
    pub unit_keys: &'a Arc<UnitKeys>,
    pub mappings: &'a Arc<MappingSet>,
    pub outbox: &'a Outbox,
    pub notes: Arc<dyn Notes>,
    pub callbacks: Arc<crate::connector::payment::CallbackGuard>,
    pub spans: &'a Arc<crate::otlp::Spans>,
    /// The targets' runtimes: those that deliver here take the door's bodies.
    pub targets: &'a [Arc<TargetRuntime>],
    /// `[amqp] acknowledge = "replicated"`: answer once the broker confirmed.
    pub replication: Option<crate::ingress::Replication>,
    /// In a cluster: the cluster's memory of idempotency keys.
    pub cluster_keys: Option<crate::ingress::cluster_keys::ClusterKeys>,
}

/// The unit-facing endpoints' state: keys, routes, mappings, limits.
pub fn ingress_state(config: &Config, inputs: IngressInputs<'_>) -> Arc<IngressState> {
    let IngressInputs {
        unit_keys,
        mappings,
        outbox,
        notes,
        callbacks,
        spans,
        targets,
        replication,
        cluster_keys,
    } = inputs;
    Arc::new(IngressState {
        keys: Arc::clone(unit_keys),
        router: Arc::new(crate::route::Router::from_config(config)),
        mappings: Arc::clone(mappings),
        soap_operations: config
            .units
            .iter()
            .map(|(u, c)| (u.clone(), c.soap_operations.clone()))
            .collect(),
        payment: config
            .targets
            .values()
            .find_map(|t| t.payment.as_ref())
            .and_then(|p| p.credentials(|v| std::env::var(v).ok()).ok()),
        outbox: outbox.clone(),
        notes,
        portal_targets: portal_targets(config),
        max_body_bytes: config.server.max_body_bytes,
        max_batch: config.server.max_batch,
        callbacks,
        spans: Arc::clone(spans),
        delivering: targets
            .iter()
            .filter(|t| t.mode == crate::delivery::DeliveryMode::Direct)
            .map(|t| (t.name.clone(), Arc::clone(t)))
            .collect(),
        replication,
        cluster_keys,
    })
}
