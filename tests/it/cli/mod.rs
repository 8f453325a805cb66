//! The command line as an operator meets it, one module per kind of command; this file
//! holds what they share (the binary, free ports, a quiet bus, plain HTTP).

mod admin;
mod check;
mod mapping;
mod mocks;
mod run;

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
    let client = lienthong::tls_provider::http_client()
        .no_proxy()
        .build()
        .unwrap();
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

fn child_pid(child: &std::process::Child) -> String {
    child.id().to_string()
}
