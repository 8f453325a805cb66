//! Validation: a pure function from a parsed [`Config`] to the list of every problem in it,
//! each with the key path it concerns, so an operator fixes them all in one go.

mod platform;
mod targets;
mod units;

use platform::{cluster, limits, mocks, outbox_encryption, server};
use targets::{lookups, target_endpoints, target_policies};
use units::{admin_tokens, routes, soap_operations, unit_keys, unit_signing};

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
/// and wherever the bus faces the network — a listener on more than this machine's
/// loopback, or a loopback one behind a TLS proxy (`behind_tls_proxy`: the proxy is what
/// exposes it) — unless the operator says it is a closed test network
/// (`server.allow_dev_credentials_on_network`).
pub fn dev_refused(config: &Config) -> bool {
    config.environment == Environment::Production
        || (network_facing(config) && !config.server.allow_dev_credentials_on_network)
}

/// The bus is reachable from beyond this machine: it listens on a non-loopback address,
/// or a TLS proxy in front forwards the network's requests to it.
pub fn network_facing(config: &Config) -> bool {
    !config.server.listen.ip().is_loopback() || config.server.behind_tls_proxy
}

/// Where `dev_*` credentials are refused, for the problem's message.
pub(super) fn refused_where(config: &Config) -> &'static str {
    if config.environment == Environment::Production {
        "in production"
    } else {
        "when the bus faces the network — server.listen is not a loopback address, or \
         server.behind_tls_proxy is set (anyone on the network knows them; set \
         server.allow_dev_credentials_on_network = true only on a closed test network)"
    }
}

pub(super) fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        message: message.into(),
    }
}

/// A platform URL: http or https, and plain HTTP only to this machine unless allowed.
pub(super) fn check_url(path: &str, url: &str, allow_plain_http: bool) -> Option<Problem> {
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

/// Check the configuration before anything starts; `env` looks up environment variables
/// (unit keys live there). Every section is checked and every problem reported at once.
/// Returns the unit keys by unit id when everything is in order.
pub fn validate(
    config: &Config,
    env: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, Vec<Problem>> {
    let mut problems = Vec::new();
    server(config, &mut problems);
    unit_signing(config, &env, &mut problems);
    cluster(config, &mut problems);
    limits(config, &mut problems);
    mocks(config, &mut problems);
    target_policies(config, &env, &mut problems);
    let keys = unit_keys(config, &env, &mut problems);
    target_endpoints(config, &mut problems);
    lookups(config, &env, &mut problems);
    outbox_encryption(config, &env, &mut problems);
    admin_tokens(config, &env, &mut problems);
    soap_operations(config, &mut problems);
    routes(config, &mut problems);
    for (path, message) in config.telemetry.problems() {
        problems.push(problem(path, message));
    }
    for (path, message) in config.evidence.problems(config.outbox.encryption.is_some()) {
        problems.push(problem(path, message));
    }

    if problems.is_empty() {
        Ok(keys)
    } else {
        Err(problems)
    }
}

pub(super) fn valid_id(id: &str) -> bool {
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
    fn several_keys_and_digests_per_credential_each_checked() {
        let sha = "a".repeat(64);
        let cfg = parse(&format!(
            r#"
            [units.one]
            key_env = "ONE_KEYS"
            [units.two]
            key_env = "UNSET"
            key_sha256 = ["{sha}", "{sha}"]
            [units.three]
            key_env = "THREE_KEYS"
            [units.four]
            key_env = "UNSET"
            key_sha256 = ["{sha}", "short"]
            [[admin.tokens]]
            name = "ops"
            role = "operator"
            token_env = "UNSET"
            token_sha256 = ["{sha}", "xyz"]
            "#
        ));
        let env = |v: &str| match v {
            "ONE_KEYS" => Some("first-key-0123456789, second-key-0123456789".to_string()),
            "THREE_KEYS" => Some("long-enough-key-0123,short".to_string()),
            _ => None,
        };
        let problems = validate(&cfg, env).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert!(paths.contains(&"units.three.key_env"), "{problems:?}");
        assert!(paths.contains(&"units.four.key_sha256"), "{problems:?}");
        assert!(
            paths.contains(&"admin.tokens[0].token_sha256"),
            "{problems:?}"
        );
        assert!(
            !paths
                .iter()
                .any(|p| p.starts_with("units.one") || p.starts_with("units.two")),
            "{problems:?}"
        );
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
        // Loopback behind a TLS proxy: the proxy exposes it to the network.
        let proxied = |opt_out: bool| {
            let text = text("127.0.0.1:8080", opt_out)
                .replace("[server]\n", "[server]\nbehind_tls_proxy = true\n");
            validate(&parse(&text), |_| None)
                .err()
                .unwrap_or_default()
                .into_iter()
                .filter(|p| p.message.contains("behind_tls_proxy"))
                .count()
        };
        assert_eq!(proxied(false), 2);
        assert_eq!(proxied(true), 0);
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
    fn ratings_are_pulled_from_the_portal_not_too_often() {
        let problems = |kind: &str, every: &str| {
            let cfg = parse(&format!(
                r#"
                [targets.portal]
                kind = "{kind}"
                url = "http://127.0.0.1:1/portal"
                portal = {{ username = "u", password_env = "P", madonvi = "000.00.01.H22", ratings_every = "{every}" }}
                "#
            ));
            validate(&cfg, |_| Some("pw".into()))
                .err()
                .unwrap_or_default()
                .into_iter()
                .map(|p| p.path)
                .collect::<Vec<_>>()
        };
        let path = "targets.portal.portal.ratings_every".to_string();
        assert!(!problems("portal", "1h").contains(&path));
        assert!(problems("portal", "10s").contains(&path));
        assert!(problems("ministry", "1h").contains(&path));
    }

    #[test]
    fn conditional_targets_and_route_body_limits_are_checked() {
        let cfg = parse(
            r#"
            [units.nafosted]
            key_env = "NOT_SET_ANYWHERE"
            dev_key = "dev-nafosted-key-0001"
            [targets.portal]
            kind = "http"
            url = "http://127.0.0.1:1/portal"
            [targets.notify]
            kind = "http"
            url = "http://127.0.0.1:1/notify"
            [[routes]]
            unit = "nafosted"
            flow = "dossier_progress"
            targets = ["notify"]
            key = "/dossierCode"
            deliver_when = { notify = [{ field = "step/status", in = [] }], portal = { field = "/x" } }
            max_body_bytes = 1
            "#,
        );
        let problems = validate(&cfg, |_| None).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        for expected in [
            "routes[0].deliver_when.notify.field",
            "routes[0].deliver_when.notify.in",
            "routes[0].deliver_when.portal",
            "routes[0].deliver_when",
            "routes[0].max_body_bytes",
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
            publish_batch = 0
            tls = { client_cert = "/nonexistent/cert.pem" }
            "#,
        );
        let problems = validate(&cfg, |_| None).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        for expected in [
            "amqp.urls[0]",
            "amqp.partitions",
            "amqp.publish_concurrency",
            "amqp.publish_batch",
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
