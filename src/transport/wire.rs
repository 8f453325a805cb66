//! What travels on the broker: a message per (event, target), persistent, with the
//! event's envelope and the delivery's attempt history in a JSON body, and the id, unit,
//! key, attempts and trace id also as AMQP properties and headers for operators' tools;
//! or a batch of them for one partition ([`WireBatch`]), as ingress nodes forward them.

use super::broker::{BodyKind, Broker};
use crate::envelope::Envelope;
use crate::outbox::AttemptError;
use lapin::BasicProperties;
use lapin::message::Delivery;
use lapin::types::{AMQPValue, FieldTable};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireMessage {
    pub target: String,
    /// Attempts made so far for this target.
    pub attempts: u32,
    /// The node that accepted the event.
    pub origin: String,
    /// Whether the route orders this key (its retries park the key on the worker).
    pub ordered: bool,
    #[serde(default)]
    pub errors: Vec<AttemptError>,
    pub envelope: Envelope,
}

impl WireMessage {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("wire messages serialize")
    }

    pub fn decode(bytes: &[u8]) -> Result<WireMessage, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not a lienthong message: {e}"))
    }

    /// Persistent (delivery mode 2), JSON, with the id and the trace headers.
    pub fn properties(&self) -> BasicProperties {
        let e = &self.envelope;
        let mut headers = FieldTable::default();
        let text = |s: &str| AMQPValue::LongString(s.into());
        headers.insert("unit".into(), text(&e.unit));
        headers.insert("flow".into(), text(&e.flow));
        headers.insert("target".into(), text(&self.target));
        if let Some(k) = &e.key {
            headers.insert("key".into(), text(k));
        }
        headers.insert("attempts".into(), AMQPValue::LongUInt(self.attempts));
        headers.insert("trace_id".into(), text(&e.trace_id));
        BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_message_id(e.id.to_string().into())
            .with_timestamp(e.received_ms / 1000)
            .with_headers(headers)
    }
}

/// Several deliveries of one partition in one broker message: how an ingress node forwards
/// a batch of outbox deliveries (one persistent publish and one confirm for many events,
/// where the broker's cost is per message). The worker takes them in order, each with its
/// own outcome, and acknowledges the message when all are settled. Its AMQP `type` is
/// [`WireBatch::KIND`] and its `message_id` the batch's id, which its seal is bound to.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireBatch {
    pub target: String,
    pub id: String,
    pub messages: Vec<WireMessage>,
}

impl WireBatch {
    /// The AMQP `type` property of a batch (a single delivery has none).
    pub const KIND: &'static str = "lienthong.batch";

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("wire batches serialize")
    }

    pub fn decode(bytes: &[u8]) -> Result<WireBatch, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not a lienthong batch: {e}"))
    }

    /// Persistent (delivery mode 2), with the batch's id, its size and its first trace id.
    pub fn properties(&self) -> BasicProperties {
        let mut headers = FieldTable::default();
        headers.insert(
            "target".into(),
            AMQPValue::LongString(self.target.as_str().into()),
        );
        headers.insert(
            "messages".into(),
            AMQPValue::LongUInt(self.messages.len() as u32),
        );
        if let Some(first) = self.messages.first() {
            headers.insert(
                "trace_id".into(),
                AMQPValue::LongString(first.envelope.trace_id.as_str().into()),
            );
        }
        BasicProperties::default()
            .with_delivery_mode(2)
            .with_type(Self::KIND.into())
            .with_message_id(self.id.as_str().into())
            .with_headers(headers)
    }
}

/// What a broker message carries, checked against where it travels: a body sealed for
/// another target or id, or naming another target, is not this queue's to deliver.
pub fn open_delivery(
    broker: &Broker,
    target: &str,
    delivery: &Delivery,
) -> Result<Vec<WireMessage>, String> {
    let message_id = delivery
        .properties
        .message_id()
        .as_ref()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let is_batch = delivery.properties.kind().as_ref().map(|k| k.as_str()) == Some(WireBatch::KIND);
    let messages = if is_batch {
        let kind = BodyKind::Batch {
            target,
            batch_id: &message_id,
        };
        let batch = WireBatch::decode(&broker.open(kind, &delivery.data)?)?;
        if batch.id != message_id {
            return Err(format!("batch {} travelling as {message_id}", batch.id));
        }
        batch.messages
    } else {
        let kind = BodyKind::Delivery {
            target,
            message_id: &message_id,
        };
        let wire = WireMessage::decode(&broker.open(kind, &delivery.data)?)?;
        if wire.envelope.id.to_string() != message_id {
            return Err(format!(
                "message {} travelling as {message_id}",
                wire.envelope.id
            ));
        }
        vec![wire]
    };
    match messages.iter().find(|w| w.target != target) {
        Some(w) => Err(format!(
            "a message for `{}` ({}) in `{target}`'s queue",
            w.target, w.envelope.id
        )),
        None => Ok(messages),
    }
}
