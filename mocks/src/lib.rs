//! Bundled mock services for lienthong: real HTTP servers on loopback that testers, the
//! embedded default configuration and the test suite deliver to.
//!
//! So far: the generic recording sink (`/sink/{target}`), the receiver for the core
//! relay's HTTP JSON connector, with fault injection; and the national portal's dossier
//! sync (`/portal/...`). The other national platform mocks join them here.
#![forbid(unsafe_code)]

pub mod business;
pub mod datastore;
pub mod faults;
pub mod payment;
pub mod population;
pub mod portal;
pub mod sink;

pub use sink::{Faults, Received, Sink};

/// Seed of the synthetic registers when none is configured.
pub const DEFAULT_SEED: u64 = 20_261_128;

/// The paths the bundled mocks answer on, for start-up messages and the README.
pub const ENDPOINTS: &[&str] = &[
    "POST /sink/{target}            recording sink (GET lists what arrived)",
    "POST /portal/login, /portal/api national portal: DongBoHoSoMC, CapNhatTienDoHoSoMC, TraCuuHoSo",
    "GET  /_mock/portal/dossiers     portal dossiers, status histories, regressions",
    "GET  /business/TraCuuThongTinDoanhNghiep?MaSoDoanhNghiep=  business register",
    "POST /population                SOAP 1.1: TraCuuThongTinCongDan, XacThucThongTinCongDan",
    "POST /payment                   payment platform: Init, GetBill; signed Confirm callbacks to the bus",
    "POST /datastore/documents       electronic data store upload (GET /datastore/owners/{owner}/documents)",
    "POST /notify/messages           SMS/Zalo (GET /_mock/notify/messages)",
    "POST /_mock/faults              fault rules per service/operation (GET shows them)",
    "GET  /_mock/{service}/requests  everything a mock received; POST /_mock/reset clears",
];

/// Serve every bundled mock on `listener` until the task is dropped.
/// `faults` are the rules in force from the start (`[[mocks.faults]]` in the config);
/// `POST /_mock/faults` replaces them at runtime.
pub async fn serve(listener: tokio::net::TcpListener, seed: u64, faults: Vec<faults::FaultRule>) {
    let sink = Sink::new(Faults::default());
    let portal = portal::Portal::new(portal::PortalConfig::default());
    let datastore = datastore::DataStore::default();
    let registry = business::Registry::generate(seed, 5_000);
    let population = population::Population::generate(seed, 10_000);
    let payment = payment::Payment::new(payment::PaymentConfig {
        seed,
        ..payment::PaymentConfig::default()
    });
    let router = sink
        .router()
        .merge(portal.router())
        .merge(datastore.router())
        .merge(registry.router())
        .merge(population.router())
        .merge(payment.router());
    let chaos = faults::Chaos::new(seed);
    chaos.set_rules(faults);
    let router = chaos.wrap(router);
    let _ = axum::serve(listener, router).await;
}
