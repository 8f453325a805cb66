//! Checks of the targets and lookups: policies, URLs, credentials, TLS.

use super::*;

/// Targets' retry, breaker, batching and rate-limit settings.
pub(super) fn target_policies(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) {
    for (name, t) in &config.targets {
        let path = format!("targets.{name}");
        match (t.kind, &t.portal) {
            (crate::config::TargetKind::Portal | crate::config::TargetKind::Ministry, None) => {
                problems.push(problem(
                    format!("{path}.portal"),
                    "kind = \"portal\" and kind = \"ministry\" need portal = { username, password_env, madonvi }",
                ))
            }
            (crate::config::TargetKind::Portal | crate::config::TargetKind::Ministry, Some(p)) => {
                if p.password(env).is_none() {
                    problems.push(problem(
                        format!("{path}.portal.password_env"),
                        format!(
                            "set the environment variable {} to the portal password",
                            p.password_env
                        ),
                    ));
                }
                match p.ratings_every {
                    Some(_) if t.kind == crate::config::TargetKind::Ministry => {
                        problems.push(problem(
                            format!("{path}.portal.ratings_every"),
                            "citizens' ratings come from the national portal: set ratings_every on the kind = \"portal\" target",
                        ))
                    }
                    Some(every) if every < std::time::Duration::from_secs(60) => {
                        problems.push(problem(
                            format!("{path}.portal.ratings_every"),
                            "at least \"1min\": each pull asks the portal once per unit and day of the last 31",
                        ))
                    }
                    _ => {}
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
                "only kind = \"portal\" and kind = \"ministry\" take a portal section",
            )),
            (_, None) => {}
        }
        match (t.kind, &t.payment) {
            (crate::config::TargetKind::Payment, None) => problems.push(problem(
                format!("{path}.payment"),
                "kind = \"payment\" needs payment = { partner_code, shared_key_env }",
            )),
            (crate::config::TargetKind::Payment, Some(p)) => {
                if p.shared_key(env).is_none() {
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
        if t.auth.is_some() && t.kind != crate::config::TargetKind::Http {
            problems.push(problem(
                format!("{path}.auth"),
                "auth applies to kind = \"http\" targets (the portal and payment kinds have their own)",
            ));
        }
        credentials(
            config,
            &path,
            t.auth.as_ref(),
            t.tls.as_ref(),
            env,
            problems,
        );
    }
    if config
        .targets
        .values()
        .filter(|t| t.kind == crate::config::TargetKind::Payment)
        .count()
        > 1
    {
        problems.push(problem(
            "targets",
            "one payment target at most: its key verifies the callbacks at /callbacks/payment",
        ));
    }
}

/// Targets: ids, URLs, credentials and TLS.
pub(super) fn target_endpoints(config: &Config, problems: &mut Vec<Problem>) {
    for (id, target) in &config.targets {
        let path = format!("targets.{id}");
        if !valid_id(id) {
            problems.push(problem(
                &path,
                "target ids use lowercase letters, digits, - and _",
            ));
        }
        if target.kind == crate::config::TargetKind::FileDrop {
            if let Err(e) = crate::config::drop_folder(&target.url) {
                problems.push(problem(format!("{path}.url"), e));
            }
        } else {
            problems.extend(check_url(
                &format!("{path}.url"),
                &target.url,
                target.allow_plain_http,
            ));
            if target.file_drop.is_some() {
                problems.push(problem(
                    format!("{path}.file_drop"),
                    "only kind = \"file_drop\" takes a file_drop section",
                ));
            }
        }
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
}

/// Lookups: URLs, credentials and TLS, as for targets.
pub(super) fn lookups(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) {
    for (name, lookup) in [
        ("population", &config.lookups.population),
        ("business", &config.lookups.business),
    ] {
        if let Some(l) = lookup {
            let path = format!("lookups.{name}");
            problems.extend(check_url(
                &format!("{path}.url"),
                &l.url,
                l.allow_plain_http,
            ));
            credentials(
                config,
                &path,
                l.auth.as_ref(),
                l.tls.as_ref(),
                env,
                problems,
            );
            for (unit, share) in &l.unit_shares {
                let at = format!("{path}.unit_shares.{unit}");
                if !config.units.contains_key(unit) {
                    problems.push(problem(at, format!("no unit `{unit}` is configured")));
                } else if *share == 0 {
                    problems.push(problem(at, "at least 1 lookup per second"));
                } else if let Some(rl) = &l.rate_limit
                    && rl.per_second > 0
                    && *share > rl.per_second
                {
                    problems.push(problem(
                        at,
                        format!("{share} per second is more than the platform's own {} (rate_limit.per_second)", rl.per_second),
                    ));
                }
            }
            if l.unit_daily_quota == Some(0) {
                problems.push(problem(
                    format!("{path}.unit_daily_quota"),
                    "0 would refuse every lookup; leave it out for no daily ceiling",
                ));
            }
        }
    }
    lookup_exceptions(config, problems);
}

/// Each documented exception to the purpose check names itself, a configured unit, the
/// lookups it covers and why.
fn lookup_exceptions(config: &Config, problems: &mut Vec<Problem>) {
    let mut names = std::collections::HashSet::new();
    for (i, e) in config.lookups.purpose.exceptions.iter().enumerate() {
        let at = |field: &str| format!("lookups.purpose.exceptions[{i}].{field}");
        let id_like = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !id_like(&e.name) {
            problems.push(problem(at("name"), "1 to 64 letters, digits, `-` or `_`"));
        } else if !names.insert(e.name.as_str()) {
            problems.push(problem(at("name"), format!("`{}` is named twice", e.name)));
        }
        if !config.units.contains_key(&e.unit) {
            problems.push(problem(
                at("unit"),
                format!("no unit `{}` is configured", e.unit),
            ));
        }
        if e.lookups.is_empty() {
            problems.push(problem(
                at("lookups"),
                "name the lookups it covers: citizen, residence",
            ));
        }
        for kind in &e.lookups {
            if !matches!(kind.as_str(), "citizen" | "residence") {
                problems.push(problem(
                    at("lookups"),
                    format!("`{kind}`: only citizen and residence lookups need a dossier"),
                ));
            }
        }
        if e.reason.trim().is_empty() {
            problems.push(problem(at("reason"), "say why, and on whose decision"));
        }
    }
}

/// An endpoint's credential and TLS files (targets and lookups alike).
fn credentials(
    config: &Config,
    path: &str,
    auth: Option<&crate::config::AuthConfig>,
    tls: Option<&crate::config::TlsConfig>,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) {
    if let Some(auth) = auth {
        let (var, dev) = auth.secret_source();
        if auth.secret(env).is_none() {
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
    if let Some(tls) = tls {
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
