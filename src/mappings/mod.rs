//! Mappings at run time: which compiled mapping turns a route's events into each target's
//! format, loaded at start and reloaded on SIGHUP or when a file changes.
//!
//! Mappings are applied by the relay at delivery time, not at ingress: the outbox keeps
//! the event as the unit sent it (decoded to JSON), so a corrected mapping fixes every
//! message still pending or dead-lettered, and a reload never touches the queue. A reload
//! swaps the whole table at once between two deliveries; a delivery in progress finishes
//! with the version it started with, so nothing is dropped or reordered. A file that no
//! longer compiles, or no longer passes its cases, is refused with the reason in the log,
//! the status API and the dashboard, and its previous version stays in use.

pub mod cli;

use crate::config::Config;
use crate::envelope::Envelope;
use lienthong_mapping::codec::DecodeOptions;
use lienthong_mapping::door::PublishedSchema;
use lienthong_mapping::{Format, Mapping};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// (unit, flow, target).
type DeliveryKey = (String, String, String);

/// A route's event schema compiled for the door, and the generation it was compiled from.
type DoorSchema = (u64, Arc<PublishedSchema>);

/// One compiled generation of every mapping the routes name, by unit and flow, so a
/// delivery finds its mapping from borrowed names (this runs for every delivery).
#[derive(Default)]
struct Table {
    routes: HashMap<String, HashMap<String, RouteTable>>,
    count: usize,
}

/// The mappings of one route.
#[derive(Default)]
struct RouteTable {
    by_target: HashMap<String, Arc<Mapping>>,
    /// How ingress decodes the route's XML or CSV bodies, from its mappings.
    input: Option<DecodeOptions>,
}

impl Table {
    fn route(&self, unit: &str, flow: &str) -> Option<&RouteTable> {
        self.routes.get(unit)?.get(flow)
    }

    fn get(&self, (unit, flow, target): &DeliveryKey) -> Option<&Arc<Mapping>> {
        self.route(unit, flow)?.by_target.get(target)
    }

    fn insert(&mut self, (unit, flow, target): &DeliveryKey, m: Arc<Mapping>) {
        let route = self
            .routes
            .entry(unit.clone())
            .or_default()
            .entry(flow.clone())
            .or_default();
        if route.by_target.insert(target.clone(), m).is_none() {
            self.count += 1;
        }
    }
}

/// The body a connector sends to a target.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub content_type: &'static str,
    pub body: bytes::Bytes,
}

/// The mappings of every route, swappable while the bus runs.
pub struct MappingSet {
    dir: PathBuf,
    /// Lookup mappings by convention (`<unit>/<name>.toml`), compiled on first use and
    /// forgotten on reload.
    lookups: std::sync::Mutex<HashMap<String, Arc<Mapping>>>,
    /// (unit, flow, target) → mapping file relative to `dir`.
    wanted: BTreeMap<DeliveryKey, String>,
    current: RwLock<Arc<Table>>,
    /// Fingerprint of the directory when last loaded, to notice changes.
    seen: RwLock<Vec<(PathBuf, SystemTime, u64)>>,
    /// Counts reloads: a body rendered before one is rendered again after it.
    generation: std::sync::atomic::AtomicU64,
    /// What the last reload refused (file, reason), for the dashboard and the status API.
    refused: RwLock<Refusals>,
    /// Each route's event schema compiled for the door, with the generation it was
    /// compiled from (a reload compiles it again on first use).
    door_schemas: std::sync::Mutex<HashMap<(String, String), DoorSchema>>,
    /// The largest body any route takes (`server.max_body_bytes`, a route's own): every
    /// mapping decodes inputs that large.
    max_input: usize,
}

/// The mappings the last reload refused, and when.
#[derive(Clone, Debug, Default)]
pub struct Refusals {
    pub at_ms: u64,
    pub problems: Vec<String>,
}

impl MappingSet {
    /// Compile every mapping the routes name. Errors list every problem, each naming the
    /// route and target, and the file, line and field.
    pub fn load(config: &Config) -> Result<MappingSet, Vec<String>> {
        let mut wanted = BTreeMap::new();
        for r in &config.routes {
            for (target, file) in &r.mappings {
                wanted.insert(
                    (r.unit.clone(), r.flow.clone(), target.clone()),
                    file.clone(),
                );
            }
        }
        let set = MappingSet {
            dir: config.mappings.dir.clone(),
            lookups: Default::default(),
            wanted,
            current: RwLock::new(Arc::new(Table::default())),
            seen: RwLock::new(Vec::new()),
            generation: Default::default(),
            refused: Default::default(),
            door_schemas: Default::default(),
            max_input: config
                .routes
                .iter()
                .filter_map(|r| r.max_body_bytes)
                .fold(config.server.max_body_bytes, usize::max),
        };
        let (table, problems) = set.compile(None);
        if !problems.is_empty() {
            return Err(problems);
        }
        *set.current.write().unwrap() = Arc::new(table);
        *set.seen.write().unwrap() = fingerprint(&set.dir);
        Ok(set)
    }

    /// An empty set: every target receives events as sent.
    pub fn empty() -> MappingSet {
        MappingSet {
            dir: PathBuf::from("mappings"),
            lookups: Default::default(),
            wanted: BTreeMap::new(),
            current: RwLock::new(Arc::new(Table::default())),
            seen: RwLock::new(Vec::new()),
            generation: Default::default(),
            refused: Default::default(),
            door_schemas: Default::default(),
            max_input: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.current.read().unwrap().count
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Compile every wanted mapping; with `previous`, a failing file keeps its old version.
    fn compile(&self, previous: Option<&Table>) -> (Table, Vec<String>) {
        let mut table = Table::default();
        let mut problems = Vec::new();
        // A file used by several routes is compiled once.
        let mut compiled: HashMap<&str, Result<Arc<Mapping>, String>> = HashMap::new();
        for (key, file) in &self.wanted {
            let result = compiled
                .entry(file.as_str())
                .or_insert_with(|| {
                    let path = self.dir.join(file);
                    let mut m = Mapping::load(&path, &self.dir).map_err(|e| e.to_string())?;
                    m.allow_input_bytes(self.max_input);
                    // Every load runs the file's cases, at start and in `check` as on a
                    // reload: an edit that breaks one is refused like one that does not
                    // compile (on a reload the running version stays; at start the bus
                    // does not start), so a refused edit never goes live at a restart.
                    passes_its_cases(&m, &path)?;
                    Ok(Arc::new(m))
                })
                .clone();
            match result {
                Ok(m) => {
                    table.insert(key, m);
                }
                Err(e) => {
                    let (unit, flow, target) = key;
                    problems.push(format!(
                        "route {unit}/{flow}, target {target}: mapping {file}:\n{e}"
                    ));
                    if let Some(old) = previous.and_then(|p| p.get(key)) {
                        table.insert(key, Arc::clone(old));
                    }
                }
            }
        }
        // Ingress decodes a route's non-JSON bodies the way its mappings read them; the
        // mappings of one route must agree on that.
        for (unit, flows) in &mut table.routes {
            for (flow, route) in flows {
                let mut targets: Vec<(&String, &Arc<Mapping>)> = route.by_target.iter().collect();
                targets.sort_by_key(|(t, _)| *t);
                let Some(&(first_target, first)) = targets.first() else {
                    continue;
                };
                let format = first.input_format();
                if let Some((t, m)) = targets.iter().find(|(_, m)| m.input_format() != format) {
                    problems.push(format!(
                        "route {unit}/{flow}: the mappings read different input formats ({first_target}: {}, {t}: {}); one event has one format",
                        format.name(),
                        m.input_format().name()
                    ));
                }
                if format != Format::Json {
                    route.input = Some(first.decode_options().clone());
                }
            }
        }
        (table, problems)
    }

    /// Recompile everything now. Files that fail keep their previous version; the errors
    /// are returned (and should be logged). Returns how many mappings are in use.
    pub fn reload(&self) -> Result<usize, Vec<String>> {
        let fp = fingerprint(&self.dir);
        let previous = self.current.read().unwrap().clone();
        let (table, problems) = self.compile(Some(&previous));
        let n = table.count;
        *self.current.write().unwrap() = Arc::new(table);
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        self.lookups.lock().unwrap().clear();
        *self.seen.write().unwrap() = fp;
        *self.refused.write().unwrap() = Refusals {
            at_ms: crate::time::now_ms(),
            problems: problems.clone(),
        };
        if problems.is_empty() {
            Ok(n)
        } else {
            Err(problems)
        }
    }

    /// What the last reload refused (nothing before the first reload).
    pub fn refused(&self) -> Refusals {
        self.refused.read().unwrap().clone()
    }

    /// How many times the mappings were reloaded (see [`crate::delivery::rendered`]).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The mapping `<unit>/<name>.toml` (lookups find theirs by this convention).
    pub fn lookup_mapping(&self, unit: &str, name: &str) -> Result<Arc<Mapping>, String> {
        let key = format!("{unit}/{name}");
        if let Some(m) = self.lookups.lock().unwrap().get(&key) {
            return Ok(Arc::clone(m));
        }
        let file = self.dir.join(unit).join(format!("{name}.toml"));
        if !file.exists() {
            return Err(format!(
                "unit `{unit}` has no lookup mapping {} (add it to enable this lookup)",
                file.display()
            ));
        }
        let mut m = Mapping::load(&file, &self.dir).map_err(|e| e.to_string())?;
        m.allow_input_bytes(self.max_input);
        let m = Arc::new(m);
        self.lookups.lock().unwrap().insert(key, Arc::clone(&m));
        Ok(m)
    }

    /// Whether any file under the mappings directory changed since the last (re)load.
    pub fn changed_on_disk(&self) -> bool {
        *self.seen.read().unwrap() != fingerprint(&self.dir)
    }

    /// Every (unit, flow, target) whose route names a mapping, with the mapping's file.
    pub fn routes(&self) -> Vec<(String, String, String, String)> {
        self.wanted
            .iter()
            .map(|((u, f, t), file)| (u.clone(), f.clone(), t.clone(), file.clone()))
            .collect()
    }

    /// The mapping a delivery goes through, if its route names one for the target.
    /// The event schema of the route of `unit` and `flow` (built by `schema_of` from this
    /// set: `route::event_schema`) compiled for the door, once per generation of the
    /// mappings.
    pub fn door_schema(
        &self,
        unit: &str,
        flow: &str,
        schema_of: impl FnOnce(&Self) -> serde_json::Value,
    ) -> Result<Arc<PublishedSchema>, String> {
        let generation = self.generation();
        let key = (unit.to_string(), flow.to_string());
        if let Some((g, s)) = self.door_schemas.lock().unwrap().get(&key)
            && *g == generation
        {
            return Ok(s.clone());
        }
        let compiled = Arc::new(PublishedSchema::compile(&schema_of(self))?);
        self.door_schemas
            .lock()
            .unwrap()
            .insert(key, (generation, compiled.clone()));
        Ok(compiled)
    }

    pub fn for_delivery(&self, unit: &str, flow: &str, target: &str) -> Option<Arc<Mapping>> {
        let table = self.current.read().unwrap();
        table.route(unit, flow)?.by_target.get(target).cloned()
    }

    /// How ingress decodes a route's XML or CSV body (None: JSON only).
    pub fn input_for(&self, unit: &str, flow: &str) -> Option<DecodeOptions> {
        let table = self.current.read().unwrap();
        table.route(unit, flow)?.input.clone()
    }

    /// The body to send `message` to `target`: mapped when the route names a mapping,
    /// else the event's JSON as the unit sent it. An error is permanent (the message goes
    /// to dead letters with it).
    pub fn render(&self, message: &Envelope, target: &str) -> Result<Outbound, String> {
        let Some(mapping) = self.for_delivery(&message.unit, &message.flow, target) else {
            return Ok(Outbound {
                content_type: "application/json",
                body: bytes::Bytes::copy_from_slice(message.payload.get().as_bytes()),
            });
        };
        // The compiled mapping reads the stored JSON once, only the fields it maps.
        let body = mapping
            .render_json(message.payload.get().as_bytes())
            .map_err(|e| match e {
                lienthong_mapping::RenderError::Input(e) => {
                    format!("stored event is not JSON: {e}")
                }
                lienthong_mapping::RenderError::Mapping(e) => {
                    format!("mapping {} failed: {e}", short(&mapping.file))
                }
            })?;
        Ok(Outbound {
            content_type: mapping.content_type(),
            body: body.into(),
        })
    }
}

/// Run the cases beside a mapping file; the first that fails is the reason to refuse it.
fn passes_its_cases(m: &Mapping, path: &Path) -> Result<(), String> {
    let cases = lienthong_mapping::fixtures::discover(path)
        .map_err(|e| format!("its cases cannot be read: {e}"))?;
    for case in &cases {
        if let lienthong_mapping::fixtures::Outcome::Fail(why) =
            lienthong_mapping::fixtures::run_case(m, case)
        {
            return Err(format!("its case `{}` fails:\n{why}", case.name));
        }
    }
    Ok(())
}

fn short(p: &Path) -> String {
    let parts: Vec<_> = p.components().rev().take(2).collect();
    parts
        .iter()
        .rev()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Every file under `dir` with its modification time and size, sorted.
fn fingerprint(dir: &Path) -> Vec<(PathBuf, SystemTime, u64)> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                dirs.push(p);
            } else {
                let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                out.push((p, modified, meta.len()));
            }
        }
    }
    out.sort();
    out
}

#[cfg(unix)]
pub type HangupSignal = tokio::signal::unix::Signal;
#[cfg(not(unix))]
pub type HangupSignal = ();

/// Start listening for SIGHUP (from then on it no longer terminates the process).
pub fn hangup_signal() -> Option<HangupSignal> {
    #[cfg(unix)]
    {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Reload on SIGHUP, and on a change under the directory when `watch` is on, until the
/// task is dropped. Errors go to the log; the previous versions stay in use.
///
/// `hup` is the SIGHUP stream, created by the caller before it returns to its own caller so
/// that no SIGHUP between start and this task's first poll is lost ([`hangup_signal`]).
pub async fn reload_on_change(
    set: Arc<MappingSet>,
    watch: bool,
    every: std::time::Duration,
    mut hup: Option<HangupSignal>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        #[cfg(unix)]
        let hup_fut = async {
            match hup.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hup_fut = {
            let _ = &mut hup;
            std::future::pending::<()>()
        };
        let why = tokio::select! {
            _ = hup_fut => "SIGHUP",
            _ = tick.tick() => {
                let set2 = Arc::clone(&set);
                let changed = watch
                    && tokio::task::spawn_blocking(move || set2.changed_on_disk())
                        .await
                        .unwrap_or(false);
                if !changed {
                    continue;
                }
                "file change"
            }
        };
        let set2 = Arc::clone(&set);
        match tokio::task::spawn_blocking(move || set2.reload()).await {
            Ok(Ok(n)) => tracing::info!(mappings = n, trigger = why, "mappings reloaded"),
            Ok(Err(problems)) => {
                for p in problems {
                    tracing::error!(trigger = why, problem = %p, "mapping refused; the previous version stays in use");
                }
            }
            Err(e) => tracing::error!(error = %e, "mapping reload panicked"),
        }
    }
}
