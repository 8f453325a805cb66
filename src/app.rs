//! Wiring for `lienthong run`: opens the outbox, starts the relay, the sweeper, the bundled
//! mocks when enabled, and the HTTP listener; on shutdown drains in the reverse order.

use crate::admin::{self, AdminState};
use crate::config::Config;
use crate::ingress::{self, IngressState, UnitKeys};
use crate::mappings::MappingSet;
use crate::outbox::{Outbox, OutboxSettings, RedbStore, Store};
use crate::route::Router;
use crate::{delivery::TargetRuntime, relay::Relay};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot open the outbox in {dir}: {source}")]
    Outbox {
        dir: String,
        source: crate::outbox::StoreError,
    },
    #[error("target `{target}`: {message}")]
    Target { target: String, message: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("shutdown could not flush the outbox: {0}")]
    Flush(String),
    #[error("{0}")]
    Audit(crate::audit::AuditError),
    #[error("listener TLS: {0}")]
    Tls(String),
    #[error("outbox encryption: {0}")]
    Encryption(crate::outbox::encryption::KeyringError),
    #[error("{} mapping problem(s):\n{}", .0.len(), .0.join("\n"))]
    Mappings(Vec<String>),
}

/// A running bus. Dropping it does not stop it; call [`Bus::shutdown`].
pub struct Bus {
    pub addr: SocketAddr,
    pub mocks_addr: Option<SocketAddr>,
    pub outbox: Outbox,
    /// The mappings in use (reloaded on SIGHUP and on file change).
    pub mappings: Arc<MappingSet>,
    /// The audit trail (lookups, dead-letter operations, refused admin tokens).
    pub audit: Arc<crate::audit::AuditLog>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), AppError>>,
}

impl Bus {
    /// Start on an already-bound listener (tests bind port 0).
    pub async fn start(
        config: Config,
        unit_keys: BTreeMap<String, String>,
        listener: TcpListener,
    ) -> Result<Bus, AppError> {
        let store =
            RedbStore::open(&config.outbox.data_dir, config.outbox.cache_mb).map_err(|source| {
                AppError::Outbox {
                    dir: config.outbox.data_dir.display().to_string(),
                    source,
                }
            })?;
        let keyring = crate::outbox::encryption::load_keyring(&config, |v| std::env::var(v).ok())
            .map_err(AppError::Encryption)?
            .map(Arc::new);
        let store = crate::outbox::encryption::wrap(Arc::new(store), keyring.clone())
            .map_err(AppError::Encryption)?;
        // After the outbox: its directory is created owner-only first.
        Self::start_sealed(config, unit_keys, listener, store, keyring).await
    }

    /// Start on a store of the caller's (tests: a store that fails on demand).
    pub async fn start_with_store(
        config: Config,
        unit_keys: BTreeMap<String, String>,
        listener: TcpListener,
        store: Arc<dyn Store>,
    ) -> Result<Bus, AppError> {
        Self::start_sealed(config, unit_keys, listener, store, None).await
    }

    /// `keyring`: the outbox's keys, which also seal what this node puts on the broker.
    async fn start_sealed(
        config: Config,
        unit_keys: BTreeMap<String, String>,
        listener: TcpListener,
        store: Arc<dyn Store>,
        keyring: Option<Arc<crate::outbox::encryption::Keyring>>,
    ) -> Result<Bus, AppError> {
        let started = std::time::Instant::now();
        if config.server.allow_dev_credentials_on_network
            && !config.server.listen.ip().is_loopback()
        {
            tracing::warn!(
                listen = %config.server.listen,
                "DEVELOPMENT CREDENTIALS ACCEPTED ON A NETWORK LISTENER \
                 (server.allow_dev_credentials_on_network): anyone who can reach this address \
                 can use the repository's published keys; only for a closed test network"
            );
        }
        let audit =
            Arc::new(crate::audit::AuditLog::open(&config.audit_path()).map_err(AppError::Audit)?);
        // Mappings first: a broken mapping stops the start before anything listens.
        let mappings = Arc::new(MappingSet::load(&config).map_err(AppError::Mappings)?);
        let hangup = crate::mappings::hangup_signal();
        let targets: Vec<String> = config.targets.keys().cloned().collect();
        let outbox = Outbox::open(store, OutboxSettings::from(&config.outbox), &targets).map_err(
            |source| AppError::Outbox {
                dir: config.outbox.data_dir.display().to_string(),
                source,
            },
        )?;
        let targets_of_kind = |kind: crate::config::TargetKind| {
            config
                .targets
                .iter()
                .filter(|(_, t)| t.kind == kind)
                .map(|(n, _)| n.clone())
                .collect::<std::collections::HashSet<String>>()
        };
        outbox.count_with(Arc::new(crate::admin::kpi::KpiFacts {
            mappings: Arc::clone(&mappings),
            portal_targets: targets_of_kind(crate::config::TargetKind::Portal),
            payment_targets: targets_of_kind(crate::config::TargetKind::Payment),
        }));
        let amqp = config.transport == crate::config::Transport::Amqp;
        let role = config.role;
        let broker = amqp.then(|| {
            Arc::new(crate::transport::broker::Broker::new(&config.amqp).sealed_with(keyring))
        });
        let status_publisher = broker.as_ref().map(|b| {
            Arc::new(crate::transport::status::StatusPublisher::new(Arc::clone(
                b,
            )))
        });
        let mut runtimes = Vec::new();
        for (name, cfg) in &config.targets {
            // In a cluster, facts a connector notes (payment references) reach every node.
            let notes: Arc<dyn crate::outbox::Notes> = match &status_publisher {
                Some(status) => Arc::new(crate::transport::status::ClusterNotes {
                    local: outbox.clone(),
                    status: Arc::clone(status),
                }),
                None => Arc::new(outbox.clone()),
            };
            let rt = TargetRuntime::from_config(name, cfg, notes).map_err(|message| {
                AppError::Target {
                    target: name.clone(),
                    message,
                }
            })?;
            runtimes.push(Arc::new(rt));
        }
        let mocks_addr = if config.mocks.enabled {
            let l = TcpListener::bind(config.mocks.listen)
                .await
                .map_err(|source| AppError::Listen {
                    addr: config.mocks.listen,
                    source,
                })?;
            let addr = l.local_addr().map_err(AppError::Serve)?;
            tokio::spawn(lienthong_mocks::serve(l, config.mocks.settings()));
            tracing::info!(%addr, "bundled mock services listening");
            Some(addr)
        } else {
            None
        };
        let admin_targets = runtimes.clone();
        // With a broker, the outbox drains into RabbitMQ (every node: an operator's replay
        // goes out that way too) and the workers deliver; the status exchange feeds every
        // node's figures.
        let mut cluster = None;
        let admin_broker = broker.clone();
        let guard_broker = broker.clone();
        let relay = if let (Some(broker), Some(status_publisher)) = (broker, status_publisher) {
            let node = crate::transport::node_name(&config.amqp);
            let target_names: Vec<String> = config.targets.keys().cloned().collect();
            let (topology_ready, topology_ready_rx) = tokio::sync::watch::channel(false);
            let declared = {
                let broker = Arc::clone(&broker);
                let names = target_names.clone();
                let node = node.clone();
                tokio::spawn(async move {
                    // Ingress accepts even while the broker is away; the topology comes
                    // with the first connection.
                    loop {
                        match broker.declare(&names, &node).await {
                            Ok(()) => {
                                tracing::info!("broker topology declared");
                                let _ = topology_ready.send(true);
                                // Kept open: the workers' receivers see `true` for good.
                                std::future::pending::<()>().await;
                                return;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot declare the broker topology yet");
                                tokio::time::sleep(broker.settings().reconnect_delay).await;
                            }
                        }
                    }
                })
            };
            let forwarders: Vec<Arc<TargetRuntime>> = config
                .targets
                .iter()
                .map(|(name, cfg)| {
                    Arc::new(crate::transport::forward::forward_runtime(
                        Arc::clone(&broker),
                        name,
                        cfg,
                        &node,
                    ))
                })
                .collect();
            let by_name: std::collections::HashMap<String, Arc<TargetRuntime>> = runtimes
                .iter()
                .map(|r| (r.name.clone(), Arc::clone(r)))
                .collect();
            let status_task = tokio::spawn(crate::transport::status::consume(
                Arc::clone(&broker),
                node.clone(),
                by_name,
                outbox.clone(),
            ));
            let workers = (role != crate::config::Role::Ingress).then(|| {
                crate::transport::worker::Workers::start(
                    crate::transport::worker::WorkerContext {
                        broker: Arc::clone(&broker),
                        mappings: Arc::clone(&mappings),
                        status: status_publisher,
                        node: node.clone(),
                        topology_ready: topology_ready_rx,
                    },
                    runtimes,
                )
            });
            tracing::info!(%node, ?role, partitions = config.amqp.partitions, "cluster transport: RabbitMQ");
            cluster = Some((workers, status_task, declared));
            Relay::start(outbox.clone(), forwarders, Arc::clone(&mappings))
        } else {
            Relay::start(outbox.clone(), runtimes, Arc::clone(&mappings))
        };
        let reloader = tokio::spawn(crate::mappings::reload_on_change(
            Arc::clone(&mappings),
            config.mappings.watch,
            config.mappings.poll_interval,
            hangup,
        ));
        let addr = listener.local_addr().map_err(AppError::Serve)?;
        let callbacks = Arc::new(crate::ingress::callback::CallbackGuard::default());
        let admin_state = Arc::new(AdminState {
            broker: admin_broker,
            outbox: outbox.clone(),
            accepting: AtomicBool::new(true),
            targets: admin_targets,
            units: config.units.keys().cloned().collect(),
            portal_targets: config
                .targets
                .iter()
                .filter(|(_, t)| t.kind == crate::config::TargetKind::Portal)
                .map(|(n, _)| n.clone())
                .collect(),
            payment_targets: config
                .targets
                .iter()
                .filter(|(_, t)| t.kind == crate::config::TargetKind::Payment)
                .map(|(n, _)| n.clone())
                .collect(),
            mappings: Arc::clone(&mappings),
            kpis: crate::admin::kpi::KpiBoard::default(),
            callbacks: Arc::clone(&callbacks),
            tokens: crate::admin::auth::AdminTokens::new(
                config
                    .admin
                    .tokens
                    .iter()
                    .filter_map(|t| {
                        t.accepted(|v| std::env::var(v).ok())
                            .map(|tok| (tok, t.name.clone(), t.role))
                    })
                    .collect(),
                Some(Arc::clone(&audit)),
            ),
            sessions: crate::admin::session::Sessions::new(
                config.admin.session_idle,
                config.admin.session_max,
            ),
            secure_cookies: config.server.tls.is_some() || config.server.behind_tls_proxy,
            audit: Arc::clone(&audit),
        });
        let unit_keys = Arc::new(UnitKeys::new(unit_keys).with_rate_limits(&config.units));
        let ingress_state = Arc::new(IngressState {
            keys: Arc::clone(&unit_keys),
            router: Router::from_config(&config),
            mappings: Arc::clone(&mappings),
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
            max_body_bytes: config.server.max_body_bytes,
            max_batch: config.server.max_batch,
            callbacks,
        });
        let takes_unit_traffic = !(amqp && role == crate::config::Role::Worker);
        let inbox = (config.inbox.enabled && takes_unit_traffic).then(|| {
            tokio::spawn(crate::ingress::inbox::watch(
                Arc::clone(&ingress_state),
                crate::ingress::inbox::InboxSettings {
                    dir: config
                        .inbox
                        .dir
                        .clone()
                        .unwrap_or_else(|| config.outbox.data_dir.join("inbox")),
                    poll: config.inbox.poll_interval,
                    settle: config.inbox.settle,
                    keep: config.inbox.keep,
                },
                config.units.keys().cloned().collect(),
            ))
        });
        let lookups = crate::lookup::LookupState::new(
            &config.lookups,
            Arc::clone(&unit_keys),
            Arc::clone(&mappings),
            Arc::clone(&audit),
        )
        .map_err(|message| AppError::Target {
            target: "lookups".into(),
            message,
        })?;
        let secrets: std::collections::BTreeMap<String, Vec<u8>> = config
            .units
            .iter()
            .filter_map(|(id, u)| {
                let var = u.hmac_secret_env.as_ref()?;
                let secret = std::env::var(var)
                    .ok()
                    .or_else(|| u.dev_hmac_secret.clone())?;
                Some((id.clone(), secret.into_bytes()))
            })
            .collect();
        // In a cluster the replay window of signed requests is the cluster's: this node
        // asks the active guard, and offers to be it.
        let mut replay_guard_task = None;
        let signatures = Arc::new(match &guard_broker {
            Some(broker) if takes_unit_traffic && !secrets.is_empty() => {
                replay_guard_task = Some(tokio::spawn(crate::transport::replay_guard::serve(
                    Arc::clone(broker),
                    crate::transport::node_name(&config.amqp),
                )));
                let guard = crate::transport::replay_guard::ReplayGuard::new(Arc::clone(broker));
                crate::ingress::signature::Signatures::clustered(secrets, Arc::new(guard))
            }
            _ => crate::ingress::signature::Signatures::new(secrets),
        });
        // A worker node takes no unit traffic: only its admin and health endpoints listen.
        let app = if !takes_unit_traffic {
            admin::routes(Arc::clone(&admin_state))
        } else {
            ingress::routes(ingress_state)
                .merge(crate::lookup::routes(Arc::new(lookups)))
                .route_layer(axum::middleware::from_fn_with_state(
                    signatures,
                    crate::ingress::signature::verify,
                ))
                .merge(admin::routes(Arc::clone(&admin_state)))
        };
        let app = app.layer(axum::middleware::from_fn_with_state(
            crate::server::BodyLimits {
                max_bytes: config.server.max_body_bytes,
                read_timeout: config.server.body_read_timeout,
            },
            crate::server::buffer_body,
        ));
        let kpi_task = tokio::spawn(crate::admin::kpi::refresh_periodically(
            Arc::clone(&admin_state),
            config.admin.kpi_interval,
        ));
        let sweeper = tokio::spawn(sweep_periodically(
            outbox.clone(),
            config.outbox.sweep_interval,
        ));
        let (stop, stop_rx) = oneshot::channel::<()>();
        let grace = config.relay.shutdown_grace;
        let header_read_timeout = config.server.header_read_timeout;
        let tls = match &config.server.tls {
            Some(t) => Some(crate::server::tls_acceptor(t).map_err(AppError::Tls)?),
            None => None,
        };
        let outbox_for_task = outbox.clone();
        let task = tokio::spawn(async move {
            let served =
                crate::server::serve(listener, app, header_read_timeout, tls, async move {
                    let _ = stop_rx.await;
                    admin_state.accepting.store(false, Ordering::Relaxed);
                })
                .await;
            tracing::info!("ingress closed; draining in-flight deliveries");
            sweeper.abort();
            let _ = sweeper.await;
            kpi_task.abort();
            reloader.abort();
            if let Some(inbox) = inbox {
                inbox.abort();
            }
            if let Some(guard) = replay_guard_task {
                guard.abort();
            }
            if let Some((workers, status_task, declared)) = cluster {
                if let Some(w) = workers {
                    w.stop().await;
                }
                status_task.abort();
                declared.abort();
            }
            outbox_for_task.close();
            let abandoned = relay.drain(grace).await;
            if abandoned > 0 {
                tracing::warn!(
                    abandoned,
                    "deliveries still in flight after the grace period stay pending"
                );
            }
            outbox_for_task
                .shutdown()
                .await
                .map_err(|e| AppError::Flush(e.to_string()))?;
            tracing::info!("outbox flushed; stopped");
            served.map_err(AppError::Serve)
        });
        let stats = outbox.stats();
        tracing::info!(%addr, pending = stats.pending, dead = stats.dead, startup_ms = started.elapsed().as_millis() as u64, "lienthong listening");
        tracing::info!(mappings = mappings.len(), "mappings compiled");
        Ok(Bus {
            addr,
            mocks_addr,
            outbox,
            mappings,
            audit,
            stop: Some(stop),
            task,
        })
    }

    /// Stop accepting, drain in-flight deliveries within the grace period, flush, stop.
    pub async fn shutdown(mut self) -> Result<(), AppError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        drop(self.outbox);
        self.task
            .await
            .unwrap_or_else(|e| Err(AppError::Flush(e.to_string())))
    }

    /// Run until `signal` completes, then shut down.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> Result<(), AppError> {
        signal.await;
        self.shutdown().await
    }
}

async fn sweep_periodically(outbox: Outbox, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        match outbox.sweep(crate::time::now_ms()).await {
            Ok(r) if r.messages_removed + r.idempotency_keys_removed > 0 => {
                tracing::info!(
                    messages = r.messages_removed,
                    idempotency_keys = r.idempotency_keys_removed,
                    "retention sweep"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "retention sweep failed"),
        }
    }
}
