//! The purpose check of a citizen or residence lookup (Decree 13/2023/NĐ-CP: personal
//! data only for a stated purpose). The bus knows every dossier a unit has sent, so it can
//! hold each lookup to one: the lookup names a purpose and a dossier of the asking unit,
//! open or closed at most `[lookups.purpose] closed_window` ago, and the dossier names the
//! person asked about. Each failed condition has its own code; the caller audits the
//! refusal like any lookup. A unit's documented exceptions (`[[lookups.purpose.exceptions]]`)
//! waive the dossier, never the purpose.

use super::{Failure, LookupKind};
use crate::config::{LookupException, PurposeConfig};
use crate::outbox::Outbox;
use crate::outbox::tally::people;
use axum::http::StatusCode;
use serde_json::Value;

pub struct PurposeCheck {
    /// Where the unit's dossiers are (None: a node without an outbox refuses them all).
    outbox: Option<Outbox>,
    closed_window_days: u32,
    exceptions: Vec<LookupException>,
}

/// A lookup that passed: under which exception, if one.
pub struct Allowed<'a> {
    pub exception: Option<&'a str>,
}

fn refused(code: &'static str, message: impl Into<String>) -> Failure {
    Failure::new(StatusCode::FORBIDDEN, code, message)
}

/// The person a lookup request asks about: its `SoDinhDanh` or `SoCMND`, as the platform
/// receives it (under the operation's element).
pub fn person_asked(request: &Value, operation: &str) -> Option<String> {
    let body = request.get(operation)?;
    ["SoDinhDanh", "SoCMND"]
        .iter()
        .filter_map(|field| body.get(field).and_then(Value::as_str))
        .find_map(people::normalize)
}

impl PurposeCheck {
    pub fn new(cfg: &PurposeConfig, outbox: Option<Outbox>) -> PurposeCheck {
        PurposeCheck {
            outbox,
            closed_window_days: (cfg.closed_window.as_secs() / 86_400) as u32,
            exceptions: cfg.exceptions.clone(),
        }
    }

    /// Whether `unit` may ask this `kind` of lookup about `person` for `dossier` and
    /// `purpose`; business lookups (public register data) need neither.
    pub fn check(
        &self,
        unit: &str,
        kind: LookupKind,
        dossier: Option<&str>,
        purpose: Option<&str>,
        person: Option<&str>,
        now_ms: u64,
    ) -> Result<Allowed<'_>, Failure> {
        if kind == LookupKind::Business {
            return Ok(Allowed { exception: None });
        }
        if purpose.is_none_or(|p| p.trim().is_empty()) {
            return Err(refused(
                "purpose_missing",
                "a citizen lookup states its purpose: add ?purpose=… (e.g. verify-applicant)",
            ));
        }
        if let Some(e) = self
            .exceptions
            .iter()
            .find(|e| e.unit == unit && e.lookups.iter().any(|k| k == kind.name()))
        {
            return Ok(Allowed {
                exception: Some(&e.name),
            });
        }
        let Some(dossier) = dossier.filter(|d| !d.trim().is_empty()) else {
            return Err(refused(
                "dossier_missing",
                "a citizen lookup is for a dossier of this unit: add ?dossier=<the dossier's code>",
            ));
        };
        let record = match &self.outbox {
            Some(outbox) => outbox.dossier_record(unit, dossier).map_err(|e| {
                tracing::error!(%unit, error = %e, "cannot read a dossier's record for a lookup");
                Failure::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "dossier_unreadable",
                    "the dossier cannot be read now; try again shortly",
                )
            })?,
            None => None,
        };
        let Some(record) = record else {
            return Err(refused(
                "dossier_unknown",
                "this unit has sent the bus no dossier with this code; send the dossier first, then look its people up",
            ));
        };
        let today = crate::outbox::tally::day_of(now_ms);
        if !record.open_within(today, self.closed_window_days) {
            return Err(refused(
                "dossier_closed",
                format!(
                    "the dossier closed more than {} days ago: its people are no longer looked up for it",
                    self.closed_window_days
                ),
            ));
        }
        let Some(person) = person else {
            return Err(refused(
                "person_missing",
                "the lookup names nobody by số định danh or CMND",
            ));
        };
        if !record.names(person) {
            return Err(refused(
                "person_not_in_dossier",
                "the dossier does not name this person (applicant, representative or a person it lists)",
            ));
        }
        Ok(Allowed { exception: None })
    }
}
