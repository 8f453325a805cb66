//! A real three-node RabbitMQ cluster on this machine, for the tests that lose a broker
//! node: Debian's `rabbitmq-server` started three more times, each node with its own name
//! (unique to the test process), loopback ports picked free, data and logs in a temporary
//! directory, no plugins, and joined into one cluster. Quorum queues declared on it get a
//! replica on each node. Every node is stopped and its files removed when the value drops.
//!
//! `rabbitmq-server` must be installed (`scripts/test` installs it); a test using this
//! fails with what to do when it is not.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
const CTL: &str = "/usr/lib/rabbitmq/bin/rabbitmqctl";

/// One node of the cluster.
pub struct BrokerNode {
    pub name: String,
    pub port: u16,
    dist_port: u16,
    dir: PathBuf,
}

impl BrokerNode {
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    fn command(&self, program: &str) -> Command {
        let d = &self.dir;
        let mut c = Command::new(program);
        c.env("RABBITMQ_CONF_ENV_FILE", d.join("env.conf"))
            .env("RABBITMQ_NODENAME", &self.name)
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_PID_FILE", d.join("pid"))
            .env("ERL_FLAGS", "-kernel inet_dist_use_interface {127,0,0,1}");
        c
    }

    fn ctl(&self, args: &[&str]) -> Result<String, String> {
        let out = self
            .command(CTL)
            .args(["-n", &self.name])
            .args(args)
            .output()
            .map_err(|e| format!("rabbitmqctl: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "rabbitmqctl {args:?} on {}: {}{}",
                self.name,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Start the node (again) and wait until it serves.
    pub fn start(&self) {
        let status = self
            .command(SERVER)
            .arg("-detached")
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run {SERVER} ({e}); install Debian's rabbitmq-server (scripts/test does)")
            });
        assert!(
            status.success(),
            "{SERVER} -detached failed for {}",
            self.name
        );
        let start = Instant::now();
        loop {
            if self.ctl(&["await_startup", "--timeout", "30"]).is_ok() {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "broker node {} did not start; see {}",
                self.name,
                self.dir.join("log").display()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The node's operating-system process, killed without a word (SIGKILL).
    pub fn kill(&self) {
        assert!(self.try_kill(), "broker node {} was not running", self.name);
    }

    /// [`BrokerNode::kill`]; `false` when it was not running.
    fn try_kill(&self) -> bool {
        let Ok(pid) = std::fs::read_to_string(self.dir.join("pid")) else {
            return false;
        };
        let killed = Command::new("kill")
            .args(["-KILL", pid.trim()])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !killed {
            return false;
        }
        // Wait for it to be gone, so a restart does not find it still running.
        let start = Instant::now();
        while Path::new(&format!("/proc/{}", pid.trim())).exists()
            && start.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }
}

/// Three nodes joined into one cluster.
pub struct BrokerCluster {
    pub nodes: Vec<BrokerNode>,
    dir: Option<tempfile::TempDir>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl BrokerCluster {
    /// Start three nodes and join the second and third to the first.
    pub fn start() -> BrokerCluster {
        let dir = tempfile::tempdir().unwrap();
        let tag = format!("{}-{}", std::process::id(), free_port());
        let nodes: Vec<BrokerNode> = (1..=3)
            .map(|i| {
                let node = BrokerNode {
                    name: format!("lt-test-{tag}-{i}@localhost"),
                    port: free_port(),
                    dist_port: free_port(),
                    dir: dir.path().join(format!("node-{i}")),
                };
                std::fs::create_dir_all(&node.dir).unwrap();
                std::fs::write(
                    node.dir.join("rabbitmq.conf"),
                    format!(
                        "listeners.tcp.local = 127.0.0.1:{}\nloopback_users = none\n",
                        node.port
                    ),
                )
                .unwrap();
                std::fs::write(node.dir.join("enabled_plugins"), "[].\n").unwrap();
                std::fs::write(node.dir.join("env.conf"), "ERL_EPMD_ADDRESS=127.0.0.1\n").unwrap();
                node
            })
            .collect();
        for node in &nodes {
            node.start();
        }
        let first = nodes[0].name.clone();
        for node in &nodes[1..] {
            node.ctl(&["stop_app"]).unwrap();
            node.ctl(&["join_cluster", &first]).unwrap();
            node.ctl(&["start_app"]).unwrap();
        }
        let status = nodes[0].ctl(&["cluster_status"]).unwrap();
        for node in &nodes {
            assert!(
                status.contains(&node.name),
                "{} not in the cluster: {status}",
                node.name
            );
        }
        BrokerCluster {
            nodes,
            dir: Some(dir),
        }
    }

    /// What each queue holds, as the first node that answers lists it (for a failing
    /// test's message).
    pub fn queues(&self) -> String {
        self.nodes
            .iter()
            .find_map(|n| {
                n.ctl(&[
                    "list_queues",
                    "name",
                    "type",
                    "messages_ready",
                    "messages_unacknowledged",
                    "consumers",
                    "leader",
                ])
                .ok()
            })
            .unwrap_or_else(|| "no broker node answers".into())
    }

    /// Every node's URL, for `[amqp] urls` (tried in turn).
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(BrokerNode::url).collect()
    }
}

impl Drop for BrokerCluster {
    fn drop(&mut self) {
        // Killed: nothing of it is kept, and a stop would wait for a clean shutdown.
        for node in &self.nodes {
            node.try_kill();
        }
        // A failing test leaves the nodes' logs for study.
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            eprintln!("broker nodes' files kept in {}", dir.keep().display());
        }
    }
}
