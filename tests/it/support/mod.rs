//! Shared test support: configs on temporary data directories, the bus started in-process
//! on port 0, the recording sink from the mocks crate as the target, and an HTTP client.
#![allow(dead_code)]

pub mod broker;
pub mod broker_cluster;
pub mod dead_letters;
pub mod mem_notes;
pub mod webdriver;

pub use mem_notes::MemNotes;

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

/// A client that does not follow redirects (to read the dashboard's `Set-Cookie`).
pub fn browser() -> reqwest::Client {
    lienthong::tls_provider::http_client()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Sign in to the dashboard at `base` with `token` (URL-safe); the whole `Set-Cookie`.
pub async fn dashboard_sign_in(base: &str, token: &str) -> String {
    let resp = browser()
        .post(format!("{base}/dang-nhap"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "signed in");
    resp.headers()["set-cookie"].to_str().unwrap().to_string()
}

pub fn client() -> reqwest::Client {
    lienthong::tls_provider::http_client()
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

/// The shipped configuration with its targets on the mocks at `mocks` (the units' inboxes
/// on the recording sink at `sink`).
pub fn shipped_config_on(
    data: &std::path::Path,
    mocks: std::net::SocketAddr,
    sink: std::net::SocketAddr,
) -> (
    lienthong::config::Config,
    std::collections::BTreeMap<String, String>,
) {
    shipped_config_with(data, mocks, sink, &[])
}

/// [`shipped_config_on`] with `extra` environment overrides (`LIENTHONG_…` = TOML value).
pub fn shipped_config_with(
    data: &std::path::Path,
    mocks: std::net::SocketAddr,
    sink: std::net::SocketAddr,
    extra: &[(&str, &str)],
) -> (
    lienthong::config::Config,
    std::collections::BTreeMap<String, String>,
) {
    let mut vars = shipped_vars(data, mocks, sink);
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let text = std::fs::read_to_string("config/lienthong.toml").unwrap();
    let cfg =
        lienthong::config::load_str(&text, std::path::Path::new("config/lienthong.toml"), vars)
            .unwrap();
    let keys = lienthong::config::validate(&cfg, |_| None).unwrap();
    (cfg, keys)
}

/// The environment overrides that put the shipped configuration on this data directory,
/// these mocks and this sink (the units' inboxes), as [`shipped_config_with`] applies them
/// (a `lienthong run` process takes them from its environment).
pub fn shipped_vars(
    data: &std::path::Path,
    mocks: std::net::SocketAddr,
    sink: std::net::SocketAddr,
) -> Vec<(String, String)> {
    let var = |k: &str, v: String| (k.to_string(), v);
    vec![
        var("LIENTHONG_SERVER__LISTEN", "127.0.0.1:0".into()),
        var("LIENTHONG_OUTBOX__DATA_DIR", data.display().to_string()),
        var("LIENTHONG_MOCKS__ENABLED", "false".into()),
        var("LIENTHONG_MAPPINGS__WATCH", "false".into()),
        var(
            "LIENTHONG_TARGETS__PORTAL__URL",
            format!("http://{mocks}/portal"),
        ),
        var(
            "LIENTHONG_TARGETS__MINISTRY__URL",
            format!("http://{mocks}/bo-tthc"),
        ),
        var(
            "LIENTHONG_TARGETS__DATASTORE__URL",
            format!("http://{mocks}/datastore/documents"),
        ),
        var(
            "LIENTHONG_TARGETS__NOTIFY__URL",
            format!("http://{mocks}/notify/messages"),
        ),
        var(
            "LIENTHONG_TARGETS__PAYMENT__URL",
            format!("http://{mocks}/payment"),
        ),
        var(
            "LIENTHONG_LOOKUPS__POPULATION__URL",
            format!("http://{mocks}/population"),
        ),
        var(
            "LIENTHONG_LOOKUPS__POPULATION__AUTH__TOKEN_URL",
            format!("http://{mocks}/oauth/token"),
        ),
        var(
            "LIENTHONG_LOOKUPS__BUSINESS__URL",
            format!("http://{mocks}/business/TraCuuThongTinDoanhNghiep"),
        ),
        var(
            "LIENTHONG_LOOKUPS__BUSINESS__AUTH__TOKEN_URL",
            format!("http://{mocks}/oauth/token"),
        ),
        var(
            "LIENTHONG_LOOKUPS__POPULATION__RATE_LIMIT",
            "{ per_second = 10000 }".into(),
        ),
        var(
            "LIENTHONG_TARGETS__NAFOSTED_INBOX__URL",
            format!("http://{sink}/sink/nafosted_inbox"),
        ),
        var(
            "LIENTHONG_TARGETS__STAMEQ_INBOX__URL",
            format!("http://{sink}/sink/stameq_inbox"),
        ),
        var(
            "LIENTHONG_TARGETS__VARANS_INBOX__URL",
            format!("http://{sink}/sink/varans_inbox"),
        ),
        // The IP Office takes files: its folder, where the mock IP Office imports from
        // (start the mocks with `ipo_drop_dir` = [`ipo_drop_dir`] of the same `data`).
        var(
            "LIENTHONG_TARGETS__IPO_INBOX__URL",
            ipo_drop_dir(data).display().to_string(),
        ),
        var(
            "LIENTHONG_TARGETS__NOTIFY__RATE_LIMIT__PER_SECOND",
            "1000".into(),
        ),
        var(
            "LIENTHONG_TARGETS__DATASTORE__RATE_LIMIT__PER_SECOND",
            "1000".into(),
        ),
    ]
}

/// The IP Office's import folder of a bus whose data directory is `data`.
pub fn ipo_drop_dir(data: &std::path::Path) -> std::path::PathBuf {
    data.join("drop").join("ipo")
}

pub async fn get_json(url: String) -> serde_json::Value {
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The shipped configuration running in-process: its targets on the bundled mocks (every
/// payment paid, confirmations sent back to this bus), the units' inboxes on a recording
/// sink, the dev admin tokens of `config/lienthong.toml`.
pub struct ShippedBus {
    pub bus: Bus,
    pub mocks: SocketAddr,
    pub sink: Sink,
    /// Where the sink listens (the units' inboxes of this bus).
    pub sink_addr: SocketAddr,
    pub keys: BTreeMap<String, String>,
    pub dir: tempfile::TempDir,
}

pub const SHIPPED_VIEWER: &str = "dev-only-viewer-token-change-me";
pub const SHIPPED_OPERATOR: &str = "dev-only-operator-token-change-me";

impl ShippedBus {
    pub async fn start() -> ShippedBus {
        Self::start_with(|_| {}).await
    }

    /// As [`ShippedBus::start`], with the configuration adjusted first.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> ShippedBus {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bus_addr = listener.local_addr().unwrap();
        let mocks_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mocks = mocks_listener.local_addr().unwrap();
        let dir = tempfile::tempdir().unwrap();
        tokio::spawn(lienthong_mocks::serve(
            mocks_listener,
            lienthong_mocks::MockSettings {
                payment_callback_url: Some(format!("http://{bus_addr}/callbacks/payment")),
                payment_callback_delay: Duration::from_millis(50),
                payment_paid: 1.0,
                payment_failed: 0.0,
                ipo_drop_dir: Some(ipo_drop_dir(dir.path())),
                ..Default::default()
            },
        ));
        let sink = Sink::new(Faults::default());
        let sink_addr = sink.start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let (mut cfg, keys) = shipped_config_on(dir.path(), mocks, sink_addr);
        adjust(&mut cfg);
        let bus = Bus::start(cfg, keys.clone(), listener).await.unwrap();
        ShippedBus {
            bus,
            mocks,
            sink,
            sink_addr,
            keys,
            dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.bus.addr, path)
    }

    /// POST a unit's JSON event with the unit's key; panics unless it is accepted.
    pub async fn send(&self, unit: &str, flow: &str, body: &serde_json::Value) -> String {
        let resp = client()
            .post(self.url(&format!("/api/v1/units/{unit}/events?flow={flow}")))
            .bearer_auth(&self.keys[unit])
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let v: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(status, 202, "{v}");
        v["accepted"][0]["id"].as_str().unwrap().to_string()
    }

    /// Wait (up to 20 s) until message `id` of `unit` is delivered to `target`, asked as
    /// the unit would (its own key); the message's state then.
    pub async fn delivered_to(&self, unit: &str, id: &str, target: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let state: serde_json::Value = client()
                .get(self.url(&format!("/api/v1/units/{unit}/messages/{id}")))
                .bearer_auth(&self.keys[unit])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let delivered = state["deliveries"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|d| d["target"] == target && d["delivery"]["state"] == "delivered");
            if delivered {
                return state;
            }
            assert!(
                Instant::now() < deadline,
                "message {id} of {unit} not delivered to {target}: {state}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `GET /metrics`, as Prometheus scrapes it.
    pub async fn metrics(&self) -> String {
        client()
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Replace the mocks' fault rules (`POST /_mock/faults`).
    pub async fn set_faults(&self, rules: serde_json::Value) {
        let r = client()
            .post(format!("http://{}/_mock/faults", self.mocks))
            .json(&rules)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    /// GET an admin API path with a token.
    pub async fn admin(&self, path: &str, token: &str) -> (u16, serde_json::Value) {
        let resp = client()
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }
}

/// Every route checks its events at delivery (`validate = "deliver"`): for tests that
/// need dead letters of events their mapping refuses, which the door would refuse.
pub fn checked_at_delivery(cfg: &mut Config) {
    for r in cfg.routes.iter_mut() {
        r.validate = lienthong::config::Validate::Deliver;
    }
}

/// A NAFOSTED dossier event in its own JSON.
pub fn nafosted_dossier(code: &str, status: &str, channel: &str) -> serde_json::Value {
    // Taken in today (Asia/Ho_Chi_Minh): the KPIs count a dossier on its intake day, and
    // the tests read this month's figures.
    let (y, m, d) = lienthong::admin::period::civil_from_days(lienthong::outbox::tally::day_of(
        lienthong::time::now_ms(),
    ));
    serde_json::json!({
        "eventType": "dossier.updated",
        "dossierCode": code,
        "procedureCode": "1.008433",
        "procedureName": "Đăng ký đề tài nghiên cứu cơ bản do Quỹ tài trợ",
        "applicant": {"type": "individual", "fullName": "Nguyễn Thị Minh Anh",
                      "idNumber": "001203004567", "phone": "0912345678"},
        "submittedAt": format!("{y}-{m:02}-{d:02}T00:01:00+07:00"),
        "status": status,
        "channel": channel,
    })
}

/// Traffic whose KPIs are known: three NAFOSTED dossiers.
/// * HS-KPI-A: online, components digitised; a fee requested and paid through the payment
///   platform; result delivered with an electronic result document.
/// * HS-KPI-B: at the counter; its fee paid at the counter (the unit says so in its
///   approved event); approved with no result document.
/// * HS-KPI-C: online; its latest event has an unknown status: a dead letter, so its latest
///   status never reaches the portal.
///
/// The bus must check at delivery ([`checked_at_delivery`]): C's bad event is to die.
/// Expected: trực tuyến 2/3, thanh toán trực tuyến 1/2 transactions, số hóa (1 + 1)/(3 +
/// 2), kết quả đồng bộ 1/2, đồng bộ trạng thái 2/3.
pub async fn send_kpi_traffic(s: &ShippedBus) {
    let fee = serde_json::json!([{"code": "LP-NAF-01", "name": "Lệ phí thẩm định hồ sơ",
                                  "amount": 500000, "kind": "charge"}]);
    // A: online, its components digitised, the fee paid through the payment platform,
    // an electronic result. B: at the counter, the fee paid there, no electronic result.
    // C: online, its second event refused by the mapping (dead).
    let mut a = nafosted_dossier("HS-KPI-A", "submitted", "online");
    a["digitised"] = serde_json::json!(true);
    s.send("nafosted", "dossier_sync", &a).await;
    s.send(
        "nafosted",
        "fee_request",
        &serde_json::json!({
            "dossierCode": "HS-KPI-A", "procedureCode": "1.008433", "paymentRef": "KPIA-01",
            "amount": 500000, "requestedAt": "2024-03-08T09:12:45+07:00",
            "payer": {"fullName": "Nguyễn Thị Minh Anh", "idNumber": "001203004567"},
            "fees": fee,
        }),
    )
    .await;
    let mut done = nafosted_dossier("HS-KPI-A", "result_delivered", "online");
    done["results"] = serde_json::json!([{"title": "Quyết định phê duyệt", "id": "kq-1",
                                          "url": "https://nafosted.gov.vn/kq/kq-1"}]);
    s.send("nafosted", "dossier_sync", &done).await;

    let mut b = nafosted_dossier("HS-KPI-B", "awaiting_payment", "counter");
    b["fees"] = fee.clone();
    s.send("nafosted", "dossier_sync", &b).await;
    let mut b = nafosted_dossier("HS-KPI-B", "approved", "counter");
    b["fees"] = fee.clone();
    b["paidVia"] = serde_json::json!("counter");
    s.send("nafosted", "dossier_sync", &b).await;

    // C was due on 2024-04-04 and has no result: overdue.
    let mut c = nafosted_dossier("HS-KPI-C", "submitted", "online");
    c["dueAt"] = serde_json::json!("2024-04-04T17:00:00+07:00");
    s.send("nafosted", "dossier_sync", &c).await;
    s.send(
        "nafosted",
        "dossier_sync",
        &nafosted_dossier("HS-KPI-C", "frozen", "online"),
    )
    .await;

    // Settled: the payment confirmation relayed back to NAFOSTED, HS-KPI-C's bad event dead,
    // nothing else pending.
    let outbox = s.bus.outbox.clone();
    let sink = s.sink.clone();
    wait_until(Duration::from_secs(20), "the KPI traffic to settle", || {
        let st = outbox.stats();
        // HS-KPI-C's bad event, dead at the portal and at the ministry's system.
        st.dead == 2
            && st.pending == 0
            && sink
                .delivered()
                .iter()
                // The confirmation, not the payment link that comes first.
                .any(|r| r.target == "nafosted_inbox" && r.json()["event"] == "payment.confirmed")
    })
    .await;
}
