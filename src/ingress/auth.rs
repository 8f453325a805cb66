//! Unit authentication: `Authorization: Bearer <unit key>`, compared in constant time.
//! A valid key of another unit is 403 (a unit cannot post as another); no or wrong key 401.

use super::ApiError;
use axum::http::{HeaderMap, StatusCode, header};
use std::collections::BTreeMap;

pub struct UnitKeys {
    /// SHA-256 of each unit's key: the keys themselves are not kept.
    keys: BTreeMap<String, [u8; 32]>,
    /// Each unit's request-rate limit, checked once its key is verified (so requests with
    /// a wrong key cannot spend another unit's allowance).
    limits: BTreeMap<String, (u32, governor::DefaultDirectRateLimiter)>,
}

/// The SHA-256 of a key, as kept and compared.
pub fn key_digest(key: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(key).into()
}

/// `sha256:<hex>` (a configured digest) or the key itself.
pub fn digest_of_configured(key: &str) -> [u8; 32] {
    key.strip_prefix("sha256:")
        .and_then(crate::hex::decode)
        .and_then(|d| <[u8; 32]>::try_from(d).ok())
        .unwrap_or_else(|| key_digest(key.as_bytes()))
}

impl UnitKeys {
    /// From the validated keys (`sha256:<hex>` for units configured by digest).
    pub fn new(keys: BTreeMap<String, String>) -> Self {
        UnitKeys {
            keys: keys
                .into_iter()
                .map(|(u, k)| (u, digest_of_configured(&k)))
                .collect(),
            limits: BTreeMap::new(),
        }
    }

    /// With the units' `rate_limit`s.
    pub fn with_rate_limits(mut self, units: &BTreeMap<String, crate::config::UnitConfig>) -> Self {
        self.limits = units
            .iter()
            .filter_map(|(u, c)| {
                let rl = c.rate_limit.as_ref()?;
                Some((u.clone(), (rl.per_second, rl.limiter()?)))
            })
            .collect();
        self
    }

    /// Over its rate: 429 with when to come back.
    fn admit(&self, unit: &str) -> Result<(), ApiError> {
        let Some((per_second, limiter)) = self.limits.get(unit) else {
            return Ok(());
        };
        limiter.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "unit `{unit}` may send {per_second} requests per second (units.{unit}.rate_limit); retry later"
                ),
            );
            e.retry_after = Some(wait.as_secs().max(1));
            e
        })
    }

    pub fn knows(&self, unit: &str) -> bool {
        self.keys.contains_key(unit)
    }

    pub fn authorize(&self, unit: &str, headers: &HeaderMap) -> Result<(), ApiError> {
        let unauthorized = |msg: &str| {
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", msg.to_string())
                .field("authorization")
        };
        let value = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| unauthorized("send the unit key as `Authorization: Bearer <key>`"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| unauthorized("the Authorization header must use the Bearer scheme"))?
            .trim()
            .as_bytes();
        let token = key_digest(token);
        // Compare digests (fixed length) against every key, in constant time, so the time
        // taken tells neither the key's length nor which one matched.
        let mut owner = None;
        for (u, k) in &self.keys {
            if constant_time_eq(k, &token) {
                owner = Some(u.as_str());
            }
        }
        match owner {
            Some(u) if u == unit => self.admit(unit),
            Some(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this key belongs to another unit and cannot post as `{unit}`"),
            )
            .field("authorization")),
            None => Err(unauthorized("the unit key is not valid")),
        }
    }
}

/// Compared in constant time (digests have a fixed length: the secret's is not told).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
