//! Steps of starting a bus that stand on their own: what is loaded before anything
//! listens (a broken mapping or catalogue stops the start there), the tasks that run on
//! timers, the unit inbox, and the serving task that runs the shutdown when it ends.

use super::background::Background;
use super::{AppError, parts};
use crate::config::Config;
use crate::mappings::MappingSet;
use crate::outbox::Outbox;
use crate::relay::Relay;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The broker and the status publisher, with `transport = "amqp"`; what this node puts
/// on the broker is sealed with the outbox's keys.
pub fn connect_cluster(
    config: &Config,
    keyring: Option<Arc<crate::outbox::encryption::Keyring>>,
) -> Option<Cluster> {
    (config.transport == crate::config::Transport::Amqp).then(|| {
        let broker =
            Arc::new(crate::transport::broker::Broker::new(&config.amqp).sealed_with(keyring));
        let status = Arc::new(crate::transport::status::StatusPublisher::new(Arc::clone(
            &broker,
        )));
        (broker, status)
    })
}

/// A cluster's broker and the publisher of its status messages.
pub type Cluster = (
    Arc<crate::transport::broker::Broker>,
    Arc<crate::transport::status::StatusPublisher>,
);

/// Facts about payments every node needs: shared through the broker in a cluster, kept in
/// the outbox alone.
pub fn shared_notes(cluster: Option<&Cluster>, outbox: &Outbox) -> Arc<dyn crate::outbox::Notes> {
    match cluster {
        Some((_, status)) => Arc::new(crate::transport::status::ClusterNotes {
            local: outbox.clone(),
            status: Arc::clone(status),
        }),
        None => Arc::new(outbox.clone()),
    }
}

/// What the configuration names that must load before anything starts.
pub struct Loaded {
    pub audit: Arc<crate::audit::AuditLog>,
    pub mappings: Arc<MappingSet>,
    pub procedures: Arc<crate::procedures::Catalogue>,
    pub spans: Arc<crate::otlp::Spans>,
    /// The message log (`[evidence]`; off: a handle that does nothing).
    pub evidence: Arc<crate::evidence::MessageLog>,
}

/// Warn of development credentials on a network address, open the audit trail, compile
/// the mappings, read the procedure catalogues, start the span exporter and the message
/// log (whose `full` mode seals bodies with the outbox's `keyring`).
pub fn load(
    config: &Config,
    keyring: Option<&Arc<crate::outbox::encryption::Keyring>>,
) -> Result<Loaded, AppError> {
    parts::warn_of_dev_credentials_on_network(config);
    let audit =
        Arc::new(crate::audit::AuditLog::open(&config.audit_path()).map_err(AppError::Audit)?);
    // Mappings first: a broken mapping stops the start before anything listens.
    let mappings = Arc::new(MappingSet::load(config).map_err(AppError::Mappings)?);
    let procedures = Arc::new(
        crate::procedures::Catalogue::load(
            &config.mappings.dir,
            config.units.keys().map(String::as_str),
        )
        .map_err(AppError::Procedures)?,
    );
    // Spans over OTLP when [telemetry] names a receiver; a no-op otherwise.
    let spans = Arc::new(
        crate::otlp::Spans::start(&config.telemetry).map_err(|message| AppError::Target {
            target: "telemetry".into(),
            message,
        })?,
    );
    let sealer = keyring.map(|k| Arc::clone(k) as Arc<dyn crate::evidence::BodySealer>);
    let evidence = crate::evidence::MessageLog::start(
        &config.evidence,
        &config.evidence_dir(),
        &config.evidence_key_file(),
        sealer,
    )
    .map_err(AppError::Evidence)?;
    Ok(Loaded {
        audit,
        mappings,
        procedures,
        spans,
        evidence: Arc::new(evidence),
    })
}

/// Mappings reloaded when their files change (`mappings.watch`) and on SIGHUP.
pub fn watch_mappings(
    config: &Config,
    mappings: &Arc<crate::mappings::MappingSet>,
    hangup: Option<crate::mappings::HangupSignal>,
    background: &mut Background,
) {
    background.spawn(crate::mappings::reload_on_change(
        Arc::clone(mappings),
        config.mappings.watch,
        config.mappings.poll_interval,
        hangup,
    ));
}

/// The tasks on timers: the KPI snapshot, the dashboard's history, the outbox sweep.
pub fn start_periodic(
    config: &Config,
    admin: &Arc<crate::admin::AdminState>,
    outbox: &Outbox,
    background: &mut Background,
) {
    background.spawn(crate::admin::kpi::refresh_periodically(
        Arc::clone(admin),
        config.admin.kpi_interval,
    ));
    background.spawn(crate::admin::history::sample_periodically(
        Arc::clone(admin),
        config.admin.history_every,
    ));
    background.spawn(parts::sweep_periodically(
        outbox.clone(),
        config.outbox.sweep_interval,
    ));
    pull_ratings(config, outbox, background);
}

/// The portal's ratings, pulled on their timer for each `kind = "portal"` target that
/// sets `ratings_every` ([`crate::delivery::ratings`]).
fn pull_ratings(config: &Config, outbox: &Outbox, background: &mut Background) {
    let units: Vec<String> = config.units.keys().cloned().collect();
    for (name, target) in &config.targets {
        let every = target.portal.as_ref().and_then(|p| p.ratings_every);
        let (crate::config::TargetKind::Portal, Some(every)) = (target.kind, every) else {
            continue;
        };
        // Its own connector (its own session); the ratings keep no rows.
        let notes: Arc<dyn crate::outbox::Notes> = Arc::new(outbox.clone());
        match crate::connector::build::portal(target, notes) {
            Ok(portal) => background.spawn(crate::delivery::ratings::pull_periodically(
                Arc::new(portal),
                units.clone(),
                outbox.clone(),
                every,
            )),
            Err(e) => {
                tracing::warn!(target = %name, error = %e, "cannot pull the portal's ratings")
            }
        }
    }
}

/// The watched inbox directory (`[inbox] enabled`), on nodes that take unit traffic.
pub fn start_inbox(
    config: &Config,
    ingress: &Arc<crate::ingress::IngressState>,
    background: &mut Background,
) {
    background.spawn(crate::ingress::inbox::watch(
        Arc::clone(ingress),
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
    ));
}

/// The serving task: ends with the listener closed and the shutdown run.
pub type Serving = JoinHandle<Result<(), AppError>>;

/// Serve `app` on `listener` until `stop` fires, then run `stopping` (workers hand back,
/// background tasks end, the relay drains, the outbox flushes).
pub fn serve(
    config: &Config,
    listener: TcpListener,
    app: axum::Router,
    admin: Arc<crate::admin::AdminState>,
    stopping: parts::Stopping,
) -> Result<(oneshot::Sender<()>, Serving), AppError> {
    let (stop, stop_rx) = oneshot::channel::<()>();
    let listening = crate::server::Listening {
        header_read_timeout: config.server.header_read_timeout,
        h2c: config.server.h2c,
        max_connections: config.server.max_connections,
    };
    let tls = match &config.server.tls {
        Some(t) => Some(crate::server::tls_acceptor(t).map_err(AppError::Tls)?),
        None => None,
    };
    let task = tokio::spawn(async move {
        let served = crate::server::serve(listener, app, listening, tls, async move {
            let _ = stop_rx.await;
            admin.accepting.store(false, Ordering::Relaxed);
        })
        .await;
        stopping.run().await?;
        served.map_err(AppError::Serve)
    });
    Ok((stop, task))
}

/// What moves deliveries needs.
pub struct DeliveryInputs {
    /// The broker and the status publisher, with `transport = "amqp"`.
    pub cluster: Option<Cluster>,
    pub runtimes: Vec<Arc<crate::delivery::TargetRuntime>>,
    pub outbox: Outbox,
    pub mappings: Arc<MappingSet>,
    pub router: Arc<crate::route::Router>,
}

/// Start moving deliveries: with a broker the outbox drains into RabbitMQ and the workers
/// deliver; alone, the relay delivers. Also the settlements that requests wait on for
/// the broker's confirms before their 202 (`[amqp] acknowledge = "replicated"`).
pub fn start_delivery(
    config: &Config,
    inputs: DeliveryInputs,
    background: &mut Background,
) -> (
    Relay,
    Option<crate::transport::workers::Workers>,
    Option<Arc<crate::delivery::settlements::Settlements>>,
) {
    let DeliveryInputs {
        cluster,
        runtimes,
        outbox,
        mappings,
        router,
    } = inputs;
    let settlements = (cluster.is_some()
        && config.amqp.acknowledge == crate::config::Acknowledge::Replicated)
        .then(|| Arc::new(crate::delivery::settlements::Settlements::new()));
    let (relay, workers) = match cluster {
        Some((broker, status)) => parts::start_cluster(
            config,
            parts::ClusterInputs {
                broker,
                status,
                runtimes,
                outbox,
                mappings,
                settlements: settlements.clone(),
            },
            background,
        ),
        None => {
            let replies = crate::route::replies::RoutedReplies::new(router, outbox.clone());
            let relay = Relay::start(
                outbox,
                runtimes,
                mappings,
                Some(Arc::new(replies) as Arc<dyn crate::delivery::Replies>),
            );
            (relay, None)
        }
    };
    (relay, workers, settlements)
}

/// The data directory's durable-write time, measured off the async threads, logged, and
/// warned about when it is slow for durable writes (see [`crate::outbox::disk_speed`]).
pub async fn measure_disk(config: &Config) -> Option<crate::outbox::disk_speed::DiskSpeed> {
    let dir = config.outbox.data_dir.clone();
    let measured = tokio::task::spawn_blocking(move || crate::outbox::disk_speed::measure(&dir))
        .await
        .ok()?;
    let speed = match measured {
        Ok(speed) => speed,
        Err(e) => {
            tracing::debug!(error = %e, "the data directory's disk speed was not measured");
            return None;
        }
    };
    tracing::info!(
        median_ms = speed.median.as_secs_f64() * 1000.0,
        worst_ms = speed.worst.as_secs_f64() * 1000.0,
        syncs = speed.samples,
        "data directory: time to make a write durable"
    );
    // The units' rate limits together, when every unit has one (else no load is known).
    let rates: Option<u64> = config
        .units
        .values()
        .map(|u| u.rate_limit.as_ref().map(|r| u64::from(r.per_second)))
        .sum();
    if let Some(warning) = speed.warning(rates.filter(|r| *r > 0)) {
        tracing::warn!("{warning}");
    }
    Some(speed)
}
