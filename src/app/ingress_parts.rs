//! The unit-facing endpoints' state ([`IngressState`], the lookups'), built from the config
//! and the parts the bus has already assembled.

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
    /// The message log stored events go to.
    pub evidence: &'a Arc<crate::evidence::MessageLog>,
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
        evidence,
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
        evidence: Arc::clone(evidence),
    })
}

/// The lookups' state: each platform's client, credential and limits.
/// The mappings, audit trail, outbox (the purpose check's dossiers) and lookup figures
/// are the admin's.
pub fn lookups(
    config: &Config,
    unit_keys: &Arc<UnitKeys>,
    admin: &crate::admin::AdminState,
    spans: &Arc<crate::otlp::Spans>,
    notes: Arc<dyn Notes>,
) -> Result<crate::lookup::LookupState, super::AppError> {
    let units: Vec<String> = config.units.keys().cloned().collect();
    let (mappings, audit) = (Arc::clone(&admin.mappings), Arc::clone(&admin.audit));
    let outbox = Some(admin.outbox.clone());
    crate::lookup::LookupState::new(
        &config.lookups,
        &units,
        Arc::clone(unit_keys),
        mappings,
        audit,
        outbox,
        Arc::clone(&admin.lookups),
    )
    .map(|mut state| {
        state.spans = Arc::clone(spans);
        state.consulted = Some(notes);
        state
    })
    .map_err(|message| super::AppError::Target {
        target: "lookups".into(),
        message,
    })
}
