//! The one place connectors are built: a target's config section → its connector, and
//! an endpoint's `auth` section → its credential (also used by the lookups).

use super::auth::{Auth, OAuth2, lgsp_token};
use super::{Connector, HttpConnector, PaymentConnector, PortalConnector, PortalCredentials};
use crate::config::{AuthConfig, TargetConfig, TargetKind};
use crate::outbox::Notes;
use std::sync::Arc;

/// The connector a target's `kind` names, from its config section.
pub fn connector(cfg: &TargetConfig, notes: Arc<dyn Notes>) -> Result<Arc<dyn Connector>, String> {
    Ok(match cfg.kind {
        TargetKind::Http => Arc::new(HttpConnector::with_auth(
            &cfg.url,
            cfg.timeout,
            auth(cfg.auth.as_ref())?,
            cfg.tls.as_ref(),
        )?),
        TargetKind::Portal | TargetKind::Ministry => Arc::new(portal(cfg, notes)?),
        TargetKind::FileDrop => Arc::new(super::file_drop::FileDropConnector::new(
            &cfg.url,
            cfg.file_drop.clone().unwrap_or_default(),
        )?),
        TargetKind::Payment => {
            let auth = cfg
                .payment
                .as_ref()
                .ok_or("kind = \"payment\" needs a payment section")?;
            Arc::new(PaymentConnector::new(
                &cfg.url,
                cfg.timeout,
                auth.credentials(|v| std::env::var(v).ok())?,
                notes,
                cfg.tls.as_ref(),
            )?)
        }
    })
}

/// The connector of a `kind = "portal"` or `"ministry"` target (its own session: the
/// ratings pull builds one beside the delivering one).
pub fn portal(cfg: &TargetConfig, notes: Arc<dyn Notes>) -> Result<PortalConnector, String> {
    let auth = cfg
        .portal
        .as_ref()
        .ok_or("kind = \"portal\" and \"ministry\" need a portal section")?;
    let password = auth
        .password(|v| std::env::var(v).ok())
        .ok_or_else(|| format!("{} is not set", auth.password_env))?;
    let platform = match cfg.kind {
        TargetKind::Ministry => "ministry",
        _ => "portal",
    };
    Ok(PortalConnector::new(
        &cfg.url,
        cfg.timeout,
        PortalCredentials {
            username: auth.username.clone(),
            password,
            madonvi: auth.madonvi.clone(),
            unit_codes: auth.unit_codes.clone(),
            dstcode: auth.dstcode.clone(),
        },
        cfg.tls.as_ref(),
        super::portal::rows::KeptRows::new(Arc::clone(&notes), platform),
    )?
    .named(match cfg.kind {
        TargetKind::Ministry => "ministry TTHC system",
        _ => "portal",
    }))
}

/// The credential an endpoint's config asks for (`http` targets, lookups).
pub fn auth(config: Option<&AuthConfig>) -> Result<Auth, String> {
    let Some(a) = config else {
        return Ok(Auth::None);
    };
    let secret = a
        .secret(|v| std::env::var(v).ok())
        .ok_or_else(|| format!("{} is not set", a.secret_source().0))?;
    Ok(match a {
        AuthConfig::ApiKey { header, .. } => Auth::Header {
            name: header.clone(),
            value: secret,
        },
        AuthConfig::Lgsp {
            header,
            access_key,
            app_name,
            partner_code,
            partner_code_cus,
            ..
        } => Auth::Header {
            name: header.clone(),
            value: lgsp_token(
                access_key,
                &secret,
                app_name,
                partner_code,
                partner_code_cus,
            ),
        },
        AuthConfig::Oauth2 {
            token_url,
            client_id,
            scope,
            token_header,
            ..
        } => Auth::OAuth2(Box::new(
            OAuth2::new(
                reqwest::Url::parse(token_url).map_err(|e| format!("{token_url}: {e}"))?,
                client_id.clone(),
                secret,
                scope.clone(),
            )
            .with_token_header(token_header.clone()),
        )),
    })
}
