//! Signed requests in a cluster: accepted once by the whole cluster, and without the
//! broker answered 503 while unsigned ones are still accepted.

use super::*;

/// A signed request is accepted once by the cluster, not once per ingress node: a
/// captured request sent to a second node is a replay there too, and still after the node
/// whose guard remembered it is killed (the next guard reads the memory back from the
/// broker's stream before it answers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_request_is_accepted_once_by_the_whole_cluster() {
    use lienthong::ingress::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let _broker = require_broker().await;
    let prefix = unique_prefix("replay");
    let sink = Sink::new(Faults::default());
    let sink_addr = sink.start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = "varans-signing-secret-0123";
    let key = "varans-dev-key-0123456789";
    let conf = |name: &str| {
        format!(
            "{}\n[units.varans]\nkey_env = \"TEST_UNSET_VARANS\"\ndev_key = \"{key}\"\n\
             hmac_secret_env = \"TEST_UNSET_VARANS_HMAC\"\ndev_hmac_secret = \"{secret}\"\n\
             [[routes]]\nunit = \"varans\"\nflow = \"dossier_sync\"\ntargets = [\"a\"]\nordering = \"none\"\n",
            node_config(&dir.path().join(name), sink_addr, BROKER_URL, &prefix, name)
        )
    };
    let first = spawn_node(&conf("ingress-1"), dir.path(), "ingress-1", "ingress");
    let second = spawn_node(&conf("ingress-2"), dir.path(), "ingress-2", "ingress");
    let path = "/api/v1/units/varans/events?flow=dossier_sync";
    let http = client();
    let send = |addr: SocketAddr, body: &'static str, ts: u64, sig: String| {
        let req = http
            .post(format!("http://{addr}{path}"))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .header(TIMESTAMP_HEADER, ts.to_string())
            .header(SIGNATURE_HEADER, sig)
            .body(body);
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            (
                status,
                body["error"]["code"].as_str().unwrap_or("").to_string(),
            )
        }
    };
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    // The nodes ask the guard once the topology is declared: until then a signed request
    // gets 503 (never a pass); wait for the first acceptance.
    let body = r#"{"dossierCode": "HS-REPLAY-1"}"#;
    let (ts, sig) = loop {
        let ts = now();
        let sig = sign(secret.as_bytes(), ts, "POST", path, body.as_bytes());
        match send(first.addr, body, ts, sig.clone()).await {
            (202, _) => break (ts, sig),
            (503, code) if code == "replay_check_unavailable" => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => panic!("unexpected answer {other:?}"),
        }
    };
    // Replayed to the other node: refused there too.
    assert_eq!(
        send(second.addr, body, ts, sig.clone()).await,
        (401, "replayed_request".into())
    );
    // Many replays at once, to both nodes: none passes.
    let replays: Vec<_> = (0..10)
        .map(|i| {
            let addr = if i % 2 == 0 { first.addr } else { second.addr };
            send(addr, body, ts, sig.clone())
        })
        .collect();
    for answer in futures_lite::future::block_on(async {
        let mut out = Vec::new();
        for r in replays {
            out.push(r.await);
        }
        out
    }) {
        assert_eq!(answer, (401, "replayed_request".into()));
    }
    // The node whose guard is the active one dies; the other's guard takes over (reading
    // the memory back from the stream) and still refuses the replay.
    let active = |name: &str| {
        std::fs::read_to_string(dir.path().join(format!("{name}.log")))
            .unwrap_or_default()
            .contains("replay guard active")
    };
    let (mut dying, survivor, survivor_name) = match (active("ingress-1"), active("ingress-2")) {
        (true, false) => (first, second, "ingress-2"),
        (false, true) => (second, first, "ingress-1"),
        other => panic!("exactly one guard should be active, found {other:?}"),
    };
    dying.child.kill().unwrap();
    dying.child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match send(survivor.addr, body, ts, sig.clone()).await {
            (401, code) if code == "replayed_request" => break,
            (503, _) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => panic!("after the takeover the replay got {other:?}"),
        }
    }
    // A new request, newly signed, goes through.
    let body2 = r#"{"dossierCode": "HS-REPLAY-2"}"#;
    let ts2 = now();
    let sig2 = sign(secret.as_bytes(), ts2, "POST", path, body2.as_bytes());
    assert_eq!(
        send(survivor.addr, body2, ts2, sig2).await,
        (202, String::new())
    );
    assert!(active(survivor_name), "the survivor's guard took over");
    drop((dying, survivor));
    cleanup(&prefix, &["a", "b"], &["ingress-1", "ingress-2"], 8).await;
}

/// Without the broker the cluster cannot tell a replay from a first request: signed
/// requests get 503 with `Retry-After` (never a pass), while units that do not sign are
/// still accepted into the outbox as ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_requests_wait_for_the_broker_and_others_do_not() {
    use lienthong::ingress::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
    let sink = Sink::new(Faults::default());
    let sink_addr = sink.start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there: a port taken and dropped at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("amqp://guest:guest@{closed}/%2f");
    let secret = "varans-signing-secret-0123";
    let key = "varans-dev-key-0123456789";
    let config = format!(
        "{}\n[units.varans]\nkey_env = \"TEST_UNSET_VARANS\"\ndev_key = \"{key}\"\n\
         hmac_secret_env = \"TEST_UNSET_VARANS_HMAC\"\ndev_hmac_secret = \"{secret}\"\n\
         [[routes]]\nunit = \"varans\"\nflow = \"dossier_sync\"\ntargets = [\"a\"]\nordering = \"none\"\n",
        node_config(
            &dir.path().join("alone"),
            sink_addr,
            &url,
            &unique_prefix("nobroker"),
            "alone"
        )
    );
    let node = spawn_node(&config, dir.path(), "alone", "ingress");
    let path = "/api/v1/units/varans/events?flow=dossier_sync";
    let body = r#"{"dossierCode": "HS-NOBROKER"}"#;
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let resp = client()
        .post(format!("http://{}{path}", node.addr))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .header(TIMESTAMP_HEADER, ts.to_string())
        .header(
            SIGNATURE_HEADER,
            sign(secret.as_bytes(), ts, "POST", path, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(
        answer["error"]["code"], "replay_check_unavailable",
        "{answer}"
    );
    send_all(node.addr, &[event(1, 0)]).await;
}
