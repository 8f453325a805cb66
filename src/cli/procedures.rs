//! `lienthong procedures sync`: each unit's procedure catalogue checked against the
//! national portal's (`LayThuTuc`, one call per procedure, through the configured portal
//! target's login). A procedure the portal lists under the same name is confirmed, and
//! with `--write` its entry's `source` becomes `portal (LayThuTuc, <date>)`; a procedure
//! the portal names otherwise, or does not list, is flagged and left as it was (its
//! catalogue entry is the unit's to correct). The portal's processing time and main
//! result code (`MaKetQuaChinh`, what `MaGiayToKetQua` must carry) are printed beside.

use crate::config::{Config, TargetKind};
use crate::procedures::{Catalogue, Procedure};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::Path;
use std::path::PathBuf;

/// `lienthong procedures …`.
#[derive(clap::Subcommand)]
pub enum ProceduresCommand {
    /// Check each unit's procedure catalogue against the national portal's (`LayThuTuc`,
    /// through the configured portal target): a line per procedure, confirmed or flagged.
    /// Exits 1 when a procedure is named otherwise or not listed.
    Sync {
        /// The configuration file.
        #[arg(long, default_value = "config/lienthong.toml")]
        config: PathBuf,
        /// Mark each confirmed entry `source = "portal (LayThuTuc, DATE)"` in its unit's
        /// procedures.toml (comments and layout kept).
        #[arg(long)]
        write: bool,
    },
}

/// Run a `procedures` command; the process's exit code.
pub fn run(command: ProceduresCommand) -> std::process::ExitCode {
    use std::process::ExitCode;
    let ProceduresCommand::Sync { config, write } = command;
    let (cfg, _) = match super::checked::load(&config) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(sync(&cfg, write)) {
        Ok((report, false)) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Ok((report, true)) => {
            print!("{report}");
            eprintln!(
                "some procedures differ from the portal's catalogue: correct them and run again"
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// What the portal says of one procedure.
enum Verdict {
    Confirmed { days: String, result_code: String },
    NamedOtherwise { portal_name: String },
    NotListed,
}

/// Check every unit's catalogue against the portal; the report, and whether anything
/// differs. With `write`, confirmed entries get `source = "portal (LayThuTuc, DATE)"`.
pub async fn sync(config: &Config, write: bool) -> Result<(String, bool), String> {
    let (name, target) = config
        .targets
        .iter()
        .find(|(_, t)| t.kind == TargetKind::Portal)
        .ok_or("the configuration has no target of kind \"portal\" to ask")?;
    let auth = target
        .portal
        .as_ref()
        .ok_or_else(|| format!("target {name} has no portal section"))?;
    let password = auth
        .password(|v| std::env::var(v).ok())
        .ok_or_else(|| format!("{} is not set (the portal's password)", auth.password_env))?;
    let units: Vec<&str> = config.units.keys().map(String::as_str).collect();
    let catalogue = Catalogue::load(&config.mappings.dir, units.iter().copied())
        .map_err(|problems| problems.join("\n"))?;
    let portal = PortalAsk::login(&target.url, &auth.username, &password, auth).await?;
    let total: usize = units.iter().map(|u| catalogue.procedures(u).count()).sum();
    let (mut report, mut differs, mut seen) = (String::new(), false, 0);
    let today = crate::time::rfc3339_ms(crate::time::now_ms())[..10].to_string();
    for unit in &units {
        let mut confirmed = Vec::new();
        for procedure in catalogue.procedures(unit) {
            seen += 1;
            let verdict = portal.ask(procedure).await?;
            let line = match &verdict {
                Verdict::Confirmed { days, result_code } => {
                    confirmed.push(procedure.code.clone());
                    format!("confirmed; {days}, main result {result_code}")
                }
                Verdict::NamedOtherwise { portal_name } => {
                    differs = true;
                    format!("DIFFERS: the portal names it \"{portal_name}\"; correct the catalogue")
                }
                Verdict::NotListed => {
                    differs = true;
                    "NOT in the portal's catalogue; check the code".to_string()
                }
            };
            let _ = writeln!(
                report,
                "[{seen}/{total}] {unit} {} {}: {line}",
                procedure.code, procedure.name
            );
            tracing::info!(unit, code = %procedure.code, "{line}");
        }
        if write && !confirmed.is_empty() {
            let path = Catalogue::file(&config.mappings.dir, unit);
            let source = format!("portal (LayThuTuc, {today})");
            mark_confirmed(&path, &confirmed, &source)?;
            let _ = writeln!(
                report,
                "{}: {} entries marked source = \"{source}\"",
                path.display(),
                confirmed.len()
            );
        }
    }
    Ok((report, differs))
}

/// Logged in to the portal, asking it one procedure at a time.
struct PortalAsk {
    client: reqwest::Client,
    api: String,
    session: String,
    madonvi: String,
    dstcode: String,
}

impl PortalAsk {
    async fn login(
        url: &str,
        username: &str,
        password: &str,
        auth: &crate::config::PortalAuthConfig,
    ) -> Result<PortalAsk, String> {
        let base = url.trim_end_matches('/');
        let client = crate::tls_provider::http_client()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        let reply = post(
            &client,
            &format!("{base}/login"),
            &auth.dstcode,
            &json!({"username": username, "password": password}),
        )
        .await?;
        let session = reply["session"]
            .as_str()
            .ok_or_else(|| format!("the portal refused the login: {reply}"))?;
        Ok(PortalAsk {
            client,
            api: format!("{base}/api"),
            session: session.to_string(),
            madonvi: auth.madonvi.clone(),
            dstcode: auth.dstcode.clone(),
        })
    }

    async fn ask(&self, procedure: &Procedure) -> Result<Verdict, String> {
        let body = json!({"service": "LayThuTuc", "session": self.session,
            "madonvi": self.madonvi, "maTTHC": procedure.code});
        let reply = post(&self.client, &self.api, &self.dstcode, &body).await?;
        let Some(entry) = reply["result"].as_array().and_then(|r| r.first()) else {
            return Ok(Verdict::NotListed);
        };
        let portal_name = entry["TENTTHC"].as_str().unwrap_or_default().trim();
        if !same_name(portal_name, &procedure.name) {
            return Ok(Verdict::NamedOtherwise {
                portal_name: portal_name.to_string(),
            });
        }
        Ok(Verdict::Confirmed {
            days: entry["THOIGIANGIAIQUYET"]
                .as_str()
                .unwrap_or("no time limit given")
                .to_string(),
            result_code: entry["KETQUATHUCHIEN"][0]["MAKETQUA"]
                .as_str()
                .unwrap_or("not given")
                .to_string(),
        })
    }
}

/// Names compared as a reader would: case and runs of spaces aside.
fn same_name(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    norm(a) == norm(b)
}

/// POST a JSON body to the portal; its reply, or why there is none.
async fn post(
    client: &reqwest::Client,
    url: &str,
    dstcode: &str,
    body: &Value,
) -> Result<Value, String> {
    let reply = client
        .post(url)
        .header("dstcode", dstcode)
        .json(body)
        .send()
        .await
        .map_err(|e| format!("{url}: {e} (is the portal reachable from here?)"))?;
    let reply: Value = reply
        .json()
        .await
        .map_err(|e| format!("{url}: the answer is not JSON: {e}"))?;
    match crate::connector::portal::error_code(&reply) {
        Some(0) => Ok(reply),
        _ => Err(format!("{url}: the portal answered {reply}")),
    }
}

/// Set the `source` line of each entry in `codes` to `source`, keeping the file's comments
/// and layout; the result must still read as a catalogue, or nothing is written.
fn mark_confirmed(path: &Path, codes: &[String], source: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let new_line = format!("source = {}", toml::Value::String(source.to_string()));
    let mut out: Vec<String> = Vec::new();
    // (index of the entry's code line in `out`, whether it had a source line)
    let mut entry: Option<(usize, bool)> = None;
    let mut current: Option<String> = None;
    let close = |out: &mut Vec<String>, entry: Option<(usize, bool)>, current: &Option<String>| {
        if let (Some((at, false)), Some(code)) = (entry, current)
            && codes.contains(code)
        {
            out.insert(at + 1, new_line.clone());
        }
    };
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("[[procedure]]") {
            close(&mut out, entry, &current);
            entry = None;
            current = None;
        } else if let Some(code) = key_value(trimmed, "code") {
            entry = Some((out.len(), false));
            current = Some(code);
        } else if key_value(trimmed, "source").is_some()
            && let (Some(code), Some((at, _))) = (&current, entry)
            && codes.contains(code)
        {
            entry = Some((at, true));
            out.push(new_line.clone());
            continue;
        }
        out.push(line.to_string());
    }
    close(&mut out, entry, &current);
    let written = out.join("\n") + "\n";
    Catalogue::parse(&written).map_err(|p| {
        format!(
            "{}: not rewritten, it would not read back: {}",
            path.display(),
            p.join("; ")
        )
    })?;
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, &written)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The string value of `key = "value"` on a TOML line, if the line is that.
fn key_value(line: &str, key: &str) -> Option<String> {
    let rest = line.strip_prefix(key)?.trim_start().strip_prefix('=')?;
    match toml::from_str::<toml::Table>(&format!("v = {}", rest.trim())) {
        Ok(t) => t.get("v")?.as_str().map(str::to_string),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confirmed_entry_gets_its_source_and_the_rest_of_the_file_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("procedures.toml");
        let entry = |code: &str, source: &str| {
            format!(
                "[[procedure]]\ncode = \"{code}\"\nname = \"N\"\nonline_eligible = \"full\"\nonline_provided = \"full\"\napproved_list = true\nintegrated_ministry = true\nintegrated_portal = true\nfee = false\n{source}"
            )
        };
        let text = format!(
            "# kept by the unit\n\n{}\n{}\n# last\n{}",
            entry("1.000001", "source = \"assumed\"\n"),
            entry("1.000002", "source = \"assumed\"\n"),
            entry("1.000003", "")
        );
        std::fs::write(&path, &text).unwrap();
        mark_confirmed(
            &path,
            &["1.000001".into(), "1.000003".into()],
            "portal (LayThuTuc, 2026-12-07)",
        )
        .unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        let list = Catalogue::parse(&after).unwrap();
        let source = |c: &str| list[c].source.clone().unwrap_or_default();
        assert_eq!(source("1.000001"), "portal (LayThuTuc, 2026-12-07)");
        assert_eq!(source("1.000002"), "assumed");
        assert_eq!(source("1.000003"), "portal (LayThuTuc, 2026-12-07)");
        assert!(
            after.starts_with("# kept by the unit\n") && after.contains("# last"),
            "{after}"
        );
        assert!(same_name("Đăng ký  sáng chế", "đăng ký sáng chế"));
    }
}
