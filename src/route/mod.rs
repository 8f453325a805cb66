//! Routing: which flow an event belongs to, where its ordering key is, and which targets
//! receive it. Built once from config; looked up on every request.

pub mod event_schema;
mod key;
pub mod payments;
pub mod replies;

use crate::config::{Config, DeliverWhen, OnDead, Ordering, Validate};
pub use key::{extract_key, text_at};
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Clone, Debug)]
pub struct Route {
    pub unit: String,
    pub flow: String,
    pub targets: Vec<String>,
    pub ordered: bool,
    /// JSON pointer to the ordering key inside each event.
    pub key_pointer: Option<String>,
    pub block_on_dead: bool,
    /// Fed only by the bus itself (the payment platform's verified callbacks, a target's
    /// replies): no unit may post to it.
    pub internal: bool,
    /// Target → the flow its replies go on as (`replies` in the route's config).
    pub replies: BTreeMap<String, String>,
    /// Targets that take only the events matching all their conditions (`deliver_when`).
    pub deliver_when: BTreeMap<String, Vec<DeliverWhen>>,
    /// This route's body limit when larger than the server's (`max_body_bytes`).
    pub max_body_bytes: Option<usize>,
    /// Events are checked against their targets' mappings before they are stored
    /// (`validate = "accept"`, the default).
    pub check_at_door: bool,
}

impl Route {
    /// [`targets_for`](Self::targets_for) an event as stored (JSON).
    pub fn targets_for_event(&self, event: &serde_json::value::RawValue) -> Option<Vec<String>> {
        self.targets_for(|pointer| text_at(event, pointer))
    }

    /// The targets an event goes to: all of them, or — when some take only events that
    /// match a condition — `Some` of the ones whose condition `value_at` satisfies.
    /// `value_at(pointer)` gives the event's value there as text (`None`: no value).
    pub fn targets_for(&self, value_at: impl Fn(&str) -> Option<String>) -> Option<Vec<String>> {
        if self.deliver_when.is_empty() {
            return None;
        }
        let holds = |when: &DeliverWhen| match (value_at(&when.field), &when.one_of) {
            (None, _) => false,
            (Some(v), None) => !v.trim().is_empty(),
            (Some(v), Some(values)) => {
                let v = v.trim().to_lowercase();
                values.iter().any(|x| x.to_lowercase() == v)
            }
        };
        let takes = |target: &String| {
            self.deliver_when
                .get(target)
                .is_none_or(|conditions| conditions.iter().all(holds))
        };
        let targets: Vec<String> = self.targets.iter().filter(|t| takes(t)).cloned().collect();
        (targets.len() < self.targets.len()).then_some(targets)
    }
}

/// The flow the verified payment callbacks (`POST /callbacks/payment`) are stored under.
/// A unit posting to it could mark its own fee paid without the platform's signature.
pub const PAYMENT_CONFIRM_FLOW: &str = "payment_confirm";

/// The flow the receipts of paid fees (`GET_BILL`, fetched by the bus) go to a unit as.
pub const PAYMENT_RECEIPT_FLOW: &str = "payment_receipt";

#[derive(Debug, PartialEq, Eq)]
pub enum RouteError {
    /// The flow is fed only by the bus itself ([`Route::internal`]).
    Internal {
        flow: String,
    },
    /// The unit routes several flows and the request named none.
    FlowRequired {
        flows: Vec<String>,
    },
    UnknownFlow {
        flow: String,
        flows: Vec<String>,
    },
    NoRoutes,
}

impl std::fmt::Display for RouteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteError::FlowRequired { flows } => {
                write!(
                    f,
                    "this unit routes several flows; name one with ?flow= (one of: {})",
                    flows.join(", ")
                )
            }
            RouteError::UnknownFlow { flow, flows } => {
                write!(
                    f,
                    "no route for flow `{flow}` (this unit routes: {})",
                    flows.join(", ")
                )
            }
            RouteError::NoRoutes => write!(f, "no routes are configured for this unit"),
            RouteError::Internal { flow } => write!(
                f,
                "flow `{flow}` is fed only by the bus itself (from the payment platform's signed \
                 callbacks at POST /callbacks/payment, or from a target's replies); a unit \
                 system cannot send it"
            ),
        }
    }
}

#[derive(Default)]
pub struct Router {
    by_unit: HashMap<String, Vec<Route>>,
}

impl Router {
    pub fn from_config(config: &Config) -> Router {
        let mut by_unit: HashMap<String, Vec<Route>> = HashMap::new();
        let reply_flows: HashSet<(&str, &str)> = config
            .routes
            .iter()
            .flat_map(|r| r.replies.values().map(|f| (r.unit.as_str(), f.as_str())))
            .collect();
        for r in &config.routes {
            by_unit.entry(r.unit.clone()).or_default().push(Route {
                unit: r.unit.clone(),
                flow: r.flow.clone(),
                targets: r.targets.clone(),
                ordered: r.ordering == Ordering::PerKey,
                key_pointer: r.key.clone(),
                block_on_dead: r.on_dead == OnDead::Block,
                internal: r.flow == PAYMENT_CONFIRM_FLOW
                    || r.flow == PAYMENT_RECEIPT_FLOW
                    || reply_flows.contains(&(r.unit.as_str(), r.flow.as_str())),
                replies: r.replies.clone(),
                deliver_when: r
                    .deliver_when
                    .iter()
                    .map(|(t, c)| (t.clone(), c.all().to_vec()))
                    .collect(),
                max_body_bytes: r.max_body_bytes,
                check_at_door: r.validate == Validate::Accept,
            });
        }
        Router { by_unit }
    }

    /// Every route of `unit`, internal ones included, in the configuration's order.
    pub fn routes_of(&self, unit: &str) -> &[Route] {
        self.by_unit.get(unit).map_or(&[], Vec::as_slice)
    }

    /// [`resolve`](Self::resolve) for what a unit system sends (HTTP, SOAP, file drop): an
    /// internal flow is refused.
    pub fn resolve_for_unit(&self, unit: &str, flow: Option<&str>) -> Result<&Route, RouteError> {
        let route = self.resolve(unit, flow)?;
        if route.internal {
            return Err(RouteError::Internal {
                flow: route.flow.clone(),
            });
        }
        Ok(route)
    }

    /// The largest body any of the routes of `unit` named by `flows` takes, if larger
    /// than the server's (`None`: the server's limit). Internal flows take no unit bodies.
    pub fn largest_body<'a>(
        &self,
        unit: &str,
        flows: impl Iterator<Item = &'a String>,
    ) -> Option<usize> {
        let routes = self.by_unit.get(unit)?;
        flows
            .filter_map(|f| routes.iter().find(|r| r.flow == *f && !r.internal))
            .filter_map(|r| r.max_body_bytes)
            .max()
    }

    /// The route of `unit` for `flow`; with no flow named, the unit's only route.
    pub fn resolve(&self, unit: &str, flow: Option<&str>) -> Result<&Route, RouteError> {
        let routes = self
            .by_unit
            .get(unit)
            .filter(|r| !r.is_empty())
            .ok_or(RouteError::NoRoutes)?;
        let flows = || routes.iter().map(|r| r.flow.clone()).collect::<Vec<_>>();
        match flow {
            Some(f) => routes
                .iter()
                .find(|r| r.flow == f)
                .ok_or_else(|| RouteError::UnknownFlow {
                    flow: f.to_string(),
                    flows: flows(),
                }),
            None if routes.len() == 1 => Ok(&routes[0]),
            None => Err(RouteError::FlowRequired { flows: flows() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(deliver_when: &[(&str, Vec<DeliverWhen>)]) -> Route {
        Route {
            unit: "nafosted".into(),
            flow: "dossier_progress".into(),
            targets: vec!["portal".into(), "notify".into()],
            ordered: true,
            key_pointer: Some("/dossierCode".into()),
            block_on_dead: true,
            internal: false,
            replies: BTreeMap::new(),
            max_body_bytes: None,
            check_at_door: true,
            deliver_when: deliver_when
                .iter()
                .map(|(t, c)| (t.to_string(), c.clone()))
                .collect(),
        }
    }

    fn when(field: &str, one_of: Option<&[&str]>) -> DeliverWhen {
        DeliverWhen {
            field: field.into(),
            one_of: one_of.map(|v| v.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn a_conditional_target_takes_only_the_events_that_meet_all_its_conditions() {
        let r = route(&[(
            "notify",
            vec![
                when("/step/status", Some(&["needs_supplement", "5"])),
                when("/applicant/phone", None),
            ],
        )]);
        fn event(
            status: Option<&'static str>,
            phone: Option<&'static str>,
        ) -> impl Fn(&str) -> Option<String> {
            move |p: &str| match p {
                "/step/status" => status.map(str::to_string),
                "/applicant/phone" => phone.map(str::to_string),
                _ => None,
            }
        }
        // None: all the route's targets (the request's list, not repeated per event).
        let both = None;
        let portal_only = Some(vec!["portal".to_string()]);
        // The notify target is left out unless both hold; the portal always takes it.
        assert_eq!(
            r.targets_for(event(Some("NEEDS_SUPPLEMENT"), Some("0912"))),
            both
        );
        assert_eq!(r.targets_for(event(Some("5"), Some("0912"))), both);
        assert_eq!(
            r.targets_for(event(Some("under_review"), Some("0912"))),
            portal_only
        );
        assert_eq!(
            r.targets_for(event(Some("needs_supplement"), None)),
            portal_only
        );
        assert_eq!(
            r.targets_for(event(Some("needs_supplement"), Some(" "))),
            portal_only
        );
        assert_eq!(r.targets_for(event(None, Some("0912"))), portal_only);
        // Without conditions: every target, as the request says (None).
        assert_eq!(route(&[]).targets_for(event(None, None)), None);
    }
}
