//! Personal-data protection, one test per threat (issue 8): the outbox on disk holds no
//! plaintext personal data; keys rotate and old records are sealed again; a wrong or
//! missing key stops the start with nothing overwritten; the audit trail records lookups'
//! peers (see tests/lookups.rs), dead-letter operations and refused admin tokens, and
//! `lienthong audit verify` finds any tampering.

use crate::support;

use lienthong::app::Bus;
use lienthong_mocks::Faults;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::{Harness, wait_until};

const CCCD: &str = "001099012345";
const NAME: &str = "Nguyễn Thị Bảo Ngân";
const PHONE: &str = "0912345678";
const EMAIL: &str = "ngan.nguyen@example.vn";
const ADDRESS: &str = "12 Ngõ Huế, Hoàn Kiếm";

fn personal_event(n: usize) -> Value {
    json!({
        "dossierCode": format!("HS-ENC-{n}"),
        "applicant": {"idNumber": CCCD, "fullName": NAME, "phone": PHONE, "email": EMAIL, "address": ADDRESS}
    })
}

/// The `[outbox.encryption]` section reading its keyring from `keys`.
fn encryption_section(keys: &Path) -> String {
    format!(
        "[outbox.encryption]\nkeys_env = \"TEST_UNSET_OUTBOX_KEYS\"\nkeys_file = \"{}\"\n",
        keys.display()
    )
}

fn new_key(id: &str) -> String {
    lienthong::outbox::encryption::new_key_line(id)
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Every record of the outbox in `dir`, as stored (sealed).
fn records(dir: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    use lienthong::outbox::Store;
    let store = lienthong::outbox::RedbStore::open(dir, 8).unwrap();
    store.scan(b"", &[0xff; 8], usize::MAX).unwrap()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn post_personal(h: &Harness, count: usize) {
    for n in 0..count {
        let resp = h
            .post("nafosted", Some("dossier_sync"), &personal_event(n))
            .await;
        assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());
    }
}

#[tokio::test]
async fn the_outbox_on_disk_holds_no_plaintext_personal_data() {
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = keys_dir.path().join("outbox.keys");
    std::fs::write(&keys, new_key("k2026") + "\n").unwrap();
    // The platform is down: the events stay pending (and collect failed attempts).
    let h = Harness::start(
        Faults {
            down: true,
            ..Faults::default()
        },
        &encryption_section(&keys),
    )
    .await;
    post_personal(&h, 20).await;
    let bus_dir = h.dir.path().to_path_buf();
    wait_until(Duration::from_secs(10), "failed attempts", || {
        h.sink.requests().len() >= 5
    })
    .await;
    let on_disk = files(&bus_dir);
    assert!(
        on_disk.values().map(Vec::len).sum::<usize>() > 0,
        "the outbox wrote files"
    );
    for (path, bytes) in &on_disk {
        for secret in [CCCD, NAME, PHONE, EMAIL, ADDRESS, "Bảo Ngân"] {
            assert!(
                !contains(bytes, secret),
                "{} holds `{secret}` in plaintext",
                path.display()
            );
        }
    }
    // Sealed, not lost: once the platform is back every event arrives intact.
    h.sink.set_faults(Faults::default());
    wait_until(Duration::from_secs(20), "deliveries", || {
        h.sink.delivered_count() == 20
    })
    .await;
    let body = h.sink.delivered()[0].json();
    assert_eq!(body["applicant"]["idNumber"], CCCD);
    assert_eq!(body["applicant"]["fullName"], NAME);
    h.shutdown().await;
}

/// Start a bus on `h`'s data directory with its config, expecting a refusal.
async fn start_err(h: &Harness) -> String {
    let (cfg, keys) = h.config();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    match Bus::start(cfg, keys, listener).await {
        Ok(bus) => {
            bus.shutdown().await.unwrap();
            panic!("the bus started");
        }
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn keys_rotate_and_a_wrong_or_missing_key_stops_the_start_with_nothing_overwritten() {
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = keys_dir.path().join("outbox.keys");
    let old = new_key("k2025");
    std::fs::write(&keys, format!("{old}\n")).unwrap();
    let mut h = Harness::start(
        Faults {
            down: true,
            ..Faults::default()
        },
        &encryption_section(&keys),
    )
    .await;
    post_personal(&h, 5).await;
    h.bus.take().unwrap().shutdown().await.unwrap();
    let before = records(h.dir.path());

    // A wrong key of the same name, no key, an unknown key: refused, naming the key.
    std::fs::write(&keys, new_key("k2025")).unwrap();
    let e = start_err(&h).await;
    assert!(e.contains("`k2025`") && e.contains("not the key"), "{e}");
    std::fs::write(&keys, new_key("k2026")).unwrap();
    let e = start_err(&h).await;
    assert!(
        e.contains("`k2025`") && e.contains("not in the keyring"),
        "{e}"
    );
    let plain_extra = h.extra.clone();
    h.extra = String::new();
    let e = start_err(&h).await;
    assert!(e.contains("no encryption key is configured"), "{e}");
    h.extra = plain_extra;
    std::fs::remove_file(&keys).unwrap();
    let e = start_err(&h).await;
    assert!(e.contains("cannot read the outbox key file"), "{e}");
    assert!(
        records(h.dir.path()) == before,
        "a refused start changes no record"
    );

    // Rotation: the new key first, the old one kept to open what it sealed.
    let new = new_key("k2026");
    std::fs::write(&keys, format!("{new}\n{old}\n")).unwrap();
    h.restart().await;
    post_personal(&h, 5).await;
    h.bus.take().unwrap().shutdown().await.unwrap();

    // Re-encrypt (bus stopped), then the old key can go.
    let config = h.dir.path().join("bus.toml");
    std::fs::write(
        &config,
        support::config_text(h.dir.path(), h.sink_addr, &h.extra),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .args(["outbox", "re-encrypt", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("key `k2025` seals nothing any more"),
        "{stdout}"
    );
    std::fs::write(&keys, format!("{new}\n")).unwrap();
    h.restart().await;
    h.sink.set_faults(Faults::default());
    wait_until(Duration::from_secs(20), "every event delivered", || {
        h.sink.delivered_count() == 10
    })
    .await;
    h.shutdown().await;
}

const OPERATOR: &str = "protection-operator-token";

#[tokio::test]
async fn the_audit_trail_records_refusals_and_dead_letter_operations_and_shows_tampering() {
    // The platform refuses the events: they become dead letters.
    let h = Harness::start(
        Faults {
            reject_containing: Some("REFUSE".into()),
            ..Faults::default()
        },
        &format!(
            "[[admin.tokens]]\nname = \"ops\"\nrole = \"operator\"\ntoken_env = \"TEST_UNSET_OPS\"\ndev_token = \"{OPERATOR}\"\n"
        ),
    )
    .await;
    for n in 0..2 {
        let resp = h
            .post(
                "stameq",
                Some("dossier_sync"),
                &json!({"dossierCode": format!("HS-{n}"), "note": "REFUSE"}),
            )
            .await;
        assert_eq!(resp.status(), 202);
    }
    let dead_url = h.url("/api/v1/dead-letters");
    let mut dead = Vec::new();
    for _ in 0..200 {
        let v: Value = h
            .client
            .get(&dead_url)
            .bearer_auth(OPERATOR)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        dead = v["dead_letters"].as_array().cloned().unwrap_or_default();
        if dead.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(dead.len(), 2, "two dead letters");
    // A wrong admin token, a replay, a drop.
    let resp = h
        .client
        .get(&dead_url)
        .bearer_auth("not-the-token-at-all")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let (t0, id0) = (
        dead[0]["target"].as_str().unwrap(),
        dead[0]["id"].as_str().unwrap(),
    );
    let (t1, id1) = (
        dead[1]["target"].as_str().unwrap(),
        dead[1]["id"].as_str().unwrap(),
    );
    let resp = h
        .client
        .post(h.url(&format!("/api/v1/dead-letters/{t0}/{id0}/replay")))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let resp = h
        .client
        .post(h.url(&format!("/api/v1/dead-letters/{t1}/{id1}/drop")))
        .bearer_auth(OPERATOR)
        .json(&json!({"reason": "duplicate of HS-0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());

    let path = h.bus().audit.path().to_path_buf();
    let text = std::fs::read_to_string(&path).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "admin_login_failed",
            "dead_letter_replay",
            "dead_letter_drop"
        ]
    );
    assert!(
        !text.contains("not-the-token-at-all"),
        "no token in the trail"
    );
    assert_eq!(events[1]["actor"], "ops");
    assert_eq!(events[2]["details"]["reason"], "duplicate of HS-0");

    let verify = |file: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_lienthong"))
            .args(["audit", "verify", "--file"])
            .arg(file)
            .output()
            .unwrap();
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (code, out) = verify(&path);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("OK, 3 records"), "{out}");
    // Altered: the drop's reason rewritten.
    let copy = h.dir.path().join("tampered.log");
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&copy, text.replace("duplicate of HS-0", "operator error")).unwrap();
    let (code, out) = verify(&copy);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("line 3") && out.contains("altered"), "{out}");
    // Removed: the failed login gone.
    std::fs::write(&copy, lines[1..].join("\n")).unwrap();
    let (code, out) = verify(&copy);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("line 1") && out.contains("missing"), "{out}");
    // Reordered.
    std::fs::write(&copy, [lines[0], lines[2], lines[1]].join("\n")).unwrap();
    let (code, out) = verify(&copy);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("line 2"), "{out}");
    h.shutdown().await;
}

#[tokio::test]
async fn unit_keys_can_be_kept_as_digests_and_no_unit_posts_as_another() {
    let key = "varans-key-kept-only-as-a-digest";
    let digest = lienthong::hex::encode(&lienthong::web::key_digest(key.as_bytes()));
    let admin_token = "admin-token-by-digest-0123";
    let admin_digest = lienthong::hex::encode(&lienthong::web::key_digest(admin_token.as_bytes()));
    let h = Harness::start(
        Faults::default(),
        &format!(
            "[units.varans]\nkey_env = \"TEST_UNSET_VARANS\"\nkey_sha256 = \"{digest}\"\n\
             [[routes]]\nunit = \"varans\"\nflow = \"dossier_sync\"\ntargets = [\"a\"]\nordering = \"none\"\n\
             [[admin.tokens]]\nname = \"digest-op\"\nrole = \"operator\"\ntoken_env = \"TEST_UNSET_DIGEST_OP\"\n\
             token_sha256 = \"{admin_digest}\"\n"
        ),
    )
    .await;
    // An admin token configured by its digest works; another does not.
    for (token, status) in [(admin_token, 200), ("admin-token-by-digest-0124", 401)] {
        let resp = h
            .client
            .get(h.url("/api/v1/status"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status, "{token}");
    }
    let post = |bearer: &'static str, unit: &'static str| {
        let client = h.client.clone();
        let url = h.url(&format!("/api/v1/units/{unit}/events?flow=dossier_sync"));
        async move {
            let resp = client
                .post(url)
                .bearer_auth(bearer)
                .json(&json!({"dossierCode": "HS-V-1"}))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(post(key, "varans").await.0, 202);
    let (status, body) = post("varans-key-kept-only-as-a-digesT", "varans").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["field"], "authorization", "{body}");
    // NAFOSTED's key on VARANS's endpoint, and VARANS's on NAFOSTED's: refused.
    let (status, body) = post(support::NAFOSTED_KEY, "varans").await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = post(key, "nafosted").await;
    assert_eq!(status, 403);
    h.shutdown().await;
}

#[tokio::test]
async fn the_listener_speaks_https_when_configured() {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let files = tempfile::tempdir().unwrap();
    let (cert, key) = (files.path().join("bus.pem"), files.path().join("bus.key"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let h = Harness::start(
        Faults::default(),
        &format!(
            "[server.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            cert.display(),
            key.display()
        ),
    )
    .await;
    let addr = h.bus().addr;
    let https = lienthong::tls_provider::http_client()
        .no_proxy()
        .add_root_certificate(
            reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    let resp = https
        .post(format!(
            "https://{addr}/api/v1/units/nafosted/events?flow=dossier_sync"
        ))
        .bearer_auth(support::NAFOSTED_KEY)
        .json(&json!({"dossierCode": "HS-TLS-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    // Plain HTTP on the same port gets no answer.
    let plain = h
        .client
        .get(format!("http://{addr}/health"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "no plain HTTP"
    );
    wait_until(Duration::from_secs(10), "the event delivered", || {
        h.sink.delivered_count() == 1
    })
    .await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_requests_cannot_be_replayed_or_altered() {
    use lienthong::ingress::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
    let secret = "varans-signing-secret-0123";
    let key = "varans-dev-key-0123456789";
    let h = Harness::start(
        Faults::default(),
        &format!(
            "[units.varans]\nkey_env = \"TEST_UNSET_VARANS\"\ndev_key = \"{key}\"\n\
             hmac_secret_env = \"TEST_UNSET_VARANS_HMAC\"\ndev_hmac_secret = \"{secret}\"\n\
             soap_operations = {{ GuiHoSo = \"dossier_sync\" }}\n\
             [[routes]]\nunit = \"varans\"\nflow = \"dossier_sync\"\ntargets = [\"a\"]\nordering = \"none\"\n"
        ),
    )
    .await;
    let path = "/api/v1/units/varans/events?flow=dossier_sync";
    let send = |body: &'static str, ts: Option<u64>, sig: Option<String>| {
        let mut req = h
            .client
            .post(h.url(path))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body);
        if let Some(ts) = ts {
            req = req.header(TIMESTAMP_HEADER, ts.to_string());
        }
        if let Some(sig) = sig {
            req = req.header(SIGNATURE_HEADER, sig);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap();
            (
                status,
                body["error"]["code"].as_str().unwrap_or("").to_string(),
            )
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let body = r#"{"dossierCode": "HS-SIG-1"}"#;
    let sig = sign(secret.as_bytes(), now, "POST", path, body.as_bytes());
    assert_eq!(
        send(body, Some(now), Some(sig.clone())).await,
        (202, String::new())
    );
    // The same request again: a replay.
    assert_eq!(
        send(body, Some(now), Some(sig.clone())).await,
        (401, "replayed_request".into())
    );
    // Its signature on another body: altered.
    assert_eq!(
        send(r#"{"dossierCode": "HS-SIG-2"}"#, Some(now), Some(sig)).await,
        (401, "bad_signature".into())
    );
    // Signed an hour ago: stale. Not signed: refused.
    let old = sign(secret.as_bytes(), now - 3600, "POST", path, body.as_bytes());
    assert_eq!(
        send(body, Some(now - 3600), Some(old)).await,
        (401, "stale_signature".into())
    );
    assert_eq!(
        send(body, None, None).await,
        (401, "signature_required".into())
    );
    // Over SOAP the refusal is a SOAP fault (keeping its 401, as for a wrong key).
    let resp = h
        .client
        .post(h.url("/soap/varans"))
        .bearer_auth(key)
        .header("content-type", "text/xml")
        .body("<Envelope/>")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("soap:Client") && text.contains("signature_required"),
        "{text}"
    );
    // `lienthong send` signs for a unit that signs.
    let config = h.dir.path().join("bus.toml");
    std::fs::write(
        &config,
        support::config_text(h.dir.path(), h.sink_addr, &h.extra),
    )
    .unwrap();
    let file = h.dir.path().join("event.json");
    std::fs::write(&file, r#"{"dossierCode": "HS-SIG-CLI"}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .args([
            "send",
            "--unit",
            "varans",
            "--flow",
            "dossier_sync",
            "--url",
        ])
        .arg(format!("http://{}", h.bus().addr))
        .arg("--config")
        .arg(&config)
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("accepted 1 event"), "{stdout}");
    // Units that do not sign are not asked to.
    let resp = h
        .post(
            "nafosted",
            Some("dossier_sync"),
            &json!({"dossierCode": "HS-N-1"}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    assert_eq!(
        h.bus().outbox.stats().accepted_since_start,
        3,
        "refusals stored nothing"
    );
    h.shutdown().await;
}
