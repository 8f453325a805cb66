//! File drop: complete files in `<data dir>/inbox/<unit>/<flow>/` are stored all or
//! nothing, then moved to `processed/` or `rejected/` with a report naming the problem.

use crate::support;

use lienthong_mocks::Faults;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{Harness, wait_until};

fn routes() -> String {
    let mappings = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mappings");
    format!(
        r#"
[inbox]
poll_interval = "30ms"
settle = "100ms"
[mappings]
dir = "{}"
watch = false
[[routes]]
unit = "stameq"
flow = "csv_batch"
targets = ["a"]
ordering = "none"
mappings = {{ a = "ipo/dossier_sync.toml" }}
"#,
        mappings.display()
    )
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("mappings/ipo/tests/dossier_sync")
            .join(name),
    )
    .unwrap()
}

fn report(dir: &Path, folder: &str, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(folder).join(format!("{name}.report.txt"))).ok()
}

#[tokio::test]
async fn taken_files_and_their_reports_are_deleted_after_keep() {
    let config = routes().replace("settle = \"100ms\"", "settle = \"100ms\"\nkeep = \"1s\"");
    let h = Harness::start(Faults::default(), &config).await;
    let inbox = h.dir.path().join("inbox/stameq/csv_batch");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(
        inbox.join("don.csv"),
        fixture("02-two-trademarks.input.csv"),
    )
    .unwrap();
    std::fs::write(inbox.join("bad.csv"), fixture("03-ragged-row.input.csv")).unwrap();
    wait_until(Duration::from_secs(10), "both taken", || {
        report(&inbox, "processed", "don.csv").is_some()
            && report(&inbox, "rejected", "bad.csv").is_some()
    })
    .await;
    // The personal data in them does not stay on disk for ever.
    wait_until(Duration::from_secs(10), "both deleted", || {
        !inbox.join("processed/don.csv").exists()
            && !inbox.join("processed/don.csv.report.txt").exists()
            && !inbox.join("rejected/bad.csv").exists()
    })
    .await;
    h.shutdown().await;
}

#[tokio::test]
async fn links_are_never_followed_and_oversized_files_are_refused_by_their_size() {
    let h = Harness::start(Faults::default(), &routes()).await;
    let inbox = h.dir.path().join("inbox/stameq/csv_batch");
    std::fs::create_dir_all(&inbox).unwrap();
    // A valid export elsewhere, and a link to it in the drop folder.
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("don_0306.csv");
    std::fs::write(&target, fixture("02-two-trademarks.input.csv")).unwrap();
    std::os::unix::fs::symlink(&target, inbox.join("link.csv")).unwrap();
    // A linked flow folder is not entered.
    std::os::unix::fs::symlink(elsewhere.path(), h.dir.path().join("inbox/stameq/linked")).unwrap();
    wait_until(Duration::from_secs(10), "the link's report", || {
        report(&inbox, "rejected", "link.csv").is_some()
    })
    .await;
    let r = report(&inbox, "rejected", "link.csv").unwrap();
    assert!(
        r.contains("link") && r.contains("not_a_regular_file"),
        "{r}"
    );
    // The link moved, not what it points to; nothing was read into the outbox.
    assert!(
        std::fs::symlink_metadata(inbox.join("rejected/link.csv"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read(&target).unwrap(),
        fixture("02-two-trademarks.input.csv")
    );
    assert!(!elsewhere.path().join("processed").exists());
    assert!(!elsewhere.path().join("rejected").exists());
    // A hard link is another name of a file that lives elsewhere: refused like a link, the
    // file it names neither read nor touched.
    let shared = h.dir.path().join("shared.csv");
    std::fs::write(&shared, fixture("02-two-trademarks.input.csv")).unwrap();
    let modified = std::fs::metadata(&shared).unwrap().modified().unwrap();
    std::fs::hard_link(&shared, inbox.join("hard.csv")).unwrap();
    wait_until(Duration::from_secs(10), "the hard link's report", || {
        report(&inbox, "rejected", "hard.csv").is_some()
    })
    .await;
    let r = report(&inbox, "rejected", "hard.csv").unwrap();
    assert!(r.contains("not_a_regular_file"), "{r}");
    assert_eq!(
        std::fs::metadata(&shared).unwrap().modified().unwrap(),
        modified
    );
    assert_eq!(
        std::fs::read(&shared).unwrap(),
        fixture("02-two-trademarks.input.csv")
    );

    // Over server.max_body_bytes (64 KiB in the test config): refused by its size.
    std::fs::write(inbox.join("huge.csv"), vec![b'a'; 70_000]).unwrap();
    wait_until(Duration::from_secs(10), "the large file's report", || {
        report(&inbox, "rejected", "huge.csv").is_some()
    })
    .await;
    let r = report(&inbox, "rejected", "huge.csv").unwrap();
    assert!(
        r.contains("body_too_large") && r.contains("70000 bytes"),
        "{r}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.bus().outbox.stats().accepted_since_start, 0);
    h.shutdown().await;
}

#[tokio::test]
async fn dropped_files_are_stored_whole_or_rejected_with_a_report() {
    let h = Harness::start(Faults::default(), &routes()).await;
    let inbox = h.dir.path().join("inbox/stameq/csv_batch");
    std::fs::create_dir_all(&inbox).unwrap();

    // Written under .part, then renamed: only the complete file is taken.
    std::fs::write(
        inbox.join("don_0306.csv.part"),
        fixture("02-two-trademarks.input.csv"),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h.bus().outbox.stats().accepted_since_start,
        0,
        "a .part file is not taken"
    );
    std::fs::rename(inbox.join("don_0306.csv.part"), inbox.join("don_0306.csv")).unwrap();
    wait_until(Duration::from_secs(10), "the report", || {
        report(&inbox, "processed", "don_0306.csv").is_some()
    })
    .await;
    let r = report(&inbox, "processed", "don_0306.csv").unwrap();
    assert!(r.contains("2 event(s) stored"), "{r}");
    assert!(inbox.join("processed/don_0306.csv").exists() && !inbox.join("don_0306.csv").exists());
    wait_until(Duration::from_secs(10), "both rows delivered", || {
        h.sink.delivered_count() == 2
    })
    .await;

    // One bad row: the whole file is rejected, with the line.
    std::fs::write(
        inbox.join("don_0307.csv"),
        fixture("03-ragged-row.input.csv"),
    )
    .unwrap();
    wait_until(Duration::from_secs(10), "the rejection", || {
        report(&inbox, "rejected", "don_0307.csv").is_some()
    })
    .await;
    let r = report(&inbox, "rejected", "don_0307.csv").unwrap();
    assert!(
        r.contains("REJECTED, nothing from this file was stored") && r.contains("line 2"),
        "{r}"
    );

    // The same file dropped again: nothing new is stored.
    std::fs::write(
        inbox.join("don_0306.csv"),
        fixture("02-two-trademarks.input.csv"),
    )
    .unwrap();
    wait_until(Duration::from_secs(10), "the second report", || {
        report(&inbox, "processed", "don_0306.csv").is_some_and(|r| r.contains("earlier"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.sink.delivered_count(), 2);
    // A file of unknown type is rejected with what to do.
    std::fs::write(inbox.join("readme.txt"), "x").unwrap();
    wait_until(Duration::from_secs(10), "the unknown file's report", || {
        report(&inbox, "rejected", "readme.txt").is_some()
    })
    .await;
    assert!(
        report(&inbox, "rejected", "readme.txt")
            .unwrap()
            .contains(".json, .xml or .csv")
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_file_of_another_account_than_the_folders_owner_is_refused() {
    use std::os::unix::fs::MetadataExt;
    let h = Harness::start(Faults::default(), &routes()).await;
    let inbox = h.dir.path().join("inbox/stameq/csv_batch");
    std::fs::create_dir_all(&inbox).unwrap();
    let owner = std::fs::metadata(&inbox).unwrap().uid();
    // Written elsewhere, given to another account (root may: the suite runs as root, as
    // CI does), then moved into the folder whole.
    let stranger = owner + 4242;
    let staged = h.dir.path().join("staged.csv");
    std::fs::write(&staged, fixture("02-two-trademarks.input.csv")).unwrap();
    std::os::unix::fs::chown(&staged, Some(stranger), None)
        .expect("giving a file to another account needs root: run the suite as root");
    std::fs::rename(&staged, inbox.join("theirs.csv")).unwrap();
    wait_until(
        Duration::from_secs(10),
        "the stranger's file's report",
        || report(&inbox, "rejected", "theirs.csv").is_some(),
    )
    .await;
    let r = report(&inbox, "rejected", "theirs.csv").unwrap();
    assert!(
        r.contains("not_the_folders_owner") && r.contains(&stranger.to_string()),
        "{r}"
    );
    assert_eq!(h.bus().outbox.stats().accepted_since_start, 0);
    // The folder owner's own file is taken.
    std::fs::write(
        inbox.join("ours.csv"),
        fixture("02-two-trademarks.input.csv"),
    )
    .unwrap();
    wait_until(Duration::from_secs(10), "the owner's file is taken", || {
        report(&inbox, "processed", "ours.csv").is_some()
    })
    .await;
    h.shutdown().await;
}
