//! The check and the repair on a sealed outbox damaged on purpose: a flipped byte in a
//! sealed message, a pending record that does not decode, counters out of step.

use super::*;
use crate::outbox::encryption::{self, Keyring};
use crate::outbox::{EnqueueRequest, MemStore, NewEvent, Outbox, OutboxSettings};
use std::sync::Arc;
use std::time::Duration;

fn settings() -> OutboxSettings {
    OutboxSettings {
        max_pending: 1_000,
        max_pending_bytes: 1 << 30,
        retention: Duration::from_secs(86400),
        idempotency_ttl: Duration::from_secs(86400),
        note_retention: Duration::from_secs(86400),
        window: 100,
    }
}

async fn sealed_outbox_with_events() -> (Arc<MemStore>, Arc<Keyring>) {
    let raw = Arc::new(MemStore::default());
    let ring = Arc::new(Keyring::parse(&encryption::new_key_line("k1"), "test").unwrap());
    let store = encryption::wrap(raw.clone(), Some(ring.clone())).unwrap();
    let outbox = Outbox::open(store, settings(), &["a".to_string()]).unwrap();
    for request in 0..3 {
        outbox
            .enqueue(EnqueueRequest {
                from_reply: false,
                unit: "naf".into(),
                flow: "f".into(),
                trace_id: "t".into(),
                idempotency_key: Some(format!("k-{request}")),
                targets: vec!["a".into()],
                ordered: false,
                block_on_dead: false,
                events: (0..4)
                    .map(|i| NewEvent {
                        key: Some(format!("HS-{i}")),
                        payload: serde_json::value::to_raw_value(&serde_json::json!({"i": i}))
                            .unwrap(),
                        targets: None,
                    })
                    .collect(),
            })
            .await
            .unwrap();
    }
    outbox.shutdown().await.unwrap();
    (raw, ring)
}

fn first_key(raw: &MemStore, kind: u8) -> (Vec<u8>, Vec<u8>) {
    let (k, v) = raw.scan(&[kind], &[kind + 1], 1).unwrap().remove(0);
    (k.to_vec(), v.to_vec())
}

#[tokio::test]
async fn a_damaged_outbox_is_named_record_by_record_and_repaired_without_losing_a_readable_one() {
    let (raw, ring) = sealed_outbox_with_events().await;
    let clean = check(raw.as_ref(), Some(&ring), |_| {}).unwrap();
    assert!(
        clean.is_sound(),
        "{:?} {:?}",
        clean.unreadable,
        clean.totals_out_of_step()
    );
    assert_eq!((clean.pending, clean.dead), (12, 0));
    // Without the key, every sealed record is named as such.
    let keyless = check(raw.as_ref(), None, |_| {}).unwrap();
    assert!(
        keyless
            .unreadable
            .iter()
            .any(|u| u.problem.contains("no outbox key"))
    );

    // Damage: a flipped byte in a sealed chunk, a pending record that is not one, and
    // counters that say 5 more pending than there are.
    let (mkey, mut chunk) = first_key(&raw, keys::MESSAGE);
    let last = chunk.len() - 1;
    chunk[last] ^= 0x01;
    let (qkey, _) = first_key(&raw, keys::PENDING);
    let mut meta: Meta = records::decode(&raw.get(keys::META).unwrap().unwrap()).unwrap();
    meta.pending += 5;
    let mut damage = WriteBatch::default();
    damage.put(mkey.clone(), chunk);
    damage.put(qkey.clone(), b"{not a record".to_vec());
    damage.put(keys::META.to_vec(), records::encode(&meta));
    raw.apply(damage).unwrap();
    raw.flush().unwrap();

    let found = check(raw.as_ref(), Some(&ring), |_| {}).unwrap();
    let named: Vec<(&[u8], &str)> = found
        .unreadable
        .iter()
        .map(|u| (u.key.as_slice(), u.problem.as_str()))
        .collect();
    assert_eq!(named.len(), 2, "{named:?}");
    assert!(
        named
            .iter()
            .any(|(k, p)| *k == mkey.as_slice() && p.contains("does not open"))
    );
    assert!(named.iter().any(|(k, _)| *k == qkey.as_slice()));
    let words = found.totals_out_of_step();
    assert!(
        words
            .iter()
            .any(|w| w.contains("the counters say 17, the records are 11")),
        "{words:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let quarantine = dir.path().join("quarantine.jsonl");
    let repaired = repair(raw.as_ref(), &found, &quarantine).unwrap();
    assert_eq!(
        repaired,
        Repaired {
            quarantined: 2,
            totals_rewritten: true
        }
    );
    let kept = std::fs::read_to_string(&quarantine).unwrap();
    assert_eq!(kept.lines().count(), 2);
    assert!(kept.contains(&crate::hex::encode(&qkey)));
    let after = check(raw.as_ref(), Some(&ring), |_| {}).unwrap();
    assert!(
        after.is_sound(),
        "{:?} {:?}",
        after.unreadable,
        after.totals_out_of_step()
    );
    assert_eq!(
        after.records,
        found.records - 2,
        "only the unreadable ones went"
    );
    assert_eq!(after.pending, 11);
}

/// Open the sealed outbox again over `raw`: the start check's verdict.
fn reopen(raw: &Arc<MemStore>, ring: &Arc<Keyring>) -> Result<Outbox, StoreError> {
    let store = encryption::wrap(raw.clone(), Some(ring.clone())).unwrap();
    Outbox::open(store, settings(), &["a".to_string()])
}

#[tokio::test]
async fn the_bus_refuses_to_start_on_an_inconsistent_outbox_until_it_is_repaired() {
    let (raw, ring) = sealed_outbox_with_events().await;
    reopen(&raw, &ring).unwrap().shutdown().await.unwrap();

    // Counters that say nothing is pending, over twelve pending deliveries.
    let good: Meta = records::decode(&raw.get(keys::META).unwrap().unwrap()).unwrap();
    let mut meta = good.clone();
    meta.pending = 0;
    meta.by_unit.clear();
    let mut damage = WriteBatch::default();
    damage.put(keys::META.to_vec(), records::encode(&meta));
    raw.apply(damage).unwrap();
    let refused = reopen(&raw, &ring).err().expect("refused").to_string();
    assert!(
        refused.contains("the counters say 0 pending deliveries"),
        "{refused}"
    );
    assert!(refused.contains("target `a`"), "{refused}");
    assert!(
        refused.contains("lienthong outbox check --repair"),
        "{refused}"
    );
    let dir = tempfile::tempdir().unwrap();
    let found = check(raw.as_ref(), Some(&ring), |_| {}).unwrap();
    repair(raw.as_ref(), &found, &dir.path().join("q.jsonl")).unwrap();
    let outbox = reopen(&raw, &ring).unwrap();

    // A record that cannot be read while running leaves the mark; the next start stops.
    let (mkey, mut chunk) = first_key(&raw, keys::MESSAGE);
    chunk[20] ^= 0x01;
    let mut damage = WriteBatch::default();
    damage.put(mkey, chunk);
    raw.apply(damage).unwrap();
    let lease = outbox.claim("a").await.unwrap();
    let e = outbox
        .load(&lease)
        .expect_err("the damaged chunk does not open");
    assert!(e.to_string().contains("does not open"), "{e}");
    drop(lease);
    outbox.shutdown().await.unwrap();
    let refused = reopen(&raw, &ring).err().expect("refused").to_string();
    assert!(
        refused.contains("met a record it could not read"),
        "{refused}"
    );
    let found = check(raw.as_ref(), Some(&ring), |_| {}).unwrap();
    assert!(found.damage_noted && !found.is_sound());
    repair(raw.as_ref(), &found, &dir.path().join("q.jsonl")).unwrap();
    reopen(&raw, &ring).unwrap().shutdown().await.unwrap();
}
