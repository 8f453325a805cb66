//! The `lienthong` command line: run the bus, check a configuration, benchmark.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use lienthong::cli::runtime::with_runtime;
use lienthong::config;
use lienthong::telemetry::{self, LogFormat};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "lienthong",
    version,
    about = "Integration bus of the Ministry of Science and Technology"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, global = true, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bus: ingress, outbox, relay workers, health endpoints.
    Run {
        /// The configuration file.
        #[arg(long, default_value = "config/lienthong.toml")]
        config: PathBuf,
        /// Overrides outbox.data_dir.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Also run the mock unit systems: realistic traffic from all four units (a few
        /// deliberately bad events among it) posted to this bus.
        #[arg(long)]
        demo: bool,
        /// Demo events per second.
        #[arg(long, default_value_t = 20)]
        demo_rate: u32,
        /// With `transport = "amqp"`: ingress (accept and forward to the broker), worker
        /// (consume and deliver) or all (both; the default). Overrides `role` in the config.
        #[arg(long, value_enum)]
        role: Option<lienthong::config::Role>,
    },
    /// Measure ingest, end-to-end delivery, memory and restart time on this machine.
    Bench(lienthong::cli::bench::BenchArgs),
    /// Run only the bundled mock national services (for testers), on `mocks.listen`.
    Mocks {
        /// The configuration file.
        #[arg(long, default_value = "config/lienthong.toml")]
        config: PathBuf,
        /// A fault scenario (TOML: `seed`, `[[faults]]`), added to `[[mocks.faults]]`.
        #[arg(long)]
        scenario: Option<PathBuf>,
    },
    /// Test mappings against their fixture cases, or try one on a file.
    Mapping {
        #[command(subcommand)]
        command: MappingCommand,
    },
    /// The bus's state per national platform, from its admin API.
    Status(lienthong::admin::cli::AdminTarget),
    /// Where one message stands on each target, and what a waiting one waits behind.
    Message {
        #[command(flatten)]
        target: lienthong::admin::cli::AdminTarget,
        /// The id the bus answered with on 202.
        id: String,
    },
    /// Dead letters: list, show, replay, drop (through the admin API).
    Dlq {
        #[command(flatten)]
        target: lienthong::admin::cli::AdminTarget,
        #[command(subcommand)]
        command: lienthong::admin::cli::DlqCommand,
    },
    /// The action plan's KPI report for a period (CSV, Excel or PDF), from a running bus.
    Report {
        #[command(flatten)]
        target: lienthong::admin::cli::AdminTarget,
        #[command(flatten)]
        args: lienthong::admin::cli::ReportArgs,
    },
    /// Send files to a running bus as a unit's system would (JSON, XML or CSV).
    Send(lienthong::cli::send::SendArgs),
    /// The tamper-evident audit trail.
    Audit {
        #[command(subcommand)]
        command: lienthong::cli::audit::AuditCommand,
    },
    /// The message log of every exchange: check an archive, show a dossier's exchanges.
    Evidence {
        #[command(subcommand)]
        command: lienthong::cli::evidence::EvidenceCommand,
    },
    /// Outbox maintenance: encryption keys.
    Outbox {
        #[command(subcommand)]
        command: lienthong::cli::outbox::OutboxCommand,
    },
    /// Write the OpenAPI 3.1 document of the API (unit-facing and admin, or one unit's) to
    /// stdout, as a running bus serves it at /api/v1/openapi.json.
    Openapi {
        /// The configuration file.
        #[arg(long, default_value = "config/lienthong.toml")]
        config: PathBuf,
        /// Only this unit's document (what its IT team needs).
        #[arg(long)]
        unit: Option<String>,
    },
    /// Print a reference page of the book, generated from the code: every configuration
    /// key (`config`), every command (`cli`) or every metric (`metrics`), as Markdown.
    Reference {
        #[arg(value_enum)]
        page: lienthong::cli::reference::Page,
    },
    /// Each unit's procedure catalogue against the national portal's.
    Procedures {
        #[command(subcommand)]
        command: lienthong::cli::procedures::ProceduresCommand,
    },
    /// Validate a configuration and list every problem in it.
    Check {
        /// The configuration file.
        #[arg(long, default_value = "config/lienthong.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum MappingCommand {
    /// Run the fixture cases of a mapping file, or of every mapping under a directory.
    Test {
        #[arg(default_value = "mappings")]
        path: PathBuf,
        /// Write the expected file of each case that has none, from what the mapping
        /// produces now. Review what it wrote before committing it.
        #[arg(long)]
        bless: bool,
    },
    /// Map one input file and print the result.
    Run { mapping: PathBuf, input: PathBuf },
    /// Tell which encoding a file is in (UTF-8, Windows-1258, TCVN3 or VNI), with the byte
    /// sequences that decided, and the `[input]` option a mapping reading it needs.
    Detect { file: PathBuf },
    /// Explain field by field how a mapping maps an input file: the input path, the value
    /// read, each transform and its result, the final value, or where it failed.
    Explain { mapping: PathBuf, input: PathBuf },
    /// Write a first mapping from a sample export of the unit's system: every field of the
    /// target schema with the sample field that matches it, dates and code tables
    /// prepared, TODOs where nothing matched; the sample becomes its first case.
    New {
        #[arg(long)]
        unit: String,
        #[arg(long)]
        flow: String,
        /// The target's schema under mappings/_schemas, e.g. portal/DongBoHoSoMC.
        #[arg(long)]
        schema: String,
        /// A sample export (.json, .xml or .csv; any of the supported encodings).
        #[arg(long)]
        sample: PathBuf,
        /// The mappings directory.
        #[arg(long, default_value = "mappings")]
        dir: PathBuf,
        /// Replace a mapping file that exists.
        #[arg(long)]
        force: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    lienthong::tls_provider::install();
    telemetry::init(cli.log_format);
    match cli.command {
        Command::Run {
            config,
            data_dir,
            demo,
            demo_rate,
            role,
        } => run(&config, data_dir, demo.then_some(demo_rate), role),
        Command::Check { config } => check(&config),
        Command::Procedures { command } => lienthong::cli::procedures::run(command),
        Command::Reference { page } => reference(page),
        Command::Openapi { config, unit } => openapi(&config, unit.as_deref()),
        Command::Send(args) => send(args),
        Command::Status(target) => {
            admin_cli(async move { lienthong::admin::cli::status(&target).await })
        }
        Command::Message { target, id } => {
            admin_cli(async move { lienthong::admin::cli::message(&target, &id).await })
        }
        Command::Dlq { target, command } => {
            admin_cli(async move { lienthong::admin::cli::dlq(&target, command).await })
        }
        Command::Report { target, args } => {
            admin_cli(async move { lienthong::admin::cli::report(&target, args).await })
        }
        Command::Bench(args) => bench(args),
        Command::Mocks { config, scenario } => mocks(&config, scenario),
        Command::Mapping { command } => mapping(command),
        Command::Outbox { command } => lienthong::cli::outbox::outbox(command),
        Command::Audit { command } => lienthong::cli::audit::audit(command),
        Command::Evidence { command } => lienthong::cli::evidence::evidence(command),
    }
}

fn reference(page: lienthong::cli::reference::Page) -> ExitCode {
    use clap::CommandFactory;
    use lienthong::cli::reference::{self, Page};
    let text = match page {
        Page::Config => reference::config(),
        Page::Cli => reference::cli(&Cli::command()),
        Page::Metrics => reference::metrics(),
    };
    print!("{text}");
    ExitCode::SUCCESS
}

fn mapping(command: MappingCommand) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let ok = match command {
        MappingCommand::Test { path, bless } => {
            lienthong::mappings::cli::test(&path, bless, &mut out)
        }
        MappingCommand::Run { mapping, input } => {
            lienthong::mappings::cli::run(&mapping, &input, &mut out)
        }
        MappingCommand::Detect { file } => lienthong::mappings::cli::detect(&file, &mut out),
        MappingCommand::Explain { mapping, input } => {
            lienthong::mappings::cli::explain(&mapping, &input, &mut out)
        }
        MappingCommand::New {
            unit,
            flow,
            schema,
            sample,
            dir,
            force,
        } => lienthong::mappings::cli::new_mapping(
            &lienthong::mappings::cli::NewMapping {
                unit: &unit,
                flow: &flow,
                schema: &schema,
                sample: &sample,
                dir: &dir,
                force,
            },
            &mut out,
        ),
    };
    match ok {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Load and validate, printing every problem. Returns the config and the unit keys.
use lienthong::cli::checked::load;

fn openapi(path: &Path, unit: Option<&str>) -> ExitCode {
    let (cfg, _) = match load(path) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let mappings = match lienthong::mappings::MappingSet::load(&cfg) {
        Ok(m) => std::sync::Arc::new(m),
        Err(problems) => {
            eprintln!(
                "error: {} mapping problem(s); run `lienthong check`:",
                problems.len()
            );
            for p in problems {
                eprintln!("  - {}", p.replace('\n', "\n    "));
            }
            return ExitCode::from(2);
        }
    };
    let source = lienthong::contract::ContractSource {
        router: std::sync::Arc::new(lienthong::route::Router::from_config(&cfg)),
        mappings,
        config: cfg,
        admin_document: lienthong::admin::api::openapi(),
    };
    let doc = match unit {
        None => source.document(),
        Some(u) => match source.unit_document(u) {
            Some(d) => d,
            None => {
                let known: Vec<&str> = source.config.units.keys().map(String::as_str).collect();
                eprintln!(
                    "error: no unit `{u}` in {} (units: {})",
                    path.display(),
                    known.join(", ")
                );
                return ExitCode::from(2);
            }
        },
    };
    println!("{}", serde_json::to_string_pretty(&doc).expect("JSON"));
    ExitCode::SUCCESS
}

fn check(path: &Path) -> ExitCode {
    match load(path) {
        Ok((cfg, _)) => {
            let mappings = match lienthong::mappings::MappingSet::load(&cfg) {
                Ok(m) => m,
                Err(problems) => {
                    eprintln!("error: {} mapping problem(s):", problems.len());
                    for p in problems {
                        eprintln!("  - {}", p.replace('\n', "\n    "));
                    }
                    return ExitCode::from(2);
                }
            };
            let procedures = match lienthong::procedures::Catalogue::load(
                &cfg.mappings.dir,
                cfg.units.keys().map(String::as_str),
            ) {
                Ok(c) => c,
                Err(problems) => {
                    eprintln!("error: {} procedure catalogue problem(s):", problems.len());
                    for p in problems {
                        eprintln!("  - {p}");
                    }
                    return ExitCode::from(2);
                }
            };
            let dev_keys = cfg
                .units
                .values()
                .filter(|u| u.dev_key.is_some() && std::env::var(&u.key_env).is_err())
                .count();
            println!(
                "{}: OK ({} units, {} targets, {} routes, {} mappings compiled, {} procedures catalogued)",
                path.display(),
                cfg.units.len(),
                cfg.targets.len(),
                cfg.routes.len(),
                mappings.len(),
                procedures.counts(None).procedures
            );
            let uncatalogued: Vec<&str> = cfg
                .units
                .keys()
                .map(String::as_str)
                .filter(|u| procedures.procedures(u).next().is_none())
                .collect();
            if !uncatalogued.is_empty() {
                println!(
                    "note: no procedure catalogue for {} (mappings/<unit>/procedures.toml): their dossiers' MaTTHC are not checked and targets 1a, 1b show nothing for them",
                    uncatalogued.join(", ")
                );
            }
            if dev_keys > 0 {
                println!(
                    "note: {dev_keys} unit(s) use DEVELOPMENT keys from the config; set their key_env variables before going live"
                );
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn run(
    path: &Path,
    data_dir: Option<PathBuf>,
    demo_rate: Option<u32>,
    role: Option<lienthong::config::Role>,
) -> ExitCode {
    let (mut cfg, keys) = match load(path) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if let Some(role) = role {
        if role != lienthong::config::Role::All
            && cfg.transport != lienthong::config::Transport::Amqp
        {
            eprintln!(
                "error: --role {role:?} needs transport = \"amqp\" in {} (a broker to share the work with)",
                path.display()
            );
            return ExitCode::from(2);
        }
        cfg.role = role;
    }
    if let Some(dir) = data_dir {
        cfg.outbox.data_dir = dir;
    }
    with_runtime(|signal| async move {
        // SIGHUP reloads mappings: take it over before the port opens, so one sent early
        // can never terminate the bus.
        let _hangup = lienthong::mappings::hangup_signal();
        let listener = match tokio::net::TcpListener::bind(cfg.server.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "error: cannot listen on {}: {e} (is another bus running? change server.listen)",
                    cfg.server.listen
                );
                return ExitCode::FAILURE;
            }
        };
        let demo_keys = keys.clone();
        let demo_seed = cfg.mocks.seed;
        let bus = match lienthong::app::Bus::start(cfg, keys, listener).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("lienthong listening on http://{}", bus.addr);
        if let Some(rate) = demo_rate {
            let settings = lienthong::cli::demo::DemoSettings {
                seed: demo_seed,
                rate,
                ..Default::default()
            };
            println!(
                "demo: the mock unit systems post {rate} events/s; {}",
                lienthong::cli::demo::watch_hint(bus.mocks_addr)
            );
            tokio::spawn(lienthong::cli::demo::drive(
                bus.addr,
                demo_keys,
                settings,
                Default::default(),
            ));
        }
        match bus.run_until(signal).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

fn mocks(path: &Path, scenario: Option<PathBuf>) -> ExitCode {
    let mut cfg = match config::load_file(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(file) = scenario
        && let Err(e) = config::apply_scenario(&mut cfg, &file)
    {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    // Only the [mocks] section's problems stop the mocks; unit keys need not be set.
    if let Err(problems) = config::validate(&cfg, |var| std::env::var(var).ok()) {
        let mock_problems: Vec<_> = problems
            .iter()
            .filter(|p| p.path.starts_with("mocks."))
            .collect();
        if !mock_problems.is_empty() {
            eprintln!(
                "error: {} has {} problem(s) in [mocks]:",
                path.display(),
                mock_problems.len()
            );
            for p in mock_problems {
                eprintln!("  - {p}");
            }
            return ExitCode::from(2);
        }
    }
    with_runtime(|signal| async move {
        let listener = match tokio::net::TcpListener::bind(cfg.mocks.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "error: cannot listen on {}: {e} (is `lienthong run` already serving the mocks? change mocks.listen)",
                    cfg.mocks.listen
                );
                return ExitCode::FAILURE;
            }
        };
        println!(
            "lienthong mocks on http://{} (seed {}):",
            cfg.mocks.listen, cfg.mocks.seed
        );
        // Standalone, the payment mock confirms to the bus the same config describes.
        let callback = format!(
            "{}/callbacks/payment",
            cfg.server.own_base_url(cfg.server.listen)
        );
        for e in lienthong_mocks::ENDPOINTS {
            println!("  {e}");
        }
        tokio::select! {
            _ = lienthong_mocks::serve(listener, cfg.mocks.settings(Some(callback))) => {}
            _ = signal => {}
        }
        ExitCode::SUCCESS
    })
}

/// Run an admin CLI command: its output on stdout, an error on stderr with exit code 1.
fn admin_cli(command: impl Future<Output = Result<String, String>> + Send + 'static) -> ExitCode {
    with_runtime(|_signal| async move {
        match command.await {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

fn send(args: lienthong::cli::send::SendArgs) -> ExitCode {
    with_runtime(|_signal| async move {
        let mut out = std::io::stdout();
        match lienthong::cli::send::run(args, &mut out).await {
            Ok(0) => ExitCode::SUCCESS,
            Ok(_) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        }
    })
}

fn bench(args: lienthong::cli::bench::BenchArgs) -> ExitCode {
    with_runtime(|_signal| async move {
        match lienthong::cli::bench::run(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
