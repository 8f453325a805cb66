//! `lienthong send --unit <unit> FILE...`: post files to a running bus as the unit's system
//! would — JSON, XML (SOAP included) or CSV in the unit's own format — printing each
//! accepted id or the bus's error. The first tool a unit IT team uses while wiring its
//! system.
//!
//! A busy bus (503: the outbox is full, or a broker is away; 429: the unit's rate limit;
//! 409: another node of a cluster is storing the same `Idempotency-Key`) is waited for: the request is sent again after the bus's `Retry-After` (1 s when it
//! gives none, at most 60 s), up to `--retries` times, each wait printed; then the file
//! is reported as given up. Signed requests are signed afresh for each attempt.

use std::path::{Path, PathBuf};

/// What to send where.
#[derive(Clone, Debug, clap::Args)]
pub struct SendArgs {
    /// The unit the files come from (its key comes from the config: `key_env`, else the
    /// development key).
    #[arg(long)]
    pub unit: String,
    /// The flow (route) to post to; may be left out when the unit routes only one.
    #[arg(long)]
    pub flow: Option<String>,
    /// The files to send, one request each.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The bus (default: `server.listen` of the config).
    #[arg(long)]
    pub url: Option<String>,
    /// The configuration file (the bus's address and the unit's key, when not given here).
    #[arg(long, default_value = "config/lienthong.toml")]
    pub config: PathBuf,
    /// Send an `Idempotency-Key` made of the file name and content, so sending the same
    /// file twice stores it once.
    #[arg(long)]
    pub idempotent: bool,
    /// How many times a file refused with 503, 429 or 409 (the bus busy, the unit over its
    /// rate, its key being stored by another node) is sent again, after the bus's
    /// `Retry-After`.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
}

/// The wait before sending again, from `Retry-After` (seconds; 1 s without it, at most 60).
fn retry_after(headers: &reqwest::header::HeaderMap) -> std::time::Duration {
    let secs = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1)
        .clamp(1, 60);
    std::time::Duration::from_secs(secs)
}

/// The content type a file is sent with, from its extension.
pub fn content_type(path: &Path) -> Option<&'static str> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "json" => Some("application/json"),
        "xml" | "soap" => Some("text/xml; charset=utf-8"),
        "csv" => Some("text/csv"),
        _ => None,
    }
}

/// Send every file; prints a line per file. Returns how many failed.
pub async fn run(args: SendArgs, out: &mut (dyn std::io::Write + Send)) -> Result<usize, String> {
    let cfg = crate::config::load_file(&args.config).map_err(|e| e.to_string())?;
    let unit = cfg.units.get(&args.unit).ok_or_else(|| {
        format!(
            "unit `{}` is not in {} (units: {})",
            args.unit,
            args.config.display(),
            cfg.units.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })?;
    let key = std::env::var(&unit.key_env)
        .ok()
        .filter(|k| !k.is_empty())
        .or_else(|| unit.dev_key.clone())
        .ok_or_else(|| format!("set {} to the unit's key", unit.key_env))?;
    // Units that sign their requests (hmac_secret_env): each file's request is signed.
    let secret = unit.hmac_secret_env.as_ref().map(|var| {
        std::env::var(var)
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| unit.dev_hmac_secret.clone())
            .ok_or_else(|| format!("unit `{}` signs its requests: set {var}", args.unit))
    });
    let secret = secret.transpose()?;
    let base = args
        .url
        .clone()
        .unwrap_or_else(|| format!("http://{}", cfg.server.listen));
    let mut url = format!(
        "{}/api/v1/units/{}/events",
        base.trim_end_matches('/'),
        args.unit
    );
    if let Some(flow) = &args.flow {
        url.push_str(&format!("?flow={flow}"));
    }
    let client = crate::tls_provider::http_client()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())?;
    let mut failed = 0;
    let total = args.files.len();
    for (i, file) in args.files.iter().enumerate() {
        let name = file.display();
        let progress = format!("[{}/{total}]", i + 1);
        let Some(ct) = content_type(file) else {
            failed += 1;
            let _ = writeln!(
                out,
                "{progress} {name}: not sent: name it .json, .xml or .csv so the bus knows its format"
            );
            continue;
        };
        let body = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                failed += 1;
                let _ = writeln!(out, "{progress} {name}: cannot read: {e}");
                continue;
            }
        };
        let request = || {
            let mut request = client
                .post(&url)
                .bearer_auth(&key)
                .header("content-type", ct);
            if let Some(secret) = &secret {
                use crate::ingress::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
                let path = reqwest::Url::parse(&url)
                    .map(|u| match u.query() {
                        Some(q) => format!("{}?{q}", u.path()),
                        None => u.path().to_string(),
                    })
                    .unwrap_or_default();
                let now = crate::time::now_ms() / 1000;
                request = request.header(TIMESTAMP_HEADER, now.to_string()).header(
                    SIGNATURE_HEADER,
                    sign(secret.as_bytes(), now, "POST", &path, &body),
                );
            }
            if args.idempotent {
                use sha2::Digest;
                let digest = sha2::Sha256::digest(&body);
                let hex = crate::hex::encode(&digest[..12]);
                let stem = file.file_name().and_then(|n| n.to_str()).unwrap_or("file");
                request = request.header("idempotency-key", format!("file:{stem}:{hex}"));
            }
            request.body(body.clone())
        };
        let mut attempt = 0u32;
        let sent = loop {
            attempt += 1;
            let sent = request().send().await;
            let busy = sent
                .as_ref()
                .ok()
                // 409: another node of a cluster is storing the same Idempotency-Key right now.
                .filter(|r| matches!(r.status().as_u16(), 409 | 429 | 503));
            match busy {
                Some(resp) if attempt <= args.retries => {
                    let wait = retry_after(resp.headers());
                    let _ = writeln!(
                        out,
                        "{progress} {name}: the bus is busy (HTTP {}); sending again in {} s \
                         (retry {attempt} of {})",
                        resp.status().as_u16(),
                        wait.as_secs(),
                        args.retries
                    );
                    tokio::time::sleep(wait).await;
                }
                Some(resp) => {
                    let _ = writeln!(
                        out,
                        "{progress} {name}: gave up after {attempt} attempt(s): the bus stayed \
                         busy (HTTP {}); send it again later, or raise --retries",
                        resp.status().as_u16()
                    );
                    break sent;
                }
                None => break sent,
            }
        };
        match sent {
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                let (accepted, said) = describe_answer(status, text);
                if !accepted {
                    failed += 1;
                }
                let _ = writeln!(out, "{progress} {name}: {said}");
            }
            Err(e) => {
                failed += 1;
                let _ = writeln!(
                    out,
                    "{progress} {name}: cannot reach the bus at {base}: {e} (is `lienthong run` running? use --url)"
                );
            }
        }
    }
    Ok(failed)
}

/// What the bus answered a file, in one line: whether it was accepted, and the ids (or the
/// refusal with the field, line and column it names).
fn describe_answer(status: reqwest::StatusCode, text: String) -> (bool, String) {
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if status.is_success() {
        let ids: Vec<String> = json["accepted"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| {
                        let id = x["id"].as_str().unwrap_or("?").to_string();
                        if x["duplicate"] == true {
                            format!("{id} (already had it)")
                        } else {
                            id
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        return (
            true,
            format!("accepted {} event(s): {}", ids.len(), ids.join(", ")),
        );
    }
    let e = &json["error"];
    let mut where_ = String::new();
    if let Some(f) = e["field"].as_str() {
        where_.push_str(&format!(" [field {f}]"));
    }
    if let Some(l) = e["line"].as_u64() {
        where_.push_str(&format!(
            " [line {l}, column {}]",
            e["column"].as_u64().unwrap_or(0)
        ));
    }
    let message = e["message"].as_str().map(str::to_string).unwrap_or(text);
    (
        false,
        format!("refused, HTTP {}: {message}{where_}", status.as_u16()),
    )
}
