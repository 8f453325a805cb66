//! The cluster's dead letters are every node's: an event the target refuses, accepted on
//! node A, is listed and readable on B and on a node C that joins later; replayed on B it
//! is delivered and no node lists it any more; dropped on C, no node lists it.

use super::*;

const OPERATOR: &str = "cluster-test-operator-token";

fn with_operator(config: String) -> String {
    config
        + &format!(
            r#"
[[admin.tokens]]
name = "test"
role = "operator"
token_env = "TEST_UNSET_ADMIN"
dev_token = "{OPERATOR}"
"#
        )
}

/// The dead letters `node` lists: (id, dossier, payload's note).
async fn listed(node: &Node) -> Vec<(String, String)> {
    let resp = client()
        .get(format!("http://{}/api/v1/dead-letters?limit=50", node.addr))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let mut out: Vec<(String, String)> = body["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_string(),
                d["key"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

/// Wait until `node` lists exactly the dossiers `keys`.
async fn wait_listed(node: &Node, name: &str, keys: &[&str]) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = listed(node).await;
        if list
            .iter()
            .map(|(_, k)| k.as_str())
            .eq(keys.iter().copied())
        {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "{name} lists {list:?}, expected the dossiers {keys:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn operate(node: &Node, path: &str, body: Value) -> (u16, Value) {
    let resp = client()
        .post(format!("http://{}{path}", node.addr))
        .bearer_auth(OPERATOR)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_is_listed_replayed_and_dropped_on_every_node() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let _broker = require_broker().await;
    let prefix = unique_prefix("dead");
    let sink = Sink::new(Faults::default());
    sink.set_target_faults(
        "a",
        Faults {
            reject_containing: Some("POISON".into()),
            ..Faults::default()
        },
    );
    let sink_addr = sink.start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let conf = |name: &str| {
        with_operator(node_config(
            &dir.path().join(name),
            sink_addr,
            BROKER_URL,
            &prefix,
            name,
        ))
    };
    let a = spawn_node(&conf("ingress-a"), dir.path(), "ingress-a", "ingress");
    let b = spawn_node(&conf("ingress-b"), dir.path(), "ingress-b", "ingress");
    let worker = spawn_node(&conf("worker"), dir.path(), "worker", "worker");

    // Two events the target refuses, and one it takes, all accepted on A.
    let poison = |key: &str| json!({"dossierCode": key, "note": "POISON"});
    send_all(a.addr, &[poison("P-1"), poison("P-2"), event(1, 0)]).await;
    let on_a = wait_listed(&a, "ingress-a", &["P-1", "P-2"]).await;
    let on_b = wait_listed(&b, "ingress-b", &["P-1", "P-2"]).await;
    assert_eq!(on_a, on_b, "the same dead letters, under the same ids");

    // B reads it as A does: its reason and its payload.
    let (p1, p2) = (on_b[0].0.clone(), on_b[1].0.clone());
    let resp = client()
        .get(format!("http://{}/api/v1/dead-letters/a/{p1}", b.addr))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["dead_letter"]["reason"]
            .as_str()
            .unwrap()
            .contains("400"),
        "{body}"
    );
    assert_eq!(body["payload"]["note"], "POISON", "{body}");

    // A node that joins later catches up.
    let c = spawn_node(&conf("ingress-c"), dir.path(), "ingress-c", "ingress");
    wait_listed(&c, "ingress-c", &["P-1", "P-2"]).await;

    // Replayed on B once the target takes it: delivered, and listed nowhere.
    sink.set_target_faults("a", Faults::default());
    let (status, body) = operate(
        &b,
        &format!("/api/v1/dead-letters/a/{p1}/replay"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    wait_for_dossier(&sink, "P-1", "the replay on B was not delivered").await;
    // Dropped on C: listed nowhere.
    let (status, body) = operate(
        &c,
        &format!("/api/v1/dead-letters/a/{p2}/drop"),
        json!({"reason": "sent again by the unit"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for (node, name) in [(&a, "ingress-a"), (&b, "ingress-b"), (&c, "ingress-c")] {
        wait_listed(node, name, &[]).await;
    }
    // Replaying on A what B already replayed is refused: it is not a dead letter there.
    let (status, _) = operate(
        &a,
        &format!("/api/v1/dead-letters/a/{p1}/replay"),
        json!({}),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        sink.delivered()
            .iter()
            .filter(|r| r.json()["dossierCode"] == "P-1")
            .count(),
        1,
        "the replay was delivered once"
    );
    drop((a, b, c, worker));
    cleanup(
        &prefix,
        &["a", "b"],
        &["ingress-a", "ingress-b", "ingress-c", "worker"],
        8,
    )
    .await;
}
