//! One bus across ingress nodes: what a unit sees does not depend on which node the load
//! balancer picked.
//! - an `Idempotency-Key` sent to one node and resent to another is the second node's
//!   duplicate (the same ids), also when sent to both at once, and after the node whose
//!   guard decided is SIGKILLed; the target receives the event once.

use super::*;

/// Post `body` with `key` to `addr`: (status, body).
async fn post_keyed(addr: SocketAddr, key: &str, body: &Value) -> (u16, Value) {
    let resp = client()
        .post(format!(
            "http://{addr}/api/v1/units/nafosted/events?flow=dossier_sync"
        ))
        .bearer_auth(NAFOSTED_KEY)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Post until the answer is not `409 idempotency_in_progress`; (duplicate, id).
async fn post_until_decided(addr: SocketAddr, key: &str, event: Value) -> (bool, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = post_keyed(addr, key, &event).await;
        match status {
            202 => {
                let a = &body["accepted"][0];
                return (
                    a["duplicate"].as_bool().unwrap(),
                    a["id"].as_str().unwrap().to_string(),
                );
            }
            409 if body["error"]["code"] == "idempotency_in_progress"
                && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => panic!("{key} to {addr}: {status} {body}"),
        }
    }
}

fn log_says(dir: &Path, name: &str, what: &str) -> bool {
    std::fs::read_to_string(dir.join(format!("{name}.log")))
        .unwrap_or_default()
        .contains(what)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_is_the_clusters_whichever_node_it_is_sent_to() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let _broker = require_broker().await;
    let prefix = unique_prefix("idem");
    let sink = Sink::new(Faults::default());
    let sink_addr = sink.start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let conf =
        |name: &str| node_config(&dir.path().join(name), sink_addr, BROKER_URL, &prefix, name);
    let a = spawn_node(&conf("ingress-a"), dir.path(), "ingress-a", "ingress");
    let b = spawn_node(&conf("ingress-b"), dir.path(), "ingress-b", "ingress");
    let worker = spawn_node(&conf("worker"), dir.path(), "worker", "worker");
    // Until a guard is active (the topology declared, a first ask taken), keys are checked
    // on each node alone: warm up with keys of their own.
    let mut warm = 0;
    while !["ingress-a", "ingress-b"]
        .iter()
        .any(|n| log_says(dir.path(), n, "idempotency guard active"))
    {
        warm += 1;
        assert!(warm < 300, "no idempotency guard became active");
        post_until_decided(a.addr, &format!("warm-{warm}"), event(100 + warm, 0)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Sent to A, resent to B: B's duplicate, with A's id.
    let (dup, id_a) = post_until_decided(a.addr, "K-1", event(9, 0)).await;
    assert!(!dup, "the first send is new");
    assert_eq!(
        post_until_decided(b.addr, "K-1", event(9, 0)).await,
        (true, id_a.clone())
    );
    assert_eq!(
        post_until_decided(a.addr, "K-1", event(9, 0)).await,
        (true, id_a)
    );

    // Sent to both at once, ten times: one of them stores it, every answer has its id.
    let sends: Vec<_> = (0..10)
        .map(|i| {
            let addr = if i % 2 == 0 { a.addr } else { b.addr };
            tokio::spawn(post_until_decided(addr, "K-2", event(9, 1)))
        })
        .collect();
    let mut answers = Vec::new();
    for s in sends {
        answers.push(s.await.unwrap());
    }
    assert_eq!(
        answers.iter().filter(|(dup, _)| !dup).count(),
        1,
        "{answers:?}"
    );
    let ids: HashSet<&String> = answers.iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), 1, "{answers:?}");

    // The node whose guard decides is killed; the other's guard reads the decisions back.
    let (mut dying, survivor) = if log_says(dir.path(), "ingress-a", "idempotency guard active") {
        (a, b)
    } else {
        (b, a)
    };
    dying.child.kill().unwrap();
    dying.child.wait().unwrap();
    for key in ["K-1", "K-2"] {
        let (dup, _) = post_until_decided(survivor.addr, key, event(9, 0)).await;
        assert!(dup, "{key} after the takeover");
    }
    let (dup, _) = post_until_decided(survivor.addr, "K-3", event(9, 2)).await;
    assert!(!dup, "a new key after the takeover is new");

    // Each keyed event reached the target once.
    let expect = warm + 3;
    wait_for_all(
        &sink,
        expect,
        Duration::from_secs(60),
        dir.path(),
        "cluster-idem",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sink.delivered_count(),
        expect,
        "each keyed request delivered once"
    );
    drop((survivor, worker));
    cleanup(
        &prefix,
        &["a", "b"],
        &["ingress-a", "ingress-b", "worker"],
        8,
    )
    .await;
}
