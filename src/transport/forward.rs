//! The ingress side: a connector that "delivers" an outbox delivery by publishing it to the
//! broker, persistent and mandatory, and waiting for the broker's confirm. Plugged into the
//! ordinary relay, it inherits the outbox's guarantees: a delivery is finished only when
//! the broker has confirmed it, it is retried with backoff while the broker is away, and the
//! events of one dossier are published in order.

use super::broker::{Broker, BrokerError};
use super::wire::WireMessage;
use crate::config::{CircuitBreakerConfig, RetryConfig, TargetConfig};
use crate::connector::{
    BoxFuture, Connector, HttpStatusClassifier, Outbound, RawOutcome, RetryClassifier, Verdict,
};
use crate::delivery::TargetRuntime;
use crate::envelope::Envelope;
use lapin::Channel;
use std::sync::Arc;
use std::time::Duration;

pub struct ForwardConnector {
    broker: Arc<Broker>,
    target: String,
    origin: String,
    /// The confirm-mode channel publishes go through; replaced after a failure.
    channel: tokio::sync::Mutex<Option<Channel>>,
}

impl ForwardConnector {
    pub fn new(broker: Arc<Broker>, target: &str, origin: &str) -> ForwardConnector {
        ForwardConnector {
            broker,
            target: target.to_string(),
            origin: origin.to_string(),
            channel: tokio::sync::Mutex::new(None),
        }
    }

    async fn channel(&self) -> Result<Channel, BrokerError> {
        let mut guard = self.channel.lock().await;
        if let Some(ch) = guard.as_ref()
            && ch.status().connected()
        {
            return Ok(ch.clone());
        }
        let ch = self.broker.confirm_channel().await?;
        *guard = Some(ch.clone());
        Ok(ch)
    }

    async fn forget_channel(&self) {
        *self.channel.lock().await = None;
    }

    /// Publish one delivery and wait for the broker's confirm.
    pub async fn publish(&self, envelope: &Envelope) -> Result<(), BrokerError> {
        let t = &self.broker.topology;
        let partition = t.partition_of(&envelope.unit, envelope.key.as_deref(), &envelope.id);
        let wire = WireMessage {
            target: self.target.clone(),
            attempts: 0,
            origin: self.origin.clone(),
            ordered: envelope.key.is_some(),
            errors: Vec::new(),
            envelope: Envelope {
                attempts: 0,
                ..envelope.clone()
            },
        };
        let result = publish(
            &self.broker,
            &self.channel().await?,
            &t.deliver_exchange(),
            &super::Topology::routing_key(&self.target, partition),
            &wire,
        )
        .await;
        if result.is_err() {
            self.forget_channel().await;
        }
        result
    }
}

/// A delivery's wire message, persistent and confirmed (see [`Broker::publish_on`]).
pub async fn publish(
    broker: &Broker,
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    wire: &WireMessage,
) -> Result<(), BrokerError> {
    let properties = wire
        .properties()
        .with_content_type(broker.content_type().into());
    broker
        .publish_on(
            channel,
            exchange,
            routing_key,
            &broker.seal(
                super::broker::BodyKind::Delivery {
                    target: &wire.target,
                    message_id: &wire.envelope.id.to_string(),
                },
                wire.encode(),
            ),
            properties,
        )
        .await
}

impl RetryClassifier for ForwardConnector {
    fn classify(&self, outcome: &RawOutcome) -> Verdict {
        HttpStatusClassifier.classify(outcome)
    }
}

impl Connector for ForwardConnector {
    fn send<'a>(&'a self, message: &'a Envelope, _body: &'a Outbound) -> BoxFuture<'a, RawOutcome> {
        Box::pin(async move {
            match self.publish(message).await {
                Ok(()) => RawOutcome::Response {
                    status: 200,
                    retry_after: None,
                    body: String::new(),
                },
                Err(BrokerError::Timeout(_)) => RawOutcome::Timeout,
                Err(e) => RawOutcome::Transport(e.to_string()),
            }
        })
    }
}

/// The relay runtime that forwards one target's deliveries to the broker: retried for as
/// long as it takes (the broker coming back is a matter of time, not of the message), never
/// rate-limited, `[amqp] publish_concurrency` publishes in flight.
pub fn forward_runtime(
    broker: Arc<Broker>,
    target: &str,
    cfg: &TargetConfig,
    origin: &str,
) -> TargetRuntime {
    let forward_cfg = TargetConfig {
        rate_limit: None,
        batch: 1,
        concurrency: broker.settings().publish_concurrency.max(1),
        retry: RetryConfig {
            max_attempts: u32::MAX,
            max_age: Duration::from_secs(10 * 365 * 24 * 3600),
            base_delay: Duration::from_millis(200),
            max_delay: broker
                .settings()
                .reconnect_delay
                .max(Duration::from_secs(2)),
        },
        circuit_breaker: CircuitBreakerConfig::default(),
        ..cfg.clone()
    };
    // Workers map; the broker carries the event as the unit sent it.
    TargetRuntime::with_connector(
        target,
        &forward_cfg,
        Arc::new(ForwardConnector::new(broker, target, origin)),
    )
    .forwarding()
}
