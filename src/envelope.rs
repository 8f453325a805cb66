//! The envelope: the one message type every part of the bus passes around.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::fmt;
use std::str::FromStr;

/// A time-ordered message id (UUIDv7). Its big-endian bytes sort in acceptance order,
/// which is what makes range scans of the outbox come out oldest first.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(pub uuid::Uuid);

impl MessageId {
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        MessageId(uuid::Uuid::from_bytes(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// The id that sorts right after this one. Used to keep ids strictly increasing even
    /// when the wall clock steps back between two runs.
    pub fn successor(&self) -> Self {
        MessageId(uuid::Uuid::from_u128(self.0.as_u128().wrapping_add(1)))
    }

    /// Milliseconds since the Unix epoch encoded in the id (the time it was accepted).
    pub fn timestamp_ms(&self) -> u64 {
        let b = self.as_bytes();
        u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", self.0)
    }
}

impl FromStr for MessageId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(MessageId(uuid::Uuid::parse_str(s)?))
    }
}

/// A message as the bus holds it: who sent it, which flow, its ordering key and payload.
///
/// `attempts` is per delivery (message, target): the relay fills it in when it hands the
/// envelope to a connector, so a connector can report it (e.g. an `X-Attempt` header).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Envelope {
    pub id: MessageId,
    pub unit: String,
    pub flow: String,
    /// Ordering key, e.g. the dossier code (`MaHoSo`). Messages with the same key reach a
    /// target in acceptance order when the route orders `per_key`.
    pub key: Option<String>,
    pub payload: Box<RawValue>,
    /// Acceptance time, milliseconds since the Unix epoch.
    pub received_ms: u64,
    pub trace_id: String,
    #[serde(default)]
    pub attempts: u32,
    pub idempotency_key: Option<String>,
    /// The targets this message is delivered to, each tracked on its own.
    pub targets: Vec<String>,
}

/// A unit's name as a small copyable number, so that hot in-memory structures (the
/// scheduler's entry per pending delivery) can count per unit without holding a string.
/// Names are interned once per process; tag 0 is the empty name (records written before
/// the unit was kept in them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnitTag(u16);

fn unit_names() -> &'static std::sync::RwLock<Vec<std::sync::Arc<str>>> {
    static NAMES: std::sync::OnceLock<std::sync::RwLock<Vec<std::sync::Arc<str>>>> =
        std::sync::OnceLock::new();
    NAMES.get_or_init(|| std::sync::RwLock::new(vec![std::sync::Arc::from("")]))
}

impl UnitTag {
    pub fn of(name: &str) -> UnitTag {
        if let Some(i) = unit_names()
            .read()
            .unwrap()
            .iter()
            .position(|n| &**n == name)
        {
            return UnitTag(i as u16);
        }
        let mut names = unit_names().write().unwrap();
        if let Some(i) = names.iter().position(|n| &**n == name) {
            return UnitTag(i as u16);
        }
        // Units come from the configuration: a handful, never near u16::MAX.
        names.push(std::sync::Arc::from(name));
        UnitTag((names.len() - 1) as u16)
    }

    pub fn name(self) -> std::sync::Arc<str> {
        std::sync::Arc::clone(&unit_names().read().unwrap()[self.0 as usize])
    }
}
