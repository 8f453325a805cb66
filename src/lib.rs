//! lienthong: the integration bus of the Ministry of Science and Technology.
//!
//! A message travels through the modules in this order, and the module tree mirrors it:
//!
//! ```text
//! ingress ─► route ─► outbox (redb, group commit) ─► relay (per-target workers) ─► connector
//!                                                     admin (health, readiness) beside it
//! ```
//!
//! * [`ingress`] accepts unit events over HTTP, authenticates the unit and validates input.
//! * [`route`] decides which flow an event belongs to, its ordering key and its targets.
//! * [`outbox`] holds every (message, target) delivery durably until it is delivered or dead.
//! * [`relay`] runs per-target worker pools with rate limits, circuit breakers and retries.
//! * [`connector`] speaks to a target system and classifies each outcome.
//! * [`procedures`] each unit's procedure catalogue (the KPIs' targets 1a, 1b; known codes).
//! * [`app`] wires the parts together for `lienthong run`; [`config`] loads and validates
//!   the TOML configuration before anything starts.
//!
//! [`layers`] writes the layers down, top to bottom, and checks that every import points
//! down them.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod audit;
pub mod cli;
pub mod config;
pub mod connector;
pub mod contract;
pub mod delivery;
pub mod envelope;
pub mod evidence;
pub mod hex;
pub mod ingress;
pub mod layers;
pub mod lookup;
pub mod mappings;
pub mod otlp;
pub mod outbox;
pub mod procedures;
pub mod redact;
pub mod relay;
pub mod route;
pub mod server;
pub mod telemetry;
pub mod time;
pub mod tls_provider;
pub mod tracecontext;
pub mod transport;
pub mod web;
