//! The integration tests, as one test binary: each module was a binary of its own, and
//! forty binaries each linking the whole bus made linking most of the test build. Cargo
//! runs a binary's tests two at a time here as it ran each binary's, so the tests meet the
//! same concurrency as before; what they share is `support` (the bus started in-process on
//! port 0 with its own data directory, the mocks, the broker, the browser).
//!
//! Run one module's tests with a filter: `cargo test --test it cluster::`.

mod support;

mod admin;
mod auth;
mod backlog;
mod cli;
mod cluster;
mod console;
mod contract;
mod crash;
mod dashboard;
mod dashboard_dead_letters;
mod demo;
mod deploy;
mod docs;
mod door;
mod dossiers;
mod end_to_end;
mod evidence;
mod examples;
mod hostile;
mod inbox;
mod ingress;
mod kpis;
mod log_masking;
mod lookup_purpose;
mod lookups;
mod mappings;
mod mappings_meet_mocks;
mod mask_fixtures;
mod monitoring;
mod national_flows;
mod outbox_layout;
mod outbox_model;
mod payment;
mod portal;
mod portal_rows;
mod probes;
mod procedures_sync;
mod protection;
mod ratings;
mod reconciliation;
mod relay;
mod retention;
mod soap;
mod telemetry;
