//! Sync-status monitoring on the shipped configuration against the bundled mocks: per-unit
//! figures, a dossier by MaHoSo, a message's journey (with the mapped body), and the action
//! plan's KPIs computed from traffic whose answers are known.

use crate::support;

use serde_json::Value;
use std::time::Duration;
use support::{SHIPPED_OPERATOR, SHIPPED_VIEWER, ShippedBus, send_kpi_traffic};

fn unit<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == name)
        .unwrap_or_else(|| panic!("no unit {name} in {status}"))
}

#[tokio::test]
async fn per_unit_status_dossiers_journeys_and_kpis() {
    let s = ShippedBus::start_with(support::checked_at_delivery).await;
    send_kpi_traffic(&s).await;

    // Per unit: NAFOSTED has one dead event (a dead letter at the portal and one at the
    // ministry's system) and delivered work in the window; every configured unit is
    // listed, even those that sent nothing.
    let (code, status) = s.admin("/api/v1/status", SHIPPED_VIEWER).await;
    assert_eq!(code, 200);
    let naf = unit(&status, "nafosted");
    assert_eq!(naf["dead"], 2, "{naf}");
    assert_eq!(naf["pending"], 0);
    // 5 portal deliveries + the same 5 to the ministry + 1 payment + its payment link + 1
    // confirmation relayed to the unit (the sixth dossier event died at both, and is
    // counted as dead, not delivered).
    assert_eq!(naf["recent"]["delivered"], 13, "{naf}");
    assert_eq!(naf["recent"]["dead"], 2);
    assert!(naf["recent"]["error_rate"].as_f64().unwrap() > 0.0);
    assert_eq!(unit(&status, "stameq")["recent"]["delivered"], 0);
    assert_eq!(unit(&status, "varans")["dead"], 0);
    let portal = status["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "portal")
        .unwrap();
    assert_eq!(portal["recent"]["delivered"], 5, "{portal}");
    assert_eq!(portal["oldest_pending_age_s"], Value::Null);

    // The same per unit in Prometheus form.
    let metrics = s.metrics().await;
    assert!(
        metrics.contains(
            "lienthong_unit_deliveries_total{unit=\"nafosted\",target=\"portal\",outcome=\"delivered\"} 5"
        ),
        "{metrics}"
    );
    assert!(metrics.contains(
        "lienthong_unit_deliveries_total{unit=\"nafosted\",target=\"portal\",outcome=\"dead\"} 1"
    ));

    // A dossier by MaHoSo: A's latest status reached the portal, C's did not.
    let (code, a) = s.admin("/api/v1/dossiers/HS-KPI-A", SHIPPED_VIEWER).await;
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["portal_synced"], true, "{a}");
    assert_eq!(a["events"].as_array().unwrap().len(), 2, "{a}");
    assert_eq!(a["units"], serde_json::json!(["nafosted"]));
    let (_, c) = s.admin("/api/v1/dossiers/HS-KPI-C", SHIPPED_VIEWER).await;
    assert_eq!(c["portal_synced"], false, "{c}");
    let portal_c = c["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "portal")
        .unwrap();
    assert_eq!(portal_c["reached"], false);
    assert_eq!(portal_c["delivery"]["state"], "dead");
    let (code, none) = s.admin("/api/v1/dossiers/HS-NOWHERE", SHIPPED_VIEWER).await;
    assert_eq!(code, 404);
    assert_eq!(none["error"]["field"], "key");

    // A message's journey: received, mapped as the portal receives it, delivered.
    let first_a = a["events"][0]["id"].as_str().unwrap();
    let (code, m) = s
        .admin(
            &format!("/api/v1/messages/{first_a}?mapped=true"),
            SHIPPED_VIEWER,
        )
        .await;
    assert_eq!(code, 200);
    assert!(m["received_at"].as_str().unwrap().ends_with('Z'));
    let d = m["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["target"] == "portal")
        .unwrap();
    assert_eq!(d["delivery"]["state"], "delivered");
    assert_eq!(d["delivery"]["attempts"], 1);
    assert_eq!(d["mapped"]["body"]["service"], "DongBoHoSoMC");
    assert_eq!(d["mapped"]["body"]["data"][0]["MaHoSo"], "HS-KPI-A");
    assert_eq!(d["mapped"]["body"]["data"][0]["KenhThucHien"], "2");
    // The dead one's journey names the mapping failure.
    let last_c = c["events"][1]["id"].as_str().unwrap();
    let (_, m) = s
        .admin(
            &format!("/api/v1/messages/{last_c}?mapped=true"),
            SHIPPED_VIEWER,
        )
        .await;
    let err = m["deliveries"][0]["mapped"]["error"].as_str().unwrap();
    assert!(err.contains("TrangThaiHoSo"), "{err}");
    assert!(
        m["deliveries"][0]["delivery"]["errors"][0]["error"]
            .as_str()
            .unwrap()
            .contains("frozen"),
        "{m}"
    );

    // The KPIs, as the traffic was built to give them.
    let (code, k) = s.admin("/api/v1/kpis?refresh=true", SHIPPED_VIEWER).await;
    assert_eq!(code, 200, "{k}");
    let naf = k["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == "nafosted")
        .unwrap();
    let ratio = |id: &str| {
        let r = &naf["kpis"][id];
        (
            r["numerator"].as_u64().unwrap(),
            r["denominator"].as_u64().unwrap(),
        )
    };
    // Every numerator and denominator (see `send_kpi_traffic` for the mix).
    assert_eq!(naf["dossiers"], 3, "{naf}");
    // 1a, 1b: NAFOSTED's catalogue (mappings/nafosted/procedures.toml).
    assert_eq!(ratio("dvc_toan_trinh"), (2, 3), "{naf}");
    assert_eq!(ratio("tich_hop"), (1, 2), "{naf}");
    // 2: A and C online, B at the counter.
    assert_eq!(ratio("truc_tuyen"), (2, 3), "{naf}");
    // 3: A's fee paid through the payment platform, B's at the counter.
    assert_eq!(ratio("thanh_toan_truc_tuyen"), (1, 2), "{naf}");
    // 4a: A's digitised intake and A's electronic result over 3 dossiers and 2 finished.
    assert_eq!(ratio("so_hoa"), (2, 5), "{naf}");
    // 4b: A's result reached the portal; B finished without an electronic result.
    assert_eq!(ratio("dong_bo_ket_qua"), (1, 2), "{naf}");
    assert_eq!(ratio("dong_bo"), (2, 3), "{naf}");
    assert_eq!(naf["channel_unknown"], 0);
    // C is past its NgayHenTra without a result.
    assert_eq!(naf["overdue"], 1, "{naf}");
    assert_eq!(k["overall"]["overdue"], 1);
    let metrics = s.metrics().await;
    assert!(
        metrics.contains("lienthong_overdue_dossiers{unit=\"nafosted\"} 1"),
        "{metrics}"
    );
    // The KPIs, for Prometheus's alert on a KPI under its target.
    assert!(
        metrics.contains("lienthong_kpi_percent{unit=\"nafosted\",kpi=\"dong_bo\"} 66.7"),
        "{metrics}"
    );
    assert_eq!(naf["unknown_procedure"], 0);
    // Decision 766's progress group: A and B finished, but no event said when processing
    // ended (NgayKetThucXuLy): dated in no share, counted apart.
    assert_eq!(
        naf["progress"],
        serde_json::json!({"early": 0, "on_time": 0, "late": 0, "undated": 2,
            "in_time": {"numerator": 0, "denominator": 0, "percent": null}}),
        "{naf}"
    );
    // The form 06a of all time: three received (A and C online, B at the counter), A
    // and B finished (undated, as above), C open and past its due day today.
    assert_eq!(
        naf["form_06a"],
        serde_json::json!({"carried_over": 0, "received_online": 2, "received_direct": 1,
            "received_channel_unknown": 0, "total": 3, "finished": 2, "finished_early": 0,
            "finished_on_time": 0, "finished_late": 0, "finished_undated": 2,
            "closed_otherwise": 0, "open_in_time": 0, "open_late": 1, "paused_now": 0}),
        "{naf}"
    );
    // Decision 766's groups: payment by dossiers of fee-charging procedures (A paid on
    // the portal, B at the counter), digitisation part by part.
    let i766 = |id: &str| {
        let r = &naf["index_766"][id];
        (
            r["numerator"].as_u64().unwrap(),
            r["denominator"].as_u64().unwrap(),
        )
    };
    assert_eq!(i766("online"), (2, 3), "{naf}");
    assert_eq!(i766("payment"), (1, 2), "{naf}");
    assert_eq!(i766("digitised_intake"), (1, 3), "{naf}");
    assert_eq!(i766("digitised_results"), (1, 2), "{naf}");
    assert_eq!(i766("reuse"), (0, 3), "{naf}");
    // What the figures cannot see is said with them.
    let limits = k["limits"].as_array().unwrap();
    assert!(
        limits[0]
            .as_str()
            .unwrap()
            .contains("đi qua trục liên thông"),
        "{limits:?}"
    );
    assert_eq!(naf["kpis"]["dong_bo"]["percent"], 66.7);
    assert_eq!(k["overall"]["kpis"]["so_hoa"]["percent"], 40.0);
    assert_eq!(k["definitions"].as_array().unwrap().len(), 7);
    assert_eq!(k["definitions"][0]["plan_item"], "1a");
    assert_eq!(k["definitions"][0]["target_percent"], 80.0);
    assert_eq!(k["period"], "all");
    // A period reads only its days: every dossier was taken in (NgayTiepNhan) this month,
    // nothing in 2020.
    let this_month = {
        let (y, m, _) = lienthong::admin::period::civil_from_days(
            lienthong::outbox::tally::day_of(lienthong::time::now_ms()),
        );
        format!("{y}-{m:02}")
    };
    let (code, month) = s
        .admin(
            &format!("/api/v1/kpis?period={this_month}&unit=nafosted"),
            SHIPPED_VIEWER,
        )
        .await;
    assert_eq!(code, 200, "{month}");
    assert_eq!(month["period"], this_month.as_str());
    assert_eq!(month["units"].as_array().unwrap().len(), 1);
    assert_eq!(month["units"][0]["kpis"], naf["kpis"]);
    let (_, old) = s.admin("/api/v1/kpis?period=2020-Q1", SHIPPED_VIEWER).await;
    assert_eq!(old["overall"]["dossiers"], 0, "{old}");
    assert_eq!(old["overall"]["kpis"]["truc_tuyen"]["percent"], Value::Null);
    // The catalogue's targets do not depend on the period.
    assert_eq!(
        old["overall"]["kpis"]["dvc_toan_trinh"],
        k["overall"]["kpis"]["dvc_toan_trinh"]
    );
    let (code, bad) = s.admin("/api/v1/kpis?period=2024-Q5", SHIPPED_VIEWER).await;
    assert_eq!(code, 400);
    assert_eq!(bad["error"]["field"], "period");
    // A unit with no traffic has no percentage yet, rather than a misleading 0 %.
    let stameq = k["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == "stameq")
        .unwrap();
    assert_eq!(stameq["kpis"]["dong_bo"]["percent"], Value::Null);

    // Operators read everything viewers read; the cached snapshot is served without a
    // refresh and agrees.
    let (code, cached) = s.admin("/api/v1/kpis", SHIPPED_OPERATOR).await;
    assert_eq!(code, 200);
    assert_eq!(cached["overall"], k["overall"]);
    s.bus.shutdown().await.unwrap();
}

/// promtool: on the PATH, or where `scripts/test` unpacks it (Debian's prometheus package,
/// unpacked only: no service installed).
fn promtool() -> std::path::PathBuf {
    let unpacked = std::path::Path::new("target/tools/usr/bin/promtool");
    if unpacked.exists() {
        return unpacked.to_path_buf();
    }
    if std::process::Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return "promtool".into();
    }
    panic!(
        "promtool not found: scripts/test unpacks it into target/tools (apt-get download \
         prometheus; dpkg-deb -x prometheus_*.deb target/tools)"
    );
}

#[test]
fn the_shipped_alert_rules_pass_promtool_and_fire_when_they_should() {
    for args in [
        ["check", "rules", "deploy/monitoring/alerts.yml"],
        ["test", "rules", "deploy/monitoring/alerts.test.yml"],
    ] {
        let out = std::process::Command::new(promtool())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn the_dashboard_and_the_alerts_name_only_metrics_the_bus_exports() {
    let s = ShippedBus::start_with(support::checked_at_delivery).await;
    send_kpi_traffic(&s).await;
    let text = s.metrics().await;
    // Every family the bus declares (a histogram's series too).
    let mut exported = std::collections::BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            exported.insert(name.to_string());
            // OpenMetrics: a counter family's samples carry `_total`.
            if kind == "counter" {
                exported.insert(format!("{name}_total"));
            }
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    exported.insert(format!("{name}{suffix}"));
                }
            }
        }
    }
    assert!(exported.contains("lienthong_kpi_percent"), "{text}");
    // The data directory's durable-write time, measured at start on the real disk.
    let fsync: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("lienthong_outbox_fsync_seconds{stat=\"median\"} "))
        .unwrap_or_else(|| panic!("no fsync time: {text}"))
        .parse()
        .unwrap();
    assert!(fsync > 0.0 && fsync < 5.0, "{fsync}");
    // The KPIs and their targets are there once the snapshot is computed.
    assert!(
        text.contains("lienthong_kpi_target_percent{kpi=\"truc_tuyen\"} 50.0"),
        "{text}"
    );
    let metric = regex::Regex::new(r"lienthong_[a-z_]+").unwrap();
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string("deploy/monitoring/grafana-dashboard.json").unwrap(),
    )
    .unwrap();
    let mut exprs = Vec::new();
    fn collect(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr", Value::String(e)) => out.push(e.clone()),
                        _ => collect(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    collect(&dashboard, &mut exprs);
    assert!(exprs.len() >= 10, "{exprs:?}");
    let alerts = std::fs::read_to_string("deploy/monitoring/alerts.yml").unwrap();
    for (source, text) in exprs
        .iter()
        .map(|e| ("dashboard", e.as_str()))
        .chain(std::iter::once(("alerts.yml", alerts.as_str())))
    {
        for name in metric.find_iter(text) {
            assert!(
                exported.contains(name.as_str()),
                "{source} names {}, which the bus does not export ({exported:?})",
                name.as_str()
            );
        }
    }
    s.bus.shutdown().await.unwrap();
}

/// Prometheus itself (the server from Debian's package, unpacked beside promtool) scrapes
/// the bus: the OpenMetrics exposition parses, the counters arrive under their `_total`
/// names, and the latency buckets carry trace ids as exemplars.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_bus_with_trace_exemplars() {
    let prometheus = promtool().with_file_name("prometheus");
    let s = ShippedBus::start_with(support::checked_at_delivery).await;
    send_kpi_traffic(&s).await;
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: lienthong\n    \
             static_configs:\n      - targets: ['{}']\n",
            s.bus.addr
        ),
    )
    .unwrap();
    let mut server = std::process::Command::new(&prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--enable-feature=exemplar-storage")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", prometheus.display()));
    let http = support::client();
    let api = format!("http://127.0.0.1:{port}/api/v1");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (accepted, exemplars) = loop {
        let q = |path: String| {
            let http = http.clone();
            async move {
                match http.get(path).send().await {
                    Ok(r) => r.json::<Value>().await.unwrap_or(Value::Null),
                    Err(_) => Value::Null,
                }
            }
        };
        let accepted = q(format!("{api}/query?query=lienthong_accepted_events_total")).await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let exemplars = q(format!(
            "{api}/query_exemplars?query=lienthong_delivery_latency_seconds_bucket&start={}&end={}",
            now - 600,
            now + 60
        ))
        .await;
        let got_value = accepted["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(|v| v > 0.0);
        let got_exemplar = exemplars["data"].as_array().is_some_and(|a| !a.is_empty());
        if (got_value && got_exemplar) || std::time::Instant::now() > deadline {
            break (accepted, exemplars);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let _ = server.kill();
    let _ = server.wait();
    let up_value = accepted["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap_or("");
    assert!(
        up_value.parse::<f64>().is_ok_and(|v| v > 0.0),
        "Prometheus did not get lienthong_accepted_events_total: {accepted}"
    );
    let trace_id = exemplars["data"][0]["exemplars"][0]["labels"]["trace_id"]
        .as_str()
        .unwrap_or("");
    assert_eq!(trace_id.len(), 32, "no trace exemplar: {exemplars}");
}
