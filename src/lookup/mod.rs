//! Request-reply lookups for units: `POST /api/v1/units/{unit}/lookup/citizen` (population
//! database, SOAP 1.1: read a person with `TraCuuThongTinCongDan`, or only verify them with
//! `XacThucThongTinCongDan` — the unit's request mapping names the operation),
//! `.../lookup/residence` (population database: is the residence a citizen declared the
//! one registered, `XacMinhThongTinNoiOHienTai`, so nobody has to bring paper proof) and
//! `.../lookup/business` (business registry, REST GET).
//!
//! The unit sends its own format; the bus maps it with `mappings/<unit>/<kind>_lookup_request.toml`,
//! calls the platform (with the `[lookups.<platform>]` timeout and rate limit), maps the reply
//! with `..._reply.toml` and answers in the unit's format. Nothing goes through the outbox:
//! a lookup is a question asked now, and the person's data is never stored — citizen replies
//! are not cached, business replies (public register data) are cached briefly.
//!
//! Every lookup leaves a record in the audit trail ([`crate::audit`], `personal_data_lookup`): unit,
//! kind, officer, dossier, purpose, time, outcome — never the personal data itself. The
//! officer is the mapped request's `MaCanBo` (or the `X-Officer` header); dossier and purpose
//! come from the `?dossier=` and `?purpose=` query parameters.
//!
//! Before any platform is asked, a citizen or residence lookup passes its purpose check
//! ([`purpose`]: a dossier of the unit's that names the person) and the unit's quotas
//! ([`platform`]: its share of the platform's rate, its daily ceiling); a refusal is
//! audited like an answer.

mod platform;
pub mod purpose;

use crate::audit::AuditLog;
use crate::config::LookupsConfig;
use crate::mappings::MappingSet;
use crate::web::{ApiError, UnitKeys};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lienthong_mapping::Mapping;
use platform::{Platform, call};
use purpose::PurposeCheck;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which platform a lookup asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupKind {
    Citizen,
    Residence,
    Business,
}

impl LookupKind {
    pub fn name(self) -> &'static str {
        match self {
            LookupKind::Citizen => "citizen",
            LookupKind::Residence => "residence",
            LookupKind::Business => "business",
        }
    }
}

/// What the lookup endpoints share.
pub struct LookupState {
    keys: Arc<UnitKeys>,
    mappings: Arc<MappingSet>,
    audit: Arc<AuditLog>,
    population: Option<Platform>,
    business: Option<Platform>,
    business_cache_ttl: Duration,
    business_cache: Mutex<HashMap<String, (Instant, Bytes)>>,
    /// What a citizen lookup must name.
    pub purpose: PurposeCheck,
    /// Lookups counted per unit, officer and day (the admin API's and the dashboard's).
    pub usage: Arc<crate::web::lookup_usage::LookupUsage>,
    /// A span per lookup (`[telemetry]`).
    pub spans: Arc<crate::otlp::Spans>,
    /// Where a lookup made for a dossier is noted, for the portal's `DSKetNoiCSDL`.
    pub consulted: Option<Arc<dyn crate::outbox::Notes>>,
}

impl LookupState {
    /// The lookups of `units`; `outbox` holds their dossiers (the purpose check's), `usage`
    /// counts them (shared with the admin's views, which also name the exceptions).
    pub fn new(
        cfg: &LookupsConfig,
        units: &[String],
        keys: Arc<UnitKeys>,
        mappings: Arc<MappingSet>,
        audit: Arc<AuditLog>,
        outbox: Option<crate::outbox::Outbox>,
        usage: Arc<crate::web::lookup_usage::LookupUsage>,
    ) -> Result<LookupState, String> {
        let platform = |p: &crate::config::LookupTargetConfig| Platform::new(p, units);
        Ok(LookupState {
            purpose: PurposeCheck::new(&cfg.purpose, outbox),
            usage,
            keys,
            mappings,
            audit,
            population: cfg.population.as_ref().map(platform).transpose()?,
            business: cfg.business.as_ref().map(platform).transpose()?,
            business_cache_ttl: cfg
                .business
                .as_ref()
                .map_or(Duration::ZERO, |b| b.cache_ttl),
            business_cache: Mutex::new(HashMap::new()),
            spans: Arc::new(crate::otlp::Spans::off()),
            consulted: None,
        })
    }
}

pub fn routes(state: Arc<LookupState>) -> axum::Router {
    axum::Router::new()
        .route(
            "/api/v1/units/{unit}/lookup/{kind}",
            axum::routing::post(lookup),
        )
        .with_state(state)
}

#[derive(Deserialize, Default)]
struct LookupQuery {
    dossier: Option<String>,
    purpose: Option<String>,
}

impl LookupQuery {
    /// The bounds the contract states for the audit fields: `dossier` at most 100
    /// characters, `purpose` 200, the `X-Officer` header 1 to 100 visible ASCII
    /// characters. What is kept in the audit trail forever is bounded before it is kept.
    fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let too_long = |field: &str, value: &Option<String>, max: usize| match value {
            Some(v) if v.chars().count() > max => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("{field}: {} characters, at most {max}", v.chars().count()),
            )
            .field(field)),
            _ => Ok(()),
        };
        too_long("dossier", &self.dossier, 100)?;
        too_long("purpose", &self.purpose, 200)?;
        if let Some(officer) = headers.get("x-officer") {
            let b = officer.as_bytes();
            if b.is_empty() || b.len() > 100 || !b.iter().all(|c| (b'!'..=b'~').contains(c)) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_header",
                    "X-Officer: 1 to 100 visible ASCII characters (the officer's account or code)",
                )
                .field("X-Officer"));
            }
        }
        Ok(())
    }
}

/// How a lookup ended, for the audit record and the answer.
pub struct Failure {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// When to ask again (`Retry-After`, seconds), for a quota's refusal.
    retry_after: Option<u64>,
}

impl Failure {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Failure {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    fn into_api_error(self) -> ApiError {
        let e = ApiError::new(self.status, self.code, self.message);
        match self.retry_after {
            Some(secs) => e.retry_after(secs),
            None => e,
        }
    }
}

async fn lookup(
    State(state): State<Arc<LookupState>>,
    Path((unit, kind)): Path<(String, String)>,
    Query(query): Query<LookupQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !state.keys.knows(&unit) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_unit",
            format!("no unit `{unit}` is configured"),
        )
        .field("unit"));
    }
    state.keys.authorize(&unit, &headers)?;
    query.check(&headers)?;
    let kind = match kind.as_str() {
        "citizen" => LookupKind::Citizen,
        "residence" => LookupKind::Residence,
        "business" => LookupKind::Business,
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_lookup",
                format!("no `{other}` lookup (citizen, residence or business)"),
            ));
        }
    };
    // A request its schema forbids is refused here: no platform is asked and no lookup
    // is recorded, for none happened.
    let prepared = prepare(&state, &unit, kind, &body)?;
    let started = Instant::now();
    // The unit's trace (traceparent), else its X-Trace-Id, else one of its own.
    let traceparent = headers.get("traceparent").and_then(|v| v.to_str().ok());
    let trace_id = traceparent
        .and_then(crate::tracecontext::trace_id_of)
        .or_else(|| {
            headers
                .get("x-trace-id")
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty() && v.len() <= 128)
                .map(str::to_string)
        })
        .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    let span = state.spans.start_span(
        "lookup",
        opentelemetry::trace::SpanKind::Server,
        &trace_id,
        traceparent.and_then(crate::tracecontext::parent_id_of),
        vec![
            opentelemetry::KeyValue::new("lienthong.unit", unit.clone()),
            opentelemetry::KeyValue::new("lienthong.lookup", kind.name()),
        ],
    );
    let officer = headers
        .get("x-officer")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            prepared
                .request
                .get(prepared.operation())
                .and_then(|r| r.get("MaCanBo"))
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    let person = purpose::person_asked(&prepared.request, prepared.operation());
    let now = crate::time::now_ms();
    let mut exception = None;
    let outcome = match admit(&state, &unit, kind, &query, person.as_deref(), now) {
        Ok(under) => {
            exception = under;
            run(&state, kind, prepared).await
        }
        Err(refusal) => Err(refusal),
    };
    // The audit record says who asked about what and how it went, not who was found.
    let (outcome_text, status) = match &outcome {
        Ok((_, _, found)) => (if *found { "found" } else { "not_found" }, 200),
        Err(f) => (f.code, f.status.as_u16()),
    };
    let record = json!({
        "kind": kind.name(), "officer": officer, "dossier": query.dossier,
        "purpose": query.purpose, "exception": exception, "outcome": outcome_text,
        "status": status, "took_ms": started.elapsed().as_millis() as u64,
    });
    // No personal data leaves without its audit record: if the trail cannot be written
    // (full disk, lost volume), the answer is withheld.
    if let Err(e) = state
        .audit
        .append("personal_data_lookup", &format!("unit:{unit}"), record)
    {
        tracing::error!(%unit, kind = kind.name(), error = %e, "AUDIT RECORD NOT WRITTEN: lookup answer withheld");
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit_unavailable",
            "the audit trail cannot be written, so no lookup answer is given; try again later \
             (the IT Center sees this in the bus's log)",
        ));
    }
    tracing::info!(%unit, kind = kind.name(), outcome = outcome_text, "lookup");
    if let (Ok(_), Some(dossier), Some(notes)) = (&outcome, &query.dossier, &state.consulted) {
        note_consulted(notes, dossier, kind).await;
    }
    // Refused before any platform was asked: a 403 of the purpose check, a 429 of a quota.
    let refused = match &outcome {
        Err(f) if matches!(f.status.as_u16(), 403 | 429) => Some(f.code),
        _ => None,
    };
    state.usage.count(
        crate::web::lookup_usage::Counted {
            unit: &unit,
            kind: kind.name(),
            officer: officer.as_deref(),
            refused,
            exception: exception.as_deref(),
        },
        now,
    );
    // The outcome, never who was looked up.
    span.set(opentelemetry::KeyValue::new(
        "lienthong.outcome",
        outcome_text,
    ));
    if status >= 500 {
        span.fail(outcome_text);
    }
    match outcome {
        Ok((content_type, body, _)) => {
            Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
        }
        Err(f) => Err(f.into_api_error()),
    }
}

/// The platform a lookup asks, or `501` naming the missing config.
fn platform_of(state: &LookupState, kind: LookupKind) -> Result<&Platform, Failure> {
    match kind {
        LookupKind::Citizen | LookupKind::Residence => state.population.as_ref(),
        LookupKind::Business => state.business.as_ref(),
    }
    .ok_or_else(|| {
        Failure::new(
            StatusCode::NOT_IMPLEMENTED,
            "no_lookup_target",
            format!(
                "[lookups.{}] is not configured",
                match kind {
                    LookupKind::Citizen | LookupKind::Residence => "population",
                    LookupKind::Business => "business",
                }
            ),
        )
    })
}

/// Note the database a lookup answered from against its dossier (sent to the portal in the
/// dossier's row as `DSKetNoiCSDL`). A note not written costs the portal that figure, not
/// the officer the answer.
async fn note_consulted(notes: &Arc<dyn crate::outbox::Notes>, dossier: &str, kind: LookupKind) {
    use crate::connector::portal::consulted;
    let code = match kind {
        LookupKind::Citizen | LookupKind::Residence => consulted::POPULATION,
        LookupKind::Business => consulted::BUSINESS,
    };
    let (notes, dossier) = (Arc::clone(notes), dossier.to_string());
    let noted =
        tokio::task::spawn_blocking(move || consulted::note(notes.as_ref(), &dossier, code)).await;
    if let Ok(Err(e)) = noted {
        tracing::warn!(error = %e, "the database consulted for a dossier was not noted");
    }
}

/// Whether this lookup may be asked: within the unit's share of the platform's rate, for
/// its purpose ([`purpose`]), within the unit's daily ceiling. `Ok` names the documented
/// exception it went through, if one.
fn admit(
    state: &LookupState,
    unit: &str,
    kind: LookupKind,
    query: &LookupQuery,
    person: Option<&str>,
    now_ms: u64,
) -> Result<Option<String>, Failure> {
    let platform = platform_of(state, kind)?;
    platform.admit_rate(unit)?;
    let allowed = state.purpose.check(
        unit,
        kind,
        query.dossier.as_deref(),
        query.purpose.as_deref(),
        person,
        now_ms,
    )?;
    platform.admit_daily(unit, now_ms)?;
    Ok(allowed.exception.map(str::to_string))
}

fn load(
    state: &LookupState,
    unit: &str,
    kind: LookupKind,
    part: &str,
) -> Result<Arc<Mapping>, Failure> {
    state
        .mappings
        .lookup_mapping(unit, &format!("{}_lookup_{part}", kind.name()))
        .map_err(|e| Failure::new(StatusCode::NOT_IMPLEMENTED, "no_lookup_mapping", e))
}

/// A lookup request that passed the door: its two mappings and the request as the
/// platform takes it.
struct Prepared {
    request_map: Arc<Mapping>,
    reply_map: Arc<Mapping>,
    request: Value,
}

impl Prepared {
    /// The population database's operation: the request's one top-level element.
    fn operation(&self) -> &str {
        self.request
            .as_object()
            .and_then(|o| o.keys().next())
            .map_or("", String::as_str)
    }
}

/// Read and check a unit's lookup request before anything is asked or recorded: one
/// request, every field as the operation's published schema and its mapping want it
/// (`400 invalid_lookup` naming each problem otherwise).
fn prepare(
    state: &LookupState,
    unit: &str,
    kind: LookupKind,
    body: &[u8],
) -> Result<Prepared, ApiError> {
    let failed = |f: Failure| ApiError::new(f.status, f.code, f.message);
    let request_map = load(state, unit, kind, "request").map_err(failed)?;
    let reply_map = load(state, unit, kind, "reply").map_err(failed)?;
    let mut records = request_map.decode(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_body",
            format!("the request cannot be read: {e}"),
        )
    })?;
    if records.len() != 1 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "one_lookup",
            "send one lookup per request",
        ));
    }
    let record = records.swap_remove(0);
    let problems = request_map.check_record(&record);
    if let Some(first) = problems.first() {
        let field = |p: &lienthong_mapping::door::Problem| match p.pointer() {
            at if at.is_empty() => "/".to_string(),
            at => at,
        };
        let mut e = ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_lookup",
            format!(
                "{} problem{} in this lookup; nothing was asked. {}: {}",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" },
                field(first),
                first.reason
            ),
        )
        .field(field(first));
        e.problems = problems
            .iter()
            .map(|p| crate::web::FieldProblem {
                field: field(p),
                problem: p.reason.clone(),
                line: None,
            })
            .collect::<Vec<_>>()
            .into();
        return Err(e);
    }
    let request = request_map
        .map(&record)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_lookup", e.to_string()))?;
    Ok(Prepared {
        request_map,
        reply_map,
        request,
    })
}

/// The unit's answer (content type, body) and whether the platform found someone.
async fn run(
    state: &LookupState,
    kind: LookupKind,
    prepared: Prepared,
) -> Result<(&'static str, Vec<u8>, bool), Failure> {
    let operation = prepared.operation().to_string();
    let Prepared {
        request_map,
        reply_map,
        request,
    } = prepared;
    let platform = platform_of(state, kind)?;
    if let Some(limiter) = &platform.limiter
        && tokio::time::timeout(platform.timeout, limiter.until_ready())
            .await
            .is_err()
    {
        return Err(Failure::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many lookups; try again shortly",
        ));
    }
    let answer = match kind {
        LookupKind::Citizen | LookupKind::Residence => {
            let soap = request_map.encode_value(&request).map_err(|e| {
                Failure::new(StatusCode::BAD_REQUEST, "invalid_lookup", e.to_string())
            })?;
            call(
                platform,
                platform
                    .client
                    .post(platform.url.clone())
                    .header(header::CONTENT_TYPE, "text/xml; charset=utf-8")
                    .header("soapaction", format!("\"{operation}\""))
                    .body(soap),
            )
            .await?
        }
        LookupKind::Business => {
            let code = request["MaSoDoanhNghiep"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let cached = state
                .business_cache
                .lock()
                .unwrap()
                .get(&code)
                .and_then(|(at, b)| (at.elapsed() < state.business_cache_ttl).then(|| b.clone()));
            match cached {
                Some(b) => b,
                None => {
                    let mut url = platform.url.clone();
                    url.query_pairs_mut().append_pair("MaSoDoanhNghiep", &code);
                    let b = call(platform, platform.client.get(url)).await?;
                    if !state.business_cache_ttl.is_zero() {
                        let mut cache = state.business_cache.lock().unwrap();
                        if cache.len() > 10_000 {
                            cache.clear();
                        }
                        cache.insert(code, (Instant::now(), b.clone()));
                    }
                    b
                }
            }
        }
    };
    let mut replies = reply_map.decode(&answer).map_err(|e| {
        Failure::new(
            StatusCode::BAD_GATEWAY,
            "bad_reply",
            format!("the platform's reply cannot be read: {e}"),
        )
    })?;
    let reply = replies
        .pop()
        .ok_or_else(|| Failure::new(StatusCode::BAD_GATEWAY, "bad_reply", "empty reply"))?;
    // Found: a person read, a person verified, a residence confirmed.
    let response = &reply[format!("{operation}Response").as_str()];
    let yes = |v: &Value| v == true || v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("true"));
    let found = match kind {
        LookupKind::Citizen | LookupKind::Residence => {
            response
                .pointer("/CongdanCollection/CongDan")
                .is_some_and(|c| !c.is_null() && c != "")
                || yes(&response["TonTai"])
                || yes(&response["KetQua"])
        }
        LookupKind::Business => reply["Status"] == "SUCCESS",
    };
    let mapped = reply_map
        .render(&reply)
        .map_err(|e| Failure::new(StatusCode::BAD_GATEWAY, "lookup_failed", e.to_string()))?;
    Ok((reply_map.content_type(), mapped, found))
}
