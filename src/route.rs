//! Routing: which flow an event belongs to, where its ordering key is, and which targets
//! receive it. Built once from config; looked up on every request.

use crate::config::{Config, OnDead, Ordering};
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
            });
        }
        Router { by_unit }
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
