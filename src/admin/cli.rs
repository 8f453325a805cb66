//! `lienthong status` and `lienthong dlq list|show|replay|drop`: the admin API from a
//! terminal. The bus address comes from `--url` or the config's `server.listen`; the token
//! from `--token`, `LIENTHONG_ADMIN_TOKEN`, or the config's admin tokens (an operator's for
//! changes).

use crate::config::{AdminRole, Config};
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;

/// Where the admin API is and how to authenticate.
#[derive(Clone, Debug, clap::Args)]
pub struct AdminTarget {
    /// The configuration file (the bus's address and a token, when not given here).
    #[arg(long, global = true, default_value = "config/lienthong.toml")]
    pub config: PathBuf,
    /// The bus (default: http://<server.listen>).
    #[arg(long, global = true)]
    pub url: Option<String>,
    /// Admin token (default: $LIENTHONG_ADMIN_TOKEN, else the config's).
    #[arg(
        long,
        global = true,
        env = "LIENTHONG_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

#[derive(Clone, Debug, clap::Subcommand)]
pub enum DlqCommand {
    /// Dead letters, oldest first.
    List {
        #[arg(long)]
        target: Option<String>,
        #[arg(long)]
        unit: Option<String>,
        /// Text the reason contains.
        #[arg(long)]
        reason: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Start after this dead letter (the `next` a previous page printed).
        #[arg(long)]
        after: Option<String>,
    },
    /// One dead letter with its errors and the event as sent.
    Show { target: String, id: String },
    /// Send dead letters again: one, or every one matching --target/--unit/--reason with --all.
    Replay {
        target: Option<String>,
        id: Option<String>,
        #[arg(long)]
        all: bool,
        /// With --all: only this target's (the same as naming it first).
        #[arg(long = "target", conflicts_with = "target")]
        target_flag: Option<String>,
        #[arg(long = "unit")]
        unit: Option<String>,
        #[arg(long)]
        reason: Option<String>,
        /// With --all: dead letters replayed per request (progress is shown after each).
        #[arg(long, default_value_t = 500)]
        page: usize,
    },
    /// Give up on a dead letter (the reason is recorded).
    Drop {
        target: String,
        id: String,
        #[arg(long)]
        reason: String,
    },
}

pub use super::cli_report::{ReportArgs, report};

pub(super) struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

pub(super) fn connect(t: &AdminTarget, need_operator: bool) -> Result<Client, String> {
    let cfg: Option<Config> = crate::config::load_file(&t.config).ok();
    let base = match (&t.url, &cfg) {
        (Some(u), _) => u.trim_end_matches('/').to_string(),
        (None, Some(c)) => format!("http://{}", c.server.listen),
        (None, None) => {
            return Err(format!(
                "cannot read {} and no --url given",
                t.config.display()
            ));
        }
    };
    let token = match &t.token {
        Some(tok) => tok.clone(),
        None => cfg
            .as_ref()
            .and_then(|c| {
                c.admin
                    .tokens
                    .iter()
                    .filter(|a| !need_operator || a.role == AdminRole::Operator)
                    .find_map(|a| a.token(|v| std::env::var(v).ok()))
            })
            .ok_or("no admin token: pass --token or set LIENTHONG_ADMIN_TOKEN")?,
    };
    let http = crate::tls_provider::http_client()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Client { http, base, token })
}

impl Client {
    pub(super) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| {
            format!(
                "cannot reach the bus at {}: {e} (is it running? use --url)",
                self.base
            )
        })?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(v)
        } else {
            Err(format!(
                "HTTP {}: {}",
                status.as_u16(),
                v["error"]["message"].as_str().unwrap_or("no details")
            ))
        }
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Print rows as a fixed-width table.
fn table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", parts.join("  ").trim_end());
    };
    line(out, header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(out, r.clone());
    }
}

/// `lienthong message ID`: each delivery of a message, and for one held behind an older
/// message of its dossier, which and why.
pub async fn message(t: &AdminTarget, id: &str) -> Result<String, String> {
    let mut buf: Vec<u8> = Vec::new();
    let out = &mut buf;
    let c = connect(t, false)?;
    let m = c
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/messages/{id}"),
            None,
        )
        .await?;
    let _ = writeln!(
        out,
        "message {} of {} ({}), dossier {}, received {}",
        cell(&m["id"]),
        cell(&m["unit"]),
        cell(&m["flow"]),
        cell(&m["key"]),
        cell(&m["received_at"])
    );
    for d in m["deliveries"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let state = &d["delivery"];
        let mut line = format!(
            "  {}: {}, {} attempt(s)",
            cell(&d["target"]),
            cell(&state["state"]),
            state["attempts"].as_u64().unwrap_or(0)
        );
        if let Some(reason) = state["reason"].as_str() {
            line.push_str(&format!(": {reason}"));
        }
        let w = &d["waiting_behind"];
        if w.is_object() {
            line.push_str(&match w["why"].as_str() {
                Some("dead_letter") => format!(
                    "\n    waiting behind {} ({}), a dead letter since {}: {} — replay or drop it (lienthong dlq replay {} {}) and this one goes on",
                    cell(&w["id"]),
                    cell(&w["flow"]),
                    w["dead_since_ms"]
                        .as_u64()
                        .map(crate::time::rfc3339_ms)
                        .unwrap_or_default(),
                    cell(&w["reason"]),
                    cell(&d["target"]),
                    cell(&w["id"]),
                ),
                _ => format!(
                    "\n    waiting behind {} ({}), being delivered first ({} attempt(s){})",
                    cell(&w["id"]),
                    cell(&w["flow"]),
                    w["attempts"].as_u64().unwrap_or(0),
                    w["reason"]
                        .as_str()
                        .map(|e| format!("; last error: {e}"))
                        .unwrap_or_default()
                ),
            });
        }
        let _ = writeln!(out, "{line}");
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

pub async fn status(t: &AdminTarget) -> Result<String, String> {
    let mut buf: Vec<u8> = Vec::new();
    let out = &mut buf;
    let c = connect(t, false)?;
    let s = c.call(reqwest::Method::GET, "/api/v1/status", None).await?;
    let _ = writeln!(
        out,
        "bus {}: {} pending, {} dead letters, {} accepted since start{}",
        c.base,
        s["pending"],
        s["dead"],
        s["accepted_since_start"],
        if s["healthy"] == true {
            ""
        } else {
            " — ATTENTION: a platform is down or paused"
        }
    );
    let rows: Vec<Vec<String>> = s["targets"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    [
                        "target",
                        "pending",
                        "in_flight",
                        "retrying",
                        "blocked_dossiers",
                        "delivered_since_start",
                        "dead_since_start",
                        "circuit",
                        "paused",
                    ]
                    .iter()
                    .map(|k| cell(&t[*k]))
                    .collect()
                })
                .collect()
        })
        .unwrap_or_default();
    table(
        out,
        &[
            "TARGET",
            "PENDING",
            "IN FLIGHT",
            "RETRYING",
            "BLOCKED",
            "DELIVERED",
            "DEAD",
            "CIRCUIT",
            "PAUSED",
        ],
        &rows,
    );
    let _ = writeln!(
        out,
        "\nper unit (delivered, failed and error rate over the last {} s):",
        s["window_seconds"]
    );
    let rows: Vec<Vec<String>> = s["units"]
        .as_array()
        .map(|us| {
            us.iter()
                .map(|u| {
                    let r = &u["recent"];
                    vec![
                        cell(&u["unit"]),
                        cell(&u["pending"]),
                        cell(&u["retrying"]),
                        cell(&u["dead"]),
                        u["oldest_pending_age_s"]
                            .as_u64()
                            .map_or("-".into(), |a| format!("{a} s")),
                        cell(&r["delivered"]),
                        cell(&r["failed_attempts"]),
                        r["error_rate"]
                            .as_f64()
                            .map_or("-".into(), |e| format!("{:.1} %", e * 100.0)),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    table(
        out,
        &[
            "UNIT",
            "PENDING",
            "RETRYING",
            "DEAD",
            "OLDEST",
            "DELIVERED",
            "FAILED",
            "ERRORS",
        ],
        &rows,
    );
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

pub async fn dlq(t: &AdminTarget, cmd: DlqCommand) -> Result<String, String> {
    let mut buf: Vec<u8> = Vec::new();
    let out = &mut buf;
    match cmd {
        DlqCommand::List {
            target,
            unit,
            reason,
            limit,
            after,
        } => {
            let c = connect(t, false)?;
            let mut url = reqwest::Url::parse("http://x/api/v1/dead-letters").expect("literal");
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("limit", &limit.to_string());
                for (k, v) in [
                    ("target", &target),
                    ("unit", &unit),
                    ("reason", &reason),
                    ("after", &after),
                ] {
                    if let Some(v) = v {
                        q.append_pair(k, v);
                    }
                }
            }
            let path = format!("{}?{}", url.path(), url.query().unwrap_or(""));
            let v = c.call(reqwest::Method::GET, &path, None).await?;
            let rows: Vec<Vec<String>> = v["dead_letters"]
                .as_array()
                .map(|ds| {
                    ds.iter()
                        .map(|d| {
                            let reason: String = cell(&d["reason"]).chars().take(90).collect();
                            vec![
                                cell(&d["id"]),
                                cell(&d["target"]),
                                cell(&d["unit"]),
                                cell(&d["flow"]),
                                cell(&d["key"]),
                                cell(&d["attempts"]),
                                reason,
                            ]
                        })
                        .collect()
                })
                .unwrap_or_default();
            let _ = writeln!(out, "{} dead letter(s)", rows.len());
            table(
                out,
                &[
                    "ID", "TARGET", "UNIT", "FLOW", "DOSSIER", "ATTEMPTS", "REASON",
                ],
                &rows,
            );
            if let Some(next) = v["next"].as_str() {
                let _ = writeln!(
                    out,
                    "more: lienthong dlq list --after {next} (same filters)"
                );
            }
        }
        DlqCommand::Show { target, id } => {
            let c = connect(t, false)?;
            let v = c
                .call(
                    reqwest::Method::GET,
                    &format!("/api/v1/dead-letters/{target}/{id}"),
                    None,
                )
                .await?;
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&v).unwrap_or_default()
            );
        }
        DlqCommand::Replay {
            target,
            id,
            all,
            target_flag,
            unit,
            reason,
            page,
        } => {
            let c = connect(t, true)?;
            let target = target.or(target_flag);
            let v = match (all, target, id) {
                (false, Some(target), Some(id)) => {
                    c.call(
                        reqwest::Method::POST,
                        &format!("/api/v1/dead-letters/{target}/{id}/replay"),
                        None,
                    )
                    .await?
                }
                (true, target, None) => {
                    // Page by page through every match, saying how far it has gone.
                    let mut after: Option<String> = None;
                    let mut total = 0usize;
                    loop {
                        let body = json!({"target": target, "unit": unit, "reason": reason,
                                          "after": after, "limit": page.clamp(1, 10_000)});
                        let v = c
                            .call(
                                reqwest::Method::POST,
                                "/api/v1/dead-letters/replay",
                                Some(body),
                            )
                            .await
                            .map_err(|e| {
                                format!("{e} (after replaying {total}; run the same command again to go on)")
                            })?;
                        total += v["replayed"].as_array().map_or(0, Vec::len);
                        after = v["next"].as_str().map(str::to_string);
                        if after.is_none() {
                            break;
                        }
                        eprintln!("replayed {total} dead letter(s) so far…");
                    }
                    json!({ "replayed_count": total })
                }
                _ => {
                    return Err(
                        "give TARGET ID, or --all with --target/--unit/--reason filters".into(),
                    );
                }
            };
            let n = v["replayed_count"].as_u64().map_or_else(
                || v["replayed"].as_array().map_or(0, Vec::len),
                |n| n as usize,
            );
            let _ = writeln!(out, "replayed {n} dead letter(s)");
        }
        DlqCommand::Drop { target, id, reason } => {
            let c = connect(t, true)?;
            c.call(
                reqwest::Method::POST,
                &format!("/api/v1/dead-letters/{target}/{id}/drop"),
                Some(json!({ "reason": reason })),
            )
            .await?;
            let _ = writeln!(out, "dropped {id} ({target}): {reason}");
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}
