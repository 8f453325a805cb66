//! Retention on the real store on disk (redb): delivered records and their messages are compacted
//! away after `retention`, dead letters and pending deliveries are kept, idempotency keys
//! expire after their TTL, and disk use stays bounded under churn.

use lienthong::envelope::MessageId;
use lienthong::outbox::{
    DeliveryState, EnqueueRequest, NewEvent, Outbox, OutboxSettings, RedbStore, Store,
};
use lienthong::time::now_ms;
use std::sync::Arc;
use std::time::Duration;

const DAY_MS: u64 = 24 * 3600 * 1000;

/// Retention 30 days, idempotency keys 7, notes 90.
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

/// `lienthong outbox <command> --config <shipped> --data-dir <dir> <extra>`.
fn outbox_cli(command: &str, dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .args(["outbox", command, "--config"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/lienthong.toml"
        ))
        .arg("--data-dir")
        .arg(dir)
        .args(extra)
        .output()
        .unwrap()
}

fn open(dir: &std::path::Path) -> Outbox {
    let store = RedbStore::open(dir, 16).unwrap();
    let settings = settings();
    Outbox::open(
        Arc::new(store) as Arc<dyn Store>,
        settings,
        &["a".to_string(), "b".to_string()],
    )
    .unwrap()
}

fn request(n: usize, idempotency_key: Option<&str>, pad: usize) -> EnqueueRequest {
    EnqueueRequest {
        from_reply: false,
        unit: "u".into(),
        flow: "f".into(),
        trace_id: "t".into(),
        idempotency_key: idempotency_key.map(str::to_string),
        targets: vec!["a".into(), "b".into()],
        ordered: false,
        block_on_dead: false,
        events: (0..n)
            .map(|i| NewEvent {
                key: Some(format!("HS-{i}")),
                payload: serde_json::value::to_raw_value(
                    &serde_json::json!({"i": i, "pad": "x".repeat(pad)}),
                )
                .unwrap(),
                targets: None,
            })
            .collect(),
    }
}

/// Deliver everything claimable on both targets; the message `dead` goes dead on `a`.
fn deliver_all(outbox: &Outbox, dead: Option<MessageId>) {
    for t in ["a", "b"] {
        while let Some(lease) = outbox.try_claim(t) {
            if t == "a" && Some(lease.info.id) == dead {
                outbox.dead(lease, None, "rejected".into());
            } else {
                outbox.delivered(lease);
            }
        }
    }
}

#[tokio::test]
async fn retention_removes_finished_messages_and_keeps_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(dir.path());
    let ids: Vec<MessageId> = outbox
        .enqueue(request(50, None, 10))
        .await
        .unwrap()
        .iter()
        .map(|a| a.id)
        .collect();
    deliver_all(&outbox, Some(ids[7]));
    outbox.sync().await.unwrap();
    assert_eq!(outbox.stats().pending, 0);
    assert!(matches!(
        outbox.delivery_states(ids[0]).unwrap()[0].1,
        DeliveryState::Delivered { .. }
    ));

    // The dossier index finds each message by its key.
    assert_eq!(
        outbox.dossier_page("u", "HS-3", None, 10).unwrap().messages[0].id,
        ids[3]
    );
    // Not yet: 29 days later everything is still queryable.
    let report = outbox.sweep(now_ms() + 29 * DAY_MS).await.unwrap();
    assert_eq!(report.messages_removed, 0);
    // 31 days later: delivered ones are gone, the one with a dead letter stays.
    let report = outbox.sweep(now_ms() + 31 * DAY_MS).await.unwrap();
    assert_eq!(report.messages_removed, 49);
    // Their records are gone; the request's chunk stays while one of its messages is dead.
    let forgotten = outbox.delivery_states(ids[0]).unwrap();
    assert!(
        forgotten
            .iter()
            .all(|(_, s)| *s == DeliveryState::Forgotten),
        "{forgotten:?}"
    );
    let states = outbox.delivery_states(ids[7]).unwrap();
    assert!(
        matches!(states[0].1, DeliveryState::Dead { .. }),
        "{states:?}"
    );
    assert_eq!(outbox.dead_letters(None, 10).unwrap().len(), 1);
    outbox.shutdown().await.unwrap();

    // And it holds across a restart.
    let outbox = open(dir.path());
    assert_eq!(outbox.stats().dead, 1);
    // Once the dead letter is dropped and retention passes again, the chunk goes too.
    outbox.drop_dead("a", ids[7]).await.unwrap();
    let report = outbox.sweep(now_ms() + 62 * DAY_MS).await.unwrap();
    assert_eq!(report.messages_removed, 1);
    assert!(outbox.delivery_states(ids[0]).unwrap().is_empty());
    assert!(outbox.delivery_states(ids[7]).unwrap().is_empty());
    // The dossier index goes with the messages: nothing of the request is left.
    assert!(
        outbox
            .dossier_ids("u", "HS-3", None, 10)
            .unwrap()
            .ids
            .is_empty()
    );
    assert!(
        outbox
            .dossier_ids("u", "HS-7", None, 10)
            .unwrap()
            .ids
            .is_empty()
    );
    outbox.shutdown().await.unwrap();
}

#[tokio::test]
async fn idempotency_keys_expire_after_their_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(dir.path());
    let first = outbox.enqueue(request(1, Some("k-1"), 1)).await.unwrap();
    let again = outbox.enqueue(request(1, Some("k-1"), 1)).await.unwrap();
    assert_eq!(first[0].id, again[0].id);
    assert!(again[0].duplicate);
    let report = outbox.sweep(now_ms() + 6 * DAY_MS).await.unwrap();
    assert_eq!(report.idempotency_keys_removed, 0);
    let report = outbox.sweep(now_ms() + 8 * DAY_MS).await.unwrap();
    assert_eq!(report.idempotency_keys_removed, 1);
    let fresh = outbox.enqueue(request(1, Some("k-1"), 1)).await.unwrap();
    assert!(!fresh[0].duplicate);
    assert_ne!(fresh[0].id, first[0].id);
    outbox.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_use_stays_bounded_under_churn() {
    // Ten rounds of 5,000 messages of 1 KiB through two targets, each round swept away:
    // the live data stays near zero, and so must the files.
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(dir.path());
    let mut sizes = Vec::new();
    for _round in 0..10 {
        for _ in 0..50 {
            outbox.enqueue(request(100, None, 1000)).await.unwrap();
        }
        deliver_all(&outbox, None);
        outbox.sync().await.unwrap();
        outbox.sweep(now_ms() + 31 * DAY_MS).await.unwrap();
        outbox.sync().await.unwrap();
        sizes.push(outbox.stats().disk_bytes);
    }
    let written = 10 * 5_000 * 1_000u64;
    println!("disk after each churn round (bytes): {sizes:?}; {written} payload bytes written");
    // The store reuses freed pages: the file plateaus after the first rounds instead of
    // growing with what went through them. (redb may grow the file for a round while it
    // allocates a new region and give it back later: one round's peak is not the trend,
    // the end of the run is: the smallest of the last rounds, which a file that kept
    // growing could not go back under.)
    let early_max = *sizes[1..5].iter().max().unwrap();
    let settled = *sizes[7..].iter().min().unwrap();
    assert!(settled < early_max * 8 / 5, "files kept growing: {sizes:?}");
    let peak = *sizes.iter().max().unwrap();
    assert!(
        peak < written / 4,
        "the files held a quarter of all that went through them: {sizes:?}"
    );
    outbox.shutdown().await.unwrap();
}

/// The real store, with the compaction threshold of a large file lowered to nothing, so
/// that a test-sized outbox is compacted when the sweep asks.
struct EagerCompaction(RedbStore);

impl Store for EagerCompaction {
    fn get(&self, key: &[u8]) -> Result<Option<bytes::Bytes>, lienthong::outbox::StoreError> {
        self.0.get(key)
    }
    fn get_at_or_before(
        &self,
        floor: &[u8],
        key: &[u8],
    ) -> Result<Option<(Vec<u8>, bytes::Bytes)>, lienthong::outbox::StoreError> {
        self.0.get_at_or_before(floor, key)
    }
    fn apply(
        &self,
        batch: lienthong::outbox::WriteBatch,
    ) -> Result<(), lienthong::outbox::StoreError> {
        self.0.apply(batch)
    }
    fn flush(&self) -> Result<(), lienthong::outbox::StoreError> {
        self.0.flush()
    }
    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, lienthong::outbox::StoreError> {
        self.0.scan(start, end, limit)
    }
    fn size_on_disk(&self) -> u64 {
        self.0.size_on_disk()
    }
    fn reclaim(
        &self,
    ) -> Result<Option<lienthong::outbox::Reclaimed>, lienthong::outbox::StoreError> {
        self.0.reclaim_up_to(u64::MAX, 0)
    }
}

/// A retention sweep that removed records asks the store to give the file's space back;
/// the file shrinks and what is kept (a dead letter and its message) stays readable.
#[tokio::test]
async fn the_sweep_gives_the_files_space_back_once_it_removed_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = EagerCompaction(RedbStore::open(dir.path(), 16).unwrap());
    let outbox = Outbox::open(
        Arc::new(store) as Arc<dyn Store>,
        settings(),
        &["a".to_string(), "b".to_string()],
    )
    .unwrap();
    let mut kept = None;
    for _ in 0..20 {
        let ids = outbox.enqueue(request(200, None, 2_000)).await.unwrap();
        kept.get_or_insert(ids[3].id);
        deliver_all(&outbox, kept);
    }
    outbox.sync().await.unwrap();
    let before = outbox.stats().disk_bytes;
    // Nothing old enough: nothing removed, nothing compacted.
    let report = outbox.sweep(now_ms()).await.unwrap();
    assert_eq!((report.messages_removed, report.file_compacted), (0, None));
    let report = outbox.sweep(now_ms() + 31 * DAY_MS).await.unwrap();
    assert_eq!(report.messages_removed, 20 * 200 - 1);
    let (from, to) = report.file_compacted.expect("the file was compacted");
    assert_eq!(from, before);
    assert!(to * 2 < before, "{before} -> {to}");
    assert_eq!(outbox.stats().disk_bytes, to);
    let dead = outbox.dead_letters(Some("a"), 10).unwrap();
    assert_eq!(dead.len(), 1);
    assert!(outbox.message(kept.unwrap()).unwrap().is_some());
    outbox.shutdown().await.unwrap();
}

/// Notes (which unit a payment reference belongs to, who dropped a dead letter) used to be
/// kept forever: anything that wrote one grew the disk for good. They go after
/// `note_retention`, counted from when each was first written, across a restart.
#[tokio::test]
async fn notes_expire_after_their_retention() {
    use lienthong::outbox::Notes;
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(dir.path());
    for i in 0..300 {
        outbox
            .put_note(&format!("payment-ref/REF-{i}"), b"nafosted")
            .unwrap();
    }
    let report = outbox.sweep(now_ms() + 89 * DAY_MS).await.unwrap();
    assert_eq!(report.notes_removed, 0);
    outbox.shutdown().await.unwrap();
    let outbox = open(dir.path());
    assert!(outbox.get_note("payment-ref/REF-7").unwrap().is_some());
    let report = outbox.sweep(now_ms() + 91 * DAY_MS).await.unwrap();
    assert_eq!(report.notes_removed, 300);
    assert!(outbox.get_note("payment-ref/REF-7").unwrap().is_none());
    assert!(
        outbox
            .notes_with_prefix("payment-ref/", 10)
            .unwrap()
            .is_empty()
    );
    outbox.shutdown().await.unwrap();
}

/// `lienthong outbox usage` (the bus stopped) says what the disk holds, per record kind.
#[tokio::test]
async fn outbox_usage_counts_the_records_of_each_kind_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(dir.path());
    outbox.enqueue(request(20, None, 100)).await.unwrap();
    outbox.sync().await.unwrap();
    outbox.shutdown().await.unwrap();
    let usage = || outbox_cli("usage", dir.path(), &[]);
    let out = usage();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = |what: &str| -> u64 {
        let line = stdout
            .lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no `{what}` line: {stdout}"));
        line.split_whitespace()
            .rev()
            .nth(2)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"))
    };
    // 20 events to two targets: 40 pending deliveries, 20 entries of the dossier index,
    // the events in one message chunk.
    assert_eq!(records("pending deliveries"), 40, "{stdout}");
    assert_eq!(records("dossier index"), 20, "{stdout}");
    assert_eq!(records("messages"), 1, "{stdout}");
    assert!(stdout.contains("the file:"), "{stdout}");
    assert!(stdout.contains("the file's pages:"), "{stdout}");
    // `outbox compact` gives the free space back, and every record stays.
    let file = dir.path().join("outbox.redb");
    let before = std::fs::metadata(&file).unwrap().len();
    let out = outbox_cli("compact", dir.path(), &[]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("compacted in"), "{said}");
    let after = std::fs::metadata(&file).unwrap().len();
    assert!(after < before, "{before} -> {after}: {said}");
    let out = usage();
    let again = String::from_utf8_lossy(&out.stdout);
    let pending = again
        .lines()
        .find(|l| l.contains("pending deliveries"))
        .unwrap_or_else(|| panic!("{again}"));
    assert_eq!(
        pending.split_whitespace().rev().nth(2),
        Some("40"),
        "{again}"
    );
    // The bus's own outbox must be stopped: a second opener is told so.
    let outbox = open(dir.path());
    let out = usage();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stop the bus first"));
    outbox.shutdown().await.unwrap();
}

/// `lienthong outbox check` on a real store: sound, then damaged on purpose (a record that
/// does not decode, counters out of step), repaired, sound again; a truncated file is
/// named with what to do.
#[tokio::test]
async fn outbox_check_names_damage_and_the_repair_keeps_every_readable_record() {
    use lienthong::outbox::{WriteBatch, keys};
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(dir.path());
    outbox.enqueue(request(10, None, 100)).await.unwrap();
    outbox.sync().await.unwrap();
    outbox.shutdown().await.unwrap();
    let run = |args: &[&str]| {
        let out = outbox_cli("check", dir.path(), args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, text) = run(&[]);
    assert!(ok && text.contains("the outbox is sound"), "{text}");

    {
        let store = RedbStore::open(dir.path(), 16).unwrap();
        let (qkey, _) = store.scan(b"q", b"r", 1).unwrap().remove(0);
        let mut meta: serde_json::Value =
            serde_json::from_slice(&store.get(keys::META).unwrap().unwrap()).unwrap();
        meta["dead"] = serde_json::json!(3);
        let mut damage = WriteBatch::default();
        damage.put(qkey.to_vec(), b"\x00garbage".to_vec());
        damage.put(keys::META.to_vec(), serde_json::to_vec(&meta).unwrap());
        store.apply(damage).unwrap();
        // The count of bytes as a crash could leave it (far off).
        store.set_live_bytes(5).unwrap();
        store.flush().unwrap();
    }
    let (ok, text) = run(&[]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("count of its bytes") && text.contains("says 5,"),
        "{text}"
    );
    assert!(
        text.contains("unreadable: q")
            && text.contains("dead letters: the counters say 3, the records are 0")
            && text.contains("--repair"),
        "{text}"
    );
    let (ok, text) = run(&["--repair"]);
    assert!(ok && text.contains("1 record(s) moved to"), "{text}");
    assert!(text.contains(": recounted"), "{text}");
    let (ok, text) = run(&[]);
    assert!(ok && text.contains("the outbox is sound"), "{text}");
    assert!(!text.contains("count of its bytes"), "{text}");
    let quarantined: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("quarantine-"))
        .collect();
    assert_eq!(quarantined.len(), 1);

    // A truncated file: named, with what to do.
    let file = dir.path().join("outbox.redb");
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len / 3)
        .unwrap();
    let (ok, text) = run(&[]);
    assert!(!ok && text.contains("restore the data directory"), "{text}");
}
