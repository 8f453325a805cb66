//! `lienthong bench`: measures the bus as a unit IT team would run it — a real `lienthong
//! run` child process on loopback, loaded over HTTP by this process, delivering to a
//! recording sink in this process.
//!
//! Scenarios: durable ingest in batches of 100 and as single events (concurrency 64);
//! end to end (ingest → delivered) throughput, then p50/p99 latency at half that rate;
//! peak RSS with N pending messages and the restart time with them on disk; `units`: the
//! mock unit systems' realistic traffic (all four units' formats, whole dossier lives)
//! through the shipped routes and mappings, ingest → mapped and delivered; `routes`
//! ([`shipped`]): the shipped routes at full speed beside the bare `e2e` path; `outage`
//! ([`outage`]): the portal down while a million status events pile up, then back.

mod log_mask;
mod process;
mod shipped;
mod throughput;

use log_mask::log_mask;
use shipped::{routes, units};

pub use process::{BusProcess, free_port};
use process::{encryption_section, write_config, write_config_with};
use throughput::{cluster, end_to_end, evidence_cost, full_speed};

pub mod outage;
mod outage_disk;
mod outage_traffic;

use lienthong_mocks::{Faults, Sink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const UNIT_KEY: &str = "bench-unit-key-0123456789";
/// Distinct request bodies the load generator cycles through.
const BODIES: usize = 512;

/// What to run and how big.
#[derive(Clone, Debug, clap::Args)]
pub struct BenchArgs {
    /// Which scenario: ingest, e2e, pending, units, routes, log-mask, cluster, outage,
    /// evidence, or all (not routes, cluster, outage or evidence).
    #[arg(long, default_value = "all")]
    pub scenario: String,
    /// Events for the batched ingest, end-to-end and outage runs (the outage scenario is
    /// meant for 1000000).
    #[arg(long, default_value_t = 200_000)]
    pub events: usize,
    /// The outage scenario: dossiers the events belong to (events / dossiers per dossier).
    #[arg(long, default_value_t = 50_000)]
    pub dossiers: usize,
    /// Requests for the single-event ingest run.
    #[arg(long, default_value_t = 50_000)]
    pub requests: usize,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Pending messages for the memory and restart scenario.
    #[arg(long, default_value_t = 1_000_000)]
    pub pending: usize,
    /// Events per request when filling the pending backlog.
    #[arg(long, default_value_t = 100)]
    pub pending_batch: usize,
    /// Payload bytes per event (about).
    #[arg(long, default_value_t = 512)]
    pub payload: usize,
    /// Keep the bench data directory here instead of a temporary one.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The cluster scenario: worker processes to measure with (one run per number).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub workers: Vec<usize>,
    /// The cluster scenario's broker.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub amqp_url: String,
    /// Seal the outbox ([outbox.encryption], a fresh key; in the cluster scenario one key
    /// for every node, which also seals the bodies on the broker), to measure what
    /// encryption costs.
    #[arg(long)]
    pub encrypted: bool,
    /// The message log's mode on the bus measured ([evidence] mode: off, metadata, full;
    /// metadata is what the bus ships with). The `evidence` scenario measures off against
    /// metadata in the same run.
    #[arg(long, default_value = "metadata")]
    pub evidence: String,
}

fn event(seq: usize, pad: &str) -> serde_json::Value {
    serde_json::json!({
        "MaHoSo": format!("000.00.01.H22-{:06}", seq % 50_000),
        "seq": seq,
        "TrangThaiHoSo": 4,
        "NgayTiepNhan": "20261128083000",
        "TrichYeuHoSo": pad,
    })
}

/// Send `total` events in requests of `per_request`, `concurrency` at a time. Returns the
/// elapsed time. Prints progress.
async fn load(
    port: u16,
    total: usize,
    per_request: usize,
    concurrency: usize,
    pad: &str,
    label: &str,
) -> Result<Duration, String> {
    let client = crate::tls_provider::http_client()
        .no_proxy()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!("http://127.0.0.1:{port}/api/v1/units/bench/events");
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let progress = {
        let done = done.clone();
        let label = label.to_string();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let d = done.load(Ordering::Relaxed);
                eprintln!(
                    "  {label}: {d}/{total} events ({:.0}/s)",
                    d as f64 / started.elapsed().as_secs_f64()
                );
            }
        })
    };
    // Request bodies are made once and reused, so that the client's own JSON work does not
    // eat the CPU the bus is being measured on. Keys differ between bodies.
    let bodies: Arc<Vec<bytes::Bytes>> = Arc::new(
        (0..BODIES)
            .map(|b| {
                let first = b * per_request;
                let body = if per_request == 1 {
                    serde_json::to_vec(&event(first, pad))
                } else {
                    serde_json::to_vec(
                        &(first..first + per_request)
                            .map(|s| event(s, pad))
                            .collect::<Vec<_>>(),
                    )
                };
                bytes::Bytes::from(body.expect("json"))
            })
            .collect(),
    );
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, next, done, bodies) = (
            client.clone(),
            url.clone(),
            next.clone(),
            done.clone(),
            bodies.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let first = next.fetch_add(per_request, Ordering::Relaxed);
                if first >= total {
                    return Ok::<(), String>(());
                }
                let n = per_request;
                let body = bodies[(first / per_request) % BODIES].clone();
                post_accepted(&client, &url, UNIT_KEY, "application/json", body).await?;
                done.fetch_add(n, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    progress.abort();
    Ok(started.elapsed())
}

/// POST `body` until the bus accepts it (202), waiting out its 503s (backpressure); any
/// other answer is an error naming it.
async fn post_accepted(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    content_type: &str,
    body: bytes::Bytes,
) -> Result<(), String> {
    loop {
        let resp = client
            .post(url)
            .bearer_auth(key)
            .header("content-type", content_type)
            .body(body.clone())
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        match resp.status().as_u16() {
            202 => return Ok(()),
            503 => tokio::time::sleep(Duration::from_millis(50)).await,
            s => {
                return Err(format!(
                    "unexpected HTTP {s}: {}",
                    resp.text().await.unwrap_or_default()
                ));
            }
        }
    }
}

fn pad(len: usize) -> String {
    "Đăng ký chứng nhận hợp chuẩn "
        .chars()
        .cycle()
        .take(len)
        .collect()
}

pub async fn run(args: BenchArgs) -> Result<(), String> {
    let temp;
    let root = match &args.dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile_dir()?;
            temp.clone()
        }
    };
    let pad = pad(args.payload);
    let all = args.scenario == "all";
    println!(
        "lienthong bench on {} cores; payload ≈ {} bytes/event; concurrency {}",
        num_cpus(),
        args.payload + 120,
        args.concurrency
    );
    if all || args.scenario == "ingest" {
        ingest(&root.join("ingest"), &args, &pad).await?;
    }
    if all || args.scenario == "e2e" {
        end_to_end(&root.join("e2e"), &args, &pad).await?;
    }
    if all || args.scenario == "pending" {
        pending(&root.join("pending"), &args, &pad).await?;
    }
    if all || args.scenario == "units" {
        units(&root.join("units"), &args).await?;
    }
    if args.scenario == "routes" {
        routes(&root, &args, &pad).await?;
    }
    if all || args.scenario == "log-mask" {
        log_mask();
    }
    if args.scenario == "evidence" {
        evidence_cost(&root, &args, &pad).await?;
    }
    if args.scenario == "outage" {
        let report = outage::run(&outage::OutageOptions {
            dir: root.join("outage"),
            exe: std::env::current_exe().map_err(|e| e.to_string())?,
            events: args.events,
            dossiers: args.dossiers,
            drain: true,
        })
        .await?;
        report.print();
    }
    if args.scenario == "cluster" {
        // The single node first, on the same events: the cluster's rate is judged by it.
        let (single, bus, _, _) = full_speed(&root.join("cluster-single"), &args, &pad).await?;
        bus.stop();
        // Both ways an ingress node can acknowledge, in the same run.
        for &workers in &args.workers {
            for acknowledge in ["local", "replicated"] {
                let rate = cluster(
                    &root.join(format!("cluster-{workers}-{acknowledge}")),
                    &args,
                    &pad,
                    workers,
                    acknowledge,
                )
                .await?;
                println!(
                    "cluster (acknowledge = {acknowledge}) with {workers} worker(s) / single node: {rate:.0} / {single:.0} events/s = {:.2}",
                    rate / single
                );
            }
        }
    }
    if ![
        "all", "ingest", "e2e", "pending", "units", "routes", "log-mask", "cluster", "outage",
        "evidence",
    ]
    .contains(&args.scenario.as_str())
    {
        return Err(format!(
            "unknown scenario `{}` (ingest, e2e, pending, units, routes, log-mask, cluster, outage, evidence or all)",
            args.scenario
        ));
    }
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&root);
    }
    Ok(())
}

fn tempfile_dir() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("lienthong-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(dir)
}

fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// A bus whose only target holds every request for an hour, so that nothing is delivered
/// and ingest alone is measured (or the backlog only grows).
async fn start_holding_bus(
    dir: &Path,
    args: &BenchArgs,
) -> Result<(Sink, BusProcess, u16, PathBuf), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let sink = Sink::new(Faults {
        delay: Duration::from_secs(3600),
        ..Faults::default()
    });
    let sink_addr = sink
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .map_err(|e| e.to_string())?;
    let port = free_port();
    let config = write_config(
        dir,
        port,
        sink_addr,
        "concurrency = 1\ntimeout = \"2h\"",
        args,
    );
    let (bus, _) = BusProcess::start(&config, port)?;
    Ok((sink, bus, port, config))
}

async fn ingest(dir: &Path, args: &BenchArgs, pad: &str) -> Result<(), String> {
    let (_sink, bus, port, _config) = start_holding_bus(dir, args).await?;
    eprintln!("ingest, batches of 100:");
    let took = load(port, args.events, 100, args.concurrency, pad, "batched").await?;
    println!(
        "durable ingest, batches of 100: {} events in {:.2}s = {:.0} events/s",
        args.events,
        took.as_secs_f64(),
        args.events as f64 / took.as_secs_f64()
    );
    eprintln!("ingest, single events:");
    let took = load(port, args.requests, 1, args.concurrency, pad, "single").await?;
    println!(
        "durable ingest, single events: {} requests in {:.2}s = {:.0} requests/s",
        args.requests,
        took.as_secs_f64(),
        args.requests as f64 / took.as_secs_f64()
    );
    bus.stop();
    Ok(())
}

async fn pending(dir: &Path, args: &BenchArgs, pad: &str) -> Result<(), String> {
    let (_sink, bus, port, config) = start_holding_bus(dir, args).await?;
    eprintln!("filling {} pending messages:", args.pending);
    // In three parts, so that the rate over the first and the last tenth can be compared
    // (a store that slows down as it fills shows here).
    let tenth = (args.pending / 10).max(1);
    let batch = args.pending_batch;
    let first = load(port, tenth, batch, 16, pad, "pending, first tenth").await?;
    let middle = args.pending.saturating_sub(2 * tenth);
    let middle_took = load(port, middle, batch, 16, pad, "pending").await?;
    let last = load(port, tenth, batch, 16, pad, "pending, last tenth").await?;
    let took = first + middle_took + last;
    let (peak, now) = bus.memory_mb();
    println!(
        "{} pending messages stored in {:.1}s ({:.0} events/s over the first tenth, {:.0} over the last); \
         bus RSS: peak {peak:.0} MiB, now {now:.0} MiB",
        args.pending,
        took.as_secs_f64(),
        tenth as f64 / first.as_secs_f64(),
        tenth as f64 / last.as_secs_f64(),
    );
    let disk = dir_size(&dir.join("data"));
    println!(
        "data directory with {} pending: {:.0} MiB",
        args.pending,
        disk as f64 / 1048576.0
    );
    bus.kill();
    let (bus, up) = BusProcess::start(&config, port)?;
    // Ready means: the outbox is open and the listener answers.
    let client = crate::tls_provider::http_client()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let ready = Instant::now();
    loop {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            && (r.status().is_success() || r.status().as_u16() == 503)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let restart = up + ready.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (peak, _) = bus.memory_mb();
    println!(
        "restart after SIGKILL with {} pending: serving in {:.2}s; RSS peak over the first 3 s {peak:.0} MiB",
        args.pending,
        restart.as_secs_f64()
    );
    bus.stop();
    Ok(())
}

fn dir_size(path: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_size(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// The scenario's directory and a recording receiver on loopback (the targets' side).
async fn receiver(dir: &Path) -> Result<(Sink, std::net::SocketAddr), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let sink = Sink::new(Faults::default());
    let addr = sink
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .map_err(|e| e.to_string())?;
    Ok((sink, addr))
}
