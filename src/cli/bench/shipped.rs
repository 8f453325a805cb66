//! The scenarios on the shipped configuration (`config/lienthong.toml`: its routes, its
//! mappings, its sealed outbox), without its rate limits:
//!
//! - `units`: the mock unit systems' traffic as they send it (whole dossier lives, all
//!   four units' formats, a share deliberately bad), ingest → mapped and delivered, every
//!   target a plain HTTP receiver on loopback;
//! - `routes`: the shipped routes at full speed beside the bare path, in the same run.
//!   First `e2e` (the bench route: one target, no mapping), then the real routes: NAFOSTED
//!   JSON in batches of 100 and as single events, STAMEQ SOAP envelopes (one dossier each)
//!   and IP Office CSV files of 100 rows (TCVN3), every event a `dossier_sync` mapped for
//!   the portal and for the ministry, delivered by their own connectors (the portal's
//!   calls of up to 20 dossiers, the ministry's one by one) to the bundled mocks, served
//!   by this process. The bodies are built once from the mock units' generator and
//!   cycled through, so the 64 clients cost the CPU little and the bus is the limit.
//!   Printed: events/s accepted and delivered (every delivery of every accepted event
//!   done, read from `/api/v1/status`), and their ratio to `e2e`.

use super::*;
use lienthong_mocks::units::{Traffic, UnitEvent};
use std::collections::BTreeMap;

/// The dev viewer token of the shipped config (status polling).
const VIEWER_TOKEN: &str = "dev-only-viewer-token-change-me";
/// Dossiers per unit whose lives give the routes scenario's bodies.
const DOSSIERS_PER_UNIT: u64 = 2_000;
/// Events per batch request (JSON array, CSV rows).
const PER_BATCH: usize = 100;

/// The shipped configuration (`config/lienthong.toml`, its routes and mappings) with every
/// target on the bench's sink, the bus on `port` and its data under `dir`.
/// With `platforms` (the bundled mocks' address), the portal and the ministry keep their
/// own connectors (the portal's calls of up to 20 dossiers, the login) against the mocks.
fn shipped_config(
    dir: &Path,
    port: u16,
    sink: std::net::SocketAddr,
    platforms: Option<std::net::SocketAddr>,
) -> Result<PathBuf, String> {
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
    // The copy lives elsewhere: its development keyring is named by its full path.
    if table["outbox"].get("encryption").is_some() {
        set(
            &mut table,
            &["outbox", "encryption", "dev_keys_file"],
            cwd.join("config/dev-outbox.keys")
                .display()
                .to_string()
                .into(),
        );
    }
    set(&mut table, &["mappings", "watch"], false.into());
    set(&mut table, &["mocks", "enabled"], false.into());
    let targets: Vec<String> = table
        .get("targets")
        .and_then(|t| t.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default();
    for target in targets {
        let platform = match (platforms, target.as_str()) {
            (Some(mocks), "portal") => Some(format!("http://{mocks}/portal")),
            (Some(mocks), "ministry") => Some(format!("http://{mocks}/bo-tthc")),
            _ => None,
        };
        if let Some(url) = platform {
            set(&mut table, &["targets", &target, "url"], url.into());
            if let Some(t) = table["targets"][&target].as_table_mut() {
                t.remove("rate_limit");
            }
            continue;
        }
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
            t.remove("file_drop");
            t.insert("kind".into(), "http".into());
        }
    }
    let path = dir.join("units.toml");
    std::fs::write(&path, toml::to_string(&table).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    Ok(path)
}

pub(super) async fn units(dir: &Path, args: &BenchArgs) -> Result<(), String> {
    let (sink, sink_addr) = receiver(dir).await?;
    let port = free_port();
    let config = shipped_config(dir, port, sink_addr, None)?;
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
    // are refused at the door; on a route that checks at delivery they stay dead, and hold
    // back the rest of their dossier).
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
        "units: {accepted} unit events accepted ({refused} refused, {} deliberately bad, {} of \
them refused at the door) in {:.2}s = {:.0} events/s; \
{} mapped deliveries done in {:.2}s = {:.0} deliveries/s",
        stats.bad.load(Ordering::Relaxed),
        stats.refused_at_door.load(Ordering::Relaxed),
        ingest.as_secs_f64(),
        accepted as f64 / ingest.as_secs_f64(),
        last.0,
        settled.as_secs_f64(),
        last.0 as f64 / settled.as_secs_f64()
    );
    bus.stop();
    Ok(())
}

/// One kind of request the routes scenario sends: where, as what, and its bodies.
struct RequestKind {
    label: &'static str,
    unit: &'static str,
    content_type: &'static str,
    bodies: Vec<bytes::Bytes>,
    /// Events each body carries.
    events: usize,
    /// Requests of this kind in each round of the schedule.
    per_round: usize,
}

/// The `dossier_sync` events of `dossiers` new dossier lives of `unit`, step by step
/// across the dossiers: a batch holds events of many dossiers, each dossier's in order.
fn dossier_syncs(traffic: &mut Traffic, unit: &str, dossiers: u64) -> Vec<UnitEvent> {
    let mut lives: Vec<std::collections::VecDeque<UnitEvent>> = (0..dossiers)
        .map(|_| {
            traffic
                .dossier_life(unit)
                .into_iter()
                .filter(|e| e.flow == "dossier_sync" && !e.bad)
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    while lives.iter().any(|l| !l.is_empty()) {
        out.extend(lives.iter_mut().filter_map(|l| l.pop_front()));
    }
    out
}

/// JSON arrays of `PER_BATCH` events.
fn json_batches(events: &[UnitEvent]) -> Vec<bytes::Bytes> {
    events
        .chunks_exact(PER_BATCH)
        .map(|chunk| {
            let mut body = vec![b'['];
            for (i, e) in chunk.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(&e.body);
            }
            body.push(b']');
            body.into()
        })
        .collect()
}

/// CSV files of `PER_BATCH` rows: the header once, then each event's row (every event is
/// a header line and one row, in the export's own encoding).
fn csv_files(events: &[UnitEvent]) -> Vec<bytes::Bytes> {
    let split = |body: &[u8]| {
        let at = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(0, |p| p + 2);
        (body[..at].to_vec(), body[at..].to_vec())
    };
    events
        .chunks_exact(PER_BATCH)
        .map(|chunk| {
            let mut file = split(&chunk[0].body).0;
            for e in chunk {
                file.extend_from_slice(&split(&e.body).1);
            }
            file.into()
        })
        .collect()
}

/// The routes scenario's requests: NAFOSTED JSON batches (half the events), IP Office CSV
/// files (a quarter), NAFOSTED and STAMEQ single events (an eighth each).
fn request_kinds() -> Vec<RequestKind> {
    let mut traffic = Traffic::new(36, 0.0);
    let single = |events: Vec<UnitEvent>| -> Vec<bytes::Bytes> {
        events.into_iter().map(|e| e.body.into()).collect()
    };
    let nafosted = dossier_syncs(&mut traffic, "nafosted", DOSSIERS_PER_UNIT);
    let ipo = dossier_syncs(&mut traffic, "ipo", DOSSIERS_PER_UNIT);
    let nafosted_single = dossier_syncs(&mut traffic, "nafosted", DOSSIERS_PER_UNIT);
    let stameq = dossier_syncs(&mut traffic, "stameq", DOSSIERS_PER_UNIT);
    vec![
        RequestKind {
            label: "NAFOSTED JSON, batches of 100",
            unit: "nafosted",
            content_type: "application/json",
            bodies: json_batches(&nafosted),
            events: PER_BATCH,
            per_round: 4,
        },
        RequestKind {
            label: "IP Office CSV (TCVN3), files of 100 rows",
            unit: "ipo",
            content_type: "text/csv",
            bodies: csv_files(&ipo),
            events: PER_BATCH,
            per_round: 2,
        },
        RequestKind {
            label: "NAFOSTED JSON, single events",
            unit: "nafosted",
            content_type: "application/json",
            bodies: single(nafosted_single),
            events: 1,
            per_round: 100,
        },
        RequestKind {
            label: "STAMEQ SOAP, single events",
            unit: "stameq",
            content_type: "text/xml; charset=utf-8",
            bodies: single(stameq),
            events: 1,
            per_round: 100,
        },
    ]
}

/// One round of the schedule: each kind's requests spread evenly over it.
fn schedule(kinds: &[RequestKind]) -> Vec<usize> {
    let mut slots: Vec<(f64, usize)> = kinds
        .iter()
        .enumerate()
        .flat_map(|(k, kind)| {
            (0..kind.per_round).map(move |i| ((i as f64 + 0.5) / kind.per_round as f64, k))
        })
        .collect();
    slots.sort_by(|a, b| a.0.total_cmp(&b.0));
    slots.into_iter().map(|(_, k)| k).collect()
}

/// Post about `total` events of `kinds` to the bus on `port`, `concurrency` requests at
/// a time. Returns how long it took and the events accepted per kind.
async fn post_routes(
    port: u16,
    keys: &BTreeMap<String, String>,
    kinds: Arc<Vec<RequestKind>>,
    total: usize,
    concurrency: usize,
) -> Result<(Duration, Vec<usize>), String> {
    let client = crate::tls_provider::http_client()
        .no_proxy()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())?;
    let round = Arc::new(schedule(&kinds));
    let urls: Arc<Vec<(String, String)>> = Arc::new(
        kinds
            .iter()
            .map(|k| {
                let url = format!(
                    "http://127.0.0.1:{port}/api/v1/units/{}/events?flow=dossier_sync",
                    k.unit
                );
                (url, keys.get(k.unit).cloned().unwrap_or_default())
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let reserved = Arc::new(AtomicUsize::new(0));
    let per_kind: Arc<Vec<(AtomicUsize, AtomicUsize)>> = Arc::new(
        (0..kinds.len())
            .map(|_| (AtomicUsize::new(0), AtomicUsize::new(0)))
            .collect(),
    );
    let started = Instant::now();
    let progress = {
        let per_kind = per_kind.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let done: usize = per_kind
                    .iter()
                    .map(|(_, a)| a.load(Ordering::Relaxed))
                    .sum();
                eprintln!(
                    "  routes: {done}/{total} events accepted ({:.0}/s)",
                    done as f64 / started.elapsed().as_secs_f64()
                );
            }
        })
    };
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, round, urls, next, reserved, per_kind, kinds) = (
            client.clone(),
            round.clone(),
            urls.clone(),
            next.clone(),
            reserved.clone(),
            per_kind.clone(),
            kinds.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let k = round[next.fetch_add(1, Ordering::Relaxed) % round.len()];
                let kind = &kinds[k];
                if reserved.fetch_add(kind.events, Ordering::Relaxed) >= total {
                    return Ok::<(), String>(());
                }
                let n = per_kind[k].0.fetch_add(1, Ordering::Relaxed);
                let body = kind.bodies[n % kind.bodies.len()].clone();
                let (url, key) = &urls[k];
                post_accepted(&client, url, key, kind.content_type, body)
                    .await
                    .map_err(|e| format!("{}: {e}", kind.label))?;
                per_kind[k].1.fetch_add(kind.events, Ordering::Relaxed);
            }
        }));
    }
    let mut failed = None;
    for t in tasks {
        if let Err(e) = t.await.map_err(|e| e.to_string()).and_then(|r| r) {
            failed.get_or_insert(e);
        }
    }
    progress.abort();
    if let Some(e) = failed {
        return Err(e);
    }
    let accepted = per_kind.iter().map(|(_, a)| a.load(Ordering::Relaxed));
    Ok((started.elapsed(), accepted.collect()))
}

/// Wait until the bus on `port` has nothing pending; its dead letters then.
async fn drained(port: u16, limit: Duration) -> Result<u64, String> {
    let client = crate::tls_provider::http_client()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    loop {
        let status: serde_json::Value = client
            .get(format!("http://127.0.0.1:{port}/api/v1/status"))
            .bearer_auth(VIEWER_TOKEN)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        if status["pending"] == 0 {
            return Ok(status["dead"].as_u64().unwrap_or(0));
        }
        if started.elapsed() > limit {
            return Err(format!(
                "{} deliveries still pending after {}s",
                status["pending"],
                limit.as_secs()
            ));
        }
        // Not more often: each status document walks the targets' windows, CPU the
        // bus is being measured on.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The shipped routes at full speed beside the bare `e2e` path, in the same run.
pub(super) async fn routes(root: &Path, args: &BenchArgs, pad: &str) -> Result<(), String> {
    // The bare path as the shipped config runs: its outbox sealed too.
    let bare_args = BenchArgs {
        encrypted: true,
        ..args.clone()
    };
    let (bare, bus, _, _) = full_speed(&root.join("routes-e2e"), &bare_args, pad).await?;
    bus.stop();

    let dir = root.join("routes");
    let (_sink, sink_addr) = receiver(&dir).await?;
    let port = free_port();
    let mocks_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let mocks = mocks_listener.local_addr().map_err(|e| e.to_string())?;
    let platforms = tokio::spawn(lienthong_mocks::serve(
        mocks_listener,
        lienthong_mocks::MockSettings::default(),
    ));
    let config = shipped_config(&dir, port, sink_addr, Some(mocks))?;
    let cfg = crate::config::load_file(&config).map_err(|e| e.to_string())?;
    let keys = crate::config::validate(&cfg, |_| None)
        .map_err(|p| format!("{} config problem(s), first: {}", p.len(), p[0]))?;
    let kinds = Arc::new(request_kinds());
    let (bus, _) = BusProcess::start(&config, port)?;
    eprintln!("the shipped routes at full speed:");
    let started = Instant::now();
    let (took, accepted) =
        post_routes(port, &keys, kinds.clone(), args.events, args.concurrency).await?;
    let dead = drained(port, Duration::from_secs(600)).await?;
    let delivered_in = started.elapsed();
    bus.stop();
    platforms.abort();
    let events: usize = accepted.iter().sum();
    let mix: Vec<String> = kinds
        .iter()
        .zip(&accepted)
        .map(|(k, n)| format!("{n} {}", k.label))
        .collect();
    println!(
        "routes: {events} events accepted in {:.2}s = {:.0} events/s ({})",
        took.as_secs_f64(),
        events as f64 / took.as_secs_f64(),
        mix.join(", ")
    );
    let rate = events as f64 / delivered_in.as_secs_f64();
    println!(
        "routes: every event mapped and delivered to the portal and the ministry mocks ({dead} dead) in {:.2}s = {rate:.0} events/s",
        delivered_in.as_secs_f64()
    );
    println!(
        "routes / e2e, same run: {rate:.0} / {bare:.0} events/s = {:.2}",
        rate / bare
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_of_the_schedule_is_half_json_batches_a_quarter_csv_and_singles() {
        let kinds = request_kinds();
        let round = schedule(&kinds);
        let events = |k: usize| round.iter().filter(|&&r| r == k).count() * kinds[k].events;
        let total: usize = (0..kinds.len()).map(events).sum();
        assert_eq!(total, 800);
        assert_eq!(
            (events(0), events(1), events(2), events(3)),
            (400, 200, 100, 100)
        );
        // Spread out: the two CSV files are not next to each other.
        let csv: Vec<usize> = (0..round.len()).filter(|&i| round[i] == 1).collect();
        assert!(csv[1] - csv[0] > 50, "{csv:?}");
    }

    #[test]
    fn batches_hold_a_hundred_events_of_many_dossiers_each_in_order() {
        let kinds = request_kinds();
        let json: serde_json::Value = serde_json::from_slice(&kinds[0].bodies[0]).unwrap();
        let codes: std::collections::BTreeSet<&str> = json
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["dossierCode"].as_str().unwrap())
            .collect();
        assert_eq!(
            codes.len(),
            PER_BATCH,
            "one event of each dossier per batch"
        );
        let csv = &kinds[1].bodies[0];
        let lines = csv.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
        assert_eq!(lines, PER_BATCH + 1, "a header and a row per event");
        assert!(csv.starts_with(b"so_don;"));
        assert!(kinds[3].bodies[0].starts_with(b"<?xml"));
    }
}
