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
