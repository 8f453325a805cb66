//! The `[telemetry]` section: where spans are exported over OTLP ([`crate::otlp`] sends
//! them).

use serde::Deserialize;
use std::time::Duration;

/// `[telemetry]`.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The OTLP/HTTP receiver's base URL (`http://collector:4318`; `/v1/traces` is added);
    /// unset: no spans are exported.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// `http/protobuf` (default) or `http/json`.
    #[serde(default = "default_protocol")]
    pub otlp_protocol: String,
    /// The `service.name` the spans carry.
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// How often collected spans are sent.
    #[serde(default = "default_export_every", with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub export_every: Duration,
}

fn default_protocol() -> String {
    "http/protobuf".into()
}

fn default_service_name() -> String {
    "lienthong".into()
}

fn default_export_every() -> Duration {
    Duration::from_secs(5)
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            otlp_endpoint: None,
            otlp_protocol: default_protocol(),
            service_name: default_service_name(),
            export_every: default_export_every(),
        }
    }
}

impl TelemetryConfig {
    /// What is wrong with it, if anything (checked before the bus starts).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(url) = &self.otlp_endpoint
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            out.push((
                "telemetry.otlp_endpoint".into(),
                format!("`{url}` is not an http:// or https:// URL (e.g. http://collector:4318)"),
            ));
        }
        if !matches!(self.otlp_protocol.as_str(), "http/protobuf" | "http/json") {
            out.push((
                "telemetry.otlp_protocol".into(),
                format!("`{}` is not http/protobuf or http/json", self.otlp_protocol),
            ));
        }
        out
    }
}
