//! Validation: a pure function from a parsed [`Config`] to the list of every problem in it,
//! each with the key path it concerns, so an operator fixes them all in one go.

use super::{Config, Environment, Ordering};
use std::collections::BTreeMap;
use std::fmt;

/// One thing wrong with the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Key path, e.g. `routes[2].targets[0]`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The longest grace in-flight deliveries get at shutdown: with the flush and the exit
/// after it, the process ends within 10 s of SIGTERM.
pub const MAX_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(8);

/// Whether `dev_*` credentials (published in the repository) are refused: in production,
/// and wherever the bus listens on more than this machine's loopback — unless the
/// operator says it is a closed test network (`server.allow_dev_credentials_on_network`).
pub fn dev_refused(config: &Config) -> bool {
    config.environment == Environment::Production
        || (!config.server.listen.ip().is_loopback()
            && !config.server.allow_dev_credentials_on_network)
}

/// Where `dev_*` credentials are refused, for the problem's message.
fn refused_where(config: &Config) -> &'static str {
    if config.environment == Environment::Production {
        "in production"
    } else {
        "when server.listen is not a loopback address (anyone on the network knows them; \
         set server.allow_dev_credentials_on_network = true only on a closed test network)"
    }
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        message: message.into(),
    }
}

/// Check the configuration; `env` looks up environment variables (unit keys live there).
/// Returns the unit keys by unit id when everything is in order.
/// A platform URL: http or https, and plain HTTP only to this machine unless allowed.
fn check_url(path: &str, url: &str, allow_plain_http: bool) -> Option<Problem> {
    let url = match reqwest::Url::parse(url) {
        Ok(u) => u,
        Err(e) => return Some(problem(path, format!("not a URL: {e}"))),
    };
    match url.scheme() {
        "https" => None,
        "http" if allow_plain_http || is_loopback(&url) => None,
        "http" => Some(problem(
            path,
            "plain HTTP to another machine would carry personal data in clear: use https:// \
             (or set allow_plain_http = true for a trusted internal network)",
        )),
        other => Some(problem(
            path,
            format!("scheme `{other}` is not http or https"),
        )),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub fn validate(
    config: &Config,
    env: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut keys = BTreeMap::new();

    if config.server.max_body_bytes == 0 {
        problems.push(problem("server.max_body_bytes", "must be greater than 0"));
    }
    if config.server.max_batch == 0 {
        problems.push(problem("server.max_batch", "must be greater than 0"));
    }
    for (key, value) in [
        (
            "server.header_read_timeout",
            config.server.header_read_timeout,
        ),
        ("server.body_read_timeout", config.server.body_read_timeout),
    ] {
        if value.is_zero() {
            problems.push(problem(key, "must be greater than 0"));
        }
    }
    if let Some(tls) = &config.server.tls {
        for (key, file) in [
            ("server.tls.cert_file", &tls.cert_file),
            ("server.tls.key_file", &tls.key_file),
        ] {
            if !file.exists() {
                problems.push(problem(key, format!("{} does not exist", file.display())));
            }
        }
    }
    for (id, unit) in &config.units {
        if let Some(var) = &unit.hmac_secret_env {
            let path = format!("units.{id}.hmac_secret_env");
            match (env(var), &unit.dev_hmac_secret) {
                (Some(s), _) if s.len() >= 16 => {}
                (Some(_), _) => problems.push(problem(
                    path,
                    format!("the secret in ${var} is shorter than 16 characters"),
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
    if config.transport == crate::config::Transport::Amqp {
        let a = &config.amqp;
        if a.urls.is_empty() {
            problems.push(problem("amqp.urls", "name at least one broker URL"));
        }
        for (i, u) in a.urls.iter().enumerate() {
            if !(u.starts_with("amqp://") || u.starts_with("amqps://")) {
                problems.push(problem(
                    format!("amqp.urls[{i}]"),
                    "must start with amqp:// or amqps://",
                ));
            }
        }
        if a.partitions == 0 || a.partitions > 1024 {
            problems.push(problem("amqp.partitions", "must be between 1 and 1024"));
        }
        if let Some(tls) = &a.tls {
            for (field, path) in [
                ("ca_file", &tls.ca_file),
                ("client_cert", &tls.client_cert),
                ("client_key", &tls.client_key),
            ] {
                if let Some(p) = path
                    && !p.is_file()
                {
                    problems.push(problem(
                        format!("amqp.tls.{field}"),
                        format!("{} is not a readable file", p.display()),
                    ));
                }
            }
            if tls.client_cert.is_some() != tls.client_key.is_some() {
                problems.push(problem(
                    "amqp.tls",
                    "client_cert and client_key go together (mutual TLS needs both)",
                ));
            }
        }
        if a.publish_concurrency == 0 || a.publish_concurrency > 4096 {
            problems.push(problem(
                "amqp.publish_concurrency",
                "must be between 1 and 4096",
            ));
        }
        if a.prefetch == 0 {
            problems.push(problem("amqp.prefetch", "must be greater than 0"));
        }
        if a.prefix.is_empty() || a.prefix.contains(char::is_whitespace) {
            problems.push(problem(
                "amqp.prefix",
                "must be a non-empty name without spaces",
            ));
        }
        if a.publish_timeout.is_zero() {
            problems.push(problem("amqp.publish_timeout", "must be greater than 0"));
        }
    } else if config.role != crate::config::Role::All {
        problems.push(problem(
            "role",
            "ingress and worker roles need transport = \"amqp\" (a broker to share the work)",
        ));
    }
    if config.admin.kpi_interval < std::time::Duration::from_secs(1) {
        problems.push(problem("admin.kpi_interval", "must be at least 1s"));
    }
    if config.environment == Environment::Production
        && config.server.tls.is_none()
        && !config.server.behind_tls_proxy
    {
        problems.push(problem(
            "server.tls",
            "production serves keys, tokens, session cookies and lookup replies: set \
             [server.tls] cert_file and key_file, or behind_tls_proxy = true when a proxy \
             or load balancer in front of the bus terminates HTTPS",
        ));
    }
    if config.relay.shutdown_grace > MAX_SHUTDOWN_GRACE {
        problems.push(problem(
            "relay.shutdown_grace",
            format!(
                "must be at most {}s: SIGTERM ends the bus within 10 s whatever the backlog \
                 (deliveries still in flight then stay pending and go again after the restart)",
                MAX_SHUTDOWN_GRACE.as_secs()
            ),
        ));
    }
    if config.admin.session_idle < std::time::Duration::from_secs(1) {
        problems.push(problem("admin.session_idle", "must be at least 1s"));
    }
    if config.admin.session_max < config.admin.session_idle {
        problems.push(problem(
            "admin.session_max",
            "must be at least admin.session_idle (a session's whole life)",
        ));
    }
    if config.outbox.window < 16 {
        problems.push(problem("outbox.window", "must be at least 16"));
    }
    if config.outbox.max_pending == 0 {
        problems.push(problem("outbox.max_pending", "must be greater than 0"));
    }
    if config.outbox.idempotency_ttl.as_secs() < 7 * 24 * 3600 {
        problems.push(problem(
            "outbox.idempotency_ttl",
            "must be at least 7 days (units may resend a week later)",
        ));
    }
    if config.outbox.note_retention.as_secs() < 7 * 24 * 3600 {
        problems.push(problem(
            "outbox.note_retention",
            "must be at least 7 days (a payment reference must outlive the payment)",
        ));
    }
    if config.mocks.enabled && config.mocks.listen == config.server.listen {
        problems.push(problem("mocks.listen", "must differ from server.listen"));
    }

    let m = &config.mocks;
    if !matches!(m.portal_success_code.as_i64(), Some(0))
        && !matches!(m.portal_success_code.as_str(), Some("0" | "00"))
    {
        problems.push(problem(
            "mocks.portal_success_code",
            "the portal answers success as 0, \"0\" or \"00\"",
        ));
    }
    for (name, share) in [
        ("payment_paid", m.payment_paid),
        ("payment_failed", m.payment_failed),
    ] {
        if !(0.0..=1.0).contains(&share) {
            problems.push(problem(format!("mocks.{name}"), "must be between 0 and 1"));
        }
    }
    if m.payment_paid + m.payment_failed > 1.0 {
        problems.push(problem(
            "mocks.payment_failed",
            "payment_paid + payment_failed is more than 1",
        ));
    }
    for (i, rule) in config.mocks.faults.iter().enumerate() {
        let path = format!("mocks.faults[{i}]");
        if !lienthong_mocks::faults::SERVICES.contains(&rule.service.as_str()) {
            problems.push(problem(
                format!("{path}.service"),
                format!(
                    "unknown mock `{}` (one of: {})",
                    rule.service,
                    lienthong_mocks::faults::SERVICES.join(", ")
                ),
            ));
        }
        let rates = [
            ("error_rate", rule.error_rate),
            ("too_many_rate", rule.too_many_rate),
            ("hang_rate", rule.hang_rate),
            ("malformed_rate", rule.malformed_rate),
            ("reset_rate", rule.reset_rate),
            ("business_error_rate", rule.business_error_rate),
        ];
        for (name, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                problems.push(problem(format!("{path}.{name}"), "must be between 0 and 1"));
            }
        }
        if rates.iter().map(|(_, r)| r).sum::<f64>() > 1.0 {
            problems.push(problem(&path, "the rates add up to more than 1"));
        }
        if rule.latency_ms.is_some_and(|(lo, hi)| lo > hi) {
            problems.push(problem(
                format!("{path}.latency_ms"),
                "write it as [min, max]",
            ));
        }
    }

    for (name, t) in &config.targets {
        let path = format!("targets.{name}");
        match (t.kind, &t.portal) {
            (super::TargetKind::Portal, None) => problems.push(problem(
                format!("{path}.portal"),
                "kind = \"portal\" needs portal = { username, password_env, madonvi }",
            )),
            (super::TargetKind::Portal, Some(p)) => {
                if p.password(&env).is_none() {
                    problems.push(problem(
                        format!("{path}.portal.password_env"),
                        format!(
                            "set the environment variable {} to the portal password",
                            p.password_env
                        ),
                    ));
                }
                if p.dev_password.is_some() && dev_refused(config) {
                    problems.push(problem(
                        format!("{path}.portal.dev_password"),
                        format!(
                            "development passwords are refused {}; use password_env",
                            refused_where(config)
                        ),
                    ));
                }
            }
            (_, Some(_)) => problems.push(problem(
                format!("{path}.portal"),
                "only kind = \"portal\" takes a portal section",
            )),
            (_, None) => {}
        }
        match (t.kind, &t.payment) {
            (super::TargetKind::Payment, None) => problems.push(problem(
                format!("{path}.payment"),
                "kind = \"payment\" needs payment = { partner_code, shared_key_env }",
            )),
            (super::TargetKind::Payment, Some(p)) => {
                if p.shared_key(&env).is_none() {
                    problems.push(problem(
                        format!("{path}.payment.shared_key_env"),
                        format!(
                            "set the environment variable {} to the payment shared key",
                            p.shared_key_env
                        ),
                    ));
                }
                if p.dev_shared_key.is_some() && dev_refused(config) {
                    problems.push(problem(
                        format!("{path}.payment.dev_shared_key"),
                        format!(
                            "development keys are refused {}; use shared_key_env",
                            refused_where(config)
                        ),
                    ));
                }
            }
            (_, Some(_)) => problems.push(problem(
                format!("{path}.payment"),
                "only kind = \"payment\" takes a payment section",
            )),
            (_, None) => {}
        }
    }
    for (name, t) in &config.targets {
        let path = format!("targets.{name}");
        if let Some(auth) = &t.auth {
            if t.kind != super::TargetKind::Http {
                problems.push(problem(
                    format!("{path}.auth"),
                    "auth applies to kind = \"http\" targets (the portal and payment kinds have their own)",
                ));
            }
            let (var, dev) = auth.secret_source();
            if auth.secret(&env).is_none() {
                problems.push(problem(
                    format!("{path}.auth"),
                    format!("set the environment variable {var}"),
                ));
            }
            if dev.is_some() && dev_refused(config) {
                problems.push(problem(
                    format!("{path}.auth"),
                    format!(
                        "development secrets are refused {}; use the *_env variable",
                        refused_where(config)
                    ),
                ));
            }
        }
        if let Some(tls) = &t.tls {
            if tls.client_cert.is_some() != tls.client_key.is_some() {
                problems.push(problem(
                    format!("{path}.tls"),
                    "client_cert and client_key go together",
                ));
            }
            for f in [&tls.ca_file, &tls.client_cert, &tls.client_key]
                .into_iter()
                .flatten()
            {
                if !f.exists() {
                    problems.push(problem(
                        format!("{path}.tls"),
                        format!("{} does not exist", f.display()),
                    ));
                }
            }
        }
    }
    if config
        .targets
        .values()
        .filter(|t| t.kind == super::TargetKind::Payment)
        .count()
        > 1
    {
        problems.push(problem(
            "targets",
            "one payment target at most: its key verifies the callbacks at /callbacks/payment",
        ));
    }

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
            (Some(key), _) if key.len() >= 16 => {
                keys.insert(id.clone(), key);
            }
            (Some(_), _) => problems.push(problem(
                format!("{path}.key_env"),
                format!("the key in ${} is shorter than 16 characters", unit.key_env),
            )),
            (None, _) if unit.key_sha256.is_some() => {
                let hex = unit.key_sha256.as_deref().unwrap_or_default().trim();
                if crate::hex::is_sha256(hex) {
                    keys.insert(id.clone(), format!("sha256:{}", hex.to_ascii_lowercase()));
                } else {
                    problems.push(problem(
                        format!("{path}.key_sha256"),
                        "must be 64 hex digits: the SHA-256 of the key (printf %s KEY | sha256sum)",
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

    for (id, target) in &config.targets {
        let path = format!("targets.{id}");
        if !valid_id(id) {
            problems.push(problem(
                &path,
                "target ids use lowercase letters, digits, - and _",
            ));
        }
        problems.extend(check_url(
            &format!("{path}.url"),
            &target.url,
            target.allow_plain_http,
        ));
        if target.concurrency == 0 {
            problems.push(problem(format!("{path}.concurrency"), "must be at least 1"));
        }
        if target.timeout.is_zero() {
            problems.push(problem(format!("{path}.timeout"), "must be greater than 0"));
        }
        if let Some(rl) = &target.rate_limit {
            if rl.per_second == 0 {
                problems.push(problem(
                    format!("{path}.rate_limit.per_second"),
                    "must be at least 1",
                ));
            }
            if rl.burst == Some(0) {
                problems.push(problem(
                    format!("{path}.rate_limit.burst"),
                    "must be at least 1",
                ));
            }
        }
        if target.retry.max_attempts == 0 {
            problems.push(problem(
                format!("{path}.retry.max_attempts"),
                "must be at least 1",
            ));
        }
        if target.retry.base_delay > target.retry.max_delay {
            problems.push(problem(
                format!("{path}.retry.base_delay"),
                "must not exceed retry.max_delay",
            ));
        }
        if target.circuit_breaker.failure_threshold == 0 {
            problems.push(problem(
                format!("{path}.circuit_breaker.failure_threshold"),
                "must be at least 1",
            ));
        }
    }

    match &config.outbox.encryption {
        None if config.environment == Environment::Production => problems.push(problem(
            "outbox.encryption",
            "production needs encryption at rest: add [outbox.encryption] with keys_env or keys_file",
        )),
        None => {}
        Some(e) => {
            if e.dev_keys_file.is_some() && dev_refused(config) {
                problems.push(problem(
                    "outbox.encryption.dev_keys_file",
                    format!("development keys are refused {}; use keys_env or keys_file", refused_where(config)),
                ));
            }
            let usable = env(&e.keys_env).is_some()
                || e.keys_file.is_some()
                || (e.dev_keys_file.is_some() && !dev_refused(config));
            if !usable {
                problems.push(problem(
                    "outbox.encryption.keys_env",
                    format!(
                        "no outbox key: set the environment variable {} or keys_file",
                        e.keys_env
                    ),
                ));
            }
        }
    }
    for (name, lookup) in [
        ("population", &config.lookups.population),
        ("business", &config.lookups.business),
    ] {
        if let Some(l) = lookup {
            problems.extend(check_url(
                &format!("lookups.{name}.url"),
                &l.url,
                l.allow_plain_http,
            ));
        }
    }
    for (i, t) in config.admin.tokens.iter().enumerate() {
        let path = format!("admin.tokens[{i}]");
        match t.token(&env) {
            None if t.token_sha256.is_some() => {
                let hex = t.token_sha256.as_deref().unwrap_or_default().trim();
                if !crate::hex::is_sha256(hex) {
                    problems.push(problem(
                        format!("{path}.token_sha256"),
                        "must be 64 hex digits: the SHA-256 of the token (printf %s TOKEN | sha256sum)",
                    ));
                }
            }
            None => problems.push(problem(
                format!("{path}.token_env"),
                format!("set the environment variable {}", t.token_env),
            )),
            Some(tok) if tok.len() < 16 => problems.push(problem(
                format!("{path}.token_env"),
                "an admin token needs at least 16 characters",
            )),
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

    if problems.is_empty() {
        Ok(keys)
    } else {
        Err(problems)
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Config {
        crate::config::load_str(text, Path::new("t.toml"), vec![]).unwrap()
    }

    #[test]
    fn plain_http_goes_only_to_this_machine_unless_allowed() {
        let cfg = parse(
            r#"
            [targets.portal]
            kind = "http"
            url = "http://10.0.0.5/portal"
            [targets.local]
            kind = "http"
            url = "http://127.0.0.1:9090/x"
            [targets.v6]
            kind = "http"
            url = "http://[::1]:9090/x"
            [targets.internal]
            kind = "http"
            url = "http://datastore.internal/x"
            allow_plain_http = true
            [targets.tls]
            kind = "http"
            url = "https://dvcqg.gov.vn/x"
            [lookups.population]
            url = "http://csdl.dancu.example/soap"
            "#,
        );
        let problems: Vec<Problem> = validate(&cfg, |_| None)
            .unwrap_err()
            .into_iter()
            .filter(|p| p.path.ends_with(".url"))
            .collect();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            ["targets.portal.url", "lookups.population.url"],
            "{problems:?}"
        );
        assert!(problems[0].message.contains("https://"), "{problems:?}");
    }

    #[test]
    fn dev_credentials_are_refused_on_a_network_listener_unless_it_is_declared_closed() {
        let text = |listen: &str, opt_out: bool| {
            format!(
                r#"
                environment = "development"
                [server]
                listen = "{listen}"
                allow_dev_credentials_on_network = {opt_out}
                [units.stameq]
                key_env = "NOT_SET_ANYWHERE"
                dev_key = "dev-stameq-key-0001"
                [[admin.tokens]]
                name = "it"
                role = "viewer"
                token_env = "NOT_SET_EITHER"
                dev_token = "dev-only-viewer-token-xx"
                "#
            )
        };
        let refused = |listen: &str, opt_out: bool| -> Vec<String> {
            match validate(&parse(&text(listen, opt_out)), |_| None) {
                Ok(_) => Vec::new(),
                Err(problems) => problems
                    .into_iter()
                    .filter(|p| p.message.contains("refused"))
                    .map(|p| format!("{}: {}", p.path, p.message))
                    .collect(),
            }
        };
        assert!(refused("127.0.0.1:8080", false).is_empty());
        assert!(refused("[::1]:8080", false).is_empty());
        let public = refused("0.0.0.0:8080", false);
        assert_eq!(public.len(), 2, "{public:?}");
        assert!(
            public[0].starts_with("units.stameq.dev_key")
                || public[1].starts_with("units.stameq.dev_key")
        );
        assert!(public.iter().all(|p| p.contains("loopback")), "{public:?}");
        // A closed test network, said so explicitly (and logged loudly at start).
        assert!(refused("0.0.0.0:8080", true).is_empty());
    }

    #[test]
    fn production_needs_https_or_a_tls_proxy_in_front() {
        let problems = |server: &str| -> Vec<String> {
            let cfg = parse(&format!(
                "environment = \"production\"\n[server]\nlisten = \"0.0.0.0:8080\"\n{server}"
            ));
            validate(&cfg, |_| None)
                .err()
                .unwrap_or_default()
                .into_iter()
                .map(|p| p.path)
                .collect()
        };
        assert!(problems("").contains(&"server.tls".to_string()));
        assert!(!problems("behind_tls_proxy = true").contains(&"server.tls".to_string()));
    }

    #[test]
    fn every_problem_is_named_at_once() {
        let cfg = parse(
            r#"
            environment = "production"
            [admin]
            kpi_interval = "0s"
            session_idle = "2h"
            session_max = "1h"
            [units.stameq]
            key_env = "NOT_SET_ANYWHERE"
            dev_key = "dev-stameq-key-0001"
            [targets.portal]
            kind = "http"
            url = "ftp://x"
            concurrency = 0
            [[routes]]
            unit = "ipo"
            flow = "dossier_sync"
            targets = ["portl"]
            "#,
        );
        let problems = validate(&cfg, |_| None).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        for expected in [
            "units.stameq.dev_key",
            "targets.portal.url",
            "targets.portal.concurrency",
            "routes[0].unit",
            "routes[0].targets[0]",
            "routes[0].key",
            "admin.kpi_interval",
            "admin.session_max",
        ] {
            assert!(paths.contains(&expected), "missing {expected} in {paths:?}");
        }
    }

    #[test]
    fn broker_settings_are_checked_and_roles_need_a_broker() {
        let cfg = parse(
            r#"
            transport = "amqp"
            [amqp]
            urls = ["http://broker"]
            partitions = 0
            publish_concurrency = 0
            tls = { client_cert = "/nonexistent/cert.pem" }
            "#,
        );
        let problems = validate(&cfg, |_| None).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        for expected in [
            "amqp.urls[0]",
            "amqp.partitions",
            "amqp.publish_concurrency",
            "amqp.tls.client_cert",
            "amqp.tls",
        ] {
            assert!(paths.contains(&expected), "missing {expected} in {paths:?}");
        }
        let embedded_worker = parse("role = \"worker\"\n");
        let problems = validate(&embedded_worker, |_| None).unwrap_err();
        assert!(problems.iter().any(|p| p.path == "role"), "{problems:?}");
    }

    #[test]
    fn keys_come_from_the_environment_first() {
        let cfg = parse(
            r#"
            [units.stameq]
            key_env = "K_STAMEQ"
            dev_key = "dev-stameq-key-0001"
            "#,
        );
        let keys = validate(&cfg, |v| {
            (v == "K_STAMEQ").then(|| "from-env-0123456789".into())
        })
        .unwrap();
        assert_eq!(keys["stameq"], "from-env-0123456789");
        let keys = validate(&cfg, |_| None).unwrap();
        assert_eq!(keys["stameq"], "dev-stameq-key-0001");
    }
}
