//! Scale-out over the real RabbitMQ broker at 127.0.0.1:5672 (names unique to each test,
//! deleted afterwards; the tests fail loudly when the broker cannot be reached). Each
//! module is one kind of failure or promise; this file holds what they share: nodes
//! started as `lienthong run` processes, events, and the order invariant (the target
//! never receives an earlier event of a dossier after a later one).
//! - [`workers`]: worker processes SIGKILLed, stopped and joining mid-run;
//! - [`broker_loss`]: the broker connection cut, the broker down, an ingress machine and
//!   a broker node lost (`acknowledge = "replicated"`);
//! - [`shipped`]: the shipped flows, payments and sealed bodies over the broker;
//! - [`signed`]: signed requests accepted once by the whole cluster;
//! - [`one_bus`], [`dead_letters`]: idempotency keys and dead letters are the cluster's;
//! - [`kpis`]: the KPI figures and each dossier's summary are the cluster's.

mod broker_loss;
mod dead_letters;
mod kpis;
mod one_bus;
mod shipped;
mod signed;
use crate::support;
mod workers;

use futures_lite::StreamExt;
use lienthong_mocks::{Faults, Sink};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::broker::{BROKER, BROKER_URL, TcpProxy, cleanup, require_broker, unique_prefix};
use support::{NAFOSTED_KEY, client, config_text};

/// The cluster tests run one after another: each starts several bus processes and a
/// stream of thousands of events, and on a 2-core machine running them side by side turns
/// ordinary scheduling delays into broker and HTTP timeouts that are not what is tested.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The targets of the shipped configuration (their queues, for [`cleanup`]).
const SHIPPED_TARGETS: &[&str] = &[
    "datastore",
    "ipo_inbox",
    "ministry",
    "nafosted_inbox",
    "notify",
    "payment",
    "portal",
    "stameq_inbox",
    "varans_inbox",
];

/// A node's config: the shared test config with the broker transport in front.
fn node_config(dir: &Path, sink: SocketAddr, url: &str, prefix: &str, node: &str) -> String {
    let base = config_text(
        dir,
        sink,
        &format!(
            r#"
[amqp]
urls = ["{url}"]
prefix = "{prefix}"
partitions = 8
prefetch = 32
publish_timeout = "3s"
reconnect_delay = "200ms"
node = "{node}"
"#
        ),
    );
    format!("transport = \"amqp\"\n{base}")
}

struct Node {
    child: Child,
    addr: SocketAddr,
}

/// A failing test must not leave its nodes running (consuming CPU, and from the broker).
impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `lienthong run` as its own process and wait for its address.
fn spawn_node(config: &str, dir: &Path, name: &str, role: &str) -> Node {
    spawn_node_with(config, &[], dir, name, role)
}

/// [`spawn_node`] with `vars` (`LIENTHONG_…` overrides) in the process's environment.
fn spawn_node_with(
    config: &str,
    vars: &[(String, String)],
    dir: &Path,
    name: &str,
    role: &str,
) -> Node {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config).unwrap();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .args(["run", "--config"])
        .arg(&path)
        .args(["--role", role])
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .env("RUST_LOG", "info,lienthong::transport=debug")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("the lienthong binary starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| {
                panic!(
                    "{name} exited; see {}",
                    dir.join(format!("{name}.log")).display()
                )
            })
            .unwrap();
        if let Some(a) = line.strip_prefix("lienthong listening on http://") {
            break a.trim().parse().unwrap();
        }
    };
    // Keep draining stdout so the node never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Node { child, addr }
}

fn event(key: usize, seq: usize) -> Value {
    json!({"dossierCode": format!("K-{key:04}"), "seq": seq})
}

/// Post `events` in batches of 100 to a node's ingress; every batch must be accepted.
async fn send_all(addr: SocketAddr, events: &[Value]) {
    let http = client();
    for batch in events.chunks(100) {
        let resp = http
            .post(format!(
                "http://{addr}/api/v1/units/nafosted/events?flow=dossier_sync"
            ))
            .bearer_auth(NAFOSTED_KEY)
            .json(&batch)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());
    }
}

/// Distinct events delivered, and a check of the order invariant: each dossier's events
/// first arrive in `seq` order, and the target never receives an earlier event of a
/// dossier after a later one (after a crash the latest one may come again, nothing older).
fn delivered(sink: &Sink) -> (usize, Result<(), String>) {
    let mut seen = HashSet::new();
    let mut last: HashMap<String, i64> = HashMap::new();
    let mut order = Ok(());
    for r in sink.delivered() {
        let body = r.json();
        let key = body["dossierCode"].as_str().unwrap_or_default().to_string();
        let seq = body["seq"].as_i64().unwrap_or(-1);
        let first = seen.insert((key.clone(), seq));
        let prev = last.get(&key).copied().unwrap_or(-1);
        let broken = if first {
            seq != prev + 1
        } else {
            seq < prev // a repeat of the latest is allowed, of an earlier one not
        };
        last.insert(key.clone(), prev.max(seq));
        if broken && order.is_ok() {
            let history: Vec<String> = sink
                .requests()
                .iter()
                .filter(|r| r.json()["dossierCode"] == key.as_str())
                .map(|r| {
                    format!(
                        "{}:{}@{} {}",
                        r.json()["seq"],
                        r.status,
                        r.attempt,
                        r.message_id
                    )
                })
                .collect();
            order = Err(format!(
                "{key}: seq {seq} arrived after {prev} (requests seq:status@attempt id: {})",
                history.join(" ")
            ));
        }
    }
    (seen.len(), order)
}

/// Wait until `total` distinct events are delivered, checking order all along. On a broken
/// order the nodes' logs (in `logs`) are kept under `target/artifacts/<name>` for study.
async fn wait_for_all(sink: &Sink, total: usize, timeout: Duration, logs: &Path, name: &str) {
    let start = Instant::now();
    loop {
        let (n, order) = delivered(sink);
        if let Err(e) = order {
            let kept = keep_logs(logs, name);
            panic!("per-dossier order broken: {e}; node logs kept in {kept}");
        }
        if n == total {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "only {n} of {total} events delivered after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait until the sink has accepted `n` deliveries (two minutes at most).
async fn wait_until_delivered(sink: &Sink, n: usize) {
    let start = Instant::now();
    while sink.delivered_count() < n {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the workers delivered only {} of {n} events",
            sink.delivered_count()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wait until the sink has accepted an event of `dossier` (30 seconds at most).
async fn wait_for_dossier(sink: &Sink, dossier: &str, what: &str) {
    let start = Instant::now();
    while !sink
        .delivered()
        .iter()
        .any(|r| r.json()["dossierCode"] == dossier)
    {
        assert!(start.elapsed() < Duration::from_secs(30), "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Copy the nodes' `*.log` files out of a test's temporary directory.
fn keep_logs(dir: &Path, name: &str) -> String {
    let to = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("..")
        .join("artifacts")
        .join(name);
    let _ = std::fs::create_dir_all(&to);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "log") {
            let _ = std::fs::copy(&path, to.join(entry.file_name()));
        }
    }
    to.display().to_string()
}
