//! Configuration: TOML structs (strict: unknown keys are errors; a file per section,
//! which the component it configures reads from here — the config never imports the
//! components), loading with environment overrides (`load`), and a pure validation pass
//! ([`validate`]) naming every problem at once.

mod admin;
pub mod amqp;
pub mod delivery;
mod evidence;
mod load;
mod lookups;
mod paths;
mod procedures;
mod route;
mod server;
mod target_sections;
mod telemetry;
mod validate;

pub use admin::{AdminConfig, AdminRole, AdminTokenConfig, Digests, credential_list};
pub use amqp::{Acknowledge, AmqpConfig};
pub use delivery::{CircuitBreakerConfig, RateLimitConfig, RetryConfig};
pub use evidence::{EvidenceConfig, EvidenceMode};
pub use lienthong_mocks::config::{HumanDuration, MocksConfig, Scenario};
pub use load::{LoadError, apply_scenario, load_file, load_str};
pub use lookups::{LookupException, LookupTargetConfig, LookupsConfig, PurposeConfig};
pub use procedures::{ProceduresConfig, UnknownProcedure};
pub use route::{Conditions, DeliverWhen, OnDead, Ordering, RouteConfig, Validate};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
pub use target_sections::{
    AuthConfig, DropEncoding, FileDropConfig, PaymentAuthConfig, PortalAuthConfig, TlsConfig,
    drop_folder,
};
pub use telemetry::TelemetryConfig;
pub use validate::{Problem, network_facing, validate};

/// The whole configuration file.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The file it was read from (credentials are read again from it on SIGHUP); `None`
    /// for a configuration built in memory.
    #[serde(skip)]
    pub source: Option<std::path::PathBuf>,
    /// `development` allows the `dev_key` credentials of the shipped config; `production`
    /// refuses them, so a forgotten development key can never reach a real deployment.
    #[serde(default)]
    pub environment: Environment,
    /// `embedded` (default): one process delivers from its own outbox. `amqp`: nodes
    /// share the work through RabbitMQ (`[amqp]`).
    #[serde(default)]
    pub transport: Transport,
    /// What this process does with `transport = "amqp"` (`lienthong run --role` overrides).
    #[serde(default)]
    pub role: Role,
    #[serde(default)]
    pub amqp: AmqpConfig,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub outbox: OutboxConfig,
    #[serde(default)]
    pub relay: RelayConfig,
    #[serde(default)]
    pub mocks: MocksConfig,
    /// Export of spans over OTLP (off unless `otlp_endpoint` is set).
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    #[serde(default)]
    pub mappings: MappingsConfig,
    /// What a dossier of a procedure missing from its unit's catalogue does.
    #[serde(default)]
    pub procedures: ProceduresConfig,
    #[serde(default)]
    pub lookups: LookupsConfig,
    #[serde(default)]
    pub inbox: InboxConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    /// The message log of every exchange, signed and archived by day.
    #[serde(default)]
    pub evidence: EvidenceConfig,
    #[serde(default)]
    pub units: BTreeMap<String, UnitConfig>,
    /// The targets every event of the route goes to (see `deliver_when` for those that take only some).
    #[serde(default)]
    pub targets: BTreeMap<String, TargetConfig>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

#[derive(
    Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Embedded,
    Amqp,
}

/// A node's part in a cluster (`transport = "amqp"`).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    Deserialize,
    PartialEq,
    Eq,
    clap::ValueEnum,
    schemars::JsonSchema,
    serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Ingress and worker in one process.
    #[default]
    All,
    /// Accepts events into its outbox and forwards them to the broker.
    Ingress,
    /// Consumes from the broker and delivers to the targets.
    Worker,
}

#[derive(
    Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    #[default]
    Development,
    Production,
}

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the ingress and admin listener.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes (413 above it).
    pub max_body_bytes: usize,
    /// Most events in one batch request (413 above it).
    pub max_batch: usize,
    /// A client must send its request headers within this time, or the connection is
    /// closed (slow-loris clients hold connections open by trickling headers).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub header_read_timeout: Duration,
    /// A request body must arrive within this time (408 otherwise).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub body_read_timeout: Duration,
    /// Serve HTTPS instead of HTTP (units, callbacks, admin API and dashboard alike).
    pub tls: Option<ListenerTlsConfig>,
    /// A proxy or load balancer in front of the bus terminates HTTPS (production needs
    /// this or `tls`); the dashboard's cookie is then marked `Secure`.
    #[serde(default)]
    pub behind_tls_proxy: bool,
    /// Accept the repository's `dev_*` credentials although the bus listens on more than
    /// loopback: only for a closed test network (the compose cluster). Logged loudly.
    #[serde(default)]
    pub allow_dev_credentials_on_network: bool,
    /// The address units reach the bus at (`https://lienthong.most.gov.vn`), written into
    /// the WSDL's endpoint. Unset: the request's `Host` (a hostname and port only), which
    /// whoever asks for the WSDL controls — set it wherever the WSDL is handed out.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Bytes of request bodies read at once over every connection (each counted at its
    /// declared length, else its endpoint's limit); past it a request is answered 503
    /// before its body is read, so no crowd of senders can hold more memory than this.
    pub max_body_bytes_in_flight: usize,
    /// Speak HTTP/2 without TLS (h2c) too. Off: plain connections are HTTP/1.1 only (HTTP/2
    /// comes over TLS, by ALPN).
    pub h2c: bool,
    /// Connections open at once for any endpoint. Past it, 64 more are kept for the
    /// operators (health, metrics, admin API, dashboard; a unit's endpoint there is 503
    /// `connections_exhausted`), and past those a new connection is closed at once. Keep it
    /// plus 64 under the process's file-descriptor limit, with room for the outbox and the
    /// platforms.
    pub max_connections: usize,
}

/// The listener's certificate chain and private key (PEM files).
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListenerTlsConfig {
    /// The certificate chain (PEM).
    pub cert_file: PathBuf,
    /// The private key (PEM).
    pub key_file: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".parse().expect("literal address"),
            max_body_bytes: 4 * 1024 * 1024,
            max_batch: 1000,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            tls: None,
            behind_tls_proxy: false,
            allow_dev_credentials_on_network: false,
            public_url: None,
            max_body_bytes_in_flight: 256 * 1024 * 1024,
            h2c: false,
            max_connections: 4096,
        }
    }
}

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// Where the outbox (`outbox.redb`) lives (created with owner-only permissions).
    pub data_dir: PathBuf,
    /// Cap on pending deliveries (one per message and target). Over it ingress answers 503.
    pub max_pending: u64,
    /// Cap on the payload bytes of pending deliveries. Over it ingress answers 503.
    pub max_pending_bytes: u64,
    /// How long delivered records stay queryable before they are compacted away.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub retention: Duration,
    /// How long an `Idempotency-Key` is remembered.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub idempotency_ttl: Duration,
    /// How long a note is kept after it was first written: which unit a payment reference
    /// belongs to (the platform's confirmation must come within it), who dropped a dead
    /// letter and why.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub note_retention: Duration,
    /// How often retention and idempotency expiry run.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub sweep_interval: Duration,
    /// Pending deliveries each target keeps in memory; the rest wait on disk.
    pub window: usize,
    /// The outbox store's page cache (redb), in MiB.
    pub cache_mb: u64,
    /// Encryption at rest of the records holding personal data. Required in production.
    pub encryption: Option<EncryptionConfig>,
}

/// The tamper-evident audit trail (see [`crate::audit`]).
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The audit log file; by default `audit.log` in the outbox's data directory.
    pub path: Option<PathBuf>,
}

impl Config {
    /// Where the audit log is written.
    pub fn audit_path(&self) -> PathBuf {
        self.audit
            .path
            .clone()
            .unwrap_or_else(|| self.outbox.data_dir.join("audit.log"))
    }

    /// Where the message log's day files go.
    pub fn evidence_dir(&self) -> PathBuf {
        self.evidence
            .dir
            .clone()
            .unwrap_or_else(|| self.outbox.data_dir.join("evidence"))
    }

    /// The message log's signing key file.
    pub fn evidence_key_file(&self) -> PathBuf {
        self.evidence
            .key_file
            .clone()
            .unwrap_or_else(|| self.outbox.data_dir.join("evidence.key"))
    }
}

/// Where the outbox keyring comes from: never the config file itself. The first of these
/// that is set is used: the variable `keys_env`, the file `keys_file`, and in development
/// only `dev_keys_file`. A keyring is one `id:base64(32 bytes)` per line, current key first.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EncryptionConfig {
    /// The environment variable holding the keyring (one `id:base64-key` per line, the current key first).
    #[serde(default = "default_keys_env")]
    pub keys_env: String,
    /// A file holding the keyring, read when the variable is unset (keep it out of the data directory and its backups).
    #[serde(default)]
    pub keys_file: Option<PathBuf>,
    /// A keyring checked into the repository for development; refused in production.
    #[serde(default)]
    pub dev_keys_file: Option<PathBuf>,
}

fn default_keys_env() -> String {
    "LIENTHONG_OUTBOX_KEYS".into()
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            data_dir: PathBuf::from("./data"),
            max_pending: 5_000_000,
            max_pending_bytes: 4 * 1024 * 1024 * 1024,
            retention: Duration::from_secs(30 * 24 * 3600),
            idempotency_ttl: Duration::from_secs(7 * 24 * 3600),
            note_retention: Duration::from_secs(90 * 24 * 3600),
            sweep_interval: Duration::from_secs(60),
            window: 20_000,
            cache_mb: 16,
            encryption: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// On SIGINT/SIGTERM, how long in-flight deliveries may take to finish.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub shutdown_grace: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// File drop: `<data_dir>/inbox/<unit>/[<flow>/]` (see `ingress::inbox`).
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct InboxConfig {
    /// Take files from the drop folders.
    pub enabled: bool,
    /// Default `<outbox.data_dir>/inbox`.
    pub dir: Option<PathBuf>,
    /// How often the folders are looked at.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub poll_interval: Duration,
    /// A file is complete once unchanged this long.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub settle: Duration,
    /// Files in `processed/` and `rejected/` (personal data in clear, as the unit wrote
    /// them) and their reports are deleted this long after they were taken.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub keep: Duration,
}

impl Default for InboxConfig {
    fn default() -> Self {
        InboxConfig {
            enabled: true,
            dir: None,
            poll_interval: Duration::from_secs(1),
            settle: Duration::from_secs(2),
            keep: Duration::from_secs(7 * 86400),
        }
    }
}

/// Where mapping files live and how changes to them are picked up.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MappingsConfig {
    /// Directory of the mapping files routes name (and of `_schemas/`).
    pub dir: PathBuf,
    /// Reload changed mapping files while running (SIGHUP reloads in any case).
    pub watch: bool,
    /// How often the directory is checked for changes.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub poll_interval: Duration,
}

impl Default for MappingsConfig {
    fn default() -> Self {
        MappingsConfig {
            dir: PathBuf::from("mappings"),
            watch: true,
            poll_interval: Duration::from_secs(2),
        }
    }
}

/// A unit system allowed to post events.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitConfig {
    /// Human-readable name, shown in logs and status views.
    #[serde(default)]
    pub name: String,
    /// Name of the environment variable holding this unit's bearer key. Secrets never
    /// live in the config file.
    pub key_env: String,
    /// For units that speak SOAP (`POST /soap/<unit>`): operation (first element of the
    /// Body) → flow, e.g. `{ GuiHoSo = "dossier_sync" }`.
    #[serde(default)]
    pub soap_operations: BTreeMap<String, String>,
    /// DEVELOPMENT ONLY: a key used when `key_env` is unset. Refused in production.
    #[serde(default)]
    pub dev_key: Option<String>,
    /// Requests per second this unit may send (events, SOAP, lookups); over it: 429 with
    /// Retry-After. None: no limit of its own.
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
    /// The environment variable holding this unit's HMAC signing secret: when set, each of
    /// its requests must be signed (see `ingress::signature`).
    #[serde(default)]
    pub hmac_secret_env: Option<String>,
    /// DEVELOPMENT ONLY: a signing secret used when `hmac_secret_env`'s variable is unset.
    #[serde(default)]
    pub dev_hmac_secret: Option<String>,
    /// The SHA-256 (hex) of the unit's key, or a list of them during a rotation, used when
    /// `key_env` is unset: the key itself then never reaches the bus's machine
    /// (`printf %s KEY | sha256sum`).
    #[serde(default)]
    pub key_sha256: Option<Digests>,
}

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Which connector speaks to this target. `http`: POST the payload as JSON.
    pub kind: TargetKind,
    /// The platform's address (`https://`; plain `http://` only to this machine unless `allow_plain_http`).
    pub url: String,
    /// Plain `http://` to a host other than this machine is refused unless this is set
    /// (a national platform is reached over TLS; a trusted internal network may differ).
    #[serde(default)]
    pub allow_plain_http: bool,
    /// Longest wait for one call's answer.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    #[schemars(with = "crate::config::HumanDuration")]
    pub timeout: Duration,
    /// Deliveries in flight at once for this target.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Most deliveries (of different dossiers) merged into one call where the target's
    /// connector can (the portal's `data[]`). 1: one message per call.
    #[serde(default = "default_batch")]
    pub batch: usize,
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
    #[serde(default)]
    pub retry: RetryConfig,
    #[serde(default)]
    pub circuit_breaker: CircuitBreakerConfig,
    /// For `kind = "portal"`: how to log in and the ministry's unit code.
    #[serde(default)]
    pub portal: Option<PortalAuthConfig>,
    /// For `kind = "payment"`: partner code and the shared signing key.
    #[serde(default)]
    pub payment: Option<PaymentAuthConfig>,
    /// How an `http` target is authenticated: `api_key`, `lgsp` or `oauth2`.
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// Extra CA certificates to trust and a client identity for mutual TLS (PEM files).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// For `kind = "file_drop"`: the encoding and file extension.
    #[serde(default)]
    pub file_drop: Option<FileDropConfig>,
}

pub(crate) fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_concurrency() -> usize {
    8
}

fn default_batch() -> usize {
    1
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// POST the (mapped) body to `url`.
    Http,
    /// The national portal: session login, `TraCuuHoSo` for `isUpdating`, error codes.
    Portal,
    /// The payment platform: signed `Init`; its `Confirm` callbacks come to
    /// `/callbacks/payment`.
    Payment,
    /// The ministry's TTHC information system (Hệ thống thông tin giải quyết TTHC của Bộ),
    /// which every dossier is synced with besides the portal. Its interface is not public:
    /// modelled on the portal's (session login, `DongBoHoSoMC`, `CapNhatTienDoHoSoMC`,
    /// `TraCuuHoSo`; assumed), so it takes a `portal` section and the portal's mappings.
    Ministry,
    /// A folder a unit's import job reads (the IP Office): each message one file, written
    /// whole then renamed, in the unit's encoding. `url` is the folder.
    FileDrop,
}
