//! Wiring for `lienthong run`: opens the outbox, starts the relay, the sweeper, the bundled
//! mocks when enabled, and the HTTP listener; on shutdown drains in the reverse order.
//!
//! The parts are built by the functions of [`parts`] (target runtimes, the mocks, the
//! cluster transport, request signatures, the sweeper); every task they start joins one
//! [`background::Background`] set, which shutdown stops as a whole after the listener
//! closed and the workers handed their deliveries back, before the relay drains and the
//! outbox flushes.

use crate::config::Config;
use crate::mappings::MappingSet;
use crate::outbox::{Outbox, RedbStore, Store};
use crate::web::UnitKeys;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

mod background;
mod credentials;
mod forwarding;
mod ingress_parts;
mod parts;
mod startup;

use background::Background;

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
    #[error(transparent)]
    Evidence(crate::evidence::EvidenceError),
    #[error("listener TLS: {0}")]
    Tls(String),
    #[error("outbox encryption: {0}")]
    Encryption(crate::outbox::encryption::KeyringError),
    #[error("{} mapping problem(s):\n{}", .0.len(), .0.join("\n"))]
    Mappings(Vec<String>),
    #[error("{} procedure catalogue problem(s):\n{}", .0.len(), .0.join("\n"))]
    Procedures(Vec<String>),
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
        let loaded = startup::load(&config, keyring.as_ref())?;
        let hangup = crate::mappings::hangup_signal();
        // A second listener: SIGHUP also reloads the credentials.
        let credentials_hangup = crate::mappings::hangup_signal();
        let outbox = parts::open_outbox(&config, store, &loaded.mappings, &loaded.procedures)?;
        let takes_unit_traffic = !(config.transport == crate::config::Transport::Amqp
            && config.role == crate::config::Role::Worker);
        let cluster = startup::connect_cluster(&config, keyring);
        let broker = cluster.as_ref().map(|(broker, _)| Arc::clone(broker));
        let status = cluster.as_ref().map(|(_, status)| status);
        let runtimes = parts::target_runtimes(&config, &outbox, status, &loaded)?;
        let startup::Loaded {
            audit,
            mappings,
            procedures,
            spans,
            evidence,
        } = loaded;
        let mut background = Background::default();
        let addr = listener.local_addr().map_err(AppError::Serve)?;
        let mocks_addr = parts::start_mocks(&config, addr, &mut background).await?;
        let admin_targets = runtimes.clone();
        let delivering_targets = runtimes.clone();
        let notes = startup::shared_notes(cluster.as_ref(), &outbox);
        let router = Arc::new(crate::route::Router::from_config(&config));
        // One reconciler of open payments: in a cluster, on whichever node holds its lock.
        parts::start_reconciliation(
            &config,
            parts::ReconcileInputs {
                outbox: outbox.clone(),
                notes: Arc::clone(&notes),
                router: Arc::clone(&router),
                broker: broker.clone(),
            },
            &mut background,
        )?;
        let (relay, workers, settlements) = startup::start_delivery(
            &config,
            startup::DeliveryInputs {
                cluster,
                runtimes,
                outbox: outbox.clone(),
                mappings: Arc::clone(&mappings),
                router,
            },
            &mut background,
        );
        startup::watch_mappings(&config, &mappings, hangup, &mut background);
        let callbacks = Arc::new(crate::connector::payment::CallbackGuard::default());
        let disk_speed = startup::measure_disk(&config).await;
        let admin_state = parts::admin_state(
            &config,
            parts::AdminInputs {
                broker: broker.clone(),
                outbox: outbox.clone(),
                targets: admin_targets,
                mappings: Arc::clone(&mappings),
                procedures: Arc::clone(&procedures),
                callbacks: Arc::clone(&callbacks),
                audit: Arc::clone(&audit),
                disk_speed,
                evidence: Arc::clone(&evidence),
            },
        );
        let unit_keys = Arc::new(UnitKeys::new(unit_keys).with_rate_limits(&config.units));
        let cluster_keys = parts::cluster_keys(
            &config,
            broker.as_ref(),
            takes_unit_traffic,
            Arc::clone(&admin_state.keys_checked_locally),
            &mut background,
        );
        let ingress_state = ingress_parts::ingress_state(
            &config,
            ingress_parts::IngressInputs {
                unit_keys: &unit_keys,
                mappings: &mappings,
                outbox: &outbox,
                notes: Arc::clone(&notes),
                callbacks,
                spans: &spans,
                targets: &delivering_targets,
                replication: settlements.map(|settlements| crate::ingress::Replication {
                    settlements,
                    timeout: config.amqp.replicate_timeout,
                }),
                cluster_keys,
                evidence: &evidence,
            },
        );
        if config.inbox.enabled && takes_unit_traffic {
            startup::start_inbox(&config, &ingress_state, &mut background);
        }
        let lookups = ingress_parts::lookups(&config, &unit_keys, &admin_state, &spans, notes)?;
        let signatures = parts::signatures(
            &config,
            broker.as_ref(),
            takes_unit_traffic,
            &mut background,
        );
        if let Some(source) = config.source.clone() {
            background.spawn(credentials::reload_on_hangup(
                credentials::Credentials {
                    source,
                    unit_keys: Arc::clone(&unit_keys),
                    admin: Arc::clone(&admin_state),
                    signatures: Some(Arc::clone(&signatures)),
                },
                credentials_hangup,
            ));
        }
        let app = parts::router(
            &config,
            &admin_state,
            takes_unit_traffic.then_some((ingress_state, lookups, signatures)),
        );
        startup::start_periodic(&config, &admin_state, &outbox, &mut background);
        let stopping = parts::Stopping {
            workers,
            spans,
            evidence,
            background,
            relay,
            outbox: outbox.clone(),
            grace: config.relay.shutdown_grace,
        };
        let (stop, task) = startup::serve(&config, listener, app, admin_state, stopping)?;
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
