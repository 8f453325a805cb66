//! Bundled mock services for lienthong: real HTTP servers on loopback that testers, the
//! embedded default configuration and the test suite deliver to.
//!
//! The national platforms (portal, population, business registry, payment, data store,
//! notifications), the generic recording sink (`/sink/{target}`), mock unit systems
//! (receivers and traffic generators, [`units`]), and fault injection in front of them all
//! ([`faults`]). `lienthong mocks` serves them standalone; `lienthong run` in-process.
#![forbid(unsafe_code)]

pub mod business;
pub mod config;
pub mod datastore;
pub mod faults;
pub mod oauth;
pub mod payment;
pub mod population;
pub mod portal;
pub mod sink;
pub mod units;

pub use sink::{Faults, Received, Sink};

/// A reqwest client builder that works whether or not the build gives reqwest TLS: built
/// with the bus, reqwest has rustls and no crypto provider of its own (the bus chose
/// `ring`, see the bus's `tls_provider`), so one is installed first.
pub fn http_client() -> reqwest::ClientBuilder {
    // An error means a provider is installed already: keep it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// Seed of the synthetic registers when none is configured.
pub const DEFAULT_SEED: u64 = 20_261_128;

/// The paths the bundled mocks answer on, for start-up messages and the README.
pub const ENDPOINTS: &[&str] = &[
    "POST /sink/{target}            recording sink (GET lists what arrived)",
    "POST /portal/login, /portal/api national portal: DongBoHoSoMC, CapNhatTienDoHoSoMC, TraCuuHoSo",
    "GET  /_mock/portal/dossiers     portal dossiers, status histories, regressions",
    "POST /bo-tthc/login, /bo-tthc/api  ministry TTHC system (modelled on the portal; GET /_mock/bo-tthc/dossiers)",
    "GET  /business/TraCuuThongTinDoanhNghiep?MaSoDoanhNghiep=  business register",
    "POST /population                SOAP 1.1: TraCuuThongTinCongDan, XacThucThongTinCongDan",
    "POST /payment                   payment platform: Init, GetBill; signed Confirm callbacks to the bus",
    "POST /datastore/documents       electronic data store upload (GET /datastore/owners/{owner}/documents)",
    "POST /notify/messages           SMS/Zalo (GET /_mock/notify/messages)",
    "POST /units/{unit}/{channel}    mock unit systems receive what the bus sends back (GET /_mock/units/{unit}/received)",
    "(folder) mocks.ipo_drop_dir     the IP Office's import job: reads the TCVN3 files a file_drop target writes",
    "GET  /_mock/payment/transactions, /_mock/datastore/documents, /_mock/notify/messages  state views",
    "POST /oauth/token               OAuth 2.0 client credentials (lienthong / mock-oauth-secret); the gateway in front of population and business checks its tokens",
    "POST /_mock/faults              fault rules per service/operation (GET shows them)",
    "GET  /_mock/{service}/requests  everything a mock received; POST /_mock/reset clears all state",
];

/// How the bundled mocks behave: the seed of their synthetic data and fault draws, the
/// fault rules in force from the start, and the knobs testers turn most.
#[derive(Clone, Debug)]
pub struct MockSettings {
    pub seed: u64,
    pub faults: Vec<faults::FaultRule>,
    /// The portal's success `error_code`: `0`, `"0"` or `"00"` (all seen in the field).
    pub portal_success_code: serde_json::Value,
    pub portal_session_ttl: std::time::Duration,
    /// Where payment `Confirm` callbacks go (the bus's `/callbacks/payment`); None: none.
    pub payment_callback_url: Option<String>,
    pub payment_callback_delay: std::time::Duration,
    /// Shares of paid and failed payments; the rest expire.
    pub payment_paid: f64,
    pub payment_failed: f64,
    /// A folder the mock IP Office system imports files from (TCVN3), as its real import
    /// job does; what it read is listed at `GET /_mock/units/ipo/received`.
    pub ipo_drop_dir: Option<std::path::PathBuf>,
}

impl Default for MockSettings {
    fn default() -> Self {
        let portal = portal::PortalConfig::default();
        let payment = payment::PaymentConfig::default();
        MockSettings {
            seed: DEFAULT_SEED,
            faults: Vec::new(),
            portal_success_code: portal.success_code,
            portal_session_ttl: portal.session_ttl,
            payment_callback_url: payment.callback_url,
            payment_callback_delay: payment.callback_delay,
            payment_paid: payment.paid,
            payment_failed: payment.failed,
            ipo_drop_dir: None,
        }
    }
}

/// Serve every bundled mock on `listener` until the task is dropped. The fault rules of
/// `settings` are in force from the start; `POST /_mock/faults` replaces them at runtime.
/// A background task that ends with its owner.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub async fn serve(listener: tokio::net::TcpListener, settings: MockSettings) {
    let seed = settings.seed;
    let sink = Sink::new(Faults::default());
    let portal = portal::Portal::new(portal::PortalConfig {
        success_code: settings.portal_success_code.clone(),
        session_ttl: settings.portal_session_ttl,
        ..portal::PortalConfig::default()
    });
    let ministry = portal::Portal::ministry();
    let oauth = oauth::OAuth::default();
    let datastore = datastore::DataStore::default();
    let registry = business::Registry::generate(seed, 5_000);
    let population = population::Population::generate(seed, 10_000);
    let payment = payment::Payment::new(payment::PaymentConfig {
        seed,
        callback_url: settings.payment_callback_url.clone(),
        callback_delay: settings.payment_callback_delay,
        paid: settings.payment_paid,
        failed: settings.payment_failed,
        ..payment::PaymentConfig::default()
    });
    let units = units::UnitReceivers::default();
    // Stops with the mocks: dropped (and aborted) when this future ends or is dropped.
    let _importer = settings
        .ipo_drop_dir
        .clone()
        .map(|dir| AbortOnDrop(units.import_folder("ipo", dir)));
    let router = sink
        .router()
        .merge(portal.router())
        .merge(ministry.router())
        .merge(datastore.router())
        .merge(registry.router().merge(population.router()).layer(
            axum::middleware::from_fn_with_state(oauth.clone(), oauth::gateway),
        ))
        .merge(payment.router())
        .merge(units.router())
        .merge(oauth.router());
    let chaos = faults::Chaos::new(seed);
    chaos.set_rules(settings.faults);
    {
        let (sink, portal, ministry, payment, datastore, units) = (
            sink.clone(),
            portal.clone(),
            ministry.clone(),
            payment.clone(),
            datastore.clone(),
            units.clone(),
        );
        chaos.on_reset(move || {
            sink.reset();
            portal.reset();
            ministry.reset();
            payment.reset();
            datastore.reset();
            units.reset();
        });
    }
    let router = chaos.wrap(router);
    let _ = axum::serve(listener, router).await;
}
