//! Shared test support: configs on temporary data directories, the bus started in-process
//! on port 0, the recording sink from the mocks crate as the target, and an HTTP client.
#![allow(dead_code)]

use lienthong::app::Bus;
use lienthong::config::{self, Config};
use lienthong_mocks::{Faults, Sink};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

pub const NAFOSTED_KEY: &str = "test-nafosted-key-0123456789";
pub const STAMEQ_KEY: &str = "test-stameq-key-0123456789";

/// A config with two units, targets `a` and `b` on the sink at `sink`, and routes
/// `nafosted/dossier_sync` → a (per key on `/dossierCode`, block) and
/// `nafosted/fanout` → a, b (per key, block), `stameq/dossier_sync` → a (no ordering).
/// `extra` is appended, so tests can add or override sections.
pub fn config_text(data_dir: &Path, sink: SocketAddr, extra: &str) -> String {
    config_text_with(data_dir, sink, "", extra)
}

/// [`config_text`] with extra lines in the `[outbox]` section.
pub fn config_text_with(data_dir: &Path, sink: SocketAddr, outbox: &str, extra: &str) -> String {
    format!(
        r#"
environment = "development"
[server]
listen = "127.0.0.1:0"
max_body_bytes = 65536
max_batch = 100
[outbox]
data_dir = "{data}"
{outbox}
[units.nafosted]
key_env = "TEST_UNSET_NAFOSTED"
dev_key = "{NAFOSTED_KEY}"
[units.stameq]
key_env = "TEST_UNSET_STAMEQ"
dev_key = "{STAMEQ_KEY}"
[targets.a]
kind = "http"
url = "http://{sink}/sink/a"
timeout = "5s"
concurrency = 8
retry = {{ max_attempts = 50, max_age = "1h", base_delay = "10ms", max_delay = "100ms" }}
circuit_breaker = {{ failure_threshold = 1000, cooldown = "100ms" }}
[targets.b]
kind = "http"
url = "http://{sink}/sink/b"
timeout = "5s"
concurrency = 8
retry = {{ max_attempts = 50, max_age = "1h", base_delay = "10ms", max_delay = "100ms" }}
circuit_breaker = {{ failure_threshold = 1000, cooldown = "100ms" }}
[[routes]]
unit = "nafosted"
flow = "dossier_sync"
targets = ["a"]
ordering = "per_key"
key = "/dossierCode"
on_dead = "block"
[[routes]]
unit = "nafosted"
flow = "fanout"
targets = ["a", "b"]
ordering = "per_key"
key = "/dossierCode"
on_dead = "block"
[[routes]]
unit = "stameq"
flow = "dossier_sync"
targets = ["a"]
ordering = "none"
{extra}
"#,
        data = data_dir.display()
    )
}

pub fn parse_config(text: &str) -> (Config, BTreeMap<String, String>) {
    let cfg =
        config::load_str(text, Path::new("test.toml"), Vec::new()).expect("test config parses");
    let keys =
        config::validate(&cfg, |_| None).unwrap_or_else(|p| panic!("test config invalid: {p:?}"));
    (cfg, keys)
}

/// A sink, a temp dir and a bus started on them.
pub struct Harness {
    pub sink: Sink,
    pub sink_addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub bus: Option<Bus>,
    pub client: reqwest::Client,
    pub extra: String,
    pub outbox: String,
}

impl Harness {
    pub async fn start(faults: Faults, extra: &str) -> Harness {
        Self::start_with(faults, "", extra).await
    }

    /// Like [`Harness::start`], with extra `[outbox]` lines (e.g. a small window).
    pub async fn start_with(faults: Faults, outbox: &str, extra: &str) -> Harness {
        let sink = Sink::new(faults);
        let sink_addr = sink.start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut h = Harness {
            sink,
            sink_addr,
            dir,
            bus: None,
            client: client(),
            extra: extra.to_string(),
            outbox: outbox.to_string(),
        };
        h.restart().await;
        h
    }

    pub fn config(&self) -> (Config, BTreeMap<String, String>) {
        parse_config(&config_text_with(
            self.dir.path(),
            self.sink_addr,
            &self.outbox,
            &self.extra,
        ))
    }

    /// Shut the bus down (if running) and start it again on the same data directory.
    pub async fn restart(&mut self) {
        if let Some(bus) = self.bus.take() {
            bus.shutdown().await.unwrap();
        }
        let (cfg, keys) = self.config();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.bus = Some(Bus::start(cfg, keys, listener).await.unwrap());
    }

    pub fn bus(&self) -> &Bus {
        self.bus.as_ref().expect("bus running")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.bus().addr, path)
    }

    /// POST a JSON body to a unit's events endpoint with its key.
    pub async fn post(
        &self,
        unit: &str,
        flow: Option<&str>,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        let key = if unit == "stameq" {
            STAMEQ_KEY
        } else {
            NAFOSTED_KEY
        };
        let mut url = self.url(&format!("/api/v1/units/{unit}/events"));
        if let Some(f) = flow {
            url.push_str(&format!("?flow={f}"));
        }
        self.client
            .post(url)
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn shutdown(mut self) {
        if let Some(bus) = self.bus.take() {
            bus.shutdown().await.unwrap();
        }
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Poll `cond` every 20 ms until it holds or `timeout` passes; panics with `what`.
pub async fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
