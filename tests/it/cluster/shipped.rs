//! The shipped flows over the broker: payments included (and their lost callbacks
//! reconciled once by one node), and every body sealed with the outbox's keys.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_flows_run_over_the_broker_payments_included() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let _broker = require_broker().await;
    let prefix = unique_prefix("shipped");
    let amqp_prefix = prefix.clone();
    let s = support::ShippedBus::start_with(move |cfg| {
        cfg.transport = lienthong::config::Transport::Amqp;
        cfg.amqp.urls = vec![support::broker::BROKER_URL.into()];
        cfg.amqp.prefix = amqp_prefix;
        cfg.amqp.partitions = 4;
        cfg.amqp.node = Some("shipped".into());
        support::checked_at_delivery(cfg);
        cfg.amqp.reconnect_delay = Duration::from_millis(200);
    })
    .await;
    // Dossiers to the portal, a fee paid through the payment platform (the Init sent by a
    // worker, the Confirm taken by the ingress: the payment reference travels between
    // them), a bad event dead-lettered back to the accepting node.
    support::send_kpi_traffic(&s).await;
    // The accepting node learns from the status exchange that the workers delivered what
    // it forwarded: then, and only then, the dossier counts as synced.
    // Both dossiers whose latest status reaches the portal (the workers' outcomes come
    // back one by one, so wait for each).
    let start = Instant::now();
    for dossier in ["HS-KPI-A", "HS-KPI-B"] {
        loop {
            let (code, a) = s
                .admin(
                    &format!("/api/v1/dossiers/{dossier}"),
                    support::SHIPPED_VIEWER,
                )
                .await;
            assert_eq!(code, 200);
            if a["portal_synced"] == true {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "{a}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let (_, c) = s
        .admin("/api/v1/dossiers/HS-KPI-C", support::SHIPPED_VIEWER)
        .await;
    assert_eq!(c["portal_synced"], false, "{c}");
    let (_, k) = s
        .admin("/api/v1/kpis?refresh=true", support::SHIPPED_VIEWER)
        .await;
    let naf = k["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == "nafosted")
        .unwrap();
    assert_eq!(naf["kpis"]["dong_bo"]["numerator"], 2, "{naf}");
    assert_eq!(
        naf["kpis"]["thanh_toan_truc_tuyen"]["numerator"], 1,
        "{naf}"
    );
    s.bus.shutdown().await.unwrap();
    cleanup(&prefix, SHIPPED_TARGETS, &["shipped"], 4).await;
}

/// With an encrypted outbox, every body the bus puts on the broker is sealed with the same
/// keys: events waiting in a partition queue (no worker yet) hold no personal data, and a
/// worker given the keys delivers them intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_bodies_are_sealed_with_the_outbox_keys() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let _broker = require_broker().await;
    let prefix = unique_prefix("sealed");
    let sink = Sink::new(Faults::default());
    let sink_addr = sink.start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("outbox.keys");
    std::fs::write(&keys, lienthong::outbox::encryption::new_key_line("k-2026")).unwrap();
    use lienthong::config::Role;
    let node = |name: &str, role: Role| {
        let text = node_config(
            &dir.path().join(name),
            sink_addr,
            support::broker::BROKER_URL,
            &prefix,
            name,
        ) + &format!(
            "[outbox.encryption]\nkeys_env = \"TEST_UNSET_OUTBOX_KEYS\"\nkeys_file = \"{}\"\n",
            keys.display()
        );
        let (mut cfg, unit_keys) = support::parse_config(&text);
        cfg.role = role;
        (cfg, unit_keys)
    };
    let start = |(cfg, unit_keys)| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        lienthong::app::Bus::start(cfg, unit_keys, listener)
            .await
            .unwrap()
    };

    // An ingress alone: what it accepts waits in the broker.
    let ingress = start(node("ingress", Role::Ingress)).await;
    let events: Vec<Value> = (0..20)
        .map(|i| {
            json!({
                "dossierCode": format!("S-{i}"),
                "seq": 0,
                "HoTen": "Nguyễn Thị Kín Đáo",
                "SoCCCD": format!("0010998877{i:02}"),
            })
        })
        .collect();
    send_all(ingress.addr, &events).await;
    let begun = Instant::now();
    while ingress.outbox.stats().pending > 0 {
        assert!(begun.elapsed() < Duration::from_secs(30), "not forwarded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let broker = lienthong::transport::broker::Broker::new(&lienthong::config::AmqpConfig {
        urls: vec![support::broker::BROKER_URL.into()],
        prefix: prefix.clone(),
        partitions: 8,
        ..Default::default()
    });
    // Read them as any broker client would (then close: unacknowledged, they stay).
    let ch = broker.channel().await.unwrap();
    let mut readers = Vec::new();
    for p in 0..8 {
        let queue = broker.topology.partition_queue("a", p);
        let reader = ch
            .basic_consume(
                queue.as_str().into(),
                format!("reader-{p}").as_str().into(),
                Default::default(),
                Default::default(),
            )
            .await
            .unwrap();
        readers.push(reader);
    }
    let mut seen = 0;
    let begun = Instant::now();
    while seen < 20 && begun.elapsed() < Duration::from_secs(20) {
        for reader in readers.iter_mut() {
            while let Ok(Some(m)) =
                tokio::time::timeout(Duration::from_millis(50), reader.next()).await
            {
                let m = m.unwrap();
                // A batch from the ingress carries several events (its `messages` header).
                let events = match m
                    .properties
                    .headers()
                    .as_ref()
                    .and_then(|h| h.inner().get("messages").cloned())
                {
                    Some(lapin::types::AMQPValue::LongUInt(n)) => n as usize,
                    _ => 1,
                };
                let data = m.data;
                let body = String::from_utf8_lossy(&data).to_string();
                assert!(
                    !body.contains("Kín Đáo") && !body.contains("0010998877"),
                    "personal data in the broker: {body}"
                );
                assert_eq!(
                    lienthong::outbox::encryption::sealed_with(&data).as_deref(),
                    Some("k-2026")
                );
                seen += events;
            }
        }
    }
    assert_eq!(seen, 20, "every event waits in a partition queue of `a`");
    ch.close(200, "read".into()).await.unwrap();

    // A worker with the same keys opens and delivers them as the unit sent them.
    let worker = start(node("worker", Role::Worker)).await;
    wait_until_delivered(&sink, 20).await;
    for r in sink.delivered() {
        let body = r.json();
        assert_eq!(body["HoTen"], "Nguyễn Thị Kín Đáo");
        assert!(body["SoCCCD"].as_str().unwrap().starts_with("0010998877"));
    }
    worker.shutdown().await.unwrap();
    ingress.shutdown().await.unwrap();
    cleanup(&prefix, &["a", "b"], &["ingress", "worker"], 8).await;
}

/// Payments whose callbacks were lost, in a cluster of two nodes: the `INIT`s go out from
/// whichever worker takes them, the open payments are shared, and one node — the holder
/// of the reconciler's lock — asks about them (`QUERY`) and fetches their receipts
/// (`GET_BILL`): each outcome and each receipt reaches the unit once, not once per node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_payment_callbacks_are_reconciled_once_by_one_node_of_the_cluster() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let _broker = require_broker().await;
    let prefix = unique_prefix("reconcile");
    let clustered = |cfg: &mut lienthong::config::Config, prefix: &str, node: &str| {
        cfg.transport = lienthong::config::Transport::Amqp;
        cfg.amqp.urls = vec![BROKER_URL.into()];
        cfg.amqp.prefix = prefix.into();
        cfg.amqp.partitions = 2;
        cfg.amqp.node = Some(node.into());
        cfg.amqp.reconnect_delay = Duration::from_millis(200);
        let payment = cfg.targets.get_mut("payment").unwrap();
        let settings = payment.payment.as_mut().unwrap();
        settings.reconcile_every = Duration::from_millis(100);
        settings.query_after = Duration::from_millis(300);
    };
    let first_prefix = prefix.clone();
    let s = support::ShippedBus::start_with(|cfg| clustered(cfg, &first_prefix, "first")).await;
    // The second node: same mocks, same unit inboxes, its own data directory.
    let second_dir = tempfile::tempdir().unwrap();
    let (mut cfg, keys) = support::shipped_config_on(second_dir.path(), s.mocks, s.sink_addr);
    clustered(&mut cfg, &prefix, "second");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let second = lienthong::app::Bus::start(cfg, keys, listener)
        .await
        .unwrap();
    let c = client();
    let lose = c
        .post(format!("http://{}/_mock/payment/callbacks", s.mocks))
        .json(&json!({"lose": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(lose.status(), 200);
    let references: Vec<String> = (0..6).map(|i| format!("NAF-CLU-{i:04}")).collect();
    for (i, reference) in references.iter().enumerate() {
        let node = if i % 2 == 0 { s.bus.addr } else { second.addr };
        let fee = json!({"dossierCode": format!("NAFOSTED-2024-0{i:04}"), "procedureCode": "1.008433",
            "paymentRef": reference, "amount": 500000, "requestedAt": "2024-03-08T09:12:45+07:00",
            "payer": {"fullName": "Nguyễn Thị Minh Anh", "idNumber": "001203004567"},
            "fees": [{"code": "LP-NAF-01", "name": "Lệ phí thẩm định hồ sơ", "amount": 500000, "kind": "charge"}]});
        let resp = c
            .post(format!(
                "http://{node}/api/v1/units/nafosted/events?flow=fee_request"
            ))
            .bearer_auth(&s.keys["nafosted"])
            .json(&fee)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());
    }
    let at_unit = |kind: &str| -> Vec<Value> {
        s.sink
            .delivered()
            .into_iter()
            .filter(|r| r.target == "nafosted_inbox")
            .map(|r| r.json())
            .filter(|v| v["event"] == kind)
            .collect()
    };
    let start = Instant::now();
    while at_unit("payment.confirmed").len() < references.len()
        || at_unit("payment.receipt").len() < references.len()
    {
        assert!(
            start.elapsed() < Duration::from_secs(45),
            "outcomes {:?}, receipts {:?}",
            at_unit("payment.confirmed"),
            at_unit("payment.receipt")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A few more rounds: nothing comes a second time.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for kind in ["payment.confirmed", "payment.receipt"] {
        let mut refs: Vec<String> = at_unit(kind)
            .iter()
            .map(|v| v["paymentRef"].as_str().unwrap().to_string())
            .collect();
        refs.sort();
        assert_eq!(refs, references, "{kind}: each payment once");
    }
    assert!(
        at_unit("payment.confirmed")
            .iter()
            .all(|v| v["status"] == "paid"),
        "{:?}",
        at_unit("payment.confirmed")
    );
    let tx = support::get_json(format!("http://{}/_mock/payment/transactions", s.mocks)).await;
    let tx = tx["transactions"].as_array().unwrap();
    assert_eq!(tx.len(), references.len(), "{tx:?}");
    assert!(
        tx.iter().all(|t| t["callbacks_sent"] == 0),
        "the mock lost every callback: {tx:?}"
    );
    assert!(
        tx.iter().all(|t| t["queries"].as_u64().unwrap() >= 1),
        "{tx:?}"
    );
    second.shutdown().await.unwrap();
    s.bus.shutdown().await.unwrap();
    cleanup(&prefix, SHIPPED_TARGETS, &["first", "second"], 2).await;
}
