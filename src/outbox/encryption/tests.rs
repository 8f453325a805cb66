//! The sealing of records: keys, rotation, tampering, what stays in clear.

use super::*;
use crate::outbox::store::MemStore;

fn ring(lines: &[&str]) -> Arc<Keyring> {
    Arc::new(Keyring::parse(&lines.join("\n"), "test keys").unwrap())
}

#[test]
fn sealed_values_open_only_under_their_own_record_key() {
    let r = ring(&[&new_key_line("k1")]);
    let sealed = r.seal(b"m1", b"{\"cccd\":\"001099012345\"}");
    assert!(!sealed.windows(12).any(|w| w == b"001099012345"));
    assert_eq!(
        r.open(b"m1", &sealed).unwrap(),
        b"{\"cccd\":\"001099012345\"}"
    );
    assert!(r.open(b"m2", &sealed).is_err(), "moved under another key");
    let mut altered = sealed.clone();
    *altered.last_mut().unwrap() ^= 1;
    assert!(r.open(b"m1", &altered).is_err(), "altered");
}

#[test]
fn pending_records_are_sealed_only_with_attempt_errors_and_read_either_way() {
    use super::super::records::{AttemptError, PendingRecord};
    let raw = Arc::new(super::super::MemStore::default());
    let store = wrap(raw.clone(), Some(ring(&[&new_key_line("k1")]))).unwrap();
    let mut rec = PendingRecord {
        key_hash: Some(7),
        block_on_dead: true,
        attempts: 0,
        next_due_ms: 0,
        payload_len: 10,
        errors: Vec::new(),
        unit: "nafosted".into(),
        tally: None,
    };
    let mut b = WriteBatch::default();
    let fresh_bytes = rec.to_bytes();
    b.put(b"qportal\0fresh".to_vec(), fresh_bytes.clone());
    rec.attempts = 1;
    rec.errors.push(AttemptError {
        at_ms: 1,
        error: "HTTP 500: Nguyễn Văn An 001099012345".into(),
        status: Some(500),
    });
    b.put(b"qportal\0failed".to_vec(), rec.to_bytes());
    // A record of an earlier version (JSON) with errors is sealed too.
    b.put(
        b"qportal\0old".to_vec(),
        br#"{"block_on_dead":false,"payload_len":1,"errors":[{"at_ms":1,"error":"An"}]}"#.to_vec(),
    );
    store.apply(b).unwrap();
    let fresh = raw.get(b"qportal\0fresh").unwrap().unwrap();
    assert!(fresh == fresh_bytes, "a fresh pending record stays plain");
    assert!(
        raw.get(b"qportal\0old")
            .unwrap()
            .unwrap()
            .starts_with(&MAGIC)
    );
    let failed = raw.get(b"qportal\0failed").unwrap().unwrap();
    assert!(failed.starts_with(&MAGIC), "one with errors is sealed");
    assert!(!failed.windows(12).any(|w| w == b"001099012345"));
    let back = PendingRecord::from_bytes(&store.get(b"qportal\0failed").unwrap().unwrap()).unwrap();
    assert_eq!(back.errors[0].status, Some(500));
    let rows = store.scan(b"q", b"r", 10).unwrap();
    assert_eq!(rows.len(), 3);
    // Finished deliveries alike: plain without errors, sealed with them.
    let mut b = WriteBatch::default();
    b.put(
        b"dportal\0ok".to_vec(),
        br#"{"outcome":"delivered","at_ms":1,"attempts":1}"#.to_vec(),
    );
    b.put(
        b"dportal\0retried".to_vec(),
        br#"{"outcome":"delivered","errors":[{"at_ms":1,"error":"Nguyen"}]}"#.to_vec(),
    );
    store.apply(b).unwrap();
    assert!(raw.get(b"dportal\0ok").unwrap().unwrap().starts_with(b"{"));
    assert!(
        raw.get(b"dportal\0retried")
            .unwrap()
            .unwrap()
            .starts_with(&MAGIC)
    );
}

#[test]
fn bad_key_lines_are_named() {
    let e = Keyring::parse("# keys\n\nk1:not-base64!", "keys.txt")
        .err()
        .unwrap();
    assert!(e.to_string().contains("keys.txt, line 3"), "{e}");
    let e = Keyring::parse("k1:AAAA", "keys.txt").err().unwrap();
    assert!(e.to_string().contains("32 bytes"), "{e}");
    let line = new_key_line("k1");
    let e = Keyring::parse(&format!("{line}\n{line}"), "keys.txt")
        .err()
        .unwrap();
    assert!(e.to_string().contains("twice"), "{e}");
    assert!(matches!(
        Keyring::parse("# nothing\n", "keys.txt"),
        Err(KeyringError::Empty(_))
    ));
}

#[test]
fn rotation_keeps_old_records_readable_and_reencrypt_retires_the_old_key() {
    let old = new_key_line("2025");
    let new = new_key_line("2026");
    let mem: Arc<dyn Store> = Arc::new(MemStore::default());
    let store = wrap(Arc::clone(&mem), Some(ring(&[&old]))).unwrap();
    let mut b = WriteBatch::default();
    b.put(b"mA".to_vec(), b"payload A".to_vec());
    b.put(b"iA".to_vec(), b"index".to_vec());
    store.apply(b).unwrap();
    // Rotate: the new key first, the old one still there.
    let store = wrap(Arc::clone(&mem), Some(ring(&[&new, &old]))).unwrap();
    let mut b = WriteBatch::default();
    b.put(b"mB".to_vec(), b"payload B".to_vec());
    store.apply(b).unwrap();
    assert_eq!(&store.get(b"mA").unwrap().unwrap()[..], b"payload A");
    assert_eq!(
        sealed_with(&mem.get(b"mA").unwrap().unwrap()).as_deref(),
        Some("2025")
    );
    assert_eq!(
        sealed_with(&mem.get(b"mB").unwrap().unwrap()).as_deref(),
        Some("2026")
    );
    assert_eq!(sealed_with(&mem.get(b"iA").unwrap().unwrap()), None);
    // Without the old key the start is refused, naming it.
    match wrap(Arc::clone(&mem), Some(ring(&[&new]))) {
        Err(KeyringError::UnknownKey { id, .. }) => assert_eq!(id, "2025"),
        other => panic!("expected an unknown key error, got {:?}", other.err()),
    }
    let done = reencrypt(mem.as_ref(), &ring(&[&new, &old]), |_| {}).unwrap();
    assert_eq!((done.scanned, done.resealed), (2, 1));
    assert_eq!(done.retired, vec!["2025".to_string()]);
    // Now the new key alone opens everything.
    let store = wrap(Arc::clone(&mem), Some(ring(&[&new]))).unwrap();
    assert_eq!(&store.get(b"mA").unwrap().unwrap()[..], b"payload A");
    assert_eq!(&store.scan(b"m", b"n", 10).unwrap()[1].1, b"payload B");
}

#[test]
fn a_wrong_or_missing_key_is_refused_and_nothing_is_written() {
    let mem: Arc<dyn Store> = Arc::new(MemStore::default());
    wrap(Arc::clone(&mem), Some(ring(&[&new_key_line("k1")]))).unwrap();
    let before = mem.scan(b"", b"\xff", usize::MAX).unwrap();
    match wrap(Arc::clone(&mem), Some(ring(&[&new_key_line("k1")]))) {
        Err(e @ KeyringError::WrongKey { .. }) => {
            assert!(e.to_string().contains("`k1`"), "{e}")
        }
        other => panic!("expected a wrong key error, got {:?}", other.err()),
    }
    assert!(matches!(
        wrap(Arc::clone(&mem), None),
        Err(KeyringError::NotConfigured(_))
    ));
    assert_eq!(mem.scan(b"", b"\xff", usize::MAX).unwrap(), before);
}
