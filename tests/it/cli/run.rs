//! `run` as a process: a taken port, SIGTERM, and SIGHUP reloading mappings, keys and
//! tokens without a restart.

use super::*;

#[test]
fn run_on_a_taken_port_says_so_and_exits() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let out = lienthong()
        .args(["run", "--config", "config/lienthong.toml", "--data-dir"])
        .arg(dir.path())
        .env("LIENTHONG_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("LIENTHONG_MOCKS__ENABLED", "false")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[test]
fn run_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = lienthong()
        .args([
            "run",
            "--config",
            "config/lienthong.toml",
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("LIENTHONG_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("LIENTHONG_MOCKS__ENABLED", "false")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port, "the bus did not come up");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exit status {:?}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // JSON log lines, ending with the flush.
    let last = stderr
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or_default();
    let line: serde_json::Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {last}"));
    assert_eq!(line["message"], "outbox flushed; stopped", "{stderr}");
    // The data directory is owner-only: the outbox holds personal data.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

/// What `/api/v1/status` says was refused, once the reload (compiling every mapping and
/// running its cases) is done: asked until both refusals show, as a machine busy with other
/// tests may take seconds.
fn refusals_once_reloaded(port: u16) -> String {
    let refused = || {
        let status = http(|c| {
            c.get(format!("http://127.0.0.1:{port}/api/v1/status"))
                .bearer_auth("dev-only-viewer-token-change-me")
        });
        let status: serde_json::Value = serde_json::from_str(&status.body).unwrap();
        status["mappings_refused"]["problems"].to_string()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut shown = refused();
    while !(shown.contains("rot13") && shown.contains("nafosted"))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
        shown = refused();
    }
    shown
}

#[test]
fn sighup_reloads_mappings_and_a_broken_one_is_refused_in_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let mappings = copy_of_shipped_mappings(tmp.path());
    let port = free_port();
    let child = lienthong()
        .args([
            "run",
            "--config",
            "config/lienthong.toml",
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(tmp.path().join("data"))
        .env("LIENTHONG_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("LIENTHONG_MOCKS__ENABLED", "false")
        .env("LIENTHONG_MAPPINGS__DIR", &mappings)
        .env("LIENTHONG_MAPPINGS__WATCH", "false")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = child;
    // The bus prints its address once it has started (mappings compiled, SIGHUP taken).
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(
        first.contains(&format!("listening on http://127.0.0.1:{port}")),
        "{first}"
    );
    let signal = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    };
    signal("-HUP");
    // The first reload (every mapping compiled and its cases run) must be done before the
    // files change; nothing but the log says so, so it is given time (on a machine busy
    // with other tests 700 ms was not enough).
    std::thread::sleep(std::time::Duration::from_secs(3));
    std::fs::write(
        mappings.join("varans/dossier_sync.toml"),
        "[mapping]\ndescription = \"broken\"\n\n[[field]]\nto = \"a\"\nfrom = \"b\"\ntransform = [\"rot13\"]\n",
    )
    .unwrap();
    // An edit that compiles but no longer gives what its cases expect is refused too.
    let naf = mappings.join("nafosted/dossier_sync.toml");
    let text = std::fs::read_to_string(&naf).unwrap();
    let edited = text.replace(
        "transform = [\"trim\", \"lower\"]",
        "transform = [\"trim\", \"upper\"]",
    );
    assert_ne!(text, edited);
    std::fs::write(&naf, edited).unwrap();
    signal("-HUP");
    // The status API (and the dashboard from it) says what was refused.
    let shown = refusals_once_reloaded(port);
    assert!(shown.contains("unknown transform `rot13`"), "{shown}");
    assert!(shown.contains("nafosted/dossier_sync.toml"), "{shown}");
    assert!(shown.contains("fails"), "{shown}");
    // The dashboard shows it to the IT Center.
    let page = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client = lienthong::tls_provider::http_client()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let signed_in = client
            .post(format!("http://127.0.0.1:{port}/dang-nhap"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("token=dev-only-viewer-token-change-me")
            .send()
            .await
            .unwrap();
        let cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_string();
        client
            .get(format!("http://127.0.0.1:{port}/"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(page.contains("Ánh xạ bị từ chối khi nạp lại"), "{page}");
    assert!(page.contains("its case `01-new-dossier` fails"), "{page}");
    signal("-TERM");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit status {:?}: {stderr}",
        out.status
    );
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        lines.iter().any(|l| l["message"] == "mappings reloaded"
            && l["trigger"] == "SIGHUP"
            && l["mappings"] == 52),
        "{stderr}"
    );
    let problem = lines
        .iter()
        .filter(|l| l["message"] == "mapping refused; the previous version stays in use")
        .filter_map(|l| l["problem"].as_str())
        .find(|p| p.contains("varans/"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        problem.contains("varans/dossier_sync.toml:4: field `a`: unknown transform `rot13`"),
        "{problem}"
    );
    let case_refused = lines
        .iter()
        .filter(|l| l["message"] == "mapping refused; the previous version stays in use")
        .filter_map(|l| l["problem"].as_str())
        .find(|p| p.contains("nafosted/dossier_sync.toml"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        case_refused.contains("its case `01-new-dossier` fails"),
        "{case_refused}"
    );
    // (the log masks personal data, fixture data included)
    assert!(
        case_refused.contains("\"Email\": \"M***N\""),
        "{case_refused}"
    );
}

#[test]
fn keys_and_tokens_rotate_on_sighup_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lienthong.toml");
    let (old_key, new_key) = ("nafosted-old-key-0123456789", "nafosted-new-key-0123456789");
    let (old_token, new_token) = ("viewer-old-token-0123456789", "viewer-new-token-0123456789");
    std::fs::write(&config, config_with_digests(&[old_key], &[old_token])).unwrap();
    let port = free_port();
    let mut child = start_bus_on(&config, dir.path(), port);
    let send = |key: &str| {
        http(|c| {
            c.post(format!(
                "http://127.0.0.1:{port}/api/v1/units/nafosted/events/dossier_sync"
            ))
            .bearer_auth(key)
            .json(&serde_json::json!({"dossierCode": "NAF-ROT-1", "procedureCode": "1.0"}))
        })
        .status()
        .as_u16()
    };
    let status = |token: &str| {
        http(|c| {
            c.get(format!("http://127.0.0.1:{port}/api/v1/status"))
                .bearer_auth(token)
        })
        .status()
        .as_u16()
    };
    let hup = || {
        let ok = Command::new("kill")
            .args(["-HUP", &child_pid(&child)])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -HUP failed");
    };
    let eventually = |what: &str, cond: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !cond() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    assert_eq!(send(old_key), 202);
    assert_eq!(send(new_key), 401);
    assert_eq!(status(old_token), 200);
    assert_eq!(status(new_token), 401);

    // The overlap: both keys and both tokens.
    std::fs::write(
        &config,
        config_with_digests(&[new_key, old_key], &[new_token, old_token]),
    )
    .unwrap();
    hup();
    eventually("the new key is accepted after SIGHUP", &|| {
        send(new_key) == 202
    });
    assert_eq!(
        send(old_key),
        202,
        "the old key still works during the overlap"
    );
    assert_eq!(status(new_token), 200);
    assert_eq!(status(old_token), 200);
    // A dashboard session opened with the old token, before it is rotated out.
    let page = |cookie: &str| {
        let cookie = cookie.to_string();
        http(move |c| {
            c.get(format!("http://127.0.0.1:{port}/"))
                .header("cookie", cookie)
        })
        .body
    };
    let cookie = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let c = lienthong::tls_provider::http_client()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let r = c
            .post(format!("http://127.0.0.1:{port}/dang-nhap"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={old_token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let set = r.headers()["set-cookie"].to_str().unwrap();
        set.split(';').next().unwrap().to_string()
    });
    assert!(page(&cookie).contains("dang-xuat"), "signed in");

    // The old ones removed.
    std::fs::write(&config, config_with_digests(&[new_key], &[new_token])).unwrap();
    hup();
    eventually("the old key is refused after SIGHUP", &|| {
        send(old_key) == 401
    });
    assert_eq!(send(new_key), 202);
    assert_eq!(status(old_token), 401);
    assert_eq!(status(new_token), 200);
    // The session the old token opened ended with it.
    assert!(
        !page(&cookie).contains("dang-xuat"),
        "the old token's session outlived it"
    );

    // A file that does not validate changes nothing.
    std::fs::write(
        &config,
        config_with_digests(&[new_key], &[new_token]).replace(&sha256_hex(new_key), "not-a-digest"),
    )
    .unwrap();
    hup();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(send(new_key), 202, "a broken file leaves the keys in use");
    let _ = child.kill();
    let _ = child.wait();
}
