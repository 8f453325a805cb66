//! Credentials reloaded without downtime: on SIGHUP the configuration file is read again
//! and, if it is valid, the units' keys, the admin tokens and the units' signing secrets
//! it names (their variables as the process has them, their digests as the file now says)
//! replace the ones in use, between two requests. A rotation is thus: add the new key
//! beside the old (`key_sha256 = ["<new>", "<old>"]`, or `KEY=new,old` in the variable
//! for the next start), reload, let the unit switch, remove the old, reload again.
//!
//! A file that does not validate changes nothing: the reason goes to the log and the
//! credentials in use stay. Only credentials are taken from the file: anything else that
//! changed (routes, targets, units added) needs a restart, and the log says so.

use crate::admin::AdminState;
use crate::ingress::signature::Signatures;
use crate::web::UnitKeys;
use std::path::PathBuf;
use std::sync::Arc;

/// What a reload replaces.
pub struct Credentials {
    pub source: PathBuf,
    pub unit_keys: Arc<UnitKeys>,
    pub admin: Arc<AdminState>,
    pub signatures: Option<Arc<Signatures>>,
}

impl Credentials {
    /// Read the file again and swap the credentials; what was loaded, or every problem.
    pub fn reload(&self) -> Result<String, String> {
        let config = crate::config::load_file(&self.source).map_err(|e| e.to_string())?;
        let env = |v: &str| std::env::var(v).ok();
        let keys = crate::config::validate(&config, env).map_err(|problems| {
            problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        self.unit_keys.replace(keys);
        let tokens = self
            .admin
            .tokens
            .replace(super::parts::admin_tokens(&config, env));
        // A dashboard session lives no longer than the token it was opened with.
        let ended = self
            .admin
            .sessions
            .end_unless(|digest| self.admin.tokens.holds(digest));
        if ended > 0 {
            tracing::warn!(
                ended,
                "dashboard sessions of rotated-out admin tokens ended"
            );
        }
        if let Some(s) = &self.signatures {
            s.replace(super::parts::signing_secrets(&config, env));
        }
        let keys: Vec<String> = self
            .unit_keys
            .counts()
            .into_iter()
            .map(|(u, n)| format!("{u}: {n}"))
            .collect();
        Ok(format!(
            "unit keys ({}), {tokens} admin token(s)",
            keys.join(", ")
        ))
    }
}

/// Reload on every SIGHUP until the task is dropped.
pub async fn reload_on_hangup(
    credentials: Credentials,
    mut hup: Option<crate::mappings::HangupSignal>,
) {
    #[cfg(unix)]
    loop {
        match hup.as_mut() {
            Some(s) => {
                if s.recv().await.is_none() {
                    return;
                }
            }
            None => return,
        }
        match credentials.reload() {
            Ok(summary) => tracing::info!(
                file = %credentials.source.display(),
                %summary,
                "credentials reloaded (other changes to the file need a restart)"
            ),
            Err(problems) => tracing::error!(
                file = %credentials.source.display(),
                %problems,
                "credentials NOT reloaded: the file does not validate; the ones in use stay"
            ),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (credentials, hup);
    }
}
