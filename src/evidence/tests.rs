//! The archive's writer and check together: days, restarts, kills, tampering.

use super::archive::{self, verify_dir};
use super::writer::{Archive, day_of, signing_key};
use super::*;
use bytes::Bytes;

/// 2026-12-07 10:00 in Vietnam.
const DAY1: u64 = 1_796_612_400_000;
const DAY: u64 = 86_400_000;

fn entry(i: u32) -> Entry {
    Entry::Attempt {
        sent_ms: DAY1,
        answered_ms: DAY1 + 5,
        unit: "nafosted".into(),
        flow: "dossier_sync".into(),
        id: crate::envelope::MessageId::from_bytes([i as u8; 16]),
        dossier: Some(format!("HS-{}", i % 3)),
        target: "portal".into(),
        attempt: 1,
        request: Body::of_bytes(&Bytes::from(format!("{{\"MaHoSo\":\"HS-{i}\"}}")), true),
        answer: Answer {
            status: Some(200),
            body: Some(Body::of(b"{\"error_code\":\"0\"}", true)),
            missing: None,
        },
        outcome: "delivered",
    }
}

fn write(archive: &mut Archive, at: u64, i: u32) {
    archive
        .append(at, |seq, out| entry::line_of(seq, &entry(i), None, out))
        .unwrap();
}

/// An archive of two days, sealed twice on the first.
fn two_days(dir: &Path) -> ed25519_dalek::VerifyingKey {
    let key = signing_key(&dir.join("key")).unwrap();
    let public = key.verifying_key();
    let mut a = Archive::open(&dir.join("ev"), key).unwrap();
    for i in 0..3 {
        write(&mut a, DAY1, i);
    }
    a.seal(DAY1).unwrap();
    write(&mut a, DAY1 + 1000, 3);
    a.seal(DAY1 + 1000).unwrap();
    for i in 4..6 {
        write(&mut a, DAY1 + DAY, i);
    }
    a.seal(DAY1 + DAY).unwrap();
    public
}

#[test]
fn days_roll_and_link_and_the_whole_archive_checks() {
    let dir = tempfile::tempdir().unwrap();
    let key = two_days(dir.path());
    let files = archive::day_files(&dir.path().join("ev")).unwrap();
    assert_eq!(files.len(), 2);
    assert!(files[0].ends_with(format!("{}.jsonl", day_of(DAY1))));
    let report = verify_dir(&dir.path().join("ev"), Some(&key)).unwrap();
    assert_eq!(report.attempts, 6);
    assert_eq!(report.seals, 3);
    assert_eq!(report.files, 2);
    assert_eq!(report.unsealed, 0);
    // 2 opens + 6 records + 3 seals.
    assert_eq!((report.first_seq, report.last_seq), (Some(0), Some(10)));
    assert!(!report.starts_mid_chain);
    // The second day alone checks, and says it starts mid-chain.
    std::fs::remove_file(&files[0]).unwrap();
    let alone = verify_dir(&dir.path().join("ev"), Some(&key)).unwrap();
    assert!(alone.starts_mid_chain);
    assert_eq!(alone.attempts, 2);
}

#[test]
fn every_changed_byte_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let key = two_days(dir.path());
    let ev = dir.path().join("ev");
    for file in archive::day_files(&ev).unwrap() {
        let original = std::fs::read(&file).unwrap();
        for at in 0..original.len() {
            for flip in [0x01u8, 0x20, 0x80] {
                let mut changed = original.clone();
                changed[at] ^= flip;
                std::fs::write(&file, &changed).unwrap();
                assert!(
                    verify_dir(&ev, Some(&key)).is_err(),
                    "{}: byte {at} ^ {flip:#x} went unnoticed",
                    file.display()
                );
            }
        }
        std::fs::write(&file, &original).unwrap();
    }
    verify_dir(&ev, Some(&key)).unwrap();
}

#[test]
fn cut_ends_missing_days_and_other_keys_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let key = two_days(dir.path());
    let ev = dir.path().join("ev");
    let files = archive::day_files(&ev).unwrap();
    let first = std::fs::read_to_string(&files[0]).unwrap();
    // The closed day's last seal cut off.
    let cut: Vec<&str> = first.lines().collect();
    std::fs::write(&files[0], format!("{}\n", cut[..cut.len() - 1].join("\n"))).unwrap();
    let e = verify_dir(&ev, Some(&key)).unwrap_err();
    assert!(e.problem.contains("without a seal"), "{e}");
    std::fs::write(&files[0], &first).unwrap();
    // Another key pinned.
    let other = signing_key(&dir.path().join("other"))
        .unwrap()
        .verifying_key();
    let e = verify_dir(&ev, Some(&other)).unwrap_err();
    assert!(e.problem.contains("another key"), "{e}");
    // A record rewritten with every later hash recomputed: the seal does not verify.
    let mut prev = archive::GENESIS;
    let mut rewritten = String::new();
    for line in first.lines() {
        let (_, json) = archive::split_line(line).unwrap();
        let json = json.replace("\"attempt\":1", "\"attempt\":2");
        let json = if json.contains("\"t\":\"open\"") {
            prev = crate::hex::decode(
                serde_json::from_str::<serde_json::Value>(&json).unwrap()["prev"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap()
            .try_into()
            .unwrap();
            json
        } else {
            json
        };
        let hash = archive::line_hash(&prev, json.as_bytes());
        rewritten.push_str(&format!("{} {json}\n", crate::hex::encode(&hash)));
        prev = hash;
    }
    std::fs::write(&files[0], rewritten).unwrap();
    let e = verify_dir(&ev, Some(&key)).unwrap_err();
    assert!(
        e.problem.contains("seal") || e.problem.contains("prev"),
        "{e}"
    );
}

#[test]
fn a_restart_continues_the_chain_and_a_cut_last_line_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let ev = dir.path().join("ev");
    let key = signing_key(&dir.path().join("key")).unwrap();
    let public = key.verifying_key();
    let mut a = Archive::open(&ev, key.clone()).unwrap();
    for i in 0..4 {
        write(&mut a, DAY1, i);
    }
    a.flush().unwrap();
    drop(a); // Killed: nothing sealed.
    let file = &archive::day_files(&ev).unwrap()[0];
    // Half a line more, as a kill in the middle of a write leaves.
    let mut text = std::fs::read(file).unwrap();
    text.extend_from_slice(b"0123abcd {\"t\":\"attem");
    std::fs::write(file, &text).unwrap();
    let unsealed = verify_dir(&ev, Some(&public));
    assert!(unsealed.is_err(), "a cut line is reported");
    let mut a = Archive::open(&ev, key).unwrap();
    assert!(a.since_seal > 0, "what the kill left waits for a seal");
    a.seal(DAY1 + 10).unwrap();
    write(&mut a, DAY1 + 20, 4);
    a.seal(DAY1 + 20).unwrap();
    let report = verify_dir(&ev, Some(&public)).unwrap();
    assert_eq!(report.attempts, 5);
    assert_eq!(report.seals, 2);
}

#[test]
fn the_writer_thread_logs_seals_and_seals_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let ev = dir.path().join("ev");
    let config = EvidenceConfig {
        seal_records: 7,
        ..EvidenceConfig::default()
    };
    let log = MessageLog::start(&config, &ev, &dir.path().join("key"), None).unwrap();
    for i in 0..20 {
        log.log(vec![entry(i)]);
    }
    log.seal_now();
    let report = verify_dir(&ev, None).unwrap();
    assert_eq!(report.attempts, 20);
    assert!(report.seals >= 3, "{report:?}");
    assert_eq!(report.unsealed, 0);
    log.log(vec![entry(20)]);
    drop(log);
    let report = verify_dir(&ev, None).unwrap();
    assert_eq!((report.attempts, report.unsealed), (21, 0));
    // The lines say what was exchanged, by digest only.
    let text = std::fs::read_to_string(&archive::day_files(&ev).unwrap()[0]).unwrap();
    assert!(text.contains(&digest(b"{\"MaHoSo\":\"HS-3\"}")));
    assert!(!text.contains("MaHoSo"), "metadata mode keeps no body");
}

#[test]
fn full_mode_seals_the_bodies() {
    struct Reverse;
    impl BodySealer for Reverse {
        fn seal_body(&self, plain: &[u8]) -> Vec<u8> {
            plain.iter().rev().copied().collect()
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let ev = dir.path().join("ev");
    let config = EvidenceConfig {
        mode: EvidenceMode::Full,
        ..EvidenceConfig::default()
    };
    let log = MessageLog::start(
        &config,
        &ev,
        &dir.path().join("key"),
        Some(Arc::new(Reverse)),
    )
    .unwrap();
    log.log(vec![entry(1)]);
    drop(log);
    let text = std::fs::read_to_string(&archive::day_files(&ev).unwrap()[0]).unwrap();
    assert!(text.contains("\"request_sealed\""), "{text}");
    assert!(text.contains("\"answer_sealed\""), "{text}");
    assert!(!text.contains("MaHoSo"), "the body is sealed, not plain");
    verify_dir(&ev, None).unwrap();
}
