//! A dossier is a unit's and its code's: another unit's events under the same code neither
//! hide nor join it; its views are read a page at a time (admin and unit), and a data
//! directory indexed before the index was kept per unit is still read right.

use crate::support;

use lienthong::envelope::MessageId;
use lienthong::outbox::{EnqueueRequest, NewEvent, Outbox, OutboxSettings, RedbStore, Store};
use lienthong_mocks::Faults;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use support::dead_letters::{VIEWER, admin_tokens};
use support::{Harness, STAMEQ_KEY};

const CODE: &str = "NAFOSTED-2024-00099";

/// STAMEQ sends events with a key, to target `b`, in the harness.
fn keyed_stameq() -> String {
    format!(
        r#"{}
[[routes]]
unit = "stameq"
flow = "keyed"
targets = ["b"]
ordering = "per_key"
key = "/dossierCode"
"#,
        admin_tokens()
    )
}

async fn get(h: &Harness, path: &str, token: &str) -> (u16, Value) {
    let r = h
        .client
        .get(h.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

fn ids(doc: &Value) -> Vec<String> {
    doc["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events: {doc}"))
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_units_events_under_the_same_code_neither_hide_nor_join_a_units_dossier() {
    let h = Harness::start(Faults::default(), &keyed_stameq()).await;
    // 10,001 of STAMEQ's events with NAFOSTED's dossier code, before NAFOSTED's own.
    for batch in 0..101 {
        let n = if batch == 100 { 1 } else { 100 };
        let events: Vec<Value> = (0..n)
            .map(|i| json!({"dossierCode": CODE, "i": batch * 100 + i}))
            .collect();
        let r = h.post("stameq", Some("keyed"), &json!(events)).await;
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    }
    let r = h
        .post(
            "nafosted",
            Some("dossier_sync"),
            &json!({"dossierCode": CODE, "status": 1}),
        )
        .await;
    assert_eq!(r.status(), 202);

    let key = support::NAFOSTED_KEY;
    let (status, own) = get(&h, &format!("/api/v1/units/nafosted/dossiers/{CODE}"), key).await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["units"], json!(["nafosted"]), "{own}");
    assert_eq!(ids(&own).len(), 1);
    assert!(own["next"].is_null());
    assert_eq!(own["targets"][0]["target"], "a", "{own}");
    // STAMEQ reads its own, a page at a time.
    let (status, theirs) = get(
        &h,
        &format!("/api/v1/units/stameq/dossiers/{CODE}?limit=1000"),
        STAMEQ_KEY,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(theirs["units"], json!(["stameq"]));
    assert_eq!(ids(&theirs).len(), 1000);
    assert!(theirs["next"].is_string(), "more pages follow");
    // The IT Center sees both units' events under the code, the first page of them.
    let (status, all) = get(&h, &format!("/api/v1/dossiers/{CODE}"), VIEWER).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["units"], json!(["nafosted", "stameq"]));
    assert_eq!(ids(&all).len(), 500, "the default page");
    let targets: Vec<&str> = all["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["a", "b"], "{all}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dossier_is_read_a_page_at_a_time_and_a_bad_page_is_named() {
    let h = Harness::start(Faults::default(), &admin_tokens()).await;
    let events: Vec<Value> = (0..5)
        .map(|i| json!({"dossierCode": "HS-PAGED", "status": i}))
        .collect();
    let r = h
        .post("nafosted", Some("dossier_sync"), &json!(events))
        .await;
    assert_eq!(r.status(), 202);
    let accepted: Value = r.json().await.unwrap();
    let expected: Vec<String> = accepted["accepted"]
        .as_array()
        .unwrap_or_else(|| panic!("{accepted}"))
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(expected.len(), 5, "{accepted}");

    let key = support::NAFOSTED_KEY;
    let base = "/api/v1/units/nafosted/dossiers/HS-PAGED";
    let mut seen = Vec::new();
    let mut path = format!("{base}?limit=2");
    loop {
        let (status, page) = get(&h, &path, key).await;
        assert_eq!(status, 200, "{page}");
        assert!(ids(&page).len() <= 2);
        seen.extend(ids(&page));
        // Every page summarises the dossier by its latest event.
        assert_eq!(page["targets"][0]["latest_event"], expected[4].as_str());
        match page["next"].as_str() {
            Some(next) => path = format!("{base}?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, expected);
    // The admin view pages the same way.
    let (status, page) = get(&h, "/api/v1/dossiers/HS-PAGED?limit=3", VIEWER).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&page), expected[..3]);

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=many", "limit"),
        ("after=not-an-id", "after"),
    ] {
        let (status, body) = get(&h, &format!("{base}?{query}"), key).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
        let (status, body) = get(&h, &format!("/api/v1/dossiers/HS-PAGED?{query}"), VIEWER).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
    let (status, _) = get(&h, "/api/v1/units/stameq/dossiers/HS-PAGED", STAMEQ_KEY).await;
    assert_eq!(status, 404, "STAMEQ sent no event of it");
    h.shutdown().await;
}

fn open(dir: &std::path::Path) -> (Outbox, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir, 16).unwrap());
    let settings = OutboxSettings {
        max_pending: 1_000_000,
        max_pending_bytes: 1 << 32,
        retention: Duration::from_secs(30 * 86400),
        idempotency_ttl: Duration::from_secs(7 * 86400),
        note_retention: Duration::from_secs(90 * 86400),
        window: 10_000,
    };
    let outbox = Outbox::open(store.clone(), settings, &["a".to_string()]).unwrap();
    (outbox, store)
}

async fn send(outbox: &Outbox, unit: &str, key: &str, n: usize) -> Vec<MessageId> {
    let req = EnqueueRequest {
        from_reply: false,
        unit: unit.into(),
        flow: "f".into(),
        trace_id: "t".into(),
        idempotency_key: None,
        targets: vec!["a".into()],
        ordered: true,
        block_on_dead: false,
        events: (0..n)
            .map(|i| NewEvent {
                key: Some(key.to_string()),
                payload: serde_json::value::to_raw_value(&json!({"i": i})).unwrap(),
                targets: None,
            })
            .collect(),
    };
    outbox
        .enqueue(req)
        .await
        .unwrap()
        .iter()
        .map(|a| a.id)
        .collect()
}

/// Every id of `unit`'s dossier `key`, read in pages of `limit`.
fn read_all(outbox: &Outbox, unit: &str, key: &str, limit: usize) -> Vec<MessageId> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = outbox.dossier_ids(unit, key, after, limit).unwrap();
        out.extend(page.ids);
        match page.next {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
}

#[tokio::test]
async fn an_index_written_before_it_was_kept_per_unit_is_read_per_unit() {
    let dir = tempfile::tempdir().unwrap();
    let (outbox, store) = open(dir.path());
    // Older entries of two units under one code; they become the old format.
    let mut old_naf = send(&outbox, "naf", CODE, 3).await;
    let old_ipo = send(&outbox, "ipo", CODE, 3_000).await;
    old_naf.extend(send(&outbox, "naf", CODE, 2).await);
    outbox.sync().await.unwrap();
    let rows = store.scan(b"j", b"k", usize::MAX).unwrap();
    assert_eq!(rows.len(), 3_005);
    let mut rewrite = lienthong::outbox::WriteBatch::default();
    for (k, _) in rows {
        let id = lienthong::outbox::keys::id_suffix(&k).unwrap();
        rewrite.delete(k.to_vec());
        rewrite.put(
            lienthong::outbox::keys::legacy_dossier(CODE, &id),
            Vec::new(),
        );
    }
    store.apply(rewrite).unwrap();
    // Newer ones in today's format.
    let new_naf = send(&outbox, "naf", CODE, 4).await;
    outbox.sync().await.unwrap();

    let mut naf = old_naf.clone();
    naf.extend(&new_naf);
    for limit in [1, 2, 3, 500] {
        assert_eq!(
            read_all(&outbox, "naf", CODE, limit),
            naf,
            "pages of {limit}"
        );
    }
    assert_eq!(read_all(&outbox, "ipo", CODE, 1000), old_ipo);
    assert!(read_all(&outbox, "naf", "OTHER", 10).is_empty());
    // Its latest events, newest first, from both formats.
    let tail = outbox.dossier_tail("naf", CODE, 6).unwrap();
    let mut newest: Vec<MessageId> = naf.iter().rev().take(6).copied().collect();
    newest.truncate(6);
    assert_eq!(tail, newest);
    let page = outbox.dossier_page("naf", CODE, None, 2).unwrap();
    assert_eq!(page.messages.len(), 2);
    assert!(page.messages.iter().all(|m| m.unit == "naf"));
}
