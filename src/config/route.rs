//! `[[routes]]`: which unit events go to which targets, in what order, checked when, and
//! what happens to the later events of a dossier behind a dead letter.

use serde::Deserialize;
use std::collections::BTreeMap;

/// Which unit events go where.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The unit whose events this route takes.
    pub unit: String,
    /// The flow name (`?flow=` or `/events/<flow>`).
    pub flow: String,
    /// The targets every event of the route goes to (see `deliver_when` for those that take only some).
    pub targets: Vec<String>,
    /// `per_key`: the events of one key (`key`, a dossier) reach each target in the order they were accepted; `none`: no order.
    #[serde(default)]
    pub ordering: Ordering,
    /// JSON pointer (RFC 6901) to the ordering key inside each event, e.g. `/dossierCode`.
    #[serde(default)]
    pub key: Option<String>,
    /// `block`: a dead letter holds back the later events of its key on that target until it is replayed or dropped; `skip`: they go on.
    #[serde(default)]
    pub on_dead: OnDead,
    /// Mapping file per target, relative to `[mappings] dir`. A target without one
    /// receives the event's JSON as the unit sent it.
    #[serde(default)]
    pub mappings: BTreeMap<String, String>,
    /// What a target answers goes on as an event of another flow of the same unit:
    /// `replies = { payment = "payment_link" }` turns the payment platform's `Init` reply
    /// into a `payment_link` event (to the unit's inbox). The reply event is made only
    /// once the target accepted the message, and carries both: `{"event": <this event>,
    /// "reply": <the target's JSON answer>, "source": {...}}`. A reply flow is internal:
    /// no unit may post to it.
    #[serde(default)]
    pub replies: BTreeMap<String, String>,
    /// Targets that take only some of the route's events, by what the event says (as
    /// decoded, like `key`): `deliver_when = { notify = [{ field = "/step/status", in =
    /// ["needs_supplement"] }, { field = "/applicant/phone" }] }` sends an SMS only when
    /// the unit asks the citizen for documents and gave a phone number (one condition, or
    /// a list that must all hold). The other events are not stored for that target at all.
    #[serde(default)]
    pub deliver_when: BTreeMap<String, Conditions>,
    /// A larger body limit for this route's messages than `server.max_body_bytes`, for
    /// flows that carry documents (a result's scanned PDF in base64). It applies only to
    /// requests whose unit key checks out: before that, every request is held to
    /// `server.max_body_bytes`.
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
    /// When an event is checked against what its targets need: `"accept"` (the default)
    /// refuses an event its mappings can never deliver with a 400 naming every problem,
    /// before anything is stored; `"deliver"` stores whatever is readable and checks at
    /// delivery (a dead letter), for a unit whose system cannot correct and resend.
    #[serde(default)]
    pub validate: Validate,
}

/// When a route's events are checked against their mappings (`validate`).
#[derive(
    Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Validate {
    /// At the door: a request with an event that cannot be delivered is refused whole.
    #[default]
    Accept,
    /// At delivery: the event is stored, and becomes a dead letter if it cannot be mapped.
    Deliver,
}

/// One condition, or several that must all hold.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Conditions {
    One(DeliverWhen),
    All(Vec<DeliverWhen>),
}

impl Conditions {
    pub fn all(&self) -> &[DeliverWhen] {
        match self {
            Conditions::One(c) => std::slice::from_ref(c),
            Conditions::All(list) => list,
        }
    }
}

/// When a target of a route takes an event ([`RouteConfig::deliver_when`]).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliverWhen {
    /// JSON pointer into the event, e.g. `/step/status` or `/payer/phone`.
    pub field: String,
    /// The field's value must be one of these, compared as text without regard to case
    /// (`5` and `"5"` match, so do `yeu_cau_bo_sung` and `YEU_CAU_BO_SUNG`). Without
    /// `in`, the field must only have a value (present, not null, not empty text).
    #[serde(default, rename = "in")]
    pub one_of: Option<Vec<String>>,
}

#[derive(
    Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Ordering {
    /// Messages with the same key reach each target one after another, in order.
    #[default]
    PerKey,
    /// No ordering: every message is delivered as soon as a worker is free.
    None,
}

#[derive(
    Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum OnDead {
    /// A dead message holds back the later messages of its key until an operator
    /// replays or drops it (the portal must never see statuses out of order).
    #[default]
    Block,
    /// Later messages of the key go on without the dead one.
    Skip,
}
