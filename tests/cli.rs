//! The command line as an operator meets it: `check` on the shipped config and on a
//! broken one, `run` on a port that is taken, and `run` stopped by SIGTERM.

use std::process::Command;

fn lienthong() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lienthong"));
    c.env_remove("RUST_LOG");
    c
}

/// A copy of the shipped mappings under `dir`, to edit without touching the repository's.
fn copy_of_shipped_mappings(dir: &std::path::Path) -> std::path::PathBuf {
    let mappings = dir.join("mappings");
    let cp = Command::new("cp")
        .arg("-r")
        .arg("mappings")
        .arg(&mappings)
        .status()
        .unwrap();
    assert!(cp.success());
    mappings
}

/// Wait until something listens on `port` (a child process starting up).
fn wait_for_port(port: u16, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A loopback port nobody listens on (the listener is dropped at once).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `lienthong run` on the shipped config, its data in `dir`, on `port`, mocks off and
/// output discarded; returns once it listens.
fn start_quiet_bus(dir: &std::path::Path, port: u16) -> std::process::Child {
    let child = lienthong()
        .args(["run", "--config", "config/lienthong.toml", "--data-dir"])
        .arg(dir)
        .env("LIENTHONG_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("LIENTHONG_MOCKS__ENABLED", "false")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port, "the bus did not come up");
    child
}

/// A response read to the end.
struct Reply {
    status: reqwest::StatusCode,
    body: String,
}

impl Reply {
    fn status(&self) -> reqwest::StatusCode {
        self.status
    }

    fn json(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::from_str(&self.body)
    }
}

/// Send one request built by `build` (from a plain, non-async test) and read the reply.
fn http(build: impl FnOnce(&reqwest::Client) -> reqwest::RequestBuilder) -> Reply {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let request = build(&client);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            let resp = request.send().await.unwrap();
            let status = resp.status();
            Reply {
                status,
                body: resp.text().await.unwrap(),
            }
        })
}

#[test]
fn check_accepts_the_shipped_config_and_warns_about_development_keys() {
    let out = lienthong()
        .args(["check", "--config", "config/lienthong.toml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "OK (4 units, 9 targets, 30 routes, 52 mappings compiled, 14 procedures catalogued)"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("DEVELOPMENT keys"), "{stdout}");
}

/// Issue 38, bug 6: paths in the config are relative to the config file's folder, so the
/// shipped config works from any working directory (it used to look for ./mappings in
/// whatever directory the command was started from: 52 "cannot read" errors).
#[test]
fn the_shipped_config_works_from_another_working_directory() {
    let elsewhere = tempfile::tempdir().unwrap();
    let config = std::fs::canonicalize("config/lienthong.toml").unwrap();
    let out = lienthong()
        .args(["check", "--config"])
        .arg(&config)
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("52 mappings compiled"), "{stdout}");
    // A relative path in an environment override stays relative to where it was typed.
    let mappings = copy_of_shipped_mappings(elsewhere.path());
    std::fs::remove_file(mappings.join("nafosted/dossier_sync.toml")).unwrap();
    let out = lienthong()
        .args(["check", "--config"])
        .arg(&config)
        .env("LIENTHONG_MAPPINGS__DIR", "mappings")
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("mappings/nafosted/dossier_sync.toml"),
        "{stderr}"
    );
}

/// Issue 38, bug 6: the help says every format the report writes, and `run --demo` points
/// the tester at the mocks' own views of what the platforms received (it pointed at the
/// recording sink, which the demo's routes never reach).
#[test]
fn the_report_help_names_pdf_and_the_demo_points_at_the_mocks_views() {
    for args in [&["--help"][..], &["report", "--help"][..]] {
        let out = lienthong().args(args).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("CSV, Excel or PDF"), "{help}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let (port, mocks) = (free_port(), free_port());
    let mut child = lienthong()
        .args([
            "run",
            "--config",
            "config/lienthong.toml",
            "--demo",
            "--demo-rate",
            "1",
            "--data-dir",
        ])
        .arg(tmp.path())
        .env("LIENTHONG_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("LIENTHONG_MOCKS__LISTEN", format!("127.0.0.1:{mocks}"))
        .env("LIENTHONG_MOCKS__IPO_DROP_DIR", tmp.path().join("drop"))
        // Everything it sends goes to its own mocks, never to a bus running here.
        .env(
            "LIENTHONG_TARGETS__PORTAL__URL",
            format!("http://127.0.0.1:{mocks}/portal"),
        )
        .env(
            "LIENTHONG_TARGETS__MINISTRY__URL",
            format!("http://127.0.0.1:{mocks}/bo-tthc"),
        )
        .env(
            "LIENTHONG_TARGETS__DATASTORE__URL",
            format!("http://127.0.0.1:{mocks}/datastore/documents"),
        )
        .env(
            "LIENTHONG_TARGETS__NOTIFY__URL",
            format!("http://127.0.0.1:{mocks}/notify/messages"),
        )
        .env(
            "LIENTHONG_TARGETS__PAYMENT__URL",
            format!("http://127.0.0.1:{mocks}/payment"),
        )
        .env(
            "LIENTHONG_TARGETS__IPO_INBOX__URL",
            tmp.path().join("ipo-import"),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let banner = lines
        .by_ref()
        .take(5)
        .map_while(Result::ok)
        .find(|l| l.starts_with("demo:"))
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        banner.contains(&format!("http://127.0.0.1:{mocks}/_mock/portal/dossiers")),
        "{banner}"
    );
    assert!(!banner.contains("/sink/"), "{banner}");
}

#[test]
fn check_lists_every_problem_with_its_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
environment = "production"
[units.ipo]
key_env = "LIENTHONG_TEST_UNSET_KEY"
dev_key = "dev-ipo-key-0000000"
[targets.portal]
kind = "http"
url = "not a url"
[[routes]]
unit = "ipo"
flow = "dossier_sync"
targets = ["portl"]
key = "MaHoSo"
"#,
    )
    .unwrap();
    let out = lienthong()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for expected in [
        "6 problem(s)",
        "units.ipo.dev_key",
        "server.tls: production serves keys",
        "outbox.encryption: production needs encryption at rest",
        "targets.portal.url",
        "routes[0].targets[0]: unknown target `portl`",
        "routes[0].key: `MaHoSo` is not a JSON pointer; write it as \"/MaHoSo\"",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

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

#[test]
fn mocks_serve_standalone_on_the_configured_address_and_seed() {
    let port = free_port();
    let child = lienthong()
        .args(["mocks", "--config", "config/lienthong.toml"])
        .env("LIENTHONG_MOCKS__LISTEN", format!("127.0.0.1:{port}"))
        .env("LIENTHONG_MOCKS__SEED", "42")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port, "the mocks did not come up");
    // The register served is the one seed 42 generates.
    let registry = lienthong_mocks::business::Registry::generate(42, 5_000);
    let known = registry.all().next().unwrap().clone();
    let reply: serde_json::Value = http(|c| {
        c.get(format!(
            "http://127.0.0.1:{port}/business/TraCuuThongTinDoanhNghiep?MaSoDoanhNghiep={}",
            known.code
        ))
    })
    .json()
    .unwrap();
    assert_eq!(reply["ResultObject"]["NAME"], known.name);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "lienthong mocks on http://127.0.0.1:{port} (seed 42)"
        )),
        "{stdout}"
    );
}

#[test]
fn mocks_take_fault_rules_from_the_config_and_check_names_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = |faults: &str| {
        format!(
            "[mocks]\nlisten = \"127.0.0.1:{port}\"\n{faults}\n[units.ipo]\nkey_env = \"X_UNSET\"\ndev_key = \"dev-ipo-key-0000000\"\n"
        )
    };
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        config("[[mocks.faults]]\nservice = \"portl\"\nerror_rate = 1.5\n"),
    )
    .unwrap();
    let out = lienthong()
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mocks.faults[0].service: unknown mock `portl`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("mocks.faults[0].error_rate: must be between 0 and 1"),
        "{stderr}"
    );
    let out = lienthong()
        .args(["mocks", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "the mocks refuse a bad rule too"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("problem(s) in [mocks]"));

    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        config("[[mocks.faults]]\nservice = \"sink\"\nerror_rate = 1.0\n"),
    )
    .unwrap();
    let child = lienthong()
        .args(["mocks", "--config"])
        .arg(&good)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port, "the mocks did not come up");
    let status = http(|c| {
        c.post(format!("http://127.0.0.1:{port}/sink/a"))
            .json(&serde_json::json!({}))
    })
    .status();
    assert_eq!(
        status, 503,
        "the configured rule is in force from the start"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
}

#[test]
fn mapping_test_runs_the_shipped_fixtures_and_shows_a_diff_on_a_mismatch() {
    let out = lienthong().args(["mapping", "test"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("[1/59]"), "progress per mapping: {stdout}");
    assert!(stdout.contains(" 0 failed; 59 of 59 mappings"), "{stdout}");

    // A copy of one unit's mappings where an expected output no longer matches.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("mappings");
    for dir in [
        "_schemas/portal",
        "nafosted/tables",
        "nafosted/tests/dossier_progress",
    ] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for file in [
        "_schemas/portal/CapNhatTienDoHoSoMC.toml",
        "nafosted/tables/status.toml",
        "nafosted/dossier_progress.toml",
        "nafosted/tests/dossier_progress/01-review-step.input.json",
        "nafosted/tests/dossier_progress/02-epoch-time-no-status.input.json",
        "nafosted/tests/dossier_progress/02-epoch-time-no-status.expected.json",
    ] {
        std::fs::copy(format!("mappings/{file}"), root.join(file)).unwrap();
    }
    std::fs::write(
        root.join("nafosted/tests/dossier_progress/01-review-step.expected.json"),
        r#"{"service": "CapNhatTienDoHoSoMC", "data": [{"MaHoSo": "NAFOSTED-2024-00042", "NguoiXuLy": "Someone Else"}]}"#,
    )
    .unwrap();
    let out = lienthong()
        .args(["mapping", "test"])
        .arg(root.join("nafosted"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("FAIL nafosted/dossier_progress.toml (1 passed, 1 failed)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("-       \"NguoiXuLy\": \"Someone Else\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("+       \"NguoiXuLy\": \"Đỗ Văn Nam\""),
        "{stdout}"
    );

    // `mapping run` prints what a mapping makes of one file.
    let out = lienthong()
        .args([
            "mapping",
            "run",
            "mappings/nafosted/dossier_progress.toml",
            "mappings/nafosted/tests/dossier_progress/01-review-step.input.json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"ThoiDiemXuLy\": \"20240308140500\""));
    assert!(stdout.contains("door: accepted"), "{stdout}");
    // A refused export: the door's verdict names each field, and the command fails.
    let out = lienthong()
        .args([
            "mapping",
            "run",
            "mappings/nafosted/dossier_sync.toml",
            "mappings/nafosted/tests/dossier_sync/05-bad-id-number.input.json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("door: refused with 400 invalid_event"),
        "{stdout}"
    );
    assert!(stdout.contains("/applicant/idNumber: "), "{stdout}");
}

#[test]
fn mapping_detect_names_a_legacy_encoding_and_explain_traces_each_field() {
    let tmp = tempfile::tempdir().unwrap();
    // An export of an old tool, in TCVN3.
    let csv = "MaHoSo,HoTen,DiaChi\nHS-1,Nguyễn Thị Minh Anh,Số 1 phố Hàng Bài Hà Nội\nHS-2,Trần Văn Đức,Thành phố Hồ Chí Minh\n";
    let file = tmp.path().join("export.csv");
    std::fs::write(
        &file,
        lienthong_mapping::text::unicode_to_tcvn3(csv).unwrap(),
    )
    .unwrap();
    let out = lienthong()
        .args(["mapping", "detect"])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("encoding: TCVN3"), "{stdout}");
    assert!(stdout.contains("[input] encoding = \"tcvn3\""), "{stdout}");
    assert!(stdout.contains("reads \"Hà\" as TCVN3"), "{stdout}");
    assert!(stdout.contains("Nguyễn Thị Minh Anh"), "{stdout}");

    // explain: the path, the value read, each transform and the result, field by field.
    let out = lienthong()
        .args([
            "mapping",
            "explain",
            "mappings/nafosted/dossier_sync.toml",
            "mappings/nafosted/tests/dossier_sync/01-new-dossier.input.json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    for line in [
        "data[0].ChuHoSo ← applicant.fullName = \"Nguyễn   Thị Minh Anh\"",
        "    collapse_spaces → \"Nguyễn Thị Minh Anh\"",
        "    phone_vn → \"0912345678\"",
        "    table applicant_type → 1",
        "data[0].TaiLieuNop[1].TenTepDinhKem ← name = \"Lý lịch khoa học.pdf\"",
        "schema portal/DongBoHoSoMC: ok",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in\n{stdout}");
    }
    // A bad case says where it stopped, and the command fails.
    let out = lienthong()
        .args([
            "mapping",
            "explain",
            "mappings/stameq/dossier_sync.toml",
            "mappings/stameq/tests/dossier_sync/03-unknown-applicant-kind.input.xml",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("✗"), "{stdout}");
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
    std::thread::sleep(std::time::Duration::from_millis(700));
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
    std::thread::sleep(std::time::Duration::from_millis(700));
    // The status API (and the dashboard from it) says what was refused.
    let status = http(|c| {
        c.get(format!("http://127.0.0.1:{port}/api/v1/status"))
            .bearer_auth("dev-only-viewer-token-change-me")
    });
    let status: serde_json::Value = serde_json::from_str(&status.body).unwrap();
    let shown = status["mappings_refused"]["problems"].to_string();
    assert!(shown.contains("unknown transform `rot13`"), "{shown}");
    assert!(shown.contains("nafosted/dossier_sync.toml"), "{shown}");
    assert!(shown.contains("fails"), "{shown}");
    // The dashboard shows it to the IT Center.
    let page = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client = reqwest::Client::builder()
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

/// Issue 38, bug 1: an edit that breaks a mapping's cases, refused by a reload, must not
/// go live at the next restart: `check` and `run` run the cases too.
#[test]
fn a_mapping_that_fails_its_cases_is_refused_by_check_and_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let mappings = copy_of_shipped_mappings(tmp.path());
    let naf = mappings.join("nafosted/dossier_sync.toml");
    let text = std::fs::read_to_string(&naf).unwrap();
    let edited = text.replace(
        "transform = [\"trim\", \"lower\"]",
        "transform = [\"trim\", \"upper\"]",
    );
    assert_ne!(text, edited);
    std::fs::write(&naf, edited).unwrap();
    let out = lienthong()
        .args(["check", "--config", "config/lienthong.toml"])
        .env("LIENTHONG_MAPPINGS__DIR", &mappings)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nafosted/dossier_sync.toml"), "{stderr}");
    assert!(
        stderr.contains("its case `01-new-dossier` fails"),
        "{stderr}"
    );
    let out = lienthong()
        .args(["run", "--config", "config/lienthong.toml", "--data-dir"])
        .arg(tmp.path().join("data"))
        .env(
            "LIENTHONG_SERVER__LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
        .env("LIENTHONG_MOCKS__ENABLED", "false")
        .env("LIENTHONG_MAPPINGS__DIR", &mappings)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the bus started: {stderr}");
    assert!(
        stderr.contains("its case `01-new-dossier` fails"),
        "{stderr}"
    );
}

#[test]
fn mocks_load_a_scenario_file_and_refuse_a_bad_one() {
    let port = free_port();
    let child = lienthong()
        .args([
            "mocks",
            "--config",
            "config/lienthong.toml",
            "--scenario",
            "config/scenarios/flaky-national-platforms.toml",
        ])
        .env("LIENTHONG_MOCKS__LISTEN", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port, "the mocks did not come up");
    let rules = http(|c| c.get(format!("http://127.0.0.1:{port}/_mock/faults")))
        .json()
        .unwrap();
    let rules = rules["rules"].as_array().unwrap().clone();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(rules.len(), 4, "{rules:?}");
    assert_eq!(rules[0]["reset_rate"], 0.02);
    assert_eq!(rules[3]["business_code"], "05");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("(seed 7)"), "the scenario's seed: {stdout}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[faults]]\nservice = \"portal\"\nreset_rate = 1.5\n").unwrap();
    let out = lienthong()
        .args(["mocks", "--config", "config/lienthong.toml", "--scenario"])
        .arg(&bad)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("mocks.faults[0].reset_rate: must be between 0 and 1"),
        "{stderr}"
    );
}

#[test]
fn send_posts_files_as_the_unit_and_names_what_was_refused() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = start_quiet_bus(dir.path(), port);
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "hello").unwrap();
    let out = lienthong()
        .args([
            "send",
            "--unit",
            "ipo",
            "--flow",
            "dossier_sync",
            "--idempotent",
            "--url",
        ])
        .arg(format!("http://127.0.0.1:{port}"))
        .args([
            "mappings/ipo/tests/dossier_sync/02-two-trademarks.input.csv",
            "mappings/ipo/tests/dossier_sync/03-ragged-row.input.csv",
            "mappings/ipo/tests/dossier_sync/02-two-trademarks.input.csv",
        ])
        .arg(&notes)
        .output()
        .unwrap();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let _ = child.wait_with_output();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("[1/4] ") && lines[0].contains("accepted 2 event(s)"),
        "{stdout}"
    );
    assert!(
        lines[1].contains("refused, HTTP 400") && lines[1].contains("[line 2"),
        "{stdout}"
    );
    assert!(
        lines[2].contains("(already had it)"),
        "the same file twice is stored once: {stdout}"
    );
    assert!(lines[3].contains("name it .json, .xml or .csv"), "{stdout}");
}

#[test]
fn status_and_dlq_commands_talk_to_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // The shipped config with its routes checking at delivery (the door would refuse
    // the bad event below).
    let config = dir.path().join("lienthong.toml");
    std::fs::write(
        &config,
        config_with_digests(
            &["dev-only-nafosted-key-change-me"],
            &["dev-only-viewer-token-change-me"],
        ),
    )
    .unwrap();
    let child = start_bus_on(&config, dir.path(), port);
    // An event its mapping refuses: a dead letter at once.
    let bad = r#"{"dossierCode": "NAFOSTED-DLQ-1", "procedureCode": "1.008433", "applicant": {"type": "individual", "fullName": "A", "idNumber": "001203004567"}, "submittedAt": "31/02/2024", "status": "submitted"}"#;
    let reply = http(|c| {
        c.post(format!(
            "http://127.0.0.1:{port}/api/v1/units/nafosted/events?flow=dossier_sync"
        ))
        .bearer_auth("dev-only-nafosted-key-change-me")
        .header("content-type", "application/json")
        .body(bad)
    });
    assert_eq!(reply.status(), 202);
    let id = reply.json().unwrap()["accepted"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let url = format!("http://127.0.0.1:{port}");
    let run = |args: &[&str]| {
        let out = lienthong()
            .args(args)
            .args(["--url", &url])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let mut listed = String::new();
    // Dead at both targets of the route: the portal and the ministry's system.
    for _ in 0..100 {
        let (_, out, _) = run(&["dlq", "list"]);
        if out.starts_with("2 dead letter(s)") {
            listed = out;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        listed.starts_with("2 dead letter(s)") && listed.contains("NgayTiepNhan"),
        "{listed}"
    );
    let (code, out, _) = run(&["status"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("2 dead letters")
            && out.contains("TARGET")
            && out.lines().any(|l| l.starts_with("portal"))
            && out.lines().any(|l| l.starts_with("ministry"))
            && out.contains("UNIT")
            && out
                .lines()
                .any(|l| l.starts_with("nafosted") && l.split_whitespace().nth(3) == Some("2")),
        "{out}"
    );
    let (_, out, _) = run(&["dlq", "show", "portal", &id]);
    assert!(out.contains("\"submittedAt\": \"31/02/2024\""), "{out}");
    let (code, _, err) = run(&[
        "dlq",
        "drop",
        "portal",
        &id,
        "--reason",
        "the unit resends it corrected",
        "--token",
        "dev-only-viewer-token-change-me",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("HTTP 403"), "a viewer may not drop: {err}");
    let (code, out, _) = run(&[
        "dlq",
        "drop",
        "portal",
        &id,
        "--reason",
        "the unit resends it corrected",
    ]);
    assert_eq!(code, Some(0), "{out}");
    let (_, out, _) = run(&["dlq", "list"]);
    assert!(
        out.starts_with("1 dead letter(s)"),
        "the ministry's is left: {out}"
    );
    let (code, out, _) = run(&[
        "dlq",
        "drop",
        "ministry",
        &id,
        "--reason",
        "the unit resends it corrected",
    ]);
    assert_eq!(code, Some(0), "{out}");
    let (_, out, _) = run(&["dlq", "list"]);
    assert!(out.starts_with("0 dead letter(s)"), "{out}");
    // The KPI report of a period, written where asked.
    let report = dir.path().join("report.csv");
    let (code, out, err) = run(&[
        "report",
        "--period",
        "all",
        "--output",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("report.csv") && out.contains("period all"),
        "{out}"
    );
    let csv = std::fs::read_to_string(&report).unwrap();
    // 1a from NAFOSTED's catalogue; its only event could not be mapped, so no dossier
    // is counted for target 2.
    assert!(
        csv.contains(
            "Toàn bộ thời gian,Quỹ Phát triển khoa học và công nghệ quốc gia,1a,Tỷ lệ TTHC cung cấp dịch vụ công trực tuyến toàn trình,2,3,66.7,80,Chưa đạt"
        ) && csv.contains("Toàn bộ thời gian,Quỹ Phát triển khoa học và công nghệ quốc gia,2,Tỷ lệ hồ sơ trực tuyến,0,0,,50,Chưa có số liệu"),
        "{csv}"
    );
    let (code, _, err) = run(&["report", "--period", "2024-Q5"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("is not a period"), "{err}");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let _ = child.wait_with_output();
}

#[test]
fn send_waits_for_a_busy_bus_and_says_when_it_gives_up() {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // A bus that is busy (503), then over the unit's rate (429), then takes the file; and
    // after that has the key stored by another node (409), then is busy for good.
    let server = std::thread::spawn(move || {
        let busy = r#"{"error":{"code":"busy","message":"the bus is holding too many undelivered messages; retry later"}}"#;
        for (n, stream) in listener.incoming().enumerate() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0usize;
            let mut line = String::new();
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let (status, json) = match n {
                0 => ("503 Service Unavailable", busy),
                1 => ("429 Too Many Requests", busy),
                2 => (
                    "202 Accepted",
                    r#"{"accepted":[{"id":"0190a5b0-0000-7000-8000-000000000001","duplicate":false}]}"#,
                ),
                3 => (
                    "409 Conflict",
                    r#"{"error":{"code":"idempotency_in_progress","message":"being stored by another node"}}"#,
                ),
                _ => ("503 Service Unavailable", busy),
            };
            write!(
                stream,
                "HTTP/1.1 {status}\r\nRetry-After: 1\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{json}",
                json.len()
            )
            .unwrap();
            if n == 5 {
                break;
            }
        }
    });
    let file = "mappings/nafosted/tests/dossier_sync/01-new-dossier.input.json";
    assert!(std::path::Path::new(file).exists(), "{file}");
    let out = lienthong()
        .args([
            "send",
            "--unit",
            "nafosted",
            "--flow",
            "dossier_sync",
            "--retries",
            "2",
            "--url",
        ])
        .arg(format!("http://127.0.0.1:{port}"))
        .args([file, file])
        .output()
        .unwrap();
    server.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        lines[0].starts_with("[1/2] ")
            && lines[0].contains("busy (HTTP 503); sending again in 1 s (retry 1 of 2)"),
        "{stdout}"
    );
    assert!(lines[1].contains("(HTTP 429)"), "{stdout}");
    assert!(lines[2].contains("accepted 1 event(s)"), "{stdout}");
    assert!(lines[3].contains("(HTTP 409)"), "{stdout}");
    assert!(
        lines[5].starts_with("[2/2] ") && lines[5].contains("gave up after 3 attempt(s)"),
        "{stdout}"
    );
    assert!(lines[6].contains("refused, HTTP 503"), "{stdout}");
}

#[test]
fn openapi_writes_the_whole_document_or_one_units() {
    let out = lienthong().args(["openapi"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/api/v1/status"));
    assert!(paths.contains_key("/api/v1/units/varans/events/dossier_sync"));

    let out = lienthong()
        .args(["openapi", "--unit", "stameq"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/soap/stameq"));
    assert!(paths.keys().all(|p| p.contains("stameq")), "{paths:?}");

    let out = lienthong()
        .args(["openapi", "--unit", "nobody"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no unit `nobody`") && err.contains("nafosted"),
        "{err}"
    );
}

/// `sha256:`-less hex digest of a credential, as `printf %s X | sha256sum` prints it.
fn sha256_hex(secret: &str) -> String {
    lienthong::hex::encode(&lienthong::web::key_digest(secret.as_bytes()))
}

/// The shipped config with NAFOSTED's key and the viewer token given by digests.
/// A quiet bus on `config` (keys and tokens from it, not the environment), its data in
/// `dir/data`, serving on `port`.
fn start_bus_on(config: &std::path::Path, dir: &std::path::Path, port: u16) -> std::process::Child {
    let child = lienthong()
        .args(["run", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("LIENTHONG_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("LIENTHONG_MOCKS__ENABLED", "false")
        .env_remove("LIENTHONG_UNIT_KEY_NAFOSTED")
        .env_remove("LIENTHONG_ADMIN_VIEWER_TOKEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port, "the bus did not come up");
    child
}

fn config_with_digests(unit_keys: &[&str], viewer_tokens: &[&str]) -> String {
    let list = |items: &[&str]| {
        let quoted: Vec<String> = items
            .iter()
            .map(|s| format!("\"{}\"", sha256_hex(s)))
            .collect();
        format!("[{}]", quoted.join(", "))
    };
    // Written elsewhere: the shipped paths (relative to config/) made whole.
    let repo = std::env::current_dir().unwrap().display().to_string();
    std::fs::read_to_string("config/lienthong.toml")
        .unwrap()
        .replace("\"../", &format!("\"{repo}/"))
        .replace(
            "\"dev-outbox.keys\"",
            &format!("\"{repo}/config/dev-outbox.keys\""),
        )
        .replace(
            "dev_key = \"dev-only-nafosted-key-change-me\"",
            &format!("key_sha256 = {}", list(unit_keys)),
        )
        .replace(
            "dev_token = \"dev-only-viewer-token-change-me\"",
            &format!("token_sha256 = {}", list(viewer_tokens)),
        )
        // The test's events are only about keys (a bare dossier code): checked at
        // delivery, not refused at the door.
        .replace("[[routes]]\n", "[[routes]]\nvalidate = \"deliver\"\n")
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

    // The old ones removed.
    std::fs::write(&config, config_with_digests(&[new_key], &[new_token])).unwrap();
    hup();
    eventually("the old key is refused after SIGHUP", &|| {
        send(old_key) == 401
    });
    assert_eq!(send(new_key), 202);
    assert_eq!(status(old_token), 401);
    assert_eq!(status(new_token), 200);

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

fn child_pid(child: &std::process::Child) -> String {
    child.id().to_string()
}

/// The units benchmark (the shipped routes and mappings under the four units' own traffic)
/// runs on the shipped config: it broke once, unseen, when a target kind gained a section
/// the benchmark did not clear.
#[test]
fn the_units_benchmark_runs_on_the_shipped_config() {
    let out = lienthong()
        .args(["bench", "--scenario", "units", "--events", "10000"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("units: "))
        .unwrap_or_else(|| panic!("no result line in {stdout}"));
    let delivered: u64 = line
        .split("; ")
        .nth(1)
        .and_then(|d| d.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no delivery count in {line}"));
    assert!(delivered >= 500, "{line}");
}

/// Issue 20's walk: a fifth, made-up unit system (a testing laboratory) hands over only a
/// sample export from its old Windows tool, in TCVN3. `mapping new` writes a first mapping
/// and case from it, `mapping test` fails on what it could not guess, a few edits fill
/// those in, and the mapping passes its case with the names in Unicode.
#[test]
fn mapping_new_from_a_legacy_sample_then_a_few_edits_give_a_passing_mapping() {
    let tmp = tempfile::tempdir().unwrap();
    let mappings = copy_of_shipped_mappings(tmp.path());
    let export = "Số HS,Họ và tên,Loại,Mã thủ tục,Ngày nhận,Tình trạng,Điện thoại,Địa chỉ\n\
                  PTN-2024-001,Nguyễn Thị Minh Anh,canhan,1.001234,05/03/2024 08:30:00,moi,0912 345 678,Số 1 phố Hàng Bài Hà Nội\n";
    let sample = tmp.path().join("xuat-ho-so.csv");
    std::fs::write(
        &sample,
        lienthong_mapping::text::unicode_to_tcvn3(export).unwrap(),
    )
    .unwrap();

    let out = lienthong()
        .args(["mapping", "new", "--unit", "ptn", "--flow", "dossier_sync"])
        .args(["--schema", "portal/DongBoHoSoMC", "--sample"])
        .arg(&sample)
        .arg("--dir")
        .arg(&mappings)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("sample encoding: TCVN3"), "{stdout}");
    assert!(stdout.contains("data[0].ChuHoSo ← Họ và tên"), "{stdout}");
    assert!(stdout.contains("isUpdating"), "{stdout}");
    let file = mappings.join("ptn/dossier_sync.toml");
    let written = std::fs::read_to_string(&file).unwrap();
    for expected in [
        "encoding = \"tcvn3\"",
        "from = \"Số HS\"",
        "date = { from = \"dd/MM/yyyy HH:mm:ss\", to = \"yyyyMMddHHmmss\" }",
        "transform = [\"phone_vn\"]",
        "values = { \"moi\" = \"TODO\" }",
        "from = \"TODO\"",
    ] {
        assert!(
            written.contains(expected),
            "missing {expected:?} in\n{written}"
        );
    }
    assert!(
        mappings
            .join("ptn/tests/dossier_sync/01-sample.input.csv")
            .exists()
    );

    // Not done yet: mapping test fails until the TODOs are filled in.
    let test = |bless: bool| {
        let mut c = lienthong();
        c.args(["mapping", "test"]);
        if bless {
            c.arg("--bless");
        }
        c.arg(&file).output().unwrap()
    };
    assert!(!test(false).status.success());
    // Nor does --bless make it pass: a failure is not blessed into an expected error.
    let blessed_too_soon = test(true);
    let said = String::from_utf8_lossy(&blessed_too_soon.stdout);
    assert!(!blessed_too_soon.status.success(), "{said}");
    assert!(said.contains("nothing was blessed"), "{said}");
    let cases = mappings.join("ptn/tests/dossier_sync");
    assert!(!cases.join("01-sample.error.txt").exists(), "{said}");
    assert!(!cases.join("01-sample.expected.json").exists(), "{said}");

    // A few edits, as the unit's IT team would make them.
    let edited = written
        .replace(
            "to = \"isUpdating\"\nfrom = \"TODO\"\nrequired = true",
            "to = \"isUpdating\"\nconst = \"False\"",
        )
        .replace(
            "values = { \"moi\" = \"TODO\" }",
            "values = { \"moi\" = 1 }",
        )
        .replace(
            "values = { \"canhan\" = \"TODO\" }",
            "values = { \"canhan\" = 1 }",
        );
    assert!(!edited.contains("TODO\"\n"), "{edited}");
    std::fs::write(&file, edited).unwrap();
    let blessed = test(true);
    assert!(
        blessed.status.success(),
        "{}",
        String::from_utf8_lossy(&blessed.stdout)
    );
    let passed = test(false);
    let report = String::from_utf8_lossy(&passed.stdout);
    assert!(passed.status.success(), "{report}");
    assert!(report.contains("1 cases passed, 0 failed"), "{report}");
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(mappings.join("ptn/tests/dossier_sync/01-sample.expected.json"))
            .unwrap(),
    )
    .unwrap();
    let record = &expected["data"][0];
    assert_eq!(record["ChuHoSo"], "Nguyễn Thị Minh Anh");
    assert_eq!(record["MaHoSo"], "PTN-2024-001");
    assert_eq!(record["NgayTiepNhan"], "20240305083000");
    assert_eq!(record["SoDienThoai"], "0912345678");
    assert_eq!(record["TrangThaiHoSo"], 1);
    assert_eq!(expected["service"], "DongBoHoSoMC");
}
