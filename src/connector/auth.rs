//! How a connector proves who it is to a target, chosen per target in config:
//!
//! - `api_key`: a static key in a header (`X-API-Key` by default);
//! - `lgsp`: the provincial/ministerial data-sharing gateway (LGSP) style — a header
//!   (`lgspaccesstoken` by default) holding base64 of the JSON
//!   `{AccessKey, SecretKey, AppName, PartnerCode, PartnerCodeCus}`;
//! - `oauth2`: OAuth 2.0 client credentials; the token is fetched from `token_url`, cached
//!   until shortly before it expires, and fetched again after a 401;
//! - TLS: a custom CA bundle (PEM) to trust, and a client identity (certificate and key,
//!   PEM) for mutual TLS — all with rustls.
//!
//! Secrets come from environment variables named in the config; `dev_*` values are for the
//! bundled mocks and refused in production (see `config::validate`).

use base64::Engine;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A credential applied to every request of a target.
pub enum Auth {
    None,
    Header { name: String, value: String },
    OAuth2(Box<OAuth2>),
}

/// OAuth 2.0 client credentials with a cached token.
pub struct OAuth2 {
    pub token_url: reqwest::Url,
    pub client_id: String,
    pub client_secret: String,
    pub scope: Option<String>,
    /// A header carrying the token again (`lgspaccesstoken`), if the gateway wants one.
    pub token_header: Option<String>,
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
}

impl OAuth2 {
    pub fn new(
        token_url: reqwest::Url,
        client_id: String,
        client_secret: String,
        scope: Option<String>,
    ) -> Self {
        OAuth2 {
            token_url,
            client_id,
            client_secret,
            scope,
            token_header: None,
            token: tokio::sync::Mutex::new(None),
        }
    }

    /// Send the token again in `header` (e.g. `lgspaccesstoken`).
    pub fn with_token_header(mut self, header: Option<String>) -> Self {
        self.token_header = header;
        self
    }

    /// A valid access token: the cached one, or a new one from the token endpoint.
    pub async fn token(&self, client: &reqwest::Client) -> Result<String, String> {
        let mut guard = self.token.lock().await;
        if let Some((token, until)) = guard.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        // application/x-www-form-urlencoded, built with the URL encoder.
        let mut form = reqwest::Url::parse("http://form/").expect("literal URL");
        {
            let mut pairs = form.query_pairs_mut();
            pairs.append_pair("grant_type", "client_credentials");
            pairs.append_pair("client_id", &self.client_id);
            pairs.append_pair("client_secret", &self.client_secret);
            if let Some(s) = &self.scope {
                pairs.append_pair("scope", s);
            }
        }
        let body = form.query().unwrap_or_default().to_string();
        let resp = client
            .post(self.token_url.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("token endpoint: {}", super::client::error_chain(&e)))?;
        let status = resp.status();
        let reply: Value = resp.json().await.unwrap_or(Value::Null);
        let Some(token) = reply["access_token"]
            .as_str()
            .filter(|_| status.is_success())
        else {
            return Err(format!(
                "token endpoint answered HTTP {}: {}",
                status.as_u16(),
                reply["error_description"]
                    .as_str()
                    .or(reply["error"].as_str())
                    .unwrap_or("no access_token")
            ));
        };
        let lifetime = reply["expires_in"].as_u64().unwrap_or(300);
        // Renew a little early so a token never expires on the way.
        let until = Instant::now() + Duration::from_secs(lifetime.saturating_sub(30).max(1));
        *guard = Some((token.to_string(), until));
        Ok(token.to_string())
    }

    /// Forget the token (the target said 401).
    pub async fn invalidate(&self) {
        *self.token.lock().await = None;
    }
}

/// The LGSP header value: base64 of the key JSON.
pub fn lgsp_token(
    access_key: &str,
    secret_key: &str,
    app_name: &str,
    partner_code: &str,
    partner_code_cus: &str,
) -> String {
    let json = json!({
        "AccessKey": access_key, "SecretKey": secret_key, "AppName": app_name,
        "PartnerCode": partner_code, "PartnerCodeCus": partner_code_cus,
    });
    base64::engine::general_purpose::STANDARD.encode(json.to_string())
}

impl Auth {
    /// Add the credential to a request.
    pub async fn apply(
        &self,
        client: &reqwest::Client,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, String> {
        Ok(match self {
            Auth::None => request,
            Auth::Header { name, value } => request.header(name.as_str(), value.as_str()),
            Auth::OAuth2(o) => {
                let token = o.token(client).await?;
                let request = match &o.token_header {
                    Some(name) => request.header(name.as_str(), token.as_str()),
                    None => request,
                };
                request.bearer_auth(token)
            }
        })
    }

    /// After a 401: drop a cached token so the next attempt fetches a new one.
    pub async fn on_unauthorized(&self) {
        if let Auth::OAuth2(o) = self {
            o.invalidate().await;
        }
    }
}

pub use crate::config::AuthConfig;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lgsp_token_is_base64_json() {
        let t = lgsp_token("ak", "sk", "lienthong", "BKHCN", "000.00.01.H22");
        let json: Value =
            serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(t).unwrap())
                .unwrap();
        assert_eq!(json["AccessKey"], "ak");
        assert_eq!(json["PartnerCodeCus"], "000.00.01.H22");
    }
}
