//! Bearer credentials: `Authorization: Bearer <unit key>`, compared in constant time.
//! A valid key of another unit is 403 (a unit cannot post as another); no or wrong key 401.

use super::ApiError;
use axum::http::{HeaderMap, StatusCode, header};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Unit → the digests of its accepted keys.
type KeyDigests = BTreeMap<String, Vec<[u8; 32]>>;

/// The digests of validated keys: `key` or `sha256:<hex>`, several separated by commas.
fn digests(keys: BTreeMap<String, String>) -> KeyDigests {
    keys.into_iter()
        .map(|(u, k)| {
            let list = crate::config::credential_list(&k)
                .into_iter()
                .map(digest_of_configured)
                .collect();
            (u, list)
        })
        .collect()
}

pub struct UnitKeys {
    /// SHA-256 of each unit's keys (several during a rotation): the keys themselves are
    /// not kept. Replaced as a whole when credentials are reloaded (SIGHUP).
    keys: std::sync::RwLock<Arc<KeyDigests>>,
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
            keys: std::sync::RwLock::new(Arc::new(digests(keys))),
            limits: BTreeMap::new(),
        }
    }

    /// Accept these keys from now on (credentials reloaded on SIGHUP). Units are those
    /// of the start: a unit added to the file needs a restart (its routes do too).
    pub fn replace(&self, keys: BTreeMap<String, String>) {
        let current = self.current();
        let next: KeyDigests = digests(keys)
            .into_iter()
            .filter(|(u, _)| current.contains_key(u))
            .collect();
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
    }

    fn current(&self) -> Arc<KeyDigests> {
        Arc::clone(&self.keys.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// How many keys each unit has (for the reload's log line; never the keys).
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.current()
            .iter()
            .map(|(u, k)| (u.clone(), k.len()))
            .collect()
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
        self.current().contains_key(unit)
    }

    /// The request carries `unit`'s key and the unit is within its request rate.
    pub fn authorize(&self, unit: &str, headers: &HeaderMap) -> Result<(), ApiError> {
        self.identify(unit, headers)?;
        self.admit(unit)
    }

    /// The request carries `unit`'s key (nothing counted against its rate): what the
    /// listener checks before it reads a unit's body.
    pub fn identify(&self, unit: &str, headers: &HeaderMap) -> Result<(), ApiError> {
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
        let keys = self.current();
        let mut owner = None;
        for (u, list) in keys.iter() {
            for k in list {
                if constant_time_eq(k, &token) {
                    owner = Some(u.as_str());
                }
            }
        }
        match owner {
            Some(u) if u == unit => Ok(()),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(key: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            format!("Bearer {key}").parse().unwrap(),
        );
        h
    }

    /// A key variable holding `new,old` (a rotation): both are the unit's; a reload
    /// without the old one refuses it; another unit's keys stay another unit's.
    #[test]
    fn several_keys_per_unit_and_a_reload_that_drops_one() {
        let keys = UnitKeys::new(BTreeMap::from([
            (
                "ipo".to_string(),
                "ipo-new-key-0123456789, ipo-old-key-0123456789".to_string(),
            ),
            ("varans".to_string(), "varans-key-0123456789".to_string()),
        ]));
        assert!(
            keys.authorize("ipo", &bearer("ipo-new-key-0123456789"))
                .is_ok()
        );
        assert!(
            keys.authorize("ipo", &bearer("ipo-old-key-0123456789"))
                .is_ok()
        );
        let other = keys
            .authorize("varans", &bearer("ipo-old-key-0123456789"))
            .unwrap_err();
        assert_eq!(other.status, StatusCode::FORBIDDEN);
        keys.replace(BTreeMap::from([
            ("ipo".to_string(), "ipo-new-key-0123456789".to_string()),
            ("varans".to_string(), "varans-key-0123456789".to_string()),
            // A unit added to the file is not taken without a restart.
            ("newunit".to_string(), "newunit-key-0123456789".to_string()),
        ]));
        assert!(
            keys.authorize("ipo", &bearer("ipo-new-key-0123456789"))
                .is_ok()
        );
        let old = keys
            .authorize("ipo", &bearer("ipo-old-key-0123456789"))
            .unwrap_err();
        assert_eq!(old.status, StatusCode::UNAUTHORIZED);
        assert!(!keys.knows("newunit"));
        assert_eq!(keys.counts()["ipo"], 1);
    }
}
