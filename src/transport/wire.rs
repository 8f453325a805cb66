//! What travels on the broker: one message per (event, target), persistent, with the
//! event's envelope and the delivery's attempt history in a JSON body, and the id, unit,
//! key, attempts and trace id also as AMQP properties and headers for operators' tools.

use crate::envelope::Envelope;
use crate::outbox::AttemptError;
use lapin::BasicProperties;
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
