//! `lienthong bench`: measures the bus as a unit IT team would run it — a real `lienthong
//! run` child process on loopback, loaded over HTTP by this process, delivering to a
//! recording sink in this process.
//!
//! Scenarios: durable ingest in batches of 100 and as single events (concurrency 64);
//! end to end (ingest → delivered) throughput, then p50/p99 latency at half that rate;
//! peak RSS with N pending messages and the restart time with them on disk; `units`: the
//! mock unit systems' realistic traffic (all four units' formats, whole dossier lives)
//! through the shipped routes and mappings, ingest → mapped and delivered; `outage`
//! ([`outage`]): the portal down while a million status events pile up, then back.

pub mod outage;

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
    /// Which scenario: ingest, e2e, pending, units, log-mask, cluster, outage, or all (not
    /// cluster, not outage).
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
}

/// `[outbox.encryption]` with a fresh key in `dir` when `args.encrypted`, else nothing.
fn encryption_section(dir: &Path, args: &BenchArgs) -> String {
    if !args.encrypted {
        return String::new();
    }
    let keys = dir.join("outbox.keys");
    std::fs::write(
        &keys,
        crate::outbox::encryption::new_key_line("bench") + "\n",
    )
    .expect("write the bench key");
    format!(
        "[outbox.encryption]\nkeys_env = \"LIENTHONG_BENCH_UNSET_KEYS\"\nkeys_file = \"{}\"\n",
        keys.display()
    )
}

/// A `lienthong run` child process (the bench's, and the backlog tests').
pub struct BusProcess {
    child: std::process::Child,
}

impl BusProcess {
    fn start(config: &Path, port: u16) -> Result<(BusProcess, Duration), String> {
        Self::start_as(config, port, "all")
    }

    fn start_as(config: &Path, port: u16, role: &str) -> Result<(BusProcess, Duration), String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        Self::spawn(&exe, config, port, role)
    }

    /// Start `exe run --config <config> --role <role>` and wait until it listens on `port`.
    pub fn spawn(
        exe: &Path,
        config: &Path,
        port: u16,
        role: &str,
    ) -> Result<(BusProcess, Duration), String> {
        let started = Instant::now();
        let log = std::fs::File::create(config.with_extension("log")).map_err(|e| e.to_string())?;
        // LIENTHONG_BENCH_WRAPPER runs the bus under a profiler (`heaptrack -o FILE`,
        // `perf record -g --`): words split on spaces, then the bus's own command line.
        let mut command = match std::env::var("LIENTHONG_BENCH_WRAPPER") {
            Ok(w) if !w.trim().is_empty() => {
                let mut words = w.split_whitespace();
                let mut c = std::process::Command::new(words.next().expect("non-empty"));
                c.args(words).arg(exe);
                c
            }
            _ => std::process::Command::new(exe),
        };
        let child = command
            .args(["run", "--config"])
            .arg(config)
            .args(["--role", role])
            .env("RUST_LOG", "warn")
            .env("LIENTHONG_BENCH_UNIT_KEY", UNIT_KEY)
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start the bus: {e}"))?;
        let bus = BusProcess { child };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok((bus, started.elapsed()));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the bus did not listen on {port}; see {}",
                    config.with_extension("log").display()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send SIGTERM and wait for the process to end; how long it took, and whether it
    /// exited with success.
    pub fn terminate(mut self) -> (Duration, bool) {
        let started = Instant::now();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let ok = self.child.wait().map(|s| s.success()).unwrap_or(false);
        (started.elapsed(), ok)
    }

    /// Peak and current resident memory of the bus, in MiB (from /proc).
    pub fn memory_mb(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
                / 1024.0
        };
        (field("VmHWM:"), field("VmRSS:"))
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18080)
}

fn write_config(
    dir: &Path,
    port: u16,
    sink: std::net::SocketAddr,
    target_extra: &str,
    args: &BenchArgs,
) -> PathBuf {
    let tail = encryption_section(dir, args);
    write_config_with(dir, "bench.toml", port, sink, target_extra, "", &tail)
}

/// The bench config; `head` goes before the first table (top-level keys), `tail` after.
fn write_config_with(
    dir: &Path,
    name: &str,
    port: u16,
    sink: std::net::SocketAddr,
    target_extra: &str,
    head: &str,
    tail: &str,
) -> PathBuf {
    let text = format!(
        r#"{head}
environment = "development"
[server]
listen = "127.0.0.1:{port}"
max_body_bytes = 16777216
max_batch = 1000
[outbox]
data_dir = "{data}"
max_pending = 20000000
max_pending_bytes = 34359738368
window = 20000
cache_mb = 16
[units.bench]
key_env = "LIENTHONG_BENCH_UNIT_KEY"
[targets.sink]
kind = "http"
url = "http://{sink}/sink/bench"
{target_extra}
[[routes]]
unit = "bench"
flow = "dossier_sync"
targets = ["sink"]
ordering = "per_key"
key = "/MaHoSo"
{tail}
"#,
        data = dir.join("data").display()
    );
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write bench config");
    path
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
    let client = reqwest::Client::builder()
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
                loop {
                    let resp = client
                        .post(&url)
                        .bearer_auth(UNIT_KEY)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .map_err(|e| format!("request failed: {e}"))?;
                    match resp.status().as_u16() {
                        202 => break,
                        503 => tokio::time::sleep(Duration::from_millis(50)).await,
                        s => {
                            return Err(format!(
                                "unexpected HTTP {s}: {}",
                                resp.text().await.unwrap_or_default()
                            ));
                        }
                    }
                }
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
    if all || args.scenario == "log-mask" {
        log_mask();
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
        for &workers in &args.workers {
            let rate = cluster(
                &root.join(format!("cluster-{workers}")),
                &args,
                &pad,
                workers,
            )
            .await?;
            println!(
                "cluster with {workers} worker(s) / single node: {rate:.0} / {single:.0} events/s = {:.2}",
                rate / single
            );
        }
    }
    if ![
        "all", "ingest", "e2e", "pending", "units", "log-mask", "cluster", "outage",
    ]
    .contains(&args.scenario.as_str())
    {
        return Err(format!(
            "unknown scenario `{}` (ingest, e2e, pending, units, log-mask, cluster, outage or all)",
            args.scenario
        ));
    }
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&root);
    }
    Ok(())
}

/// What masking personal data costs per log line ([`crate::redact::mask`] runs on every
/// line written): a routine info line, a debug line carrying a JSON dossier, and one
/// carrying a SOAP request, each masked for about a second.
fn log_mask() {
    let info = "2026-11-28T10:00:00.123456Z  INFO lienthong::relay: delivered \
                target_system=portal id=01a22362-703b-7751-9fa4-e9e353e6ece8 attempts=1 \
                latency_ms=42";
    let json = format!(
        "2026-11-28T10:00:00.123456Z DEBUG lienthong::relay: body {{\"MaHoSo\":\"000.00.12.H26-241128-0001\",\
         \"HoTen\":\"Nguyễn Văn An\",\"SoDinhDanh\":\"001089012345\",\"SoDienThoai\":\"0912345678\",\
         \"Email\":\"an.nguyen@example.vn\",\"DiaChi\":\"12 Ngõ Huế, Hai Bà Trưng, Hà Nội\",\
         \"TrichYeu\":\"{}\",\"NgayTiepNhan\":\"20241128100000\"}}",
        pad(600)
    );
    let soap = format!(
        "2026-11-28T10:00:00.123456Z DEBUG lienthong::ingress::soap: request <soap:Envelope \
         xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><NopHoSo>\
         <MaHoSo>STAMEQ-2024-0001</MaHoSo><HoTen>Trần Thị Bình</HoTen><SoCCCD>079190001234</SoCCCD>\
         <DiaChi>45 Lê Lợi, Quận 1</DiaChi><NoiDung>{}</NoiDung></NopHoSo></soap:Body></soap:Envelope>",
        pad(600)
    );
    println!("log-mask (each line masked repeatedly for about 1 s, one core):");
    for (what, line) in [
        ("info line, no personal data", info.to_string()),
        ("debug line, JSON dossier", json),
        ("debug line, SOAP request", soap),
    ] {
        let started = Instant::now();
        let mut n = 0u64;
        while started.elapsed() < Duration::from_secs(1) {
            for _ in 0..100 {
                std::hint::black_box(crate::redact::mask(std::hint::black_box(&line)));
            }
            n += 100;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "  {what:<30} {:>5} bytes: {:>9.0} lines/s, {:>6.1} µs/line",
            line.len(),
            n as f64 / secs,
            secs * 1e6 / n as f64,
        );
    }
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

/// Scale-out: one ingress process and `workers` worker processes sharing the work through
/// RabbitMQ; events/s from the first request to the last delivery at the sink.
/// One cluster run: 1 ingress and `workers` worker processes; its rate, ingest → delivered.
async fn cluster(dir: &Path, args: &BenchArgs, pad: &str, workers: usize) -> Result<f64, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let sink = Sink::new(Faults::default());
    let sink_addr = sink
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .map_err(|e| e.to_string())?;
    let prefix = format!("lienthong-bench-{}-{workers}", std::process::id());
    let amqp = crate::config::AmqpConfig {
        urls: vec![args.amqp_url.clone()],
        prefix: prefix.clone(),
        partitions: 16,
        ..Default::default()
    };
    let tail = format!(
        "[amqp]\nurls = [\"{}\"]\nprefix = \"{prefix}\"\npartitions = 16\nprefetch = 64\n",
        args.amqp_url
    );
    // One keyring for every node: bodies on the broker are sealed with it.
    let _ = std::fs::create_dir_all(dir);
    let sealing = encryption_section(dir, args);
    let node = |name: &str, port: u16| {
        let d = dir.join(name);
        let _ = std::fs::create_dir_all(&d);
        write_config_with(
            &d,
            "node.toml",
            port,
            sink_addr,
            "concurrency = 16",
            "transport = \"amqp\"",
            &format!("{tail}node = \"{name}\"\n{sealing}"),
        )
    };
    let port = free_port();
    let (ingress, _) = BusProcess::start_as(&node("ingress", port), port, "ingress")?;
    let mut nodes = vec![ingress];
    for w in 0..workers {
        let p = free_port();
        let (worker, _) = BusProcess::start_as(&node(&format!("worker-{w}"), p), p, "worker")?;
        nodes.push(worker);
    }
    // Let the workers subscribe (and share the partitions) before the traffic starts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    eprintln!("cluster, {workers} worker process(es):");
    let started = Instant::now();
    load(port, args.events, 100, args.concurrency, pad, "cluster").await?;
    let mut last_report = Instant::now();
    while sink.delivered_count() < args.events {
        if started.elapsed() > Duration::from_secs(900) {
            return Err(format!(
                "only {} of {} delivered after 15 minutes",
                sink.delivered_count(),
                args.events
            ));
        }
        if last_report.elapsed() > Duration::from_secs(2) {
            eprintln!("  delivered {} of {}", sink.delivered_count(), args.events);
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    println!(
        "cluster, 1 ingress + {workers} worker process(es), ingest → delivered: {} events in {:.2}s = {:.0} events/s",
        args.events,
        took.as_secs_f64(),
        args.events as f64 / took.as_secs_f64()
    );
    for n in nodes {
        n.stop();
    }
    let broker = crate::transport::broker::Broker::new(&amqp);
    broker
        .delete_topology(
            &["sink".to_string()],
            &std::iter::once("ingress".to_string())
                .chain((0..workers).map(|w| format!("worker-{w}")))
                .collect::<Vec<_>>(),
        )
        .await
        .map_err(|e| format!("cannot remove the bench's queues: {e}"))?;
    Ok(args.events as f64 / took.as_secs_f64())
}

/// The single node's delivery rate at full speed (ingest → delivered), with the bus it
/// ran on (still running) and its port.
async fn full_speed(
    dir: &Path,
    args: &BenchArgs,
    pad: &str,
) -> Result<(f64, BusProcess, u16, Sink), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let sink = Sink::new(Faults::default());
    let sink_addr = sink
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .map_err(|e| e.to_string())?;
    let port = free_port();
    let config = write_config(dir, port, sink_addr, "concurrency = 16", args);
    let (bus, _) = BusProcess::start(&config, port)?;
    eprintln!("end to end at full speed:");
    let started = Instant::now();
    load(port, args.events, 100, args.concurrency, pad, "e2e").await?;
    while sink.delivered_count() < args.events {
        if started.elapsed() > Duration::from_secs(600) {
            return Err(format!(
                "only {} of {} delivered after 10 minutes",
                sink.delivered_count(),
                args.events
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    let rate = args.events as f64 / took.as_secs_f64();
    println!(
        "end to end, ingest → delivered: {} events in {:.2}s = {rate:.0} events/s",
        args.events,
        took.as_secs_f64()
    );
    Ok((rate, bus, port, sink))
}

async fn end_to_end(dir: &Path, args: &BenchArgs, pad: &str) -> Result<(), String> {
    let (rate, bus, port, sink) = full_speed(dir, args, pad).await?;
    // Latency at half that rate: batches of 10 on a fixed schedule for 10 seconds.
    let target_rate = (rate / 2.0).max(100.0);
    let batches = (target_rate * 10.0 / 10.0) as usize;
    let interval = Duration::from_secs_f64(10.0 / target_rate);
    eprintln!("latency at {target_rate:.0} events/s for 10 s:");
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!("http://127.0.0.1:{port}/api/v1/units/bench/events");
    let base = 10_000_000usize;
    let sent_at = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let mut ticker = tokio::time::interval(interval);
    let mut inflight = Vec::new();
    let before = sink.delivered_count();
    for b in 0..batches {
        ticker.tick().await;
        let seqs: Vec<usize> = (0..10).map(|i| base + b * 10 + i).collect();
        let body = serde_json::to_vec(&seqs.iter().map(|s| event(*s, pad)).collect::<Vec<_>>())
            .expect("json");
        let (client, url, sent_at) = (client.clone(), url.clone(), sent_at.clone());
        inflight.push(tokio::spawn(async move {
            let now = Instant::now();
            {
                let mut g = sent_at.lock().unwrap();
                for s in &seqs {
                    g.insert(*s, now);
                }
            }
            let _ = client
                .post(&url)
                .bearer_auth(UNIT_KEY)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
        }));
    }
    for t in inflight {
        let _ = t.await;
    }
    let expected = before + batches * 10;
    let deadline = Instant::now() + Duration::from_secs(120);
    while sink.delivered_count() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sent_at = sent_at.lock().unwrap();
    let mut latencies: Vec<Duration> = sink
        .delivered()
        .iter()
        .filter_map(|r| {
            let seq = r.json()["seq"].as_u64()? as usize;
            sent_at.get(&seq).map(|s| r.at.duration_since(*s))
        })
        .collect();
    latencies.sort();
    if latencies.is_empty() {
        return Err("no latency samples".into());
    }
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "end-to-end latency at {target_rate:.0} events/s ({} samples): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        pct(0.50).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0,
        latencies.last().unwrap().as_secs_f64() * 1000.0
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
    let client = reqwest::Client::builder()
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

/// The shipped configuration (`config/lienthong.toml`, its routes and mappings) with every
/// target on the bench's sink, the bus on `port` and its data under `dir`.
fn shipped_config(dir: &Path, port: u16, sink: std::net::SocketAddr) -> Result<PathBuf, String> {
    let shipped = Path::new("config/lienthong.toml");
    let text = std::fs::read_to_string(shipped).map_err(|e| {
        format!(
            "{}: {e} (run the units scenario from the repository's top directory)",
            shipped.display()
        )
    })?;
    let mut table: toml::Table = toml::from_str(&text).map_err(|e| e.to_string())?;
    let set = |table: &mut toml::Table, path: &[&str], value: toml::Value| {
        let mut t = table;
        for key in &path[..path.len() - 1] {
            t = t
                .entry(key.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .expect("a table");
        }
        t.insert(path[path.len() - 1].to_string(), value);
    };
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    set(
        &mut table,
        &["server", "listen"],
        format!("127.0.0.1:{port}").into(),
    );
    set(
        &mut table,
        &["outbox", "data_dir"],
        dir.join("data").display().to_string().into(),
    );
    set(
        &mut table,
        &["mappings", "dir"],
        cwd.join("mappings").display().to_string().into(),
    );
    set(&mut table, &["mappings", "watch"], false.into());
    set(&mut table, &["mocks", "enabled"], false.into());
    let targets: Vec<String> = table
        .get("targets")
        .and_then(|t| t.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default();
    for target in targets {
        set(
            &mut table,
            &["targets", &target, "url"],
            format!("http://{sink}/sink/{target}").into(),
        );
        // Measure the bus and its mappings, not the shipped rate limits or the portal's
        // login dance: every target is a plain HTTP receiver here.
        if let Some(t) = table["targets"][&target].as_table_mut() {
            t.remove("rate_limit");
            t.remove("portal");
            t.remove("payment");
            t.insert("kind".into(), "http".into());
        }
    }
    let path = dir.join("units.toml");
    std::fs::write(&path, toml::to_string(&table).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    Ok(path)
}

async fn units(dir: &Path, args: &BenchArgs) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let sink = Sink::new(Faults::default());
    let sink_addr = sink
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .map_err(|e| e.to_string())?;
    let port = free_port();
    let config = shipped_config(dir, port, sink_addr)?;
    let cfg = crate::config::load_file(&config).map_err(|e| e.to_string())?;
    let keys = crate::config::validate(&cfg, |_| None)
        .map_err(|p| format!("{} config problem(s), first: {}", p.len(), p[0]))?;
    let (bus, _) = BusProcess::start(&config, port)?;
    let events = (args.events / 10).max(1_000);
    let drivers = (args.concurrency / 8).max(1);
    eprintln!(
        "units: {events} events of the four units' own formats, {drivers} unit systems at once:"
    );
    let stats = Arc::new(crate::cli::demo::DemoStats::default());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for d in 0..drivers {
        let settings = crate::cli::demo::DemoSettings {
            seed: 1_000 + d as u64,
            rate: 1_000_000,
            bad_share: 0.01,
            parallel: 8,
            limit: Some((events / drivers) as u64),
            max_dossiers: None,
            lookup_every: 0,
        };
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        tasks.push(tokio::spawn(crate::cli::demo::drive(
            addr,
            keys.clone(),
            settings,
            Arc::clone(&stats),
        )));
    }
    let progress = {
        let stats = Arc::clone(&stats);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                eprintln!("  {} accepted", stats.accepted.load(Ordering::Relaxed));
            }
        })
    };
    for t in tasks {
        let _ = t.await;
    }
    progress.abort();
    let ingest = started.elapsed();
    let accepted = stats.accepted.load(Ordering::Relaxed);
    let refused = stats.refused.load(Ordering::Relaxed);
    // Delivered once the sink has seen nothing new for a second (deliberately bad events
    // stay dead, and hold back the rest of their dossier).
    let mut last = (sink.delivered_count(), Instant::now());
    while last.1.elapsed() < Duration::from_secs(1) && started.elapsed() < Duration::from_secs(600)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let n = sink.delivered_count();
        if n != last.0 {
            last = (n, Instant::now());
        }
    }
    let settled = last.1.duration_since(started);
    println!(
        "units: {accepted} unit events accepted ({refused} refused, {} deliberately bad) in {:.2}s = {:.0} events/s; \
{} mapped deliveries done in {:.2}s = {:.0} deliveries/s",
        stats.bad.load(Ordering::Relaxed),
        ingest.as_secs_f64(),
        accepted as f64 / ingest.as_secs_f64(),
        last.0,
        settled.as_secs_f64(),
        last.0 as f64 / settled.as_secs_f64()
    );
    bus.stop();
    Ok(())
}
