//! `lienthong audit lookups --period 2026-12`: the population and business lookups of a
//! period counted per unit and officer, from the audit trail (the lasting record of every
//! lookup; the dashboard's figures cover only the last days since the bus started). The
//! log is read once, line by line, offline, with a progress line every 100,000 records;
//! the answer is CSV, one row per unit and officer.

use crate::admin::period::Period;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

/// One officer's lookups in the period.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OfficerLookups {
    /// Answered by the platform (found or not), by kind: citizen, residence, business.
    pub asked: BTreeMap<String, u64>,
    /// Refused before any platform was asked (purpose, dossier, quota).
    pub refused: u64,
    /// Asked and failed at the platform (timeouts, errors).
    pub failed: u64,
}

/// The lookups of `period` in the audit log at `path`, per (unit, officer); `progress`
/// hears the records read so far.
pub fn count(
    path: &Path,
    period: &Period,
    now_ms: u64,
    mut progress: impl FnMut(u64),
) -> Result<BTreeMap<(String, String), OfficerLookups>, String> {
    let days = period.days(now_ms);
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out: BTreeMap<(String, String), OfficerLookups> = BTreeMap::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        if (n + 1) % 100_000 == 0 {
            progress(n as u64 + 1);
        }
        let Ok(record) = serde_json::from_str::<crate::audit::Record>(&line) else {
            continue;
        };
        if record.event != "personal_data_lookup"
            || !days.contains(&crate::outbox::tally::day_of(record.at_ms))
        {
            continue;
        }
        let unit = record.actor.strip_prefix("unit:").unwrap_or(&record.actor);
        let d = &record.details;
        let officer = d["officer"].as_str().unwrap_or("(không nêu)");
        let entry = out
            .entry((unit.to_string(), officer.to_string()))
            .or_default();
        match (d["status"].as_u64(), d["outcome"].as_str()) {
            (Some(200), _) => {
                let kind = d["kind"].as_str().unwrap_or("?").to_string();
                *entry.asked.entry(kind).or_default() += 1;
            }
            (Some(403 | 429), _) => entry.refused += 1,
            _ => entry.failed += 1,
        }
    }
    Ok(out)
}

/// The CSV of [`count`]'s figures.
pub fn csv(period: &Period, counted: &BTreeMap<(String, String), OfficerLookups>) -> String {
    let mut out = String::from("period,unit,officer,citizen,residence,business,refused,failed\n");
    let field = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    for ((unit, officer), o) in counted {
        let kind = |k: &str| o.asked.get(k).copied().unwrap_or(0);
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            period.id(),
            field(unit),
            field(officer),
            kind("citizen"),
            kind("residence"),
            kind("business"),
            o.refused,
            o.failed
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_months_lookups_are_counted_per_unit_and_officer_from_the_audit_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = crate::audit::AuditLog::open(&path).unwrap();
        let lookup = |kind: &str, officer: &str, status: u64| {
            json!({"kind": kind, "officer": officer, "dossier": "HS-1", "purpose": "x",
                "outcome": if status == 200 { "found" } else { "purpose_missing" }, "status": status})
        };
        let audit = |unit: &str, details| {
            log.append("personal_data_lookup", &format!("unit:{unit}"), details)
                .unwrap()
        };
        audit("nafosted", lookup("citizen", "Trần B", 200));
        audit("nafosted", lookup("citizen", "Trần B", 200));
        audit("nafosted", lookup("business", "Trần B", 200));
        audit("nafosted", lookup("citizen", "Trần B", 403));
        audit("nafosted", lookup("residence", "Lê, C", 504));
        audit("ipo", lookup("citizen", "Phạm D", 200));
        log.append("dead_letter_dropped", "operator:a", json!({}))
            .unwrap();
        let now = crate::time::now_ms();
        let (y, m, _) = crate::admin::period::civil_from_days(crate::outbox::tally::day_of(now));
        let this_month = Period::parse(&format!("{y}-{m:02}")).unwrap();
        let counted = count(&path, &this_month, now, |_| {}).unwrap();
        let trb = &counted[&("nafosted".to_string(), "Trần B".to_string())];
        assert_eq!(trb.asked.get("citizen"), Some(&2));
        assert_eq!(trb.asked.get("business"), Some(&1));
        assert_eq!((trb.refused, trb.failed), (1, 0));
        let text = csv(&this_month, &counted);
        assert!(text.contains(",nafosted,\"Lê, C\",0,0,0,0,1\n"), "{text}");
        assert!(text.contains(",ipo,Phạm D,1,0,0,0,0\n"), "{text}");
        assert_eq!(text.lines().count(), 4, "{text}");
        // Another month holds none of them.
        let other = Period::parse("2020-01").unwrap();
        assert!(count(&path, &other, now, |_| {}).unwrap().is_empty());
    }
}
