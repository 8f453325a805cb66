//! The parts [`super::Bus`] is assembled from, each built by one function: the targets'
//! runtimes, the bundled mocks, the cluster transport, the request-signature check and
//! the retention sweeper. Tasks they start join the bus's [`Background`] set.

use super::AppError;
use super::background::Background;
use crate::admin::AdminState;
use crate::config::{Config, Role};
use crate::delivery::TargetRuntime;
use crate::ingress::IngressState;
use crate::ingress::signature::Signatures;
use crate::mappings::MappingSet;
use crate::outbox::{Notes, Outbox, OutboxSettings};
use crate::relay::Relay;
use crate::transport::broker::Broker;
use crate::transport::status::{ClusterNotes, StatusPublisher};
use crate::transport::worker::WorkerContext;
use crate::transport::workers::Workers;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tokio::net::TcpListener;

/// The loud warning of a test network that accepts the published development credentials.
pub fn warn_of_dev_credentials_on_network(config: &Config) {
    if config.server.allow_dev_credentials_on_network && crate::config::network_facing(config) {
        tracing::warn!(
            listen = %config.server.listen,
            "DEVELOPMENT CREDENTIALS ACCEPTED ON A NETWORK LISTENER \
             (server.allow_dev_credentials_on_network): anyone who can reach this address \
             can use the repository's published keys; only for a closed test network"
        );
    }
}

/// The outbox on its store, counting what each accepted event means for the KPIs.
pub fn open_outbox(
    config: &Config,
    store: Arc<dyn crate::outbox::Store>,
    mappings: &Arc<MappingSet>,
    procedures: &Arc<crate::procedures::Catalogue>,
) -> Result<Outbox, AppError> {
    let targets: Vec<String> = config.targets.keys().cloned().collect();
    let outbox =
        Outbox::open(store, OutboxSettings::from(&config.outbox), &targets).map_err(|source| {
            AppError::Outbox {
                dir: config.outbox.data_dir.display().to_string(),
                source,
            }
        })?;
    let targets_of_kind = |kind: crate::config::TargetKind| {
        config
            .targets
            .iter()
            .filter(|(_, t)| t.kind == kind)
            .map(|(n, _)| n.clone())
            .collect::<std::collections::HashSet<String>>()
    };
    outbox.count_with(Arc::new(crate::admin::kpi::KpiFacts {
        mappings: Arc::clone(mappings),
        procedures: Arc::clone(procedures),
        portal_targets: targets_of_kind(crate::config::TargetKind::Portal),
        payment_targets: targets_of_kind(crate::config::TargetKind::Payment),
    }));
    Ok(outbox)
}

/// A runtime per configured target, with the connector its `kind` names. In a cluster,
/// facts a connector notes (payment references) reach every node.
pub fn target_runtimes(
    config: &Config,
    outbox: &Outbox,
    status: Option<&Arc<StatusPublisher>>,
    loaded: &super::startup::Loaded,
) -> Result<Vec<Arc<TargetRuntime>>, AppError> {
    let super::startup::Loaded {
        procedures,
        spans,
        evidence,
        ..
    } = loaded;
    let reject_unknown = config.procedures.unknown == crate::procedures::UnknownProcedure::Reject;
    config
        .targets
        .iter()
        .map(|(name, cfg)| {
            let notes: Arc<dyn Notes> = match status {
                Some(status) => Arc::new(ClusterNotes {
                    local: outbox.clone(),
                    status: Arc::clone(status),
                }),
                None => Arc::new(outbox.clone()),
            };
            TargetRuntime::from_config(name, cfg, notes)
                .map(|r| {
                    r.exporting_spans(Arc::clone(spans))
                        .logging_evidence(Arc::clone(evidence))
                })
                .map(|r| {
                    if reject_unknown && cfg.kind == crate::config::TargetKind::Portal {
                        r.checking_procedures(Arc::clone(procedures))
                    } else {
                        r
                    }
                })
                .inspect(|r| {
                    // A pause an operator set before a restart still holds.
                    let note = crate::delivery::paused_note(name);
                    if matches!(outbox.get_note(&note), Ok(Some(_))) {
                        tracing::warn!(target = %name, "target paused by an operator before the restart; resume it to deliver");
                        // Written again: the note's retention counts from now.
                        let _ = outbox.put_note(&note, b"1");
                        r.pause();
                    }
                })
                .map(Arc::new)
                .map_err(|message| AppError::Target {
                    target: name.clone(),
                    message,
                })
        })
        .collect()
}

/// The bundled mock national services, when `[mocks] enabled`: their address.
/// Unless `[mocks] payment_callback_url` says otherwise, the payment mock confirms to this
/// bus at `bus_addr`, the address its listener is bound to.
pub async fn start_mocks(
    config: &Config,
    bus_addr: SocketAddr,
    background: &mut Background,
) -> Result<Option<SocketAddr>, AppError> {
    if !config.mocks.enabled {
        return Ok(None);
    }
    let l = TcpListener::bind(config.mocks.listen)
        .await
        .map_err(|source| AppError::Listen {
            addr: config.mocks.listen,
            source,
        })?;
    let addr = l.local_addr().map_err(AppError::Serve)?;
    let callback = format!("{}/callbacks/payment", config.server.own_base_url(bus_addr));
    background.spawn(lienthong_mocks::serve(
        l,
        config.mocks.settings(Some(callback)),
    ));
    tracing::info!(%addr, "bundled mock services listening");
    Ok(Some(addr))
}

/// What the cluster transport is started with.
pub struct ClusterInputs {
    pub broker: Arc<Broker>,
    pub status: Arc<StatusPublisher>,
    pub runtimes: Vec<Arc<TargetRuntime>>,
    pub outbox: Outbox,
    pub mappings: Arc<MappingSet>,
    /// Where the forwarders tell requests waiting for the broker's confirms (`[amqp]
    /// acknowledge = "replicated"`; none: nobody waits, nothing is kept).
    pub settlements: Option<Arc<crate::delivery::settlements::Settlements>>,
}

/// The cluster transport: the topology declared (again and again until the broker
/// answers: ingress accepts meanwhile), the status exchange read into this node's figures,
/// the workers when this node delivers, and a relay that forwards the outbox to the broker
/// (every node: an operator's replay goes out that way too).
pub fn start_cluster(
    config: &Config,
    inputs: ClusterInputs,
    background: &mut Background,
) -> (Relay, Option<Workers>) {
    let ClusterInputs {
        broker,
        status,
        runtimes,
        outbox,
        mappings,
        settlements,
    } = inputs;
    let node = crate::transport::node_name(&config.amqp);
    let target_names: Vec<String> = config.targets.keys().cloned().collect();
    let (topology_ready, topology_ready_rx) = tokio::sync::watch::channel(false);
    {
        let broker = Arc::clone(&broker);
        let node = node.clone();
        background.spawn(async move {
            loop {
                match broker.declare(&target_names, &node).await {
                    Ok(()) => {
                        tracing::info!("broker topology declared");
                        let _ = topology_ready.send(true);
                        // Kept open: the workers' receivers see `true` for good.
                        std::future::pending::<()>().await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot declare the broker topology yet");
                        tokio::time::sleep(broker.settings().reconnect_delay).await;
                    }
                }
            }
        });
    }
    let forwarders: Vec<Arc<TargetRuntime>> = config
        .targets
        .iter()
        .map(|(name, cfg)| {
            Arc::new(super::forwarding::forward_runtime(
                Arc::clone(&broker),
                name,
                cfg,
                &node,
                topology_ready_rx.clone(),
                settlements.as_ref(),
            ))
        })
        .collect();
    let by_name: HashMap<String, Arc<TargetRuntime>> = runtimes
        .iter()
        .map(|r| (r.name.clone(), Arc::clone(r)))
        .collect();
    background.spawn(crate::transport::status::consume(
        Arc::clone(&broker),
        node.clone(),
        by_name,
        outbox.clone(),
        topology_ready_rx.clone(),
    ));
    // Every node lists, replays and drops the cluster's dead letters.
    background.spawn(crate::transport::dead_letters::consume(
        Arc::clone(&broker),
        outbox.clone(),
        topology_ready_rx.clone(),
    ));
    // The KPI tally is the cluster's: journalling starts before anything is accepted.
    background.spawn(crate::transport::shared_tally::start(
        Arc::clone(&broker),
        &outbox,
        topology_ready_rx.clone(),
    ));
    outbox.tell_resolutions(Arc::new(
        crate::transport::dead_letters::ClusterResolutions {
            broker: Arc::clone(&broker),
            node: node.clone(),
        },
    ));
    let role = config.role;
    let workers = (role != Role::Ingress).then(|| {
        Workers::start(
            WorkerContext {
                broker: Arc::clone(&broker),
                mappings: Arc::clone(&mappings),
                replies: Arc::new(crate::route::replies::RoutedReplies::new(
                    Arc::new(crate::route::Router::from_config(config)),
                    outbox.clone(),
                )),
                status,
                node: node.clone(),
                topology_ready: topology_ready_rx,
            },
            runtimes,
        )
    });
    tracing::info!(%node, ?role, partitions = config.amqp.partitions, "cluster transport: RabbitMQ");
    (Relay::start(outbox, forwarders, mappings, None), workers)
}

/// Every admin token the bus accepts (token or `sha256:` digest, name, role); several per
/// holder during a rotation.
pub fn admin_tokens(
    config: &Config,
    env: impl Fn(&str) -> Option<String>,
) -> Vec<(String, String, crate::config::AdminRole)> {
    config
        .admin
        .tokens
        .iter()
        .flat_map(|t| {
            t.accepted(&env)
                .into_iter()
                .map(|tok| (tok, t.name.clone(), t.role))
        })
        .collect()
}

/// Each signing unit's secrets (several, comma-separated, during a rotation).
pub fn signing_secrets(
    config: &Config,
    env: impl Fn(&str) -> Option<String>,
) -> BTreeMap<String, Vec<Vec<u8>>> {
    config
        .units
        .iter()
        .filter_map(|(id, u)| {
            let var = u.hmac_secret_env.as_ref()?;
            let value = env(var).or_else(|| u.dev_hmac_secret.clone())?;
            let secrets = crate::config::credential_list(&value)
                .into_iter()
                .map(|s| s.as_bytes().to_vec())
                .collect();
            Some((id.clone(), secrets))
        })
        .collect()
}

/// The check of signed requests. In a cluster its replay window is the cluster's: this
/// node asks the active guard, and offers to be it.
pub fn signatures(
    config: &Config,
    broker: Option<&Arc<Broker>>,
    takes_unit_traffic: bool,
    background: &mut Background,
) -> Arc<Signatures> {
    let secrets = signing_secrets(config, |v| std::env::var(v).ok());
    Arc::new(match broker {
        Some(broker) if takes_unit_traffic && !secrets.is_empty() => {
            background.spawn(crate::transport::replay_guard::serve(
                Arc::clone(broker),
                crate::transport::node_name(&config.amqp),
            ));
            let guard = crate::transport::replay_guard::ReplayGuard::new(Arc::clone(broker));
            Signatures::clustered(secrets, Arc::new(guard))
        }
        _ => Signatures::new(secrets),
    })
}

/// In a cluster, the idempotency keys of the ingress nodes are the cluster's: this node
/// claims keys from the active guard, and offers to be it.
pub fn cluster_keys(
    config: &Config,
    broker: Option<&Arc<Broker>>,
    takes_unit_traffic: bool,
    checked_locally: Arc<std::sync::atomic::AtomicU64>,
    background: &mut Background,
) -> Option<crate::ingress::cluster_keys::ClusterKeys> {
    let broker = broker.filter(|_| takes_unit_traffic)?;
    let window = config.outbox.idempotency_ttl;
    background.spawn(crate::transport::idempotency::serve(
        Arc::clone(broker),
        crate::transport::node_name(&config.amqp),
        window,
    ));
    let guard = crate::transport::idempotency::IdempotencyGuard::new(Arc::clone(broker), window);
    let replicated = config.amqp.acknowledge == crate::config::Acknowledge::Replicated;
    // Long enough to store and, when replicated, to wait for the broker's confirms.
    let hold = (config.amqp.replicate_timeout + std::time::Duration::from_secs(20))
        .max(std::time::Duration::from_secs(30));
    Some(crate::ingress::cluster_keys::ClusterKeys::new(
        Arc::new(guard),
        hold,
        replicated,
        checked_locally,
    ))
}

/// What the admin API and dashboard are given.
pub struct AdminInputs {
    pub broker: Option<Arc<Broker>>,
    pub outbox: Outbox,
    pub targets: Vec<Arc<TargetRuntime>>,
    pub mappings: Arc<MappingSet>,
    pub procedures: Arc<crate::procedures::Catalogue>,
    pub callbacks: Arc<crate::connector::payment::CallbackGuard>,
    pub audit: Arc<crate::audit::AuditLog>,
    /// The data directory's durable-write time, measured at start.
    pub disk_speed: Option<crate::outbox::disk_speed::DiskSpeed>,
    pub evidence: Arc<crate::evidence::MessageLog>,
}

/// What the reconciliation of payments works with.
pub struct ReconcileInputs {
    pub outbox: Outbox,
    pub notes: Arc<dyn Notes>,
    pub router: Arc<crate::route::Router>,
    /// In a cluster: rounds run only on the node holding the lock `payment-reconciler`.
    pub broker: Option<Arc<crate::transport::broker::Broker>>,
}

/// The reconciliation of open payments (`QUERY`, `GET_BILL`) for each payment target, in
/// the background ([`crate::route::payments`]).
pub fn start_reconciliation(
    config: &Config,
    inputs: ReconcileInputs,
    background: &mut Background,
) -> Result<(), AppError> {
    use crate::route::payments::{ReconcileStores, Reconciler};
    for (name, target) in &config.targets {
        let Some(payment) = &target.payment else {
            continue;
        };
        let reconciler = payment
            .credentials(|v| std::env::var(v).ok())
            .and_then(|creds| {
                Reconciler::new(
                    &target.url,
                    target.timeout,
                    creds,
                    ReconcileStores {
                        outbox: inputs.outbox.clone(),
                        notes: Arc::clone(&inputs.notes),
                        router: Arc::clone(&inputs.router),
                    },
                    payment.reconcile(),
                    target.tls.as_ref(),
                )
            })
            .map_err(|message| AppError::Target {
                target: name.clone(),
                message,
            })?;
        let reconciler = match &inputs.broker {
            Some(broker) => reconciler.holding(crate::transport::leader::ClusterLock::new(
                Arc::clone(broker),
                &format!("payment-reconciler.{name}"),
            )),
            None => reconciler,
        };
        background.spawn(reconciler.run());
    }
    Ok(())
}

/// The admin API's and dashboard's state: tokens, sessions, figures.
pub fn admin_state(config: &Config, inputs: AdminInputs) -> Arc<AdminState> {
    Arc::new(AdminState {
        broker: inputs.broker,
        outbox: inputs.outbox,
        disk_speed: inputs.disk_speed,
        accepting: AtomicBool::new(true),
        targets: inputs.targets,
        units: config.units.keys().cloned().collect(),
        portal_targets: super::ingress_parts::portal_targets(config),
        payment_targets: config
            .targets
            .iter()
            .filter(|(_, t)| t.kind == crate::config::TargetKind::Payment)
            .map(|(n, _)| n.clone())
            .collect(),
        mappings: inputs.mappings,
        kpis: crate::admin::kpi::KpiBoard::default(),
        procedures: inputs.procedures,
        history: Default::default(),
        callbacks: inputs.callbacks,
        keys_checked_locally: Default::default(),
        lookups: Arc::new(crate::web::lookup_usage::LookupUsage::new(
            config.lookups.purpose.exceptions.clone(),
        )),
        tokens: crate::admin::auth::AdminTokens::new(
            admin_tokens(config, |v| std::env::var(v).ok()),
            Some(Arc::clone(&inputs.audit)),
        ),
        sessions: crate::admin::session::Sessions::new(
            config.admin.session_idle,
            config.admin.session_max,
        ),
        secure_cookies: config.server.tls.is_some() || config.server.behind_tls_proxy,
        audit: inputs.audit,
        evidence_dir: inputs.evidence.enabled().then(|| config.evidence_dir()),
        evidence: inputs.evidence,
        routes: config
            .routes
            .iter()
            .map(|r| crate::admin::RouteLine {
                unit: r.unit.clone(),
                flow: r.flow.clone(),
                targets: r
                    .targets
                    .iter()
                    .map(|t| (t.clone(), r.mappings.get(t).cloned().unwrap_or_default()))
                    .collect(),
            })
            .collect(),
    })
}

/// What stops, in order, once the listener has closed: the workers hand back what they
/// hold, every background task ends, the relay drains in-flight deliveries within the
/// grace period, and the outbox flushes.
pub struct Stopping {
    pub workers: Option<Workers>,
    /// Sent out last, with the spans of the final deliveries.
    pub spans: Arc<crate::otlp::Spans>,
    /// Sealed and synced after the last deliveries.
    pub evidence: Arc<crate::evidence::MessageLog>,
    pub background: Background,
    pub relay: Relay,
    pub outbox: Outbox,
    pub grace: std::time::Duration,
}

impl Stopping {
    pub async fn run(self) -> Result<(), AppError> {
        tracing::info!("ingress closed; draining in-flight deliveries");
        if let Some(w) = self.workers {
            w.stop().await;
        }
        // Periodic tasks, consumers, watchers and the bundled mocks, all at once.
        self.background.shutdown().await;
        self.outbox.close();
        let abandoned = self.relay.drain(self.grace).await;
        if abandoned > 0 {
            tracing::warn!(
                abandoned,
                "deliveries still in flight after the grace period stay pending"
            );
        }
        self.outbox
            .shutdown()
            .await
            .map_err(|e| AppError::Flush(e.to_string()))?;
        let evidence = self.evidence;
        let _ = tokio::task::spawn_blocking(move || evidence.seal_now()).await;
        let spans = self.spans;
        if spans.enabled() {
            let _ = tokio::task::spawn_blocking(move || spans.shutdown()).await;
        }
        tracing::info!("outbox flushed; stopped");
        Ok(())
    }
}

/// Every HTTP endpoint this node serves, behind the body limits. A worker node takes no
/// unit traffic (`unit_facing` is `None`): only its admin and health endpoints listen.
pub fn router(
    config: &Config,
    admin_state: &Arc<AdminState>,
    unit_facing: Option<(
        Arc<IngressState>,
        crate::lookup::LookupState,
        Arc<Signatures>,
    )>,
) -> axum::Router {
    // Routes with a larger body limit (documents), for units whose key checks out.
    let larger = unit_facing.as_ref().map(|(ingress, _, _)| {
        Arc::new(crate::server::LargerBodies {
            keys: Arc::clone(&ingress.keys),
            router: Arc::clone(&ingress.router),
            soap_operations: ingress.soap_operations.clone(),
        })
    });
    let app = match unit_facing {
        None => {
            crate::admin::routes(Arc::clone(admin_state)).merge(crate::admin::api::openapi_routes())
        }
        Some((ingress_state, lookups, signatures)) => {
            // The API documents describe the unit-facing API too, from the same routes
            // and mappings the ingress runs.
            let contract = Arc::new(crate::contract::ContractSource {
                config: config.clone(),
                router: Arc::clone(&ingress_state.router),
                mappings: Arc::clone(&ingress_state.mappings),
                admin_document: crate::admin::api::openapi(),
            });
            crate::ingress::routes(ingress_state)
                .merge(crate::lookup::routes(Arc::new(lookups)))
                .route_layer(axum::middleware::from_fn_with_state(
                    signatures,
                    crate::ingress::signature::verify,
                ))
                .merge(crate::admin::routes(Arc::clone(admin_state)))
                .merge(crate::contract::routes(contract))
        }
    };
    // On the routes only: a request to no endpoint is answered 404 without its body read.
    app.route_layer(axum::middleware::from_fn_with_state(
        crate::server::BodyLimits {
            max_bytes: config.server.max_body_bytes,
            read_timeout: config.server.body_read_timeout,
            larger,
            in_flight: crate::server::BodyLimits::in_flight_budget(
                config.server.max_body_bytes_in_flight,
            ),
        },
        crate::server::buffer_body,
    ))
}

/// Retention and idempotency expiry, every `every`.
pub async fn sweep_periodically(outbox: Outbox, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        match outbox.sweep(crate::time::now_ms()).await {
            Ok(r) if r.messages_removed + r.idempotency_keys_removed + r.notes_removed > 0 => {
                tracing::info!(
                    messages = r.messages_removed,
                    idempotency_keys = r.idempotency_keys_removed,
                    notes = r.notes_removed,
                    "retention sweep"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "retention sweep failed"),
        }
    }
}
