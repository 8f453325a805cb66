//! The forward connector (cluster ingress): "delivers" an outbox delivery by publishing
//! it, unmapped, to the broker — persistent, mandatory, and finished only when the broker
//! confirms it. A worker then delivers it to the platform. Broker trouble is retryable.

use super::{
    BoxFuture, Connector, HttpStatusClassifier, Outbound, RawOutcome, RetryClassifier, Verdict,
};
use crate::envelope::Envelope;
use crate::transport::Topology;
use crate::transport::broker::{Broker, BrokerError};
use crate::transport::forward::publish;
use crate::transport::wire::WireMessage;
use lapin::Channel;
use std::sync::Arc;

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
            &Topology::routing_key(&self.target, partition),
            &wire,
        )
        .await;
        if result.is_err() {
            self.forget_channel().await;
        }
        result
    }
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
