//! Test utilities for the RabbitMQ transport: the real broker at 127.0.0.1:5672 (a test
//! fails loudly when it cannot be reached: `scripts/test` starts it), names unique to each
//! test and removed afterwards, and a loopback TCP proxy that can cut every connection
//! through it, to take the broker away from a running bus.

use lapin::{Connection, ConnectionProperties};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub const BROKER: &str = "127.0.0.1:5672";
pub const BROKER_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Connect to the broker or stop the test with what to do.
pub async fn require_broker() -> Connection {
    match tokio::time::timeout(
        std::time::Duration::from_secs(10),
        Connection::connect(BROKER_URL, ConnectionProperties::default()),
    )
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => panic!(
            "RabbitMQ at {BROKER} refused the connection ({e}); start it with \
             `rabbitmq-server -detached` (scripts/test does this)"
        ),
        Err(_) => panic!(
            "RabbitMQ at {BROKER} did not answer within 10 s; start it with \
             `rabbitmq-server -detached` (scripts/test does this)"
        ),
    }
}

/// A prefix no other test run uses.
pub fn unique_prefix(test: &str) -> String {
    format!("lt-test-{test}-{}", uuid::Uuid::now_v7().simple())
}

/// Delete every queue and exchange the bus declared under `prefix`.
pub async fn cleanup(prefix: &str, targets: &[&str], nodes: &[&str], partitions: u16) {
    let broker = lienthong::transport::broker::Broker::new(&lienthong::config::AmqpConfig {
        urls: vec![BROKER_URL.into()],
        prefix: prefix.into(),
        partitions,
        ..Default::default()
    });
    let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
    let nodes: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
    broker
        .delete_topology(&targets, &nodes)
        .await
        .expect("the test's queues and exchanges are deleted");
}

/// A loopback TCP proxy to the broker whose connections can be cut at will.
pub struct TcpProxy {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl TcpProxy {
    pub async fn start(upstream: &str) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let upstream = upstream.to_string();
        let accept = {
            let open = Arc::clone(&open);
            let conns = Arc::clone(&conns);
            tokio::spawn(async move {
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        return;
                    };
                    if !open.load(Ordering::SeqCst) {
                        drop(client); // refused while the link is down
                        continue;
                    }
                    let upstream = upstream.clone();
                    let task = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(&upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    conns.lock().unwrap().push(task);
                }
            })
        };
        TcpProxy {
            addr,
            open,
            conns,
            accept,
        }
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }

    /// Drop every connection through the proxy and refuse new ones until [`restore`].
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}
