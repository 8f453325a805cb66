//! The KPI figures are the cluster's: dossiers accepted on node A and on node B (some of
//! them finished through the other node) give the same `/api/v1/kpis` on both, every node
//! answers `/api/v1/dossiers/{code}` with the dossier's summary whichever node accepted it,
//! and a node that joins later counts them too.

use super::*;
use support::{SHIPPED_VIEWER, ShippedBus, nafosted_dossier};

const DOSSIERS: usize = 20;

async fn node(prefix: &str, name: &str) -> ShippedBus {
    let (prefix, name) = (prefix.to_string(), name.to_string());
    ShippedBus::start_with(move |cfg| {
        cfg.transport = lienthong::config::Transport::Amqp;
        cfg.amqp.urls = vec![BROKER_URL.into()];
        cfg.amqp.prefix = prefix;
        cfg.amqp.partitions = 2;
        cfg.amqp.node = Some(name);
        cfg.amqp.reconnect_delay = Duration::from_millis(200);
    })
    .await
}

/// The figures of `/api/v1/kpis` without the time they were computed at.
async fn figures(node: &ShippedBus) -> Value {
    let (code, k) = node
        .admin("/api/v1/kpis?refresh=true", SHIPPED_VIEWER)
        .await;
    assert_eq!(code, 200, "{k}");
    json!({"units": k["units"], "overall": k["overall"]})
}

/// Wait until every node of `nodes` gives the same figures, with `synced` dossiers synced.
async fn same_figures(nodes: &[(&str, &ShippedBus)], synced: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let mut all = Vec::new();
        for (_, n) in nodes {
            all.push(figures(n).await);
        }
        let agreed = all.windows(2).all(|w| w[0] == w[1]);
        let numerator = all[0]["overall"]["kpis"]["dong_bo"]["numerator"].as_u64();
        if agreed && numerator == Some(synced) {
            return all.remove(0);
        }
        assert!(
            Instant::now() < deadline,
            "the nodes' figures differ or are not settled:\n{}",
            nodes
                .iter()
                .zip(&all)
                .map(|((name, _), f)| format!("{name}: {f}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Wait until `node` knows dossier `code` (its summary), whichever node accepted it.
async fn summary(node: &ShippedBus, code: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, d) = node
            .admin(&format!("/api/v1/dossiers/{code}"), SHIPPED_VIEWER)
            .await;
        if status == 200 {
            return d;
        }
        assert_eq!(status, 404, "{d}");
        assert!(Instant::now() < deadline, "{code} never known: {d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_gives_the_clusters_figures_and_a_late_node_catches_up() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let _broker = require_broker().await;
    let prefix = unique_prefix("kpis");
    let a = node(&prefix, "kpi-a").await;
    let b = node(&prefix, "kpi-b").await;

    let code = |i: usize| format!("HS-CL-{i:02}");
    for i in 0..DOSSIERS {
        let here = if i % 2 == 0 { &a } else { &b };
        let channel = if i % 3 == 0 { "counter" } else { "online" };
        here.send(
            "nafosted",
            "dossier_sync",
            &nafosted_dossier(&code(i), "submitted", channel),
        )
        .await;
    }
    // Every fourth dossier is finished through the other node, once that node knows it
    // (two nodes changing one dossier at the same moment is not ordered).
    for i in (0..DOSSIERS).step_by(4) {
        let other = if i % 2 == 0 { &b } else { &a };
        summary(other, &code(i)).await;
        let mut done = nafosted_dossier(&code(i), "result_delivered", "online");
        done["results"] = json!([{"title": "Quyết định phê duyệt", "id": format!("kq-{i}"),
                                  "url": format!("https://nafosted.gov.vn/kq/kq-{i}")}]);
        other.send("nafosted", "dossier_sync", &done).await;
    }

    let agreed = same_figures(&[("kpi-a", &a), ("kpi-b", &b)], DOSSIERS as u64).await;
    let naf = agreed["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == "nafosted")
        .unwrap_or_else(|| panic!("{agreed}"));
    assert_eq!(naf["kpis"]["dong_bo"]["denominator"], DOSSIERS, "{naf}");
    assert_eq!(naf["kpis"]["dong_bo"]["numerator"], DOSSIERS, "{naf}");

    // A dossier B accepted, asked of A: its summary, and no events of A's own.
    let d = summary(&a, &code(1)).await;
    assert_eq!(d["events"], json!([]), "{d}");
    let s = &d["summary"][0];
    assert_eq!(s["unit"], "nafosted", "{d}");
    assert_eq!(s["procedure"], "1.008433", "{d}");
    assert_eq!(s["to_portal"], true, "{d}");
    // Finished through the other node: finished on both.
    for n in [&a, &b] {
        let d = summary(n, &code(4)).await;
        assert_eq!(d["summary"][0]["finished"], true, "{d}");
        assert_eq!(d["summary"][0]["portal_synced"], true, "{d}");
    }
    // A dossier nobody sent is still unknown.
    let (status, _) = a.admin("/api/v1/dossiers/HS-CL-NONE", SHIPPED_VIEWER).await;
    assert_eq!(status, 404);

    // A node that joins later counts what the others did.
    let c = node(&prefix, "kpi-c").await;
    let joined = same_figures(&[("kpi-a", &a), ("kpi-c", &c)], DOSSIERS as u64).await;
    assert_eq!(joined, agreed);

    for n in [a, b, c] {
        n.bus.shutdown().await.unwrap();
    }
    cleanup(&prefix, SHIPPED_TARGETS, &["kpi-a", "kpi-b", "kpi-c"], 2).await;
}

/// The shipped configuration as a cluster node's file: its paths (relative to config/)
/// made whole, the cluster transport on; the rest comes from the node's environment.
fn shipped_cluster_text() -> String {
    let repo = std::env::current_dir().unwrap().display().to_string();
    let text = std::fs::read_to_string("config/lienthong.toml")
        .unwrap()
        .replace("\"../", &format!("\"{repo}/"))
        .replace(
            "\"dev-outbox.keys\"",
            &format!("\"{repo}/config/dev-outbox.keys\""),
        );
    format!("transport = \"amqp\"\n{text}")
}

/// Post NAFOSTED dossiers `HS-KILL-<i>` to a process node, one request each.
async fn send_dossiers(node: &Node, range: std::ops::Range<u64>) {
    let http = client();
    for i in range {
        let dossier = nafosted_dossier(&format!("HS-KILL-{i:02}"), "submitted", "online");
        let resp = http
            .post(format!(
                "http://{}/api/v1/units/nafosted/events?flow=dossier_sync",
                node.addr
            ))
            .bearer_auth("dev-only-nafosted-key-change-me")
            .json(&dossier)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());
    }
}

/// Replace the mocks' fault rules.
async fn faults(mocks: SocketAddr, rules: Value) {
    let r = client()
        .post(format!("http://{mocks}/_mock/faults"))
        .json(&rules)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

/// GET an admin API path of a process node as the shipped viewer.
async fn viewer_json(node: &Node, path: &str) -> Value {
    client()
        .get(format!("http://{}{path}", node.addr))
        .bearer_auth(SHIPPED_VIEWER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Wait until a process node's `/api/v1/status` says `done`.
async fn wait_for(node: &Node, what: &str, done: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = viewer_json(node, "/api/v1/status").await;
        if done(&status) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait until both nodes count `sent` dossiers, all synced; never one counted twice.
async fn settled(a: &Node, b: &Node, sent: u64, when: &str) {
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let (on_a, on_b) = (counted(a).await, counted(b).await);
        if on_a == (sent, sent) && on_b == (sent, sent) {
            return;
        }
        assert!(
            on_a.0 <= sent && on_b.0 <= sent,
            "a dossier counted twice: A {on_a:?}, B {on_b:?} of {sent} ({when})"
        );
        assert!(
            Instant::now() < deadline,
            "not settled: A {on_a:?}, B {on_b:?} (dossiers, synced) of {sent} ({when})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `/api/v1/kpis` of a process node: the nafosted dossiers counted and synced.
async fn counted(node: &Node) -> (u64, u64) {
    let k = viewer_json(node, "/api/v1/kpis?refresh=true").await;
    let naf = k["units"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|u| u["unit"] == "nafosted");
    let of = |v: &Value| v.as_u64().unwrap_or(0);
    naf.map_or((0, 0), |u| {
        (
            of(&u["kpis"]["dong_bo"]["denominator"]),
            of(&u["kpis"]["dong_bo"]["numerator"]),
        )
    })
}

/// Node A is SIGKILLed just after accepting 30 dossiers, while its KPI changes are being
/// published (some published, some not, perhaps some published and not yet deleted from
/// its journal); restarted on the same data directory, it shares the rest, and node B
/// counts each dossier once. Then A is SIGKILLed again once it has forwarded 30 more that
/// the portal refuses for now; B's worker delivers them while A is down, and A, back,
/// counts them synced, as B does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpi_changes_are_counted_once_and_synced_through_sigkills_of_the_accepting_node() {
    const SENT: u64 = 30;
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let _broker = require_broker().await;
    let prefix = unique_prefix("kpikill");
    let dir = tempfile::tempdir().unwrap();
    let mocks_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mocks = mocks_listener.local_addr().unwrap();
    tokio::spawn(lienthong_mocks::serve(
        mocks_listener,
        lienthong_mocks::MockSettings::default(),
    ));
    let sink = Sink::new(Faults::default());
    let sink_addr = sink.start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let text = shipped_cluster_text();
    let vars = |name: &str| {
        let data = dir.path().join(name);
        std::fs::create_dir_all(support::ipo_drop_dir(&data)).unwrap();
        let mut v = support::shipped_vars(&data, mocks, sink_addr);
        for (k, val) in [
            ("LIENTHONG_AMQP__URLS", format!("[\"{BROKER_URL}\"]")),
            ("LIENTHONG_AMQP__PREFIX", prefix.clone()),
            ("LIENTHONG_AMQP__NODE", name.to_string()),
            ("LIENTHONG_AMQP__PARTITIONS", "2".into()),
            ("LIENTHONG_AMQP__RECONNECT_DELAY", "200ms".into()),
            // The portal refuses every call for a while below: with the shipped 30 s the
            // breaker opened by those refusals held B's deliveries for about as long as
            // the test waits for them (a CI run under load missed it).
            (
                "LIENTHONG_TARGETS__PORTAL__CIRCUIT_BREAKER__COOLDOWN",
                "1s".into(),
            ),
        ] {
            v.push((k.to_string(), val));
        }
        v
    };
    let b = spawn_node_with(&text, &vars("kpi-b"), dir.path(), "kpi-b", "all");
    let mut a = spawn_node_with(&text, &vars("kpi-a"), dir.path(), "kpi-a", "all");

    send_dossiers(&a, 0..SENT).await;
    // Killed while its journal is being published.
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let seen_by_b = counted(&b).await.0;
    assert!(seen_by_b <= SENT, "B counted {seen_by_b} of {SENT} sent");
    let mut a = spawn_node_with(&text, &vars("kpi-a"), dir.path(), "kpi-a", "all");
    settled(
        &a,
        &b,
        SENT,
        &format!("B had {seen_by_b} when A was killed"),
    )
    .await;

    // What A forwarded is delivered while A is down: A learns it when it is back (from its
    // durable queue, not the status fanout it was not listening to), and so does B.
    faults(mocks, json!([{"service": "portal", "error_rate": 1.0}])).await;
    send_dossiers(&a, SENT..2 * SENT).await;
    wait_for(&a, "A forwards everything", |s| s["pending"] == 0).await;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    faults(mocks, json!([])).await;
    let portal = format!("http://{mocks}/_mock/portal/dossiers");
    let deadline = Instant::now() + Duration::from_secs(30);
    while support::get_json(portal.clone()).await["dossiers"]
        .as_object()
        .map_or(0, |d| {
            d.keys().filter(|k| k.starts_with("HS-KILL-")).count()
        })
        < 2 * SENT as usize
    {
        assert!(
            Instant::now() < deadline,
            "B's worker did not deliver A's dossiers"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let a = spawn_node_with(&text, &vars("kpi-a"), dir.path(), "kpi-a", "all");
    settled(&a, &b, 2 * SENT, "delivered while A was down").await;
    drop((a, b));
    cleanup(&prefix, SHIPPED_TARGETS, &["kpi-a", "kpi-b"], 2).await;
}
