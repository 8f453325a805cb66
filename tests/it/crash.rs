//! Crash safety: a real `lienthong run` child process under concurrent load is killed with
//! SIGKILL at random moments and restarted. Every event that got a 202 must reach the
//! receiver; duplicates are counted and must carry the same `X-Message-Id`; per key, the
//! first copies arrive in order.

use crate::support;

use lienthong_mocks::{Faults, Sink};
use rand::RngExt;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;

const EVENTS: usize = 20_000;
const KEYS: usize = 500;
const CLIENTS: usize = 16;
const MIN_KILLS: usize = 5;

struct Child {
    process: tokio::process::Child,
}

async fn spawn_bus(config: &Path, log: &Path, port: u16) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let process = tokio::process::Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn lienthong");
    let client = client();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            && r.status() == 200
        {
            return Child { process };
        }
        assert!(
            Instant::now() < deadline,
            "lienthong did not come up on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_acknowledged_event() {
    let sink = Sink::new(Faults::default());
    let sink_addr = sink.start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = config_text(&dir.path().join("data"), sink_addr, "")
        .replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:{port}\""),
        )
        .replace("concurrency = 8", "concurrency = 16");
    let config_path = dir.path().join("lienthong.toml");
    std::fs::write(&config_path, config).unwrap();
    let log_path = dir.path().join("bus.log");

    let child = Arc::new(tokio::sync::Mutex::new(Some(
        spawn_bus(&config_path, &log_path, port).await,
    )));
    let acked: Arc<Mutex<HashSet<usize>>> = Arc::default();
    let next_event = Arc::new(AtomicUsize::new(0));
    let load_done = Arc::new(AtomicBool::new(false));

    // Clients: each takes the next events (a batch of 10 every fourth request, else one),
    // and resends the same request with the same Idempotency-Key until it gets a 202.
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (acked, next_event) = (acked.clone(), next_event.clone());
        clients.push(tokio::spawn(async move {
            let http = client();
            let url =
                format!("http://127.0.0.1:{port}/api/v1/units/nafosted/events?flow=dossier_sync");
            let mut request = 0usize;
            loop {
                request += 1;
                let n = if request.is_multiple_of(4) { 10 } else { 1 };
                let first = next_event.fetch_add(n, Ordering::SeqCst);
                if first >= EVENTS {
                    return;
                }
                let evts: Vec<usize> = (first..(first + n).min(EVENTS)).collect();
                let body: Vec<Value> = evts
                    .iter()
                    .map(|&e| json!({"dossierCode": format!("HS-{}", e % KEYS), "evt": e}))
                    .collect();
                let key = format!("c{c}-r{request}");
                loop {
                    let sent = http
                        .post(&url)
                        .bearer_auth(NAFOSTED_KEY)
                        .header("idempotency-key", &key)
                        .timeout(Duration::from_secs(5))
                        .json(&body)
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == 202 => {
                            acked.lock().unwrap().extend(evts.iter().copied());
                            break;
                        }
                        Ok(r) => assert_eq!(r.status(), 503, "only 'busy' is acceptable here"),
                        Err(_) => {} // the bus is down: try again shortly
                    }
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
            }
        }));
    }

    // The killer: SIGKILL at random moments, restart at once, at least MIN_KILLS times and
    // for as long as the load runs.
    let killer = {
        let (child, load_done, config_path, log_path) = (
            child.clone(),
            load_done.clone(),
            config_path.clone(),
            log_path.clone(),
        );
        tokio::spawn(async move {
            let mut kills = 0;
            while kills < MIN_KILLS || !load_done.load(Ordering::SeqCst) {
                let pause = rand::rng().random_range(150..900);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                let mut guard = child.lock().await;
                let mut c = guard.take().unwrap();
                c.process.start_kill().unwrap(); // SIGKILL
                c.process.wait().await.unwrap();
                kills += 1;
                *guard = Some(spawn_bus(&config_path, &log_path, port).await);
            }
            kills
        })
    };

    for c in clients {
        c.await.unwrap();
    }
    load_done.store(true, Ordering::SeqCst);
    let kills = killer.await.unwrap();
    let acked: HashSet<usize> = acked.lock().unwrap().clone();
    assert_eq!(
        acked.len(),
        EVENTS,
        "every event was eventually acknowledged"
    );

    // Let the last incarnation deliver everything.
    let delivered_all = || {
        let seen: HashSet<usize> = sink
            .delivered()
            .iter()
            .map(|r| r.json()["evt"].as_u64().unwrap() as usize)
            .collect();
        acked.iter().all(|e| seen.contains(e))
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    while !delivered_all() {
        if Instant::now() > deadline {
            let seen: HashSet<usize> = sink
                .delivered()
                .iter()
                .map(|r| r.json()["evt"].as_u64().unwrap() as usize)
                .collect();
            let missing: Vec<_> = acked
                .iter()
                .filter(|e| !seen.contains(e))
                .take(20)
                .collect();
            panic!(
                "acknowledged events never arrived (first: {missing:?}); bus log:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Duplicates carry the same message id; per key the first copies are in order.
    let mut ids: HashMap<usize, String> = HashMap::new();
    let mut duplicates = 0;
    let mut first_seen: HashMap<String, Vec<usize>> = HashMap::new();
    for r in sink.delivered() {
        let evt = r.json()["evt"].as_u64().unwrap() as usize;
        match ids.get(&evt) {
            Some(id) => {
                duplicates += 1;
                assert_eq!(
                    id, &r.message_id,
                    "event {evt} arrived twice under different message ids"
                );
            }
            None => {
                ids.insert(evt, r.message_id.clone());
                first_seen
                    .entry(r.key.clone().unwrap())
                    .or_default()
                    .push(evt);
            }
        }
    }
    for (key, evts) in &first_seen {
        assert!(
            evts.windows(2).all(|w| w[0] < w[1]),
            "key {key} out of order: {evts:?}"
        );
    }
    println!(
        "crash test: {EVENTS} events acknowledged, {kills} SIGKILLs, all delivered, {duplicates} duplicate deliveries (same X-Message-Id)"
    );
    assert!(kills >= MIN_KILLS);
    child
        .lock()
        .await
        .take()
        .unwrap()
        .process
        .start_kill()
        .unwrap();
}
