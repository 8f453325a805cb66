//! Worker processes: they share the work, and one SIGKILLed or stopped mid-batch loses
//! nothing and sends nothing twice; publishes refused by the broker are each reported.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_processes_share_the_work_and_one_killed_or_stopped_loses_nothing() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let _broker = require_broker().await;
    let prefix = unique_prefix("kill");
    // 5 % of deliveries fail: when the worker dies, some dossiers are parked behind an
    // event waiting for its retry, and the worker taking over must keep them parked.
    let sink = Sink::new(Faults::default());
    sink.set_target_faults(
        "a",
        Faults {
            error_ratio: 0.05,
            ..Faults::default()
        },
    );
    let sink_addr = sink.start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = "amqp://guest:guest@127.0.0.1:5672/%2f";
    let conf = |name: &str| node_config(&dir.path().join(name), sink_addr, url, &prefix, name);
    let ingress = spawn_node(&conf("ingress"), dir.path(), "ingress", "ingress");
    let mut w1 = spawn_node(&conf("worker-1"), dir.path(), "worker-1", "worker");
    let mut w2 = spawn_node(&conf("worker-2"), dir.path(), "worker-2", "worker");

    // 600 dossiers, 20 events each, interleaved as units send them.
    let events: Vec<Value> = (0..20)
        .flat_map(|seq| (0..600).map(move |key| event(key, seq)))
        .collect();
    let sender = tokio::spawn(async move { send_all(ingress.addr, &events).await });
    wait_until_delivered(&sink, 3_000).await;
    // A quarter of the way through, one worker dies without a word.
    w1.child.kill().unwrap(); // SIGKILL
    w1.child.wait().unwrap();
    // A third worker joins and stands by; halfway, the second is stopped the ordinary way
    // (SIGTERM) while its partitions hold deliveries not yet acknowledged: the standby
    // takes over, and those come back to it before the dossiers' later events.
    let mut w3 = spawn_node(&conf("worker-3"), dir.path(), "worker-3", "worker");
    wait_until_delivered(&sink, 6_000).await;
    let stopped = Command::new("kill")
        .args(["-TERM", &w2.child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let exit = w2.child.wait().unwrap();
    assert!(exit.success(), "worker-2 stopped with {exit}");
    // A fourth stands by; three quarters through, the third dies mid-batch too: its
    // batches come back with events it already delivered or handed to a delay queue,
    // and none may reach the target after its dossier's later events.
    let w4 = spawn_node(&conf("worker-4"), dir.path(), "worker-4", "worker");
    wait_until_delivered(&sink, 9_000).await;
    w3.child.kill().unwrap(); // SIGKILL
    w3.child.wait().unwrap();
    sender.await.unwrap();
    wait_for_all(
        &sink,
        12_000,
        Duration::from_secs(180),
        dir.path(),
        "cluster-kill",
    )
    .await;

    drop((ingress, w1, w2, w3, w4)); // stopped before their queues go
    cleanup(
        &prefix,
        &["a", "b"],
        &["ingress", "worker-1", "worker-2", "worker-3", "worker-4"],
        8,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_mid_batch_hands_the_rest_on_and_nothing_is_sent_twice() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let _broker = require_broker().await;
    let prefix = unique_prefix("batch");
    // Every delivery takes 10 ms, so a batch from the ingress (up to 256 events, one
    // message per partition) is still being worked through when the worker stops.
    let sink = Sink::new(Faults {
        delay: Duration::from_millis(10),
        ..Faults::default()
    });
    let sink_addr = sink.start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let operator = "operator-token-0123456789";
    let conf = |name: &str| {
        let admin = format!(
            "[[admin.tokens]]\nname = \"ops\"\nrole = \"operator\"\ntoken_env = \"TEST_UNSET_OPERATOR\"\ndev_token = \"{operator}\"\n"
        );
        let base = node_config(&dir.path().join(name), sink_addr, BROKER_URL, &prefix, name);
        format!("{base}\n{admin}")
    };
    let ingress = spawn_node(&conf("ingress"), dir.path(), "ingress", "ingress");
    let mut w1 = spawn_node(&conf("worker-1"), dir.path(), "worker-1", "worker");
    // 100 dossiers, 8 events each, sent in one go: the ingress forwards them in batches.
    let events: Vec<Value> = (0..8)
        .flat_map(|seq| (0..100).map(move |key| event(key, seq)))
        .collect();
    send_all(ingress.addr, &events).await;
    wait_until_delivered(&sink, 50).await;
    // The operator pauses the target on the worker: each partition finishes the delivery
    // in hand and waits before the next one of its batch. Then the worker is stopped the
    // ordinary way, with its batches part-way done, and a second worker takes over.
    let paused = client()
        .post(format!("http://{}/api/v1/targets/a/pause", w1.addr))
        .bearer_auth(operator)
        .send()
        .await
        .unwrap();
    assert_eq!(paused.status(), 200, "{}", paused.text().await.unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let settled_before_stop = sink.delivered_count();
    assert!(
        settled_before_stop < events.len(),
        "the worker finished everything before it was stopped: nothing tested"
    );
    let w2 = spawn_node(&conf("worker-2"), dir.path(), "worker-2", "worker");
    let stopped = Command::new("kill")
        .args(["-TERM", &w1.child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let exit = w1.child.wait().unwrap();
    assert!(exit.success(), "worker-1 stopped with {exit}");
    wait_for_all(
        &sink,
        events.len(),
        Duration::from_secs(120),
        dir.path(),
        "cluster-batch",
    )
    .await;
    // What worker-1 settled was acknowledged with the rest of its batch handed on: none of
    // it comes back to worker-2 (leaving the batch unacknowledged would send it again).
    let mut sent: HashMap<(String, i64), usize> = HashMap::new();
    for r in sink.requests() {
        let body = r.json();
        let id = (
            body["dossierCode"].as_str().unwrap_or_default().to_string(),
            body["seq"].as_i64().unwrap_or(-1),
        );
        *sent.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = sent.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(sent.len(), events.len());

    drop((ingress, w1, w2));
    cleanup(
        &prefix,
        &["a", "b"],
        &["ingress", "worker-1", "worker-2"],
        8,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unroutable_publishes_in_flight_together_are_each_reported_as_such() {
    use lienthong::transport::broker::Broker;
    let _broker = require_broker().await;
    let prefix = unique_prefix("returns");
    let broker = Broker::new(&lienthong::config::AmqpConfig {
        urls: vec![BROKER_URL.into()],
        prefix: prefix.clone(),
        partitions: 2,
        ..Default::default()
    });
    broker.declare(&["a".to_string()], "n").await.unwrap();
    let channel = broker.confirm_channel().await.unwrap();
    let exchange = broker.topology.deliver_exchange();
    // Every other message goes to a routing key no queue is bound to. lapin gives a
    // returned message to whichever confirm completes next; each must still be judged
    // by its own fate (one reported confirmed while it was returned would be lost).
    let mut publishes = Vec::new();
    for i in 0..400 {
        let id = format!("m-{i}");
        let key = if i % 2 == 0 { "a.0" } else { "nowhere.0" };
        let properties = lapin::BasicProperties::default().with_message_id(id.as_str().into());
        let started = broker
            .start_publish(&channel, &exchange, key, b"{}", properties)
            .await;
        publishes.push((id, started));
    }
    let results = broker.confirmed_together(publishes).await;
    let wrong: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(i, r)| r.is_err() != (i % 2 == 1))
        .map(|(i, _)| i)
        .collect();
    assert!(wrong.is_empty(), "misjudged publishes: {wrong:?}");
    cleanup(&prefix, &["a"], &["n"], 2).await;
}
