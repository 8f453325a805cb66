//! Bus processes for the benchmarks: a `lienthong run` child with its own config and data
//! directory, started, stopped, killed, and measured.

use super::*;

/// `[outbox.encryption]` with a fresh key in `dir` when `args.encrypted`, else nothing.
pub(super) fn encryption_section(dir: &Path, args: &BenchArgs) -> String {
    if !args.encrypted {
        return String::new();
    }
    let keys = dir.join("outbox.keys");
    std::fs::write(
        &keys,
        crate::outbox::encryption::new_key_line("bench") + "\n",
    )
    .expect("write the bench key");
    format!(
        "[outbox.encryption]\nkeys_env = \"LIENTHONG_BENCH_UNSET_KEYS\"\nkeys_file = \"{}\"\n",
        keys.display()
    )
}

/// A `lienthong run` child process (the bench's, and the backlog tests').
pub struct BusProcess {
    pub(crate) child: std::process::Child,
}

impl BusProcess {
    pub(crate) fn start(config: &Path, port: u16) -> Result<(BusProcess, Duration), String> {
        Self::start_as(config, port, "all")
    }

    pub(crate) fn start_as(
        config: &Path,
        port: u16,
        role: &str,
    ) -> Result<(BusProcess, Duration), String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        Self::spawn(&exe, config, port, role)
    }

    /// Start `exe run --config <config> --role <role>` and wait until it listens on `port`.
    pub fn spawn(
        exe: &Path,
        config: &Path,
        port: u16,
        role: &str,
    ) -> Result<(BusProcess, Duration), String> {
        let started = Instant::now();
        let log = std::fs::File::create(config.with_extension("log")).map_err(|e| e.to_string())?;
        // LIENTHONG_BENCH_WRAPPER runs the bus under a profiler (`heaptrack -o FILE`,
        // `perf record -g --`): words split on spaces, then the bus's own command line.
        let mut command = match std::env::var("LIENTHONG_BENCH_WRAPPER") {
            Ok(w) if !w.trim().is_empty() => {
                let mut words = w.split_whitespace();
                let mut c = std::process::Command::new(words.next().expect("non-empty"));
                c.args(words).arg(exe);
                c
            }
            _ => std::process::Command::new(exe),
        };
        let child = command
            .args(["run", "--config"])
            .arg(config)
            .args(["--role", role])
            .env("RUST_LOG", "warn")
            .env("LIENTHONG_BENCH_UNIT_KEY", UNIT_KEY)
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start the bus: {e}"))?;
        let bus = BusProcess { child };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok((bus, started.elapsed()));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the bus did not listen on {port}; see {}",
                    config.with_extension("log").display()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send SIGTERM and wait for the process to end; how long it took, and whether it
    /// exited with success.
    pub fn terminate(mut self) -> (Duration, bool) {
        let started = Instant::now();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let ok = self.child.wait().map(|s| s.success()).unwrap_or(false);
        (started.elapsed(), ok)
    }

    /// Peak and current resident memory of the bus, in MiB (from /proc).
    pub fn memory_mb(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
                / 1024.0
        };
        (field("VmHWM:"), field("VmRSS:"))
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub(crate) fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18080)
}

pub(super) fn write_config(
    dir: &Path,
    port: u16,
    sink: std::net::SocketAddr,
    target_extra: &str,
    args: &BenchArgs,
) -> PathBuf {
    let tail = format!(
        "{}[evidence]\nmode = \"{}\"\n",
        encryption_section(dir, args),
        args.evidence
    );
    write_config_with(dir, "bench.toml", port, sink, target_extra, "", &tail)
}

/// The bench config; `head` goes before the first table (top-level keys), `tail` after.
pub(super) fn write_config_with(
    dir: &Path,
    name: &str,
    port: u16,
    sink: std::net::SocketAddr,
    target_extra: &str,
    head: &str,
    tail: &str,
) -> PathBuf {
    let text = format!(
        r#"{head}
environment = "development"
[server]
listen = "127.0.0.1:{port}"
max_body_bytes = 16777216
max_batch = 1000
[outbox]
data_dir = "{data}"
max_pending = 20000000
max_pending_bytes = 34359738368
window = 20000
cache_mb = 16
[units.bench]
key_env = "LIENTHONG_BENCH_UNIT_KEY"
[targets.sink]
kind = "http"
url = "http://{sink}/sink/bench"
{target_extra}
[[routes]]
unit = "bench"
flow = "dossier_sync"
targets = ["sink"]
ordering = "per_key"
key = "/MaHoSo"
{tail}
"#,
        data = dir.join("data").display()
    );
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write bench config");
    path
}
