//! The outbox's running totals and its move from the previous layout, on the real store
//! on disk:
//! - the KPI totals are kept in the writes that accept and deliver, survive a restart
//!   and the retention sweep (which removes the messages they came from), and are read
//!   without touching a message;
//! - a data directory written by the previous version (a sled outbox, uncompressed
//!   message chunks, a meta record without per-unit counts) opens with nothing lost:
//!   pending, dead letters, per-unit counts, and every message still deliverable.

use lienthong::outbox::key_hash::legacy_key_hash;
use lienthong::outbox::records::{self, Meta, UnitCounts};
use lienthong::outbox::tally::{EventFacts, FactFinder, Facts};
use lienthong::outbox::{
    EnqueueRequest, NewEvent, Outbox, OutboxSettings, RedbStore, SledStore, Store, WriteBatch, keys,
};
use lienthong::time::now_ms;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Duration;

const DAY_MS: u64 = 24 * 3600 * 1000;

fn settings() -> OutboxSettings {
    OutboxSettings {
        max_pending: 1_000_000,
        max_pending_bytes: 1 << 32,
        retention: Duration::from_secs(30 * 86400),
        idempotency_ttl: Duration::from_secs(7 * 86400),
        note_retention: Duration::from_secs(90 * 86400),
        window: 10_000,
    }
}

fn targets() -> Vec<String> {
    vec!["portal".to_string(), "store".to_string()]
}

/// Facts as a test states them: the ordering key is the dossier, `portal` the sync
/// target, the event's `online` field its channel.
struct TestFacts;

impl FactFinder for TestFacts {
    fn facts(
        &self,
        _unit: &str,
        _flow: &str,
        key: Option<&str>,
        targets: &[String],
        payload: &RawValue,
    ) -> Option<Facts> {
        let v: serde_json::Value = serde_json::from_str(payload.get()).ok()?;
        Some(Facts::Dossier(EventFacts {
            dossier: key?.to_string(),
            procedure: "1.008433".into(),
            sync_targets: targets.iter().filter(|t| *t == "portal").cloned().collect(),
            channel: v["online"].as_bool().map(|o| if o { 2 } else { 1 }),
            ..EventFacts::default()
        }))
    }
}

fn request(unit: &str, events: &[(&str, bool)]) -> EnqueueRequest {
    EnqueueRequest {
        from_reply: false,
        unit: unit.into(),
        flow: "dossier_sync".into(),
        trace_id: "t".into(),
        idempotency_key: None,
        targets: targets(),
        ordered: true,
        block_on_dead: true,
        events: events
            .iter()
            .map(|(key, online)| NewEvent {
                key: Some(key.to_string()),
                payload: serde_json::value::to_raw_value(
                    &serde_json::json!({"dossier": key, "online": online, "pad": "x".repeat(200)}),
                )
                .unwrap(),
                targets: None,
            })
            .collect(),
    }
}

fn open_redb(dir: &std::path::Path) -> Outbox {
    let store = RedbStore::open(dir, 8).unwrap();
    let outbox = Outbox::open(Arc::new(store) as Arc<dyn Store>, settings(), &targets()).unwrap();
    outbox.count_with(Arc::new(TestFacts));
    outbox
}

/// The totals of `unit`, summed over its buckets.
fn totals(outbox: &Outbox, unit: &str) -> [u64; 13] {
    let mut sum = [0u64; 13];
    for b in outbox.kpi_buckets().unwrap() {
        if b.unit == unit {
            for (s, v) in sum.iter_mut().zip(b.totals) {
                *s += v;
            }
        }
    }
    sum
}

fn deliver_all(outbox: &Outbox) {
    for t in targets() {
        while let Some(lease) = outbox.try_claim(&t) {
            outbox.delivered(lease);
        }
    }
}

#[tokio::test]
async fn kpi_totals_follow_acceptance_and_delivery_and_outlive_restarts_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open_redb(dir.path());
    outbox
        .enqueue(request("naf", &[("HS-1", true), ("HS-2", false)]))
        .await
        .unwrap();
    outbox
        .enqueue(request("naf", &[("HS-1", true)]))
        .await
        .unwrap();
    outbox
        .enqueue(request("ipo", &[("HS-1", false)]))
        .await
        .unwrap();
    // In the order of `tally::FIELDS` (dossiers, synced, portal dossiers, online, channel
    // known, then payments, results, …, all 0 here): a dossier counts once however many events it has, and
    //  the same code at another unit is another dossier.
    assert_eq!(
        totals(&outbox, "naf"),
        [2, 0, 2, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(
        totals(&outbox, "ipo"),
        [1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    );

    // HS-1 of naf is synced only once both of its portal deliveries are delivered.
    let first = outbox.try_claim("portal").unwrap();
    outbox.delivered(first);
    outbox.sync().await.unwrap();
    assert_eq!(totals(&outbox, "naf")[1], 0);
    deliver_all(&outbox);
    outbox.sync().await.unwrap();
    assert_eq!(
        totals(&outbox, "naf"),
        [2, 2, 2, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(
        totals(&outbox, "ipo"),
        [1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    outbox.shutdown().await.unwrap();

    // Restart, then retention removes every message: the totals are what they were.
    let outbox = open_redb(dir.path());
    assert_eq!(
        totals(&outbox, "naf"),
        [2, 2, 2, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    let swept = outbox.sweep(now_ms() + 31 * DAY_MS).await.unwrap();
    assert_eq!(swept.messages_removed, 4);
    outbox.sync().await.unwrap();
    assert_eq!(
        totals(&outbox, "naf"),
        [2, 2, 2, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    // A later event of a known dossier moves it (back to unsynced) without counting it
    // twice.
    outbox
        .enqueue(request("naf", &[("HS-2", true)]))
        .await
        .unwrap();
    assert_eq!(
        totals(&outbox, "naf"),
        [2, 1, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    // Reading the totals touches only their buckets: one per unit, day and procedure.
    assert_eq!(outbox.kpi_buckets().unwrap().len(), 2);
    outbox.shutdown().await.unwrap();
}

/// The pending and dead records' keys with the hash the previous version gave them
/// (FNV-1a of unit and dossier), read while the outbox is open.
fn previous_hashes(outbox: &Outbox, store: &SledStore) -> Vec<(Vec<u8>, u64)> {
    let mut out = Vec::new();
    for kind in [keys::PENDING, keys::DEAD] {
        for (k, _) in store
            .scan(&[kind], &keys::prefix_end(&[kind]), usize::MAX)
            .unwrap()
        {
            let id = keys::id_suffix(&k).unwrap();
            let env = outbox.message(id).unwrap().unwrap();
            let key = env.key.as_deref().unwrap();
            out.push((k, legacy_key_hash(&env.unit, key)));
        }
    }
    out
}

/// A pending record as the previous versions wrote it: JSON, with the FNV hash `h`.
fn previous_pending_json(r: &records::PendingRecord, h: u64) -> Vec<u8> {
    let tally = r.tally.map_or("null".to_string(), |t| t.to_string());
    format!(
        r#"{{"key_hash":{h},"block_on_dead":{},"attempts":{},"next_due_ms":{},"payload_len":{},"errors":{},"unit":"{}","tally":{tally}}}"#,
        r.block_on_dead,
        r.attempts,
        r.next_due_ms,
        r.payload_len,
        serde_json::to_string(&r.errors).unwrap(),
        r.unit
    )
    .into_bytes()
}

/// Rewrite what the current version wrote into the previous version's layout: message
/// chunks uncompressed, a meta record without its version and per-unit counts, and FNV
/// dossier key hashes in the pending and dead records.
fn make_previous_layout(store: &SledStore, hashes: &[(Vec<u8>, u64)]) {
    let mut batch = WriteBatch::default();
    for (k, h) in hashes {
        let stored = store.get(k).unwrap().unwrap();
        if k[0] == keys::PENDING {
            let rec = records::PendingRecord::from_bytes(&stored).unwrap();
            batch.put(k.clone(), previous_pending_json(&rec, *h));
            continue;
        }
        let mut rec: serde_json::Value = serde_json::from_slice(&stored).unwrap();
        rec["key_hash"] = serde_json::json!(h);
        batch.put(k.clone(), serde_json::to_vec(&rec).unwrap());
    }
    for (k, v) in store
        .scan(
            &[keys::MESSAGE],
            &keys::prefix_end(&[keys::MESSAGE]),
            usize::MAX,
        )
        .unwrap()
    {
        let plain = records::open_chunk(bytes::Bytes::from(v)).unwrap();
        batch.put(k, plain.to_vec());
    }
    let meta: Meta = records::decode(&store.get(keys::META).unwrap().unwrap()).unwrap();
    let mut old = serde_json::to_value(&meta).unwrap();
    old.as_object_mut().unwrap().remove("version");
    old.as_object_mut().unwrap().remove("by_unit");
    batch.put(keys::META.to_vec(), serde_json::to_vec(&old).unwrap());
    store.apply(batch).unwrap();
    store.flush().unwrap();
}

#[tokio::test]
async fn a_data_directory_of_the_previous_version_opens_with_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut counts = UnitCounts::new();
    let dead_id;
    {
        let store = Arc::new(SledStore::open(dir.path(), 8).unwrap());
        let outbox =
            Outbox::open(Arc::clone(&store) as Arc<dyn Store>, settings(), &targets()).unwrap();
        let events: Vec<(String, bool)> =
            (0..300).map(|i| (format!("HS-{i}"), i % 2 == 0)).collect();
        let events: Vec<(&str, bool)> = events.iter().map(|(k, o)| (k.as_str(), *o)).collect();
        for chunk in events.chunks(100) {
            outbox.enqueue(request("naf", chunk)).await.unwrap();
        }
        outbox
            .enqueue(request("ipo", &[("IP-1", true)]))
            .await
            .unwrap();
        // Some delivered, one dead, the rest pending.
        for _ in 0..50 {
            let lease = outbox.try_claim("store").unwrap();
            outbox.delivered(lease);
        }
        let lease = outbox.try_claim("portal").unwrap();
        dead_id = lease.info.id;
        outbox.dead(lease, None, "rejected by the platform".into());
        outbox.sync().await.unwrap();
        for t in targets() {
            counts.insert(t.clone(), outbox.per_unit(&t));
        }
        let hashes = previous_hashes(&outbox, &store);
        assert_eq!(hashes.len(), 301 * 2 - 50);
        outbox.shutdown().await.unwrap();
        make_previous_layout(&store, &hashes);
    }
    assert!(dir.path().join("outbox").exists());

    // The new version opens it: the sled outbox moves to redb, the counts are taken.
    // sled's flusher thread lets go of its file lock only at its next tick after the
    // database is dropped; a real upgrade opens the old directory in a fresh process.
    let started = std::time::Instant::now();
    let store = loop {
        match RedbStore::open(dir.path(), 8) {
            Ok(store) => break store,
            Err(e)
                if format!("{e:?}").contains("could not acquire lock")
                    && started.elapsed() < Duration::from_secs(10) =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the previous version's directory does not open: {e:?}"),
        }
    };
    let outbox = Outbox::open(Arc::new(store) as Arc<dyn Store>, settings(), &targets()).unwrap();
    outbox.count_with(Arc::new(TestFacts));
    assert!(dir.path().join("outbox.redb").exists());
    assert!(!dir.path().join("outbox").exists());
    let stats = outbox.stats();
    assert_eq!(stats.pending, 301 * 2 - 50 - 1);
    assert_eq!(stats.dead, 1);
    for t in targets() {
        assert_eq!(outbox.per_unit(&t), counts[&t], "{t}");
    }
    assert_eq!(outbox.per_unit("portal")["naf"], (299, 1));
    let dead = outbox.dead_letters(None, 10).unwrap();
    assert_eq!((dead.len(), dead[0].id), (1, dead_id));
    // The dead letter still holds its dossier back (its hash was rewritten along with the
    // pending ones): a new event of HS-0 waits, another dossier's goes.
    outbox
        .enqueue(request("naf", &[("HS-0", true), ("HS-NEW", true)]))
        .await
        .unwrap();
    // Every pending message is still readable and deliverable, in order.
    let mut delivered = 0;
    for t in targets() {
        while let Some(lease) = outbox.try_claim(&t) {
            let env = outbox.load(&lease).unwrap();
            assert!(env.payload.get().contains("pad"));
            outbox.delivered(lease);
            delivered += 1;
        }
    }
    outbox.sync().await.unwrap();
    // HS-0's portal delivery is dead and blocks nothing else (other dossiers); its new
    // event waits at the portal behind it.
    assert_eq!(delivered, 301 * 2 - 50 - 1 + 3);
    assert_eq!(outbox.stats().pending, 1);
    outbox.replay("portal", dead_id).await.unwrap();
    let lease = outbox.try_claim("portal").unwrap();
    assert_eq!(lease.info.id, dead_id);
    outbox.delivered(lease);
    let lease = outbox.try_claim("portal").unwrap();
    assert_eq!(outbox.load(&lease).unwrap().key.as_deref(), Some("HS-0"));
    outbox.delivered(lease);
    outbox.shutdown().await.unwrap();
}

/// Dossier keys of two units whose FNV-1a hashes of (unit, key) — the hash before layout
/// version 2 — are equal, found with Pollard's rho in a few minutes of one core: with FNV,
/// STAMEQ could make its dossier dead under `on_dead = "block"` and stall NAFOSTED's.
const FNV_TWINS: [(&str, &str); 2] = [
    ("stameq", "HS-ce92abc56c60a1b8"),
    ("nafosted", "HS-9218ab0b85c60a53"),
];

#[tokio::test]
async fn a_dossier_key_crafted_to_collide_with_another_does_not_stall_it() {
    let [(unit_a, key_a), (unit_b, key_b)] = FNV_TWINS;
    assert_eq!(
        legacy_key_hash(unit_a, key_a),
        legacy_key_hash(unit_b, key_b),
        "the twins collide under the old hash"
    );
    let dir = tempfile::tempdir().unwrap();
    let outbox = open_redb(dir.path());
    // The crafted dossier goes first and dies, blocking its key.
    outbox
        .enqueue(request(unit_a, &[(key_a, true)]))
        .await
        .unwrap();
    let lease = outbox.try_claim("portal").unwrap();
    outbox.dead(lease, None, "rejected by the platform".into());
    outbox.sync().await.unwrap();
    // The other dossier's event is not held behind it.
    outbox
        .enqueue(request(unit_b, &[(key_b, true)]))
        .await
        .unwrap();
    let lease = outbox
        .try_claim("portal")
        .expect("the other dossier is not blocked by the crafted one");
    assert_eq!(outbox.load(&lease).unwrap().key.as_deref(), Some(key_b));
    outbox.delivered(lease);
    outbox.shutdown().await.unwrap();
}

/// What the cluster's dead-letter log tells a node that did not accept the event: the
/// newest death of a delivery wins whatever order the records come in (a node re-reads
/// the log from its last saved offset after a crash), a resolution removes only the death
/// it names, the count of dead letters stays exact, and the message comes with its dead
/// letter (readable, kept through retention while dead, replayable here).
#[tokio::test]
async fn dead_letters_from_the_clusters_log_keep_the_newest_death_and_exact_counts() {
    use lienthong::envelope::{Envelope, MessageId};
    use lienthong::outbox::{AttemptError, Resolution, ResolutionLog};
    let dir = tempfile::tempdir().unwrap();
    let outbox = open_redb(dir.path());
    let elsewhere = |dossier: &str| Envelope {
        id: MessageId(uuid::Uuid::now_v7()),
        unit: "naf".into(),
        flow: "dossier_sync".into(),
        key: Some(dossier.into()),
        payload: RawValue::from_string(format!(r#"{{"dossier":"{dossier}"}}"#)).unwrap(),
        received_ms: now_ms(),
        trace_id: "t".into(),
        attempts: 1,
        idempotency_key: None,
        targets: vec!["portal".into()],
    };
    let errors = |at_ms| {
        vec![AttemptError {
            at_ms,
            error: "HTTP 400".into(),
            status: Some(400),
        }]
    };
    let t0 = now_ms() - 60_000; // deaths before the drops below
    let one = elsewhere("HS-1");
    let import = |env: &Envelope, at_ms: u64| {
        let (outbox, env) = (outbox.clone(), env.clone());
        async move {
            outbox
                .import_dead(
                    "portal",
                    &env,
                    &format!("refused at {at_ms}"),
                    &errors(at_ms),
                    at_ms,
                )
                .await
                .unwrap()
        }
    };
    import(&one, t0).await;
    import(&one, t0).await; // the same record twice
    import(&one, t0 - 5_000).await; // an older death, read late
    let listed = outbox.dead_letters(None, 10).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].reason, format!("refused at {t0}"));
    assert_eq!(
        listed[0].key.as_deref(),
        Some("HS-1"),
        "the message came with it"
    );
    assert_eq!(
        outbox.message(one.id).unwrap().unwrap().payload.get(),
        one.payload.get()
    );
    assert_eq!(outbox.stats().dead, 1);
    // It died again after a replay elsewhere: the newer death replaces it, counted once.
    import(&one, t0 + 1_000).await;
    assert_eq!(
        outbox.dead_letters(None, 10).unwrap()[0].reason,
        format!("refused at {}", t0 + 1_000)
    );
    assert_eq!(outbox.stats().dead, 1);
    // Resolving the earlier death leaves the newer one; resolving that one removes it.
    outbox
        .resolved_elsewhere("portal", one.id, t0, Resolution::Dropped)
        .await
        .unwrap();
    assert_eq!(outbox.stats().dead, 1);
    outbox
        .resolved_elsewhere("portal", one.id, t0 + 1_000, Resolution::Dropped)
        .await
        .unwrap();
    assert_eq!(outbox.stats().dead, 0);
    assert!(outbox.dead_letters(None, 10).unwrap().is_empty());
    // Read again after a crash: a death older than the drop stays resolved.
    import(&one, t0 + 1_000).await;
    assert_eq!(outbox.stats().dead, 0);

    // Another, kept through a restart and through retention while it is dead; replayed
    // here, the cluster is told which death was resolved.
    struct Told(std::sync::Mutex<Vec<(String, MessageId, u64, Resolution)>>);
    impl ResolutionLog for Told {
        fn resolved(
            &self,
            target: &str,
            id: MessageId,
            dead_at_ms: u64,
            how: Resolution,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
            self.0
                .lock()
                .unwrap()
                .push((target.into(), id, dead_at_ms, how));
            Box::pin(async {})
        }
    }
    let two = elsewhere("HS-2");
    import(&two, t0).await;
    outbox.shutdown().await.unwrap();
    let outbox = open_redb(dir.path());
    assert_eq!(outbox.stats().dead, 1);
    outbox.sweep(now_ms() + 31 * DAY_MS).await.unwrap();
    assert!(outbox.message(two.id).unwrap().is_some(), "kept while dead");
    let told = Arc::new(Told(Default::default()));
    outbox.tell_resolutions(told.clone());
    outbox.replay("portal", two.id).await.unwrap();
    assert_eq!(
        *told.0.lock().unwrap(),
        vec![("portal".to_string(), two.id, t0, Resolution::Replayed)]
    );
    assert_eq!((outbox.stats().dead, outbox.stats().pending), (0, 1));
    // Pending here again: a late copy of its death does not make it dead twice.
    outbox
        .import_dead("portal", &two, "late", &errors(t0), t0)
        .await
        .unwrap();
    assert_eq!((outbox.stats().dead, outbox.stats().pending), (0, 1));
    outbox.shutdown().await.unwrap();
}
