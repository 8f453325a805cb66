//! The connection to RabbitMQ: opened on demand, replaced when it fails (trying each
//! configured URL in turn), and the topology declaration. Every broker call that could hang
//! on a stopped broker is bounded by `publish_timeout`.

use super::Topology;
use crate::config::AmqpConfig;
use crate::outbox::encryption::Keyring;
use lapin::options::{ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("broker call timed out after {0:?}")]
    Timeout(Duration),
    #[error("broker: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("the broker refused the message: {0}")]
    Refused(String),
    #[error("broker TLS settings: {0}")]
    Tls(String),
}

pub struct Broker {
    cfg: AmqpConfig,
    pub topology: Topology,
    conn: tokio::sync::Mutex<Option<Connection>>,
    next_url: AtomicUsize,
    /// With an encrypted outbox, the same keys seal every body this node publishes.
    keyring: Option<Arc<Keyring>>,
}

/// What a broker body is. Its associated data when sealed: a body opens only as what it
/// was sealed as — a delivery for one target and one message id (the AMQP `message_id`
/// it travels with), or a status message — so a captured sealed body cannot be replayed
/// under another id, to another target, or as another kind.
#[derive(Clone, Copy, Debug)]
pub enum BodyKind<'a> {
    Delivery {
        target: &'a str,
        message_id: &'a str,
    },
    Status,
    /// Several deliveries of one partition ([`super::wire::WireBatch`]).
    Batch {
        target: &'a str,
        batch_id: &'a str,
    },
}

impl BodyKind<'_> {
    fn associated_data(&self) -> Vec<u8> {
        match self {
            BodyKind::Delivery { target, message_id } => {
                format!("lienthong/broker/v2/delivery\0{target}\0{message_id}").into_bytes()
            }
            BodyKind::Status => b"lienthong/broker/v2/status".to_vec(),
            BodyKind::Batch { target, batch_id } => {
                format!("lienthong/broker/v2/batch\0{target}\0{batch_id}").into_bytes()
            }
        }
    }
}

impl Broker {
    pub fn new(cfg: &AmqpConfig) -> Broker {
        Broker {
            cfg: cfg.clone(),
            topology: Topology::new(cfg),
            conn: tokio::sync::Mutex::new(None),
            next_url: AtomicUsize::new(0),
            keyring: None,
        }
    }

    /// Seal message bodies with `keyring` (the outbox's; `None`: bodies in clear).
    pub fn sealed_with(mut self, keyring: Option<Arc<Keyring>>) -> Broker {
        self.keyring = keyring;
        self
    }

    /// The content type of the bodies this node publishes (sealed ones are opaque).
    pub fn content_type(&self) -> &'static str {
        if self.keyring.is_some() {
            "application/octet-stream"
        } else {
            "application/json"
        }
    }

    /// A body as it goes on the broker: sealed under the keyring's current key, if any,
    /// bound to what it is.
    pub fn seal(&self, kind: BodyKind<'_>, body: Vec<u8>) -> Vec<u8> {
        match &self.keyring {
            Some(ring) => ring.seal(&kind.associated_data(), &body),
            None => body,
        }
    }

    /// A body as it came off the broker, opened as `kind`. When this node seals, a body
    /// in clear is refused: anyone able to publish to the broker could otherwise inject
    /// deliveries or notes. A sealed one needs its key in this node's keyring.
    pub fn open(&self, kind: BodyKind<'_>, body: &[u8]) -> Result<Vec<u8>, String> {
        match (&self.keyring, crate::outbox::encryption::sealed_with(body)) {
            (None, None) => Ok(body.to_vec()),
            (Some(_), None) => Err(
                "a body in clear, but this cluster seals its broker traffic: refused (only nodes \
                 with the cluster's keyring may publish)"
                    .into(),
            ),
            (Some(ring), Some(_)) => ring
                .open(&kind.associated_data(), body)
                .map_err(|e| e.to_string()),
            (None, Some(id)) => Err(format!(
                "sealed with key `{id}`, but this node has no keyring ([outbox.encryption]): give every node the same keys"
            )),
        }
    }

    pub fn settings(&self) -> &AmqpConfig {
        &self.cfg
    }

    /// Run a broker call with the configured timeout.
    pub async fn timed<T>(
        &self,
        f: impl Future<Output = Result<T, lapin::Error>>,
    ) -> Result<T, BrokerError> {
        match tokio::time::timeout(self.cfg.publish_timeout, f).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(BrokerError::Timeout(self.cfg.publish_timeout)),
        }
    }

    /// A new channel on the shared connection, connecting (again) if needed.
    pub async fn channel(&self) -> Result<Channel, BrokerError> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref()
            && c.status().connected()
        {
            match self.timed(c.create_channel()).await {
                Ok(ch) => return Ok(ch),
                Err(e) => {
                    tracing::warn!(error = %e, "broker channel failed; reconnecting");
                    *guard = None;
                }
            }
        }
        let n = self.cfg.urls.len().max(1);
        let i = self.next_url.fetch_add(1, Ordering::Relaxed) % n;
        let url = &self.cfg.urls[i];
        let tls = self.tls_config()?;
        let runtime = lapin::runtime::default_runtime()?;
        let conn = self
            .timed(Connection::connect_with_config(
                url,
                ConnectionProperties::default(),
                tls,
                runtime,
            ))
            .await
            .inspect_err(
                |e| tracing::warn!(broker = %redact(url), error = %e, "cannot reach the broker"),
            )?;
        tracing::info!(broker = %redact(url), "connected to the broker");
        let ch = self.timed(conn.create_channel()).await?;
        *guard = Some(conn);
        Ok(ch)
    }

    /// The broker's TLS settings: the system's roots plus `[amqp.tls]`.
    fn tls_config(&self) -> Result<lapin::tcp::OwnedTLSConfig, BrokerError> {
        let mut out = lapin::tcp::OwnedTLSConfig::default();
        let Some(tls) = &self.cfg.tls else {
            return Ok(out);
        };
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| BrokerError::Tls(format!("{}: {e}", p.display())))
        };
        if let Some(ca) = &tls.ca_file {
            out.cert_chain = Some(String::from_utf8_lossy(&read(ca)?).into_owned());
        }
        if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
            out.identity = Some(lapin::tcp::OwnedIdentity::PKCS8 {
                pem: read(cert)?,
                key: read(key)?,
            });
        }
        Ok(out)
    }

    /// A server-named queue of this connection alone, gone with it (replies, fanout
    /// copies): its name.
    pub async fn private_queue(&self, ch: &Channel) -> Result<String, BrokerError> {
        let q = self
            .timed(ch.queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            ))
            .await?;
        Ok(q.name().to_string())
    }

    /// A channel in confirm mode (for publishing).
    pub async fn confirm_channel(&self) -> Result<Channel, BrokerError> {
        let ch = self.channel().await?;
        self.timed(ch.confirm_select(ConfirmSelectOptions::default()))
            .await?;
        Ok(ch)
    }

    /// A persistent JSON message on a new confirm channel, confirmed (for the rare
    /// messages outside the delivery path: dead letters to their node, notes).
    pub async fn publish_confirmed(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
    ) -> Result<(), BrokerError> {
        let ch = self.confirm_channel().await?;
        let props = lapin::BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2);
        let result = self
            .publish_on(&ch, exchange, routing_key, body, props)
            .await;
        let _ = self.timed(ch.close(200, "published".into())).await;
        result
    }

    /// The one way anything is published: mandatory (an unroutable message is an error:
    /// the topology is missing), on a confirm-mode `channel`, the publish and its confirm
    /// each bounded by the broker timeout. Only a plain ack is success.
    pub async fn publish_on(
        &self,
        channel: &lapin::Channel,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: lapin::BasicProperties,
    ) -> Result<(), BrokerError> {
        let confirm = self
            .start_publish(channel, exchange, routing_key, body, properties)
            .await?;
        self.confirmed(confirm, exchange, routing_key).await
    }

    /// The first half of [`Broker::publish_on`]: the message is sent, its confirm not yet
    /// awaited. Several publishes started before their confirms are awaited share the
    /// broker's disk writes (how a forwarder's batch goes out).
    pub async fn start_publish(
        &self,
        channel: &lapin::Channel,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: lapin::BasicProperties,
    ) -> Result<lapin::PublisherConfirm, BrokerError> {
        self.timed(channel.basic_publish(
            exchange.into(),
            routing_key.into(),
            lapin::options::BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            body,
            properties,
        ))
        .await
    }

    /// The second half of [`Broker::publish_on`]: the broker's confirm, within the timeout.
    pub async fn confirmed(
        &self,
        confirm: lapin::PublisherConfirm,
        exchange: &str,
        routing_key: &str,
    ) -> Result<(), BrokerError> {
        match self.timed(confirm).await? {
            lapin::Confirmation::Ack(None) => Ok(()),
            lapin::Confirmation::Ack(Some(returned)) => Err(BrokerError::Refused(format!(
                "{exchange}/{routing_key} unroutable ({}): is the topology declared?",
                returned.reply_text
            ))),
            other => Err(BrokerError::Refused(format!(
                "{exchange}/{routing_key}: {other:?}"
            ))),
        }
    }

    /// The confirms of several publishes made on one channel that nothing else publishes
    /// on, awaited together; `publishes` pairs each with its `message_id`. lapin hands a
    /// returned (unroutable) message to whichever confirm completes next — with several in
    /// flight, not always its own, and a message reported confirmed while it was returned
    /// would be lost — so each publish is judged by the ids of every return among them.
    pub async fn confirmed_together(
        &self,
        publishes: Vec<(String, Result<lapin::PublisherConfirm, BrokerError>)>,
    ) -> Vec<Result<(), BrokerError>> {
        let mut returned = std::collections::HashSet::new();
        let mut answers = Vec::with_capacity(publishes.len());
        for (id, started) in publishes {
            let answer = match started {
                Ok(confirm) => self.timed(confirm).await.map(|c| {
                    let acked = c.is_ack();
                    if let Some(m) = c.take_message() {
                        let id = m.delivery.properties.message_id().as_ref();
                        returned.insert(id.map(|i| i.to_string()).unwrap_or_default());
                    }
                    acked
                }),
                Err(e) => Err(e),
            };
            answers.push((id, answer));
        }
        answers
            .into_iter()
            .map(|(id, answer)| match answer {
                _ if returned.contains(&id) => Err(BrokerError::Refused(format!(
                    "message {id} unroutable: is the topology declared?"
                ))),
                Ok(true) => Ok(()),
                Ok(false) => Err(BrokerError::Refused(format!(
                    "message {id}: the broker could not store it (nack)"
                ))),
                Err(e) => Err(e),
            })
            .collect()
    }

    /// Messages waiting in a target's partition queues (for status views).
    pub async fn depth(&self, target: &str) -> Result<u64, BrokerError> {
        let ch = self.channel().await?;
        let mut total = 0u64;
        for p in 0..self.topology.partitions {
            let q = self.topology.partition_queue(target, p);
            let info = self
                .timed(ch.queue_declare(
                    q.as_str().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                ))
                .await?;
            total += info.message_count() as u64;
        }
        let _ = self.timed(ch.close(200, "depth".into())).await;
        Ok(total)
    }
}

/// A broker URL without its password, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::encryption::new_key_line;

    fn broker(keys: Option<&str>) -> Broker {
        let ring = keys.map(|k| Arc::new(Keyring::parse(k, "test keys").unwrap()));
        Broker::new(&AmqpConfig::default()).sealed_with(ring)
    }

    #[test]
    fn bodies_are_sealed_and_open_only_with_the_keys() {
        let a = new_key_line("a");
        let b = new_key_line("b");
        let body = br#"{"HoTen":"Nguyen Van An"}"#.to_vec();
        let kind = BodyKind::Delivery {
            target: "portal",
            message_id: "m-1",
        };
        let sealed = broker(Some(&a)).seal(kind, body.clone());
        assert!(!sealed.windows(5).any(|w| w == b"Nguye"));
        assert_eq!(broker(Some(&a)).open(kind, &sealed).unwrap(), body);
        // An older key still in the ring opens it; a ring without it names the key.
        assert_eq!(
            broker(Some(&format!("{b}\n{a}")))
                .open(kind, &sealed)
                .unwrap(),
            body
        );
        let e = broker(Some(&b)).open(kind, &sealed).unwrap_err();
        assert!(e.contains("`a`"), "{e}");
        let e = broker(None).open(kind, &sealed).unwrap_err();
        assert!(e.contains("`a`") && e.contains("keyring"), "{e}");
        // Without keys on either side, bodies travel in clear.
        assert_eq!(broker(None).seal(kind, body.clone()), body);
        assert_eq!(broker(None).open(kind, &body).unwrap(), body);
    }

    #[test]
    fn a_sealing_node_refuses_clear_bodies_and_bodies_sealed_as_something_else() {
        let a = new_key_line("a");
        let node = broker(Some(&a));
        let body = br#"{"target":"portal"}"#.to_vec();
        let kind = BodyKind::Delivery {
            target: "portal",
            message_id: "m-1",
        };
        let e = node.open(kind, &body).unwrap_err();
        assert!(e.contains("in clear"), "{e}");
        let sealed = node.seal(kind, body.clone());
        for other in [
            BodyKind::Delivery {
                target: "payment",
                message_id: "m-1",
            },
            BodyKind::Delivery {
                target: "portal",
                message_id: "m-2",
            },
            BodyKind::Status,
        ] {
            assert!(node.open(other, &sealed).is_err(), "opened as {other:?}");
        }
        let status = node.seal(BodyKind::Status, body.clone());
        assert!(node.open(kind, &status).is_err());
        assert_eq!(node.open(BodyKind::Status, &status).unwrap(), body);
    }
}
