//! The procedure catalogue: each unit's administrative procedures (TTHC) with their
//! national code (`MaTTHC`), the level of online service each qualifies for and is given
//! at, whether it is on the ministry's approved integration list (QĐ 2213/QĐ-BKHCN) and
//! integrated on the ministry's TTHC information system and the national portal, and
//! whether it takes a fee. One file per unit, `mappings/<unit>/procedures.toml`, kept by
//! the unit's IT team beside its mappings.
//!
//! It is read at start (and by `lienthong check`), every problem of every file reported
//! at once. It gives the action plan's targets 1a and 1b (counted over the catalogue, not
//! the traffic) and tells the KPI counting whether a dossier's `MaTTHC` is one of its
//! unit's procedures: by `[procedures] unknown`, an unknown code is counted and shown
//! (`warn`, the default) or makes the dossier's portal delivery a dead letter naming the
//! field (`reject`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub use crate::config::{ProceduresConfig, UnknownProcedure};

/// The level of online public service of a procedure.
#[derive(
    Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum OnlineLevel {
    None,
    /// Part of the process online (dịch vụ công trực tuyến một phần).
    Partial,
    /// The whole process online (dịch vụ công trực tuyến toàn trình).
    Full,
}

/// One procedure of a unit's catalogue.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Procedure {
    /// The national code (`MaTTHC`), as the portal's catalogue lists it (`1.008433`).
    pub code: String,
    pub name: String,
    /// The level the procedure qualifies for on the national portal.
    pub online_eligible: OnlineLevel,
    /// The level the unit provides today.
    pub online_provided: OnlineLevel,
    /// On the approved list of services to integrate (QĐ 2213/QĐ-BKHCN).
    pub approved_list: bool,
    /// Integrated on the ministry's TTHC information system.
    pub integrated_ministry: bool,
    /// Integrated on the national public service portal.
    pub integrated_portal: bool,
    /// Takes a fee or charge.
    pub fee: bool,
    /// Where the entry comes from: a decision or page, or "assumed" when it is not
    /// confirmed by a public source.
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    #[serde(default)]
    procedure: Vec<Procedure>,
}

/// Counts over a catalogue for targets 1a and 1b.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServiceCounts {
    pub procedures: u64,
    /// Procedures that qualify for full-process online service (1a's denominator)…
    pub full_eligible: u64,
    /// …and of those, the ones provided full-process online (1a's numerator).
    pub full_provided: u64,
    /// Procedures on the approved integration list (1b's denominator)…
    pub approved: u64,
    /// …and of those, the ones integrated on both the ministry's system and the portal.
    pub approved_integrated: u64,
    /// Entries not yet checked against the portal's catalogue (`source = "assumed"`):
    /// targets 1a and 1b rest on them as written.
    pub assumed: u64,
}

/// Every unit's catalogue.
#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    by_unit: BTreeMap<String, BTreeMap<String, Procedure>>,
}

impl Catalogue {
    /// The file of a unit's catalogue.
    pub fn file(mappings_dir: &Path, unit: &str) -> std::path::PathBuf {
        mappings_dir.join(unit).join("procedures.toml")
    }

    /// Read the catalogue of each of `units` (a unit without a file has none: its
    /// dossiers' codes are not checked). Every problem of every file, at once.
    pub fn load<'a>(
        mappings_dir: &Path,
        units: impl IntoIterator<Item = &'a str>,
    ) -> Result<Catalogue, Vec<String>> {
        let mut by_unit = BTreeMap::new();
        let mut problems = Vec::new();
        for unit in units {
            let path = Self::file(mappings_dir, unit);
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    problems.push(format!("{}: cannot read: {e}", path.display()));
                    continue;
                }
            };
            match Self::parse(&text) {
                Ok(list) => {
                    by_unit.insert(unit.to_string(), list);
                }
                Err(found) => problems.extend(
                    found
                        .into_iter()
                        .map(|p| format!("{}: {p}", path.display())),
                ),
            }
        }
        if problems.is_empty() {
            Ok(Catalogue { by_unit })
        } else {
            Err(problems)
        }
    }

    /// One unit's catalogue from its text: every problem, each naming the entry.
    pub fn parse(text: &str) -> Result<BTreeMap<String, Procedure>, Vec<String>> {
        let file: CatalogueFile = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        let mut problems = Vec::new();
        let mut out = BTreeMap::new();
        for (i, p) in file.procedure.into_iter().enumerate() {
            let at = format!("procedure[{i}] ({})", p.code);
            problems.extend(entry_problems(&p).into_iter().map(|e| format!("{at}: {e}")));
            if out.contains_key(&p.code) {
                problems.push(format!("{at}: code listed twice"));
            }
            out.insert(p.code.clone(), p);
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }

    /// Whether `code` is one of `unit`'s procedures; None when the unit has no catalogue.
    pub fn knows(&self, unit: &str, code: &str) -> Option<bool> {
        self.by_unit.get(unit).map(|list| list.contains_key(code))
    }

    /// A portal-bound body as the mapping wrote it: refused, naming the field, when a
    /// row's `MaTTHC` is not one of `unit`'s procedures (`[procedures] unknown = "reject"`).
    pub fn check_portal_body(&self, unit: &str, body: &[u8]) -> Result<(), String> {
        let Ok(doc) = serde_json::from_slice::<serde_json::Value>(body) else {
            return Ok(());
        };
        let rows = match &doc["data"] {
            serde_json::Value::Array(rows) => rows.iter().collect(),
            serde_json::Value::Null => vec![&doc],
            other => vec![other],
        };
        for row in rows {
            if let Some(code) = row["MaTTHC"].as_str()
                && self.knows(unit, code.trim()) == Some(false)
            {
                return Err(format!(
                    "field MaTTHC: `{code}` is not one of {unit}'s procedures \
                     (mappings/{unit}/procedures.toml): add it to the catalogue or correct \
                     the code the unit sends"
                ));
            }
        }
        Ok(())
    }

    pub fn procedures(&self, unit: &str) -> impl Iterator<Item = &Procedure> {
        self.by_unit.get(unit).into_iter().flat_map(|l| l.values())
    }

    pub fn units(&self) -> impl Iterator<Item = &str> {
        self.by_unit.keys().map(String::as_str)
    }

    /// Targets 1a and 1b's counts for one unit (None: every unit).
    pub fn counts(&self, unit: Option<&str>) -> ServiceCounts {
        let mut c = ServiceCounts::default();
        let lists = self
            .by_unit
            .iter()
            .filter(|(u, _)| unit.is_none_or(|want| want == u.as_str()));
        for p in lists.flat_map(|(_, l)| l.values()) {
            c.procedures += 1;
            c.assumed += u64::from(p.source.as_deref() == Some("assumed"));
            if p.online_eligible == OnlineLevel::Full {
                c.full_eligible += 1;
                c.full_provided += u64::from(p.online_provided == OnlineLevel::Full);
            }
            if p.approved_list {
                c.approved += 1;
                c.approved_integrated += u64::from(p.integrated_ministry && p.integrated_portal);
            }
        }
        c
    }
}

/// What is wrong with one entry.
fn entry_problems(p: &Procedure) -> Vec<String> {
    let mut problems = Vec::new();
    let well_formed = p
        .code
        .split_once('.')
        .is_some_and(|(a, b)| a.len() == 1 && b.len() == 6)
        && p.code.chars().all(|c| c.is_ascii_digit() || c == '.');
    if !well_formed {
        problems.push(format!(
            "code `{}` is not a national procedure code (like 1.008433)",
            p.code
        ));
    }
    if p.name.trim().is_empty() {
        problems.push("name is empty".into());
    }
    if p.online_provided > p.online_eligible {
        problems.push(format!(
            "online_provided ({:?}) is above online_eligible ({:?})",
            p.online_provided, p.online_eligible
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = r#"
[[procedure]]
code = "1.008433"
name = "Đăng ký đề tài nghiên cứu cơ bản"
online_eligible = "full"
online_provided = "full"
approved_list = true
integrated_ministry = true
integrated_portal = true
fee = false

[[procedure]]
code = "1.008434"
name = "Đề nghị điều chỉnh đề tài"
online_eligible = "full"
online_provided = "partial"
approved_list = true
integrated_ministry = true
integrated_portal = false
fee = false
source = "assumed"
"#;

    #[test]
    fn counts_follow_the_plan_definitions() {
        let list = Catalogue::parse(TWO).unwrap();
        let c = Catalogue {
            by_unit: BTreeMap::from([("nafosted".to_string(), list)]),
        };
        assert_eq!(
            c.counts(None),
            ServiceCounts {
                procedures: 2,
                full_eligible: 2,
                full_provided: 1,
                approved: 2,
                approved_integrated: 1,
                assumed: 1,
            }
        );
        assert_eq!(c.knows("nafosted", "1.008433"), Some(true));
        assert_eq!(c.knows("nafosted", "9.999999"), Some(false));
        assert_eq!(c.knows("stameq", "1.008433"), None);
    }

    #[test]
    fn every_problem_of_a_file_is_named() {
        let bad = r#"
[[procedure]]
code = "HS-1"
name = " "
online_eligible = "partial"
online_provided = "full"
approved_list = false
integrated_ministry = false
integrated_portal = false
fee = true

[[procedure]]
code = "HS-1"
name = "again"
online_eligible = "none"
online_provided = "none"
approved_list = false
integrated_ministry = false
integrated_portal = false
fee = true
"#;
        let problems = Catalogue::parse(bad).unwrap_err();
        let all = problems.join("\n");
        for want in [
            "not a national procedure code",
            "name is empty",
            "above online_eligible",
            "listed twice",
        ] {
            assert!(all.contains(want), "missing {want}: {all}");
        }
        let unknown_key =
            Catalogue::parse("[[procedure]]\ncode = \"1.000001\"\nnmae = \"x\"\n").unwrap_err();
        assert!(unknown_key[0].contains("nmae"), "{unknown_key:?}");
    }
}
