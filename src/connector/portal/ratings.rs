//! Citizens' ratings of the units' dossiers, asked of the portal a day at a time
//! (`LayDanhSachDanhGia` with `madonvi`, `tungay` and `denngay`, `yyyyMMdd`, so that an
//! answer stays well under the bus's reply limit): each rated dossier's `MaHoSo`, its
//! `MucDoHaiLong` (1 very satisfied, 2 satisfied, 3 not satisfied) and `NgayDanhGia`.
//! The service's name and fields follow the portal's naming but are **assumed** (the
//! interface is not public; public one-stop code syncs ratings as `DongBoDanhGia`), as the
//! bundled mock serves them. Decision 766 scores satisfaction from these ratings.

use super::{PortalConnector, SESSION_EXPIRED, error_code};
use crate::connector::RawOutcome;
use serde_json::{Value, json};

/// Most ratings taken from one answer (a unit's month of rated dossiers is far fewer).
const MOST_RATINGS: usize = 200_000;

/// One rating as the portal gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rating {
    pub dossier: String,
    /// `MucDoHaiLong`: 1 very satisfied, 2 satisfied, 3 not satisfied.
    pub level: u8,
}

impl PortalConnector {
    /// The ratings of `unit`'s dossiers given on `day` (`yyyyMMdd`); a rating with no
    /// dossier or a level outside 1–3 is skipped (and logged once per answer).
    pub async fn ratings(&self, unit: &str, day: &str) -> Result<Vec<Rating>, String> {
        let madonvi = self.creds.unit_code(unit).to_string();
        for _ in 0..2 {
            let session = self.session().await.map_err(|o| describe(&o))?;
            let request = json!({"service": "LayDanhSachDanhGia", "session": session,
                "madonvi": madonvi, "tungay": day, "denngay": day});
            let (_, text) = self
                .post(&self.api_url, &request, None)
                .await
                .map_err(|o| describe(&o))?;
            let reply: Value = serde_json::from_str(&text)
                .map_err(|e| format!("the portal's answer is not JSON: {e}"))?;
            match error_code(&reply) {
                Some(0) => return Ok(read(&reply, unit)),
                Some(SESSION_EXPIRED) => self.forget_session(&session).await,
                _ => return Err(format!("the portal refused LayDanhSachDanhGia: {text}")),
            }
        }
        Err("the portal's session expired twice in a row".into())
    }
}

fn read(reply: &Value, unit: &str) -> Vec<Rating> {
    let items = reply["result"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut skipped = 0;
    let mut out = Vec::new();
    for item in items.iter().take(MOST_RATINGS) {
        let dossier = item["MaHoSo"]
            .as_str()
            .filter(|d| !d.is_empty() && d.len() <= 128);
        let level = match &item["MucDoHaiLong"] {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .filter(|l| (1..=3).contains(l));
        match (dossier, level) {
            (Some(d), Some(l)) => out.push(Rating {
                dossier: d.to_string(),
                level: l as u8,
            }),
            _ => skipped += 1,
        }
    }
    if skipped > 0 {
        tracing::warn!(
            unit,
            skipped,
            "ratings without a dossier or a level 1-3 were skipped"
        );
    }
    out
}

fn describe(outcome: &RawOutcome) -> String {
    match outcome {
        RawOutcome::Response { status, body, .. } => format!("HTTP {status}: {body}"),
        RawOutcome::Transport(e) => e.clone(),
        other => format!("{other:?}"),
    }
}
