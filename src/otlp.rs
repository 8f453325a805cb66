//! Optional export of spans over OTLP/HTTP (`[telemetry] otlp_endpoint`, off by default)
//! to an OpenTelemetry collector, Jaeger, Tempo or any OTLP receiver.
//!
//! Spans are made explicitly where the work is, each in the trace of the message it is
//! about (the unit's W3C trace when it sent a `traceparent`, else the bus's own trace id),
//! so a unit's trace goes on through the bus and to the platform (whose calls carry a
//! `traceparent` of the same trace):
//!
//! * `ingress.accept` (a request's events stored), with its child `outbox.write`;
//! * `delivery.attempt`, one per attempt per target (error status when it failed);
//! * `lookup` (a citizen or business lookup; no personal data in its attributes).
//!
//! Each bus has its own tracer provider (no global state: tests run several buses in one
//! process). Spans go out in batches from the SDK's own thread; a slow or absent receiver
//! costs dropped spans, never a delivery. When export is off every call here is a no-op.

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider,
};
use std::time::Duration;

pub use crate::config::TelemetryConfig;

/// The span exporter of one bus, or nothing.
pub struct Spans {
    inner: Option<(SdkTracerProvider, SdkTracer)>,
}

impl std::fmt::Debug for Spans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.inner.is_some() {
            "Spans(exporting)"
        } else {
            "Spans(off)"
        })
    }
}

impl Default for Spans {
    fn default() -> Self {
        Spans::off()
    }
}

impl Spans {
    pub fn off() -> Spans {
        Spans { inner: None }
    }

    /// The exporter `config` asks for (off when it names no endpoint).
    pub fn start(config: &TelemetryConfig) -> Result<Spans, String> {
        use opentelemetry_otlp::{Protocol, WithExportConfig};
        let Some(endpoint) = &config.otlp_endpoint else {
            return Ok(Spans::off());
        };
        let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        let protocol = match config.otlp_protocol.as_str() {
            "http/json" => Protocol::HttpJson,
            _ => Protocol::HttpBinary,
        };
        // The exporter's own reqwest client needs the process's TLS provider.
        crate::tls_provider::install();
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(url)
            .with_protocol(protocol)
            .with_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("telemetry.otlp_endpoint: {e}"))?;
        let processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_scheduled_delay(config.export_every)
                    .build(),
            )
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("lienthong");
        Ok(Spans {
            inner: Some((provider, tracer)),
        })
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// A span in the trace `trace_id` (32 hex digits; any other id is hashed into one, so
    /// a unit's own `X-Trace-Id` still groups its spans), the child of the unit's span
    /// `parent` (16 hex digits, from its `traceparent`) when known. Without it the parent
    /// is the message's own span id, derived from the trace: every span of a message then
    /// hangs under one node of the trace.
    pub fn start_span(
        &self,
        name: &'static str,
        kind: SpanKind,
        trace_id: &str,
        parent: Option<&str>,
        attributes: Vec<KeyValue>,
    ) -> SpanHandle {
        let Some((_, tracer)) = &self.inner else {
            return SpanHandle { cx: None };
        };
        let trace = trace_id_of(trace_id);
        let parent_id = parent
            .and_then(|p| SpanId::from_hex(p).ok())
            .filter(|id| *id != SpanId::INVALID)
            .unwrap_or_else(|| message_span_id(trace));
        let remote = SpanContext::new(
            trace,
            parent_id,
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let parent_cx = Context::new().with_remote_span_context(remote);
        let span = tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(attributes)
            .start_with_context(tracer, &parent_cx);
        SpanHandle {
            cx: Some(Context::new().with_span(span)),
        }
    }

    /// A span inside `parent`.
    pub fn child(
        &self,
        parent: &SpanHandle,
        name: &'static str,
        attributes: Vec<KeyValue>,
    ) -> SpanHandle {
        let (Some((_, tracer)), Some(cx)) = (&self.inner, &parent.cx) else {
            return SpanHandle { cx: None };
        };
        let span = tracer
            .span_builder(name)
            .with_kind(SpanKind::Internal)
            .with_attributes(attributes)
            .start_with_context(tracer, cx);
        SpanHandle {
            cx: Some(cx.with_span(span)),
        }
    }

    /// Send what is collected and stop (at shutdown; waits for the export).
    pub fn shutdown(&self) {
        if let Some((provider, _)) = &self.inner
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "spans could not all be exported at shutdown");
        }
    }
}

/// A started span; ended when dropped (or by [`SpanHandle::end`]).
pub struct SpanHandle {
    cx: Option<Context>,
}

impl SpanHandle {
    /// No span (export off): callers skip building attributes for nothing.
    pub fn none() -> SpanHandle {
        SpanHandle { cx: None }
    }

    /// Mark the span failed, with why.
    pub fn fail(&self, why: impl Into<String>) {
        if let Some(cx) = &self.cx {
            cx.span().set_status(Status::error(why.into()));
        }
    }

    pub fn set(&self, attribute: KeyValue) {
        if let Some(cx) = &self.cx {
            cx.span().set_attribute(attribute);
        }
    }

    pub fn end(self) {}
}

impl Drop for SpanHandle {
    fn drop(&mut self) {
        if let Some(cx) = &self.cx {
            cx.span().end();
        }
    }
}

/// The span id standing for the message itself within its trace.
fn message_span_id(trace: TraceId) -> SpanId {
    let bytes = trace.to_bytes();
    let mut id = [0u8; 8];
    id.copy_from_slice(&bytes[8..]);
    if id == [0; 8] {
        id[7] = 1;
    }
    SpanId::from_bytes(id)
}

fn trace_id_of(text: &str) -> TraceId {
    if text.len() == 32
        && let Ok(id) = TraceId::from_hex(text)
        && id != TraceId::INVALID
    {
        return id;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    TraceId::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_are_kept_or_derived() {
        let w3c = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(trace_id_of(w3c).to_string(), w3c);
        let own = trace_id_of("unit-own-trace-7");
        assert_ne!(own, TraceId::INVALID);
        assert_eq!(own, trace_id_of("unit-own-trace-7"));
        let off = Spans::off();
        let span = off.start_span("x", SpanKind::Server, w3c, None, Vec::new());
        assert!(span.cx.is_none());
    }

    #[test]
    fn the_config_says_what_is_wrong() {
        let bad = TelemetryConfig {
            otlp_endpoint: Some("collector:4318".into()),
            otlp_protocol: "grpc".into(),
            ..TelemetryConfig::default()
        };
        let fields: Vec<String> = bad.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            ["telemetry.otlp_endpoint", "telemetry.otlp_protocol"]
        );
        assert!(TelemetryConfig::default().problems().is_empty());
    }
}
