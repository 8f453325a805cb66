//! The contract a unit IT team integrates against, generated from what the bus runs: the
//! configured routes and units, and the mappings each flow goes through.
//!
//! * [`openapi`]: the OpenAPI 3.1 document of the unit-facing API (events per flow with
//!   the JSON Schema of what the flow's mappings read, the lookups, the unit's own message
//!   state, SOAP, the payment callback), merged with the admin API's at
//!   `/api/v1/openapi.json`, one unit's alone at `/api/v1/units/{unit}/openapi.json`, and
//!   written by `lienthong openapi`.
//! * `xml_body`: an XML body described with OpenAPI's `xml` object (root, namespace,
//!   attributes, repeated lists), so a body generated from the document is one the bus takes.
//! * [`wsdl`]: the WSDL of each SOAP unit's endpoint, at `/soap/{unit}?wsdl`.
//! * [`page`]: the API page (`/api/docs`), Swagger UI served from the binary, no outside
//!   network.
//!
//! Nothing here is written by hand per flow: a new route or a changed mapping changes the
//! document the next time it is asked for.

pub mod openapi;
mod operations;
pub mod page;
mod reads;
pub mod wsdl;
mod xml_body;

pub use openapi::{document, unit_document};

use crate::config::Config;
use crate::mappings::MappingSet;
use crate::route::Router;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::Value;
use std::sync::Arc;

/// What the documents are built from, kept by the HTTP routes that serve them.
pub struct ContractSource {
    pub config: Config,
    pub router: Arc<Router>,
    pub mappings: Arc<MappingSet>,
    /// The admin API's own document (admin writes it from its route table), merged into
    /// the whole document; handed in by whoever assembles the bus, so the contract does
    /// not reach into admin.
    pub admin_document: Value,
}

impl ContractSource {
    fn contract(&self) -> openapi::Contract<'_> {
        openapi::Contract {
            config: &self.config,
            router: &self.router,
            mappings: &self.mappings,
        }
    }

    /// The whole document: the admin API and every unit's.
    pub fn document(&self) -> Value {
        document(&self.contract(), self.admin_document.clone())
    }

    /// One unit's document.
    pub fn unit_document(&self, unit: &str) -> Option<Value> {
        unit_document(&self.contract(), unit)
    }
}

/// The documents and the API page. Open to anyone: they describe the API and hold no
/// secret (keys, routes' URLs and tokens are not in them).
pub fn routes(source: Arc<ContractSource>) -> axum::Router {
    axum::Router::new()
        .route("/api/v1/openapi.json", get(whole))
        .route("/api/v1/units/{unit}/openapi.json", get(of_unit))
        .route("/soap/{unit}", get(soap_wsdl))
        .route("/api/docs", get(page::page))
        .route("/api/docs/swagger-ui-bundle.js", get(page::bundle))
        .route("/api/docs/swagger-ui.css", get(page::css))
        .route("/api/docs/init.js", get(page::init))
        .with_state(source)
}

/// `GET /soap/{unit}?wsdl`. The endpoint's address is the one the client asked on.
async fn soap_wsdl(
    State(source): State<Arc<ContractSource>>,
    Path(unit): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: axum::http::HeaderMap,
) -> Result<axum::response::Response, crate::web::ApiError> {
    use axum::response::IntoResponse;
    let asks_wsdl = query.as_deref().is_some_and(|q| {
        q.split('&').any(|kv| {
            kv.split('=')
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case("wsdl"))
        })
    });
    if !asks_wsdl {
        return Err(crate::web::ApiError::new(
            StatusCode::BAD_REQUEST,
            "wsdl_only",
            format!("POST SOAP envelopes to /soap/{unit}; GET /soap/{unit}?wsdl for the WSDL"),
        ));
    }
    let endpoint = format!("{}/soap/{unit}", soap_base(&source.config.server, &headers));
    let wsdl = wsdl::wsdl(&source.contract(), &unit, &endpoint).ok_or_else(|| {
        crate::web::ApiError::new(
            StatusCode::NOT_FOUND,
            "no_soap",
            format!("unit `{unit}` has no SOAP operations (units.{unit}.soap_operations)"),
        )
        .field("unit")
    })?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        wsdl,
    )
        .into_response())
}

async fn whole(State(source): State<Arc<ContractSource>>) -> Json<Value> {
    Json(source.document())
}

async fn of_unit(
    State(source): State<Arc<ContractSource>>,
    Path(unit): Path<String>,
) -> Result<Json<Value>, crate::web::ApiError> {
    source.unit_document(&unit).map(Json).ok_or_else(|| {
        crate::web::ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_unit",
            format!("no unit `{unit}` is configured"),
        )
        .field("unit")
    })
}

/// Where units reach the bus, for the WSDL's endpoint: `server.public_url` when set; else
/// the request's `Host` when it is a hostname (or address) and port and nothing more —
/// whoever asks for the WSDL controls that header, so nothing else of it is written into a
/// document a unit's toolkit builds its client from; else the listen address.
fn soap_base(server: &crate::config::ServerConfig, headers: &axum::http::HeaderMap) -> String {
    if let Some(url) = &server.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
        })
        .map_or_else(|| server.listen.to_string(), str::to_string);
    let scheme = if server.tls.is_some() || server.behind_tls_proxy {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}
