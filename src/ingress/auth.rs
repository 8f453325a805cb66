//! Unit authentication: `Authorization: Bearer <unit key>`, compared in constant time.
//! A valid key of another unit is 403 (a unit cannot post as another); no or wrong key 401.

use super::ApiError;
use axum::http::{HeaderMap, StatusCode, header};
use std::collections::BTreeMap;

pub struct UnitKeys {
    keys: BTreeMap<String, Vec<u8>>,
}

impl UnitKeys {
    pub fn new(keys: BTreeMap<String, String>) -> Self {
        UnitKeys {
            keys: keys.into_iter().map(|(u, k)| (u, k.into_bytes())).collect(),
        }
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
        // Compare against every key so the time taken does not tell which one matched.
        let mut owner = None;
        for (u, k) in &self.keys {
            if constant_time_eq(k, token) {
                owner = Some(u.as_str());
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

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
