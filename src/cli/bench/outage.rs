//! `lienthong bench --scenario outage`: a day's outage of the national portal, at scale.
//!
//! The bus runs with the shipped configuration (`config/lienthong.toml`: sealed outbox,
//! the portal's rate limit and batching, the real portal connector and NAFOSTED's
//! mapping). Its portal address refuses connections while NAFOSTED posts `events` status
//! events of `dossiers` dossiers in batches of 100 (each dossier's statuses moving forward:
//! submitted, accepted, under review…, approved, result delivered). Then the bus is killed
//! with SIGKILL, the mock portal comes up on that address, the bus restarts and drains.
//!
//! Printed: fill rate (over the first and the last tenth), resident memory peaks while
//! filling and while draining (sampled every 100 ms), disk use against the payload bytes,
//! the restart time, the drain rate against the portal's configured rate limit, the
//! slowest `/api/v1/status` answer throughout, and the portal mock's count of dossiers
//! whose status ever went backwards (must be 0: per-dossier order across the outage).
//!
//! The memory test of the suite (`tests/it/backlog.rs`) runs the fill half with the debug
//! binary and holds its peak under 200 MB.

use super::outage_disk::{self, store_usage};
use super::outage_traffic::nafosted_event;
use super::{BusProcess, dir_size, free_port};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The dev viewer token of the shipped config (status polling).
const VIEWER_TOKEN: &str = "dev-only-viewer-token-change-me";
const NAFOSTED_KEY: &str = "dev-only-nafosted-key-change-me";
const PER_REQUEST: usize = 100;
const CONCURRENCY: usize = 16;

pub struct OutageOptions {
    /// Data directory and config of the run (created).
    pub dir: PathBuf,
    /// The `lienthong` binary to run the bus with.
    pub exe: PathBuf,
    pub events: usize,
    pub dossiers: usize,
    /// Bring the portal back and drain (else stop after filling).
    pub drain: bool,
}

#[derive(Debug, Default)]
pub struct OutageReport {
    pub events: usize,
    pub dossiers: usize,
    pub payload_bytes: u64,
    pub fill_seconds: f64,
    pub fill_rate_first_tenth: f64,
    pub fill_rate_last_tenth: f64,
    pub fill_rss_peak_mib: f64,
    pub disk_mib_after_fill: f64,
    /// The message log's day files ([`crate::evidence`]), apart: an archive of its own,
    /// moved off the machine by day, not what the outbox holds.
    pub evidence_mib_after_fill: f64,
    pub restart_seconds: f64,
    pub drain_seconds: f64,
    pub drained: usize,
    pub drain_rss_peak_mib: f64,
    pub portal_calls_per_second: u32,
    pub portal_batch: usize,
    pub status_slowest_ms: f64,
    pub status_polls: u64,
    pub regressions: usize,
    /// The slowest of the KPI reads made with the whole backlog on disk (computed again
    /// each time, every period), and the dossiers they counted.
    pub kpi_slowest_ms: f64,
    pub kpi_reads: u64,
    pub kpi_dossiers: u64,
    /// The outbox's records by kind and its file's pages, read with the bus stopped after
    /// the fill (killed) and after the drain.
    pub store_after_fill: String,
    pub store_after_drain: String,
    /// The drained outage past retention (every platform up, retention 1s).
    pub retention: outage_disk::SweepFigures,
    pub store_after_retention: String,
}

impl OutageReport {
    pub fn print(&self) {
        let mib = |b: u64| b as f64 / 1_048_576.0;
        println!(
            "outage, portal down: {} status events of {} dossiers accepted in {:.1}s = {:.0} events/s \
             (first tenth {:.0}/s, last tenth {:.0}/s); bus RSS peak {:.0} MiB",
            self.events,
            self.dossiers,
            self.fill_seconds,
            self.events as f64 / self.fill_seconds,
            self.fill_rate_first_tenth,
            self.fill_rate_last_tenth,
            self.fill_rss_peak_mib,
        );
        println!(
            "outage: data directory {:.0} MiB for {:.0} MiB of event payloads ({:.2}x), the message log's archive apart ({:.0} MiB)",
            self.disk_mib_after_fill,
            mib(self.payload_bytes),
            self.disk_mib_after_fill / mib(self.payload_bytes).max(1.0),
            self.evidence_mib_after_fill,
        );
        if self.drained > 0 || self.drain_seconds > 0.0 {
            println!(
                "outage, portal back after SIGKILL: serving again in {:.2}s; {} events delivered in {:.1}s = {:.0} events/s \
                 (portal limit {} calls/s × {} dossiers per call); bus RSS peak while draining {:.0} MiB",
                self.restart_seconds,
                self.drained,
                self.drain_seconds,
                self.drained as f64 / self.drain_seconds.max(0.001),
                self.portal_calls_per_second,
                self.portal_batch,
                self.drain_rss_peak_mib,
            );
            println!(
                "outage: dossiers whose status went backwards at the portal: {}",
                self.regressions
            );
        }
        println!(
            "outage: /api/v1/status answered {} times, slowest {:.0} ms",
            self.status_polls, self.status_slowest_ms
        );
        println!(
            "outage: /api/v1/kpis with {} events in the outbox: {} reads (all, ytd, this month), slowest {:.1} ms, {} dossiers counted",
            self.events, self.kpi_reads, self.kpi_slowest_ms, self.kpi_dossiers
        );
        if self.retention.file_before_mib > 0.0 {
            println!(
                "outage: past retention: the outbox file {:.0} MiB -> {:.0} MiB in {:.0}s (swept and compacted by the running bus)",
                self.retention.file_before_mib,
                self.retention.file_after_mib,
                self.retention.seconds
            );
        }
        for (when, table) in [
            ("after the fill", &self.store_after_fill),
            ("after the drain", &self.store_after_drain),
            ("past retention", &self.store_after_retention),
        ] {
            if !table.is_empty() {
                println!("outage: the outbox {when}:\n{table}");
            }
        }
    }
}

/// Read the KPIs, recomputed, over several periods, with the whole backlog on disk: the
/// slowest answer, how many reads, and the dossiers counted.
async fn measure_kpi_reads(port: u16) -> Result<(f64, u64, u64), String> {
    let client = crate::tls_provider::http_client()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let month = {
        let today = crate::outbox::tally::day_of(crate::time::now_ms());
        let (y, m, _) = crate::admin::period::civil_from_days(today);
        format!("{y}-{m:02}")
    };
    let (mut slowest, mut reads, mut dossiers) = (Duration::ZERO, 0u64, 0u64);
    for _ in 0..5 {
        for query in ["refresh=true", "period=ytd", &format!("period={month}")] {
            let started = Instant::now();
            let doc: serde_json::Value = client
                .get(format!("http://127.0.0.1:{port}/api/v1/kpis?{query}"))
                .bearer_auth(VIEWER_TOKEN)
                .send()
                .await
                .map_err(|e| format!("KPI read: {e}"))?
                .json()
                .await
                .map_err(|e| format!("KPI read: {e}"))?;
            slowest = slowest.max(started.elapsed());
            reads += 1;
            // Periods go by the dossiers' own intake day (2 November in this scenario):
            // the all-time read counts every one, a later month none.
            dossiers = dossiers.max(doc["overall"]["dossiers"].as_u64().unwrap_or(0));
        }
    }
    Ok((slowest.as_secs_f64() * 1000.0, reads, dossiers))
}

/// The shipped configuration, with every national platform on `mocks` (nothing listens
/// there until the portal comes back), the bus on `port` and its data under `dir`.
pub fn shipped_on(dir: &Path, port: u16, mocks: std::net::SocketAddr) -> Result<PathBuf, String> {
    let shipped = Path::new("config/lienthong.toml");
    let text = std::fs::read_to_string(shipped).map_err(|e| {
        format!(
            "{}: {e} (run the outage scenario from the repository's top directory)",
            shipped.display()
        )
    })?;
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    let text = text.replace("127.0.0.1:9090", &mocks.to_string());
    let mut table: toml::Table = toml::from_str(&text).map_err(|e| e.to_string())?;
    let section = |table: &mut toml::Table, name: &str| -> toml::Table {
        table
            .get(name)
            .and_then(|v| v.as_table())
            .cloned()
            .unwrap_or_default()
    };
    let mut server = section(&mut table, "server");
    server.insert("listen".into(), format!("127.0.0.1:{port}").into());
    table.insert("server".into(), server.into());
    let mut outbox = section(&mut table, "outbox");
    outbox.insert(
        "data_dir".into(),
        dir.join("data").display().to_string().into(),
    );
    if let Some(enc) = outbox.get_mut("encryption").and_then(|e| e.as_table_mut()) {
        enc.insert(
            "dev_keys_file".into(),
            cwd.join("config/dev-outbox.keys")
                .display()
                .to_string()
                .into(),
        );
    }
    table.insert("outbox".into(), outbox.into());
    let mut mappings = section(&mut table, "mappings");
    mappings.insert(
        "dir".into(),
        cwd.join("mappings").display().to_string().into(),
    );
    mappings.insert("watch".into(), false.into());
    table.insert("mappings".into(), mappings.into());
    let mut mock_section = section(&mut table, "mocks");
    mock_section.insert("enabled".into(), false.into());
    table.insert("mocks".into(), mock_section.into());
    // Folder targets (the IP Office's import folder) write under the scenario's directory.
    if let Some(targets) = table.get_mut("targets").and_then(|t| t.as_table_mut()) {
        for (name, t) in targets.iter_mut() {
            if let Some(t) = t.as_table_mut()
                && t.get("kind").and_then(|k| k.as_str()) == Some("file_drop")
            {
                let folder = dir.join("drop").join(name).display().to_string();
                t.insert("url".into(), folder.into());
            }
        }
    }
    let path = dir.join("outage.toml");
    std::fs::write(&path, toml::to_string(&table).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    Ok(path)
}

/// Samples a process's resident memory every 100 ms; `peak` is the highest seen since
/// the last `take_peak`.
struct RssSampler {
    peak_kib: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let peak_kib = Arc::new(AtomicU64::new(0));
        let peak = Arc::clone(&peak_kib);
        let task = tokio::spawn(async move {
            loop {
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                if let Some(kib) = status
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        RssSampler { peak_kib, task }
    }

    fn peak_mib(&self) -> f64 {
        self.peak_kib.load(Ordering::Relaxed) as f64 / 1024.0
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Asks `/api/v1/status` every 500 ms and keeps the slowest answer (a failed or timed-out
/// request counts as 5 s).
struct StatusPoller {
    slowest_us: Arc<AtomicU64>,
    polls: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl StatusPoller {
    fn start(port: u16) -> StatusPoller {
        let slowest_us = Arc::new(AtomicU64::new(0));
        let polls = Arc::new(AtomicU64::new(0));
        let (slowest, count) = (Arc::clone(&slowest_us), Arc::clone(&polls));
        let task = tokio::spawn(async move {
            let client = crate::tls_provider::http_client()
                .no_proxy()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("client");
            let url = format!("http://127.0.0.1:{port}/api/v1/status");
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let started = Instant::now();
                let ok = client
                    .get(&url)
                    .bearer_auth(VIEWER_TOKEN)
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
                let took = if ok {
                    started.elapsed()
                } else {
                    Duration::from_secs(5)
                };
                slowest.fetch_max(took.as_micros() as u64, Ordering::Relaxed);
                count.fetch_add(1, Ordering::Relaxed);
            }
        });
        StatusPoller {
            slowest_us,
            polls,
            task,
        }
    }
}

impl Drop for StatusPoller {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Post every event, `CONCURRENCY` requests at a time (fewer with fewer than 3,200
/// dossiers); the n-th request carries events
/// `n*100..`, event i being status `i / dossiers` of dossier `i % dossiers`, so each
/// dossier's events are sent in order (a request is taken only after every request at
/// least `CONCURRENCY` before it has been answered). Returns the times at which each
/// tenth of the events was accepted.
pub async fn fill(
    port: u16,
    events: usize,
    dossiers: usize,
) -> Result<(Vec<Duration>, u64), String> {
    let per_dossier = events.div_ceil(dossiers);
    let client = crate::tls_provider::http_client()
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!("http://127.0.0.1:{port}/api/v1/units/nafosted/events?flow=dossier_sync");
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let payload = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tenths = Arc::new(std::sync::Mutex::new(Vec::new()));
    let failed = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    // A dossier's next event is `dossiers` events (dossiers / 100 requests) later: fewer
    // requests than that in flight, with room to spare, or two of a dossier's statuses
    // could be accepted in either order (the client's doing, not the bus's).
    let concurrency = (dossiers / (2 * PER_REQUEST)).clamp(1, CONCURRENCY);
    for _ in 0..concurrency {
        let (client, url, next, done, payload, tenths, failed) = (
            client.clone(),
            url.clone(),
            Arc::clone(&next),
            Arc::clone(&done),
            Arc::clone(&payload),
            Arc::clone(&tenths),
            Arc::clone(&failed),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let first = next.fetch_add(PER_REQUEST, Ordering::Relaxed);
                if first >= events || failed.load(Ordering::Relaxed) {
                    return Ok::<(), String>(());
                }
                let batch: Vec<serde_json::Value> = (first..(first + PER_REQUEST).min(events))
                    .map(|i| nafosted_event(i % dossiers, i / dossiers, per_dossier))
                    .collect();
                let n = batch.len();
                let body = serde_json::to_vec(&batch).expect("json");
                payload.fetch_add(
                    batch
                        .iter()
                        .map(|e| e.to_string().len() as u64)
                        .sum::<u64>(),
                    Ordering::Relaxed,
                );
                loop {
                    let resp = client
                        .post(&url)
                        .bearer_auth(NAFOSTED_KEY)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .map_err(|e| format!("request failed: {e}"));
                    let resp = match resp {
                        Ok(r) => r,
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            return Err(e);
                        }
                    };
                    match resp.status().as_u16() {
                        202 => break,
                        503 => tokio::time::sleep(Duration::from_millis(50)).await,
                        s => {
                            failed.store(true, Ordering::Relaxed);
                            return Err(format!(
                                "unexpected HTTP {s}: {}",
                                resp.text().await.unwrap_or_default()
                            ));
                        }
                    }
                }
                let before = done.fetch_add(n, Ordering::Relaxed);
                let tenth = (events / 10).max(1);
                if (before + n) / tenth > before / tenth {
                    tenths.lock().unwrap().push(started.elapsed());
                }
            }
        }));
    }
    let progress = {
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let d = done.load(Ordering::Relaxed);
                eprintln!(
                    "  outage: {d}/{events} events accepted ({:.0}/s)",
                    d as f64 / started.elapsed().as_secs_f64()
                );
            }
        })
    };
    let mut result = Ok(());
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(e) => result = Err(e.to_string()),
        }
    }
    progress.abort();
    result?;
    let mut tenths = tenths.lock().unwrap().clone();
    tenths.sort();
    Ok((tenths, payload.load(Ordering::Relaxed)))
}

/// Run the scenario (see the module docs).
pub async fn run(opts: &OutageOptions) -> Result<OutageReport, String> {
    std::fs::create_dir_all(&opts.dir).map_err(|e| e.to_string())?;
    let port = free_port();
    // Reserved for the mocks; nothing listens there while the portal is "down", so the
    // bus's connections are refused.
    let mocks_port = free_port();
    let mocks_addr: std::net::SocketAddr = ([127, 0, 0, 1], mocks_port).into();
    let config = shipped_on(&opts.dir, port, mocks_addr)?;
    let cfg = crate::config::load_file(&config).map_err(|e| e.to_string())?;
    let portal = cfg
        .targets
        .get("portal")
        .ok_or("the shipped config has no `portal` target")?;
    let mut report = OutageReport {
        events: opts.events,
        dossiers: opts.dossiers,
        portal_calls_per_second: portal.rate_limit.as_ref().map_or(0, |r| r.per_second),
        portal_batch: portal.batch,
        ..OutageReport::default()
    };

    eprintln!(
        "outage: the portal is down; posting {} events of {} dossiers:",
        opts.events, opts.dossiers
    );
    let (bus, _) = BusProcess::spawn(&opts.exe, &config, port, "all")?;
    let rss = RssSampler::start(bus.child.id());
    let status = StatusPoller::start(port);
    let started = Instant::now();
    let (tenths, payload) = fill(port, opts.events, opts.dossiers).await?;
    report.fill_seconds = started.elapsed().as_secs_f64();
    report.payload_bytes = payload;
    let tenth = (opts.events / 10).max(1) as f64;
    if let (Some(first), true) = (tenths.first(), tenths.len() >= 2) {
        report.fill_rate_first_tenth = tenth / first.as_secs_f64();
        let n = tenths.len();
        report.fill_rate_last_tenth = tenth / (tenths[n - 1] - tenths[n - 2]).as_secs_f64();
    }
    // Let a sample or two land after the last request.
    tokio::time::sleep(Duration::from_millis(300)).await;
    report.fill_rss_peak_mib = rss.peak_mib().max(bus.memory_mb().0);
    let evidence = dir_size(&opts.dir.join("data").join("evidence"));
    report.disk_mib_after_fill =
        dir_size(&opts.dir.join("data")).saturating_sub(evidence) as f64 / 1_048_576.0;
    report.evidence_mib_after_fill = evidence as f64 / 1_048_576.0;
    drop(rss);
    let mut slowest_us = status.slowest_us.load(Ordering::Relaxed);
    let mut polls = status.polls.load(Ordering::Relaxed);
    drop(status);
    (report.kpi_slowest_ms, report.kpi_reads, report.kpi_dossiers) =
        measure_kpi_reads(port).await?;
    eprintln!(
        "outage: KPIs read {} times with the backlog on disk, slowest {:.1} ms",
        report.kpi_reads, report.kpi_slowest_ms
    );

    if opts.drain {
        bus.kill();
        report.store_after_fill = store_usage(&opts.dir.join("data"))?;
        let portal = lienthong_mocks::portal::Portal::new(Default::default());
        let listener = tokio::net::TcpListener::bind(mocks_addr)
            .await
            .map_err(|e| format!("cannot bring the mock portal up on {mocks_addr}: {e}"))?;
        // Every platform is back: the ministry's system too.
        let router = portal
            .router()
            .merge(lienthong_mocks::portal::Portal::ministry().router());
        let mocks = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let (bus, up) = BusProcess::spawn(&opts.exe, &config, port, "all")?;
        report.restart_seconds = up.as_secs_f64();
        let rss = RssSampler::start(bus.child.id());
        let status = StatusPoller::start(port);
        eprintln!("outage: the portal is back; draining:");
        let drain_started = Instant::now();
        let mut last = (0usize, Instant::now());
        let mut last_print = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            // Every row the portal took (a row at the status it holds changes no status).
            let n = portal.rows_taken();
            if n != last.0 {
                last = (n, Instant::now());
            }
            if last_print.elapsed() > Duration::from_secs(5) {
                eprintln!(
                    "  outage: {n}/{} events at the portal ({:.0}/s)",
                    opts.events,
                    n as f64 / drain_started.elapsed().as_secs_f64()
                );
                last_print = Instant::now();
            }
            if n >= opts.events || last.1.elapsed() > Duration::from_secs(30) {
                break;
            }
        }
        report.drained = last.0;
        report.drain_seconds = last.1.duration_since(drain_started).as_secs_f64();
        report.drain_rss_peak_mib = rss.peak_mib();
        report.regressions = portal.regressions().len();
        slowest_us = slowest_us.max(status.slowest_us.load(Ordering::Relaxed));
        polls += status.polls.load(Ordering::Relaxed);
        drop((rss, status));
        bus.stop();
        report.store_after_drain = store_usage(&opts.dir.join("data"))?;
        report.retention = outage_disk::run(&opts.exe, &config, port).await?;
        mocks.abort();
        report.store_after_retention = store_usage(&opts.dir.join("data"))?;
    } else {
        bus.stop();
    }
    report.status_slowest_ms = slowest_us as f64 / 1000.0;
    report.status_polls = polls;
    Ok(report)
}
