//! Checks of the listener, the cluster transport, the periods and caps, and the bundled mocks.

use super::*;

/// The listener: body and batch limits, read timeouts, TLS files.
pub(super) fn server(config: &Config, problems: &mut Vec<Problem>) {
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
    let largest_body = config
        .routes
        .iter()
        .filter_map(|r| r.max_body_bytes)
        .fold(config.server.max_body_bytes, usize::max);
    if config.server.max_body_bytes_in_flight < largest_body {
        problems.push(problem(
            "server.max_body_bytes_in_flight",
            format!(
                "{} bytes is less than the largest body an endpoint takes ({largest_body}): that body could never be read",
                config.server.max_body_bytes_in_flight
            ),
        ));
    }
    if let Some(url) = &config.server.public_url {
        let parsed = reqwest::Url::parse(url);
        let fine = parsed.as_ref().is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && u.path() == "/"
                && u.query().is_none()
                && u.username().is_empty()
        });
        if !fine {
            problems.push(problem(
                "server.public_url",
                "the scheme and host (and port) units reach the bus at, e.g. https://lienthong.most.gov.vn",
            ));
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
}

/// `[amqp]`, when the cluster transport is on.
pub(super) fn cluster(config: &Config, problems: &mut Vec<Problem>) {
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
        if a.publish_batch == 0 || a.publish_batch > 4096 {
            problems.push(problem(
                "amqp.publish_batch",
                "must be between 1 and 4096 (1: one broker message per event)",
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
}

/// Periods and caps of the admin, relay and outbox sections.
pub(super) fn limits(config: &Config, problems: &mut Vec<Problem>) {
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
}

/// The bundled mock services and their fault rules.
pub(super) fn mocks(config: &Config, problems: &mut Vec<Problem>) {
    if config.mocks.enabled && config.mocks.listen == config.server.listen {
        problems.push(problem("mocks.listen", "must differ from server.listen"));
    }

    // The mocks judge their own section (the mocks crate knows its services and rules).
    for (path, message) in config.mocks.problems() {
        problems.push(problem(path, message));
    }
}

/// Encryption at rest: required in production, and a keyring that can be had.
pub(super) fn outbox_encryption(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) {
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
}
