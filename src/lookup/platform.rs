//! One lookup platform's client side: its address, timeout, credential and limits — the
//! platform's own rate shared by every unit, and each unit's share of it and daily
//! ceiling, so that no unit (nor one leaked unit key) can starve the others or copy the
//! register.

use super::Failure;
use crate::config::LookupTargetConfig;
use axum::body::Bytes;
use axum::http::StatusCode;
use governor::DefaultDirectRateLimiter;
use governor::clock::{Clock, DefaultClock};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

pub(super) struct Platform {
    pub url: reqwest::Url,
    pub timeout: Duration,
    /// The platform's own limit, shared by every unit.
    pub limiter: Option<DefaultDirectRateLimiter>,
    /// The shared outbound client with this platform's timeout and TLS settings.
    pub client: reqwest::Client,
    /// The credential its gateway asks for.
    pub auth: crate::connector::auth::Auth,
    /// Each unit's share of the platform's rate (units without one have no limit of
    /// their own: the platform has none either).
    shares: HashMap<String, DefaultDirectRateLimiter>,
    /// Lookups per unit per day, and what each unit asked today (day, count).
    daily_quota: Option<u32>,
    today: Mutex<HashMap<String, (u32, u32)>>,
}

/// A unit's lookups per second when the config gives it no share of its own: an equal
/// part of the platform's rate (at least one).
fn equal_share(cfg: &LookupTargetConfig, units: usize) -> Option<u32> {
    let rate = cfg.rate_limit.as_ref()?.per_second;
    (rate > 0).then(|| (rate / units.max(1) as u32).max(1))
}

impl Platform {
    pub fn new(cfg: &LookupTargetConfig, units: &[String]) -> Result<Platform, String> {
        let url = reqwest::Url::parse(&cfg.url).map_err(|e| format!("{}: {e}", cfg.url))?;
        let limiter = cfg.rate_limit.as_ref().and_then(|rl| rl.limiter());
        let shares = units
            .iter()
            .filter_map(|unit| {
                let share = cfg
                    .unit_shares
                    .get(unit)
                    .copied()
                    .or_else(|| equal_share(cfg, units.len()))?;
                let rl = crate::config::RateLimitConfig {
                    per_second: share,
                    burst: None,
                };
                Some((unit.clone(), rl.limiter()?))
            })
            .collect();
        Ok(Platform {
            url,
            timeout: cfg.timeout,
            limiter,
            client: crate::connector::client::client(cfg.timeout, cfg.tls.as_ref())?,
            auth: crate::connector::build::auth(cfg.auth.as_ref())?,
            shares,
            daily_quota: cfg.unit_daily_quota,
            today: Mutex::new(HashMap::new()),
        })
    }

    /// Whether `unit` is within its share of the platform's rate; `429` saying when to ask
    /// again otherwise. Asked before the purpose check, so that refusals cost a unit its
    /// share too (each is audited: a leaked key cannot fill the disk with them).
    pub fn admit_rate(&self, unit: &str) -> Result<(), Failure> {
        if let Some(share) = self.shares.get(unit)
            && let Err(not_until) = share.check()
        {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(Failure::new(
                StatusCode::TOO_MANY_REQUESTS,
                "unit_rate_exceeded",
                "this unit's share of the platform's lookups per second is used up; ask again shortly",
            )
            .retry_after(wait.as_secs() + 1));
        }
        Ok(())
    }

    /// Count one of `unit`'s lookups of today against its daily ceiling; `429` until
    /// midnight once it is reached. Only lookups that passed the purpose check count.
    pub fn admit_daily(&self, unit: &str, now_ms: u64) -> Result<(), Failure> {
        let Some(quota) = self.daily_quota else {
            return Ok(());
        };
        let day = crate::outbox::tally::day_of(now_ms);
        let mut today = self.today.lock().unwrap();
        let asked = today.entry(unit.to_string()).or_insert((day, 0));
        if asked.0 != day {
            *asked = (day, 0);
        }
        if asked.1 >= quota {
            // Until midnight in Asia/Ho_Chi_Minh (UTC+7).
            let local_s = now_ms / 1000 + 7 * 3600;
            let to_midnight = 86_400 - local_s % 86_400;
            return Err(Failure::new(
                StatusCode::TOO_MANY_REQUESTS,
                "unit_daily_quota_exceeded",
                format!("this unit asked this platform its {quota} lookups of today; ask again tomorrow, or ask the IT Center to raise unit_daily_quota"),
            )
            .retry_after(to_midnight));
        }
        asked.1 += 1;
        Ok(())
    }
}

/// Send a request to a platform: the body on 200, a failure naming what went wrong.
pub(super) async fn call(
    platform: &Platform,
    request: reqwest::RequestBuilder,
) -> Result<Bytes, Failure> {
    let request = platform
        .auth
        .apply(&platform.client, request)
        .await
        .map_err(|e| {
            Failure::new(
                StatusCode::BAD_GATEWAY,
                "platform_unreachable",
                format!("cannot get the gateway's credential: {e}"),
            )
        })?;
    let resp = request
        .timeout(platform.timeout)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                Failure::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "platform_timeout",
                    "the national platform did not answer in time; try again",
                )
            } else {
                Failure::new(
                    StatusCode::BAD_GATEWAY,
                    "platform_unreachable",
                    format!(
                        "the national platform cannot be reached: {}",
                        crate::connector::client::error_chain(&e)
                    ),
                )
            }
        })?;
    let status = resp.status();
    if status == StatusCode::UNAUTHORIZED {
        // A cached gateway token may have expired: the next lookup fetches a new one.
        platform.auth.on_unauthorized().await;
    }
    let body = resp.bytes().await.map_err(|e| {
        Failure::new(
            StatusCode::BAD_GATEWAY,
            "platform_unreachable",
            e.to_string(),
        )
    })?;
    // A SOAP Fault comes with HTTP 500 and is mapped (the reply mapping names it).
    if status.is_success()
        || (status == StatusCode::INTERNAL_SERVER_ERROR && body.starts_with(b"<?xml"))
    {
        Ok(body)
    } else {
        Err(Failure::new(
            StatusCode::BAD_GATEWAY,
            "platform_error",
            format!("the national platform answered HTTP {}", status.as_u16()),
        ))
    }
}
