//! Who looked whom up, counted (shared by the lookups, which count, and the admin API and
//! dashboard, which read): lookups per unit, kind and officer per day, refusals by
//! reason, and the documented exceptions — what the IT Center watches on the dashboard,
//! `GET /api/v1/lookups` and `/metrics` (`lienthong_lookups_total`, whose alert rule fires
//! on a unit asking far more than usual). Running totals, never a walk of the audit trail
//! (which stays the lasting record of each lookup): kept since the bus started, for the
//! last [`DAYS_KEPT`] days, at most [`OFFICERS_PER_UNIT_DAY`] officers per unit and day
//! (an officer's name comes from the unit, so it is bounded before it is kept).

use crate::config::LookupException;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Days of figures kept.
pub const DAYS_KEPT: usize = 31;
/// Officers counted by name per unit and day; the others are counted under [`OTHERS`].
pub const OFFICERS_PER_UNIT_DAY: usize = 500;
/// Where lookups of officers past [`OFFICERS_PER_UNIT_DAY`], and of none named, count.
pub const OTHERS: &str = "(khác)";

/// One unit's lookups of one day.
#[derive(Clone, Debug, Default, Serialize)]
pub struct UnitDay {
    /// Lookups the platform was asked, by kind (citizen, residence, business).
    pub asked: BTreeMap<String, u64>,
    /// Lookups refused before any platform was asked, by code (purpose_missing,
    /// dossier_unknown, unit_daily_quota_exceeded, …).
    pub refused: BTreeMap<String, u64>,
    /// Lookups per officer (asked and refused).
    pub officers: BTreeMap<String, u64>,
    /// Lookups that went through a documented exception, by its name.
    pub exceptions: BTreeMap<String, u64>,
}

/// How one lookup ended, as counted.
pub struct Counted<'a> {
    pub unit: &'a str,
    pub kind: &'a str,
    pub officer: Option<&'a str>,
    /// `None`: the platform was asked; else the refusal's code.
    pub refused: Option<&'a str>,
    pub exception: Option<&'a str>,
}

#[derive(Default)]
struct Totals {
    /// Day (Asia/Ho_Chi_Minh, days since 1970-01-01) → unit → figures.
    days: BTreeMap<u32, BTreeMap<String, UnitDay>>,
    /// Since start, for `/metrics`: (unit, kind, outcome) → lookups.
    since_start: BTreeMap<(String, String, String), u64>,
}

pub struct LookupUsage {
    totals: Mutex<Totals>,
    exceptions: Vec<LookupException>,
}

impl LookupUsage {
    pub fn new(exceptions: Vec<LookupException>) -> LookupUsage {
        LookupUsage {
            totals: Mutex::new(Totals::default()),
            exceptions,
        }
    }

    /// The documented exceptions to the purpose check.
    pub fn exceptions(&self) -> &[LookupException] {
        &self.exceptions
    }

    pub fn count(&self, c: Counted<'_>, now_ms: u64) {
        let day = crate::time::vn_day(now_ms);
        let mut totals = self.totals.lock().unwrap();
        let outcome = match c.refused {
            None => "asked",
            Some(code) => code,
        };
        *totals
            .since_start
            .entry((c.unit.to_string(), c.kind.to_string(), outcome.to_string()))
            .or_default() += 1;
        let units = totals.days.entry(day).or_default();
        let figures = units.entry(c.unit.to_string()).or_default();
        match c.refused {
            None => *figures.asked.entry(c.kind.to_string()).or_default() += 1,
            Some(code) => *figures.refused.entry(code.to_string()).or_default() += 1,
        }
        let officer = c
            .officer
            .filter(|o| {
                figures.officers.contains_key(*o) || figures.officers.len() < OFFICERS_PER_UNIT_DAY
            })
            .unwrap_or(OTHERS);
        *figures.officers.entry(officer.to_string()).or_default() += 1;
        if let Some(e) = c.exception {
            *figures.exceptions.entry(e.to_string()).or_default() += 1;
        }
        while totals.days.len() > DAYS_KEPT {
            totals.days.pop_first();
        }
    }

    /// Every unit's figures of `day`.
    pub fn day(&self, day: u32) -> BTreeMap<String, UnitDay> {
        self.totals
            .lock()
            .unwrap()
            .days
            .get(&day)
            .cloned()
            .unwrap_or_default()
    }

    /// Lookups since start per (unit, kind, outcome): `asked` or the refusal's code.
    pub fn since_start(&self) -> Vec<((String, String, String), u64)> {
        self.totals
            .lock()
            .unwrap()
            .since_start
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted<'a>(officer: &'a str, refused: Option<&'a str>) -> Counted<'a> {
        Counted {
            unit: "naf",
            kind: "citizen",
            officer: Some(officer),
            refused,
            exception: None,
        }
    }

    #[test]
    fn lookups_are_counted_per_unit_officer_and_reason_and_officers_are_bounded() {
        let usage = LookupUsage::new(Vec::new());
        let day_ms = 20_000 * 86_400_000;
        usage.count(counted("cb1", None), day_ms);
        usage.count(counted("cb1", Some("dossier_unknown")), day_ms);
        for i in 0..OFFICERS_PER_UNIT_DAY + 10 {
            usage.count(counted(&format!("x{i}"), None), day_ms);
        }
        let today = usage.day(crate::time::vn_day(day_ms));
        let naf = &today["naf"];
        assert_eq!(naf.asked["citizen"], OFFICERS_PER_UNIT_DAY as u64 + 11);
        assert_eq!(naf.refused["dossier_unknown"], 1);
        assert_eq!(naf.officers["cb1"], 2);
        assert_eq!(naf.officers.len(), OFFICERS_PER_UNIT_DAY + 1);
        assert_eq!(naf.officers[OTHERS], 11);
        // Old days go.
        for d in 0..40u64 {
            usage.count(counted("cb1", None), day_ms + d * 86_400_000);
        }
        assert!(usage.day(crate::time::vn_day(day_ms)).is_empty());
    }
}
