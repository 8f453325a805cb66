//! Checks of the units, their keys and routes, and the admin tokens.

use super::*;
use crate::config::credential_list;

/// Units' request signing secrets and rate limits.
pub(super) fn unit_signing(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) {
    for (id, unit) in &config.units {
        if let Some(var) = &unit.hmac_secret_env {
            let path = format!("units.{id}.hmac_secret_env");
            match (env(var), &unit.dev_hmac_secret) {
                (Some(s), _)
                    if !credential_list(&s).is_empty()
                        && credential_list(&s).iter().all(|p| p.len() >= 16) => {}
                (Some(_), _) => problems.push(problem(
                    path,
                    format!(
                        "a secret in ${var} is shorter than 16 characters (several are separated by commas)"
                    ),
                )),
                (None, Some(_)) if dev_refused(config) => problems.push(problem(
                    format!("units.{id}.dev_hmac_secret"),
                    format!(
                        "development secrets are refused {}; set ${var}",
                        refused_where(config)
                    ),
                )),
                (None, Some(_)) => {}
                (None, None) => problems.push(problem(
                    path,
                    format!("environment variable {var} is not set"),
                )),
            }
        }
        if unit
            .rate_limit
            .as_ref()
            .is_some_and(|rl| rl.per_second == 0)
        {
            problems.push(problem(
                format!("units.{id}.rate_limit.per_second"),
                "must be at least 1 (leave rate_limit out for no limit)",
            ));
        }
    }
}

/// Units: ids and keys (one key per unit).
pub(super) fn unit_keys(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, String> {
    let mut keys = BTreeMap::new();
    if config.units.is_empty() {
        problems.push(problem("units", "declare at least one unit"));
    }
    for (id, unit) in &config.units {
        let path = format!("units.{id}");
        if !valid_id(id) {
            problems.push(problem(
                &path,
                "unit ids use lowercase letters, digits, - and _",
            ));
        }
        match (env(&unit.key_env), &unit.dev_key) {
            // Several keys, comma-separated, during a rotation: each must be long enough.
            (Some(value), _)
                if !credential_list(&value).is_empty()
                    && credential_list(&value).iter().all(|k| k.len() >= 16) =>
            {
                keys.insert(id.clone(), credential_list(&value).join(","));
            }
            (Some(_), _) => problems.push(problem(
                format!("{path}.key_env"),
                format!(
                    "a key in ${} is shorter than 16 characters (several keys are separated by commas)",
                    unit.key_env
                ),
            )),
            (None, _) if unit.key_sha256.is_some() => {
                let digests = unit.key_sha256.as_ref().map(|d| d.list()).unwrap_or_default();
                if !digests.is_empty() && digests.iter().all(|h| crate::hex::is_sha256(h.trim())) {
                    let joined: Vec<String> = digests
                        .iter()
                        .map(|h| format!("sha256:{}", h.trim().to_ascii_lowercase()))
                        .collect();
                    keys.insert(id.clone(), joined.join(","));
                } else {
                    problems.push(problem(
                        format!("{path}.key_sha256"),
                        "must be 64 hex digits, or a list of them: the SHA-256 of each key (printf %s KEY | sha256sum)",
                    ));
                }
            }
            (None, Some(_)) if dev_refused(config) => problems.push(problem(
                format!("{path}.dev_key"),
                format!(
                    "development keys are refused {}; set ${} instead",
                    refused_where(config),
                    unit.key_env
                ),
            )),
            (None, Some(dev)) => {
                keys.insert(id.clone(), dev.clone());
            }
            (None, None) => problems.push(problem(
                format!("{path}.key_env"),
                format!("environment variable {} is not set", unit.key_env),
            )),
        }
    }
    // Two units with one key would let one post as the other.
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (id, key) in &keys {
        if let Some(other) = seen.insert(key.as_str(), id.as_str()) {
            problems.push(problem(
                format!("units.{id}"),
                format!("has the same key as units.{other}; every unit needs its own"),
            ));
        }
    }
    keys
}

/// Admin tokens.
pub(super) fn admin_tokens(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) {
    for (i, t) in config.admin.tokens.iter().enumerate() {
        let path = format!("admin.tokens[{i}]");
        match t.token(env) {
            None if t.token_sha256.is_some() => {
                let digests = t
                    .token_sha256
                    .as_ref()
                    .map(|d| d.list())
                    .unwrap_or_default();
                if digests.is_empty() || !digests.iter().all(|h| crate::hex::is_sha256(h.trim())) {
                    problems.push(problem(
                        format!("{path}.token_sha256"),
                        "must be 64 hex digits, or a list of them: the SHA-256 of each token (printf %s TOKEN | sha256sum)",
                    ));
                }
            }
            None => problems.push(problem(
                format!("{path}.token_env"),
                format!("set the environment variable {}", t.token_env),
            )),
            Some(tok)
                if credential_list(&tok).iter().any(|t| t.len() < 16)
                    || credential_list(&tok).is_empty() =>
            {
                problems.push(problem(
                    format!("{path}.token_env"),
                    "an admin token needs at least 16 characters (several are separated by commas)",
                ))
            }
            Some(_) => {}
        }
        if t.dev_token.is_some() && dev_refused(config) {
            problems.push(problem(
                format!("{path}.dev_token"),
                format!(
                    "development tokens are refused {}; use token_env",
                    refused_where(config)
                ),
            ));
        }
    }
}

/// Every SOAP operation names a route.
pub(super) fn soap_operations(config: &Config, problems: &mut Vec<Problem>) {
    for (unit, u) in &config.units {
        for (op, flow) in &u.soap_operations {
            if !config
                .routes
                .iter()
                .any(|r| &r.unit == unit && &r.flow == flow)
            {
                problems.push(problem(
                    format!("units.{unit}.soap_operations.{op}"),
                    format!("no route for unit `{unit}` flow `{flow}`"),
                ));
            }
        }
    }
}

/// The largest body a route may take ([`crate::config::RouteConfig::max_body_bytes`]).
const MAX_ROUTE_BODY: usize = 256 * 1024 * 1024;

/// Routes: units, flows, targets, keys and policies.
pub(super) fn routes(config: &Config, problems: &mut Vec<Problem>) {
    let mut route_names = BTreeMap::new();
    for (i, route) in config.routes.iter().enumerate() {
        let path = format!("routes[{i}]");
        if !config.units.contains_key(&route.unit) {
            problems.push(problem(
                format!("{path}.unit"),
                format!(
                    "unknown unit `{}` (declare it under [units.{}])",
                    route.unit, route.unit
                ),
            ));
        }
        if !valid_id(&route.flow) {
            problems.push(problem(
                format!("{path}.flow"),
                "flow names use lowercase letters, digits, - and _",
            ));
        }
        if let Some(prev) = route_names.insert((route.unit.as_str(), route.flow.as_str()), i) {
            problems.push(problem(
                &path,
                format!(
                    "unit `{}` flow `{}` is already routed by routes[{prev}]",
                    route.unit, route.flow
                ),
            ));
        }
        if route.targets.is_empty() {
            problems.push(problem(
                format!("{path}.targets"),
                "name at least one target",
            ));
        }
        for (j, t) in route.targets.iter().enumerate() {
            if !config.targets.contains_key(t) {
                problems.push(problem(
                    format!("{path}.targets[{j}]"),
                    format!("unknown target `{t}`"),
                ));
            }
            if route.targets[..j].contains(t) {
                problems.push(problem(
                    format!("{path}.targets[{j}]"),
                    format!("`{t}` listed twice"),
                ));
            }
        }
        for (target, file) in &route.mappings {
            if !route.targets.contains(target) {
                problems.push(problem(
                    format!("{path}.mappings.{target}"),
                    format!("`{target}` is not one of this route's targets"),
                ));
            }
            if !file.ends_with(".toml") {
                problems.push(problem(
                    format!("{path}.mappings.{target}"),
                    format!("`{file}` should name a mapping file (*.toml)"),
                ));
            }
        }
        route_replies(config, route, &path, problems);
        route_conditions(route, &path, problems);
        if let Some(max) = route.max_body_bytes
            && !(config.server.max_body_bytes..=MAX_ROUTE_BODY).contains(&max)
        {
            problems.push(problem(
                format!("{path}.max_body_bytes"),
                format!(
                    "{max} is outside {}..={MAX_ROUTE_BODY} (from server.max_body_bytes to \
                     256 MiB: larger documents belong in the unit's own store, linked)",
                    config.server.max_body_bytes
                ),
            ));
        }
        if !route.deliver_when.is_empty()
            && route
                .targets
                .iter()
                .all(|t| route.deliver_when.contains_key(t))
        {
            problems.push(problem(
                format!("{path}.deliver_when"),
                "every target of this route is conditional: leave at least one that takes \
                 every event (an event must go somewhere)",
            ));
        }
        match (&route.key, route.ordering) {
            (None, Ordering::PerKey) => problems.push(problem(
                format!("{path}.key"),
                "ordering = \"per_key\" needs a key (a JSON pointer such as \"/dossierCode\")",
            )),
            (Some(k), _) if !k.starts_with('/') => problems.push(problem(
                format!("{path}.key"),
                format!("`{k}` is not a JSON pointer; write it as \"/{k}\""),
            )),
            _ => {}
        }
    }
}

/// A route's replies: each from one of its targets, to another route of the same unit.
fn route_replies(
    config: &Config,
    route: &crate::config::RouteConfig,
    path: &str,
    problems: &mut Vec<Problem>,
) {
    for (target, flow) in &route.replies {
        let path = format!("{path}.replies.{target}");
        if !route.targets.contains(target) {
            problems.push(problem(
                &path,
                format!("`{target}` is not one of this route's targets"),
            ));
        }
        if *flow == route.flow {
            problems.push(problem(&path, "a route cannot reply to itself"));
        } else if !config
            .routes
            .iter()
            .any(|r| r.unit == route.unit && r.flow == *flow)
        {
            problems.push(problem(
                &path,
                format!(
                    "no route for unit `{}` flow `{flow}` (add a [[routes]] for it: \
                     the replies go where that route says)",
                    route.unit
                ),
            ));
        }
    }
}

/// A route's conditional targets: each one of its targets, with conditions that can hold.
fn route_conditions(route: &crate::config::RouteConfig, path: &str, problems: &mut Vec<Problem>) {
    for (target, conditions) in &route.deliver_when {
        let path = format!("{path}.deliver_when.{target}");
        if !route.targets.contains(target) {
            problems.push(problem(
                &path,
                format!("`{target}` is not one of this route's targets"),
            ));
        }
        if conditions.all().is_empty() {
            problems.push(problem(&path, "give at least one condition"));
        }
        for when in conditions.all() {
            if !when.field.starts_with('/') {
                problems.push(problem(
                    format!("{path}.field"),
                    format!(
                        "`{}` is not a JSON pointer; write it as \"/{}\"",
                        when.field, when.field
                    ),
                ));
            }
            if when.one_of.as_ref().is_some_and(|v| v.is_empty()) {
                problems.push(problem(
                    format!("{path}.in"),
                    "list at least one value (or leave `in` out: then any value will do)",
                ));
            }
        }
    }
}
