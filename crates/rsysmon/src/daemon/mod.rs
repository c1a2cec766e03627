//! `rsysmon daemon`: the pipeline as a service, with the control socket.
//!
//! The main thread reads the probes into the hub (as in `run`); one thread
//! accepts clients (`accept.rs`) and each admitted client (`admission.rs`)
//! gets a thread of its own. Descriptors are raised and budgeted at start
//! (`limits.rs`) so that clients can never starve the exec blocker. Logs go
//! to stderr (the journal, under systemd) through `tracing`.

mod accept;
mod access;
mod admission;
mod connection;
mod limits;
mod reload;
mod socket;
pub mod trusted_path;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::blocking::exec_rules::ExecRules;
use crate::cli::DaemonArgs;
use crate::hub::Hub;
use crate::output;
use crate::output::sinks::Sinks;
use crate::pipeline::config::DEFAULT_CONFIG;
use crate::pipeline::{Pipeline, RuleSource};
use crate::protocol::{BlockerHealth, BlockerStatus, CapabilityStatus, ConfigStatus, QueueStatus, Status};
use crate::sensor::stats::Stats;

use access::Access;
use admission::{Admission, Limits};

/// What every connection thread shares.
pub struct DaemonState {
    hub: Arc<Hub>,
    stats: Arc<Mutex<Stats>>,
    started: Instant,
    probes: Vec<String>,
    capabilities: Vec<CapabilityStatus>,
    admission: Arc<Admission>,
    access: Access,
    client_backlog: usize,
    idle_timeout: Duration,
    rules: Arc<ExecRules>,
    sinks: Arc<Sinks>,
    blocker: Option<(rsysmon_blocker::StatsReader, Arc<Mutex<BlockerHealth>>)>,
    config: Mutex<ConfigStatus>,
}

impl DaemonState {
    fn status(&self) -> Status {
        let stats = self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let (len, capacity) = self.hub.history_fill();
        // The history dropping its oldest is rotation, not loss: every
        // client saw those events live.
        let rotated = self.hub.history_dropped();
        let kernel_refused = stats.kernel_refusals();
        let mut lost = stats.losses_by_name();
        lost.insert("client".into(), self.hub.subscriber_stats().1);
        for name in rsysmon_event::SinkName::ALL {
            lost.insert(rsysmon_event::LossStage::Sink(name).name().into(), self.sinks.lost(name));
        }
        Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_secs: self.started.elapsed().as_secs(),
            probes: self.probes.clone(),
            events: stats.events_by_name(),
            lost,
            queue: QueueStatus { len, capacity, rotated },
            clients: self.admission.clients(),
            capabilities: self.capabilities.clone(),
            last_decode_error: stats.last_decode_error().map(str::to_string),
            sinks: self.sinks.status(),
            blocker: self.blocker.as_ref().map(|(stats, health)| {
                BlockerStatus::new(&stats.snapshot(), &health.lock().unwrap_or_else(|e| e.into_inner()), kernel_refused)
            }),
            last_seq: self.hub.last_seq(),
            filtered: stats.filtered_by_name(),
            config: self.config_status().clone(),
        }
    }

    /// The configuration's status, to change it.
    fn config_status(&self) -> std::sync::MutexGuard<'_, ConfigStatus> {
        self.config.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `/metrics` text: the status, with the blocker's decision times.
    fn metrics(&self, server: &crate::output::metrics::ServerCounts) -> String {
        let blocker = self.blocker.as_ref().map(|(stats, _)| stats.snapshot());
        crate::output::metrics::render(&self.status(), blocker.as_ref(), server)
    }
}

pub fn daemon(args: DaemonArgs) -> anyhow::Result<()> {
    let mut config = args.pipeline.config(Some(Path::new(DEFAULT_CONFIG)))?;
    let config_path = args.pipeline.config.clone().unwrap_or_else(|| DEFAULT_CONFIG.into());
    if let Some(socket) = &args.socket {
        config.socket.path = socket.clone();
        config.validate().context("invalid settings")?;
    }
    init_logging();
    // Before anything is attached: a second daemon, or a path that another
    // user controls, stops here.
    if let Some(dir) = config.socket.path.parent() {
        trusted_path::check_dir(dir, "socket directory")?;
    }
    trusted_path::check_file(&config.blocking.rules_file, "rule file")?;
    socket::check_free(&config.socket.path)?;
    let nofile = match limits::raise_nofile() {
        Ok(limit) => limit,
        Err(e) => {
            let (soft, _) = limits::nofile().unwrap_or((1024, 1024));
            tracing::warn!("cannot raise the descriptor limit (RLIMIT_NOFILE) from {soft}: {e}");
            soft
        }
    };
    let pipeline =
        Pipeline::start(&config, RuleSource::File(config.blocking.rules_file.clone()), Some(config.queue.max_events))?;
    if pipeline.mounted_tracefs() {
        tracing::info!("mounted tracefs at {}", rsysmon_probe::kernel_fs::TRACEFS);
    }
    tracing::info!("capabilities: {}", pipeline.capabilities());
    for notice in pipeline.notices() {
        tracing::warn!("{notice}");
    }
    let capabilities = pipeline.capabilities().clone();
    let access = Access::new(config.socket.read_group.as_deref())?;
    let listener = socket::bind(&config.socket.path, access.read_gid())?;
    let admission = Admission::new(client_limits(&config, nofile)?);
    let sinks = Arc::new(Sinks::start(&config.outputs, pipeline.hub())?);

    let state = Arc::new(DaemonState {
        hub: Arc::clone(pipeline.hub()),
        stats: Arc::clone(pipeline.stats()),
        started: Instant::now(),
        probes: pipeline.probes().to_vec(),
        capabilities: CapabilityStatus::all(pipeline.capabilities()),
        admission,
        access,
        client_backlog: config.queue.client_backlog,
        idle_timeout: Duration::from_secs(config.socket.idle_timeout_secs),
        rules: Arc::clone(pipeline.rules().context("the daemon always has a rule set")?),
        sinks: Arc::clone(&sinks),
        blocker: pipeline.blocker_stats().zip(pipeline.blocker_health()),
        config: Mutex::new(ConfigStatus {
            path: config_path.display().to_string(),
            filter_rules: config.filter.rules.len(),
            ..Default::default()
        }),
    });
    reload::on_sighup(args.pipeline.clone(), config.clone(), Arc::clone(pipeline.filter()), Arc::clone(&state))?;
    if config.outputs.metrics.enabled {
        let address = config.outputs.metrics.listen.parse().context("outputs.metrics.listen")?;
        let render_state = Arc::clone(&state);
        let bound = output::metrics_http::start(address, Arc::new(move |server: &_| render_state.metrics(server)))?;
        tracing::info!("metrics at http://{bound}/metrics");
    }

    {
        let state = Arc::clone(&state);
        thread::Builder::new()
            .name("accept".into())
            .spawn(move || accept::accept_loop(listener, state))
            .context("cannot start the accept thread")?;
    }

    tracing::info!(
        socket = %config.socket.path.display(),
        probes = %state.probes.join(", "),
        queue = config.queue.max_events,
        rules = %config.blocking.rules_file.display(),
        max_clients = config.socket.max_clients,
        max_clients_per_uid = config.socket.max_clients_per_uid,
        descriptors = nofile,
        "rsysmon daemon ready: {} probes attached, {} blocking rules on {} filesystems",
        state.probes.len(),
        state.rules.list().len(),
        pipeline.blocked_filesystems().unwrap_or(0)
    );
    let stopped = pipeline.run();
    sinks.stop();
    let _ = std::fs::remove_file(&config.socket.path);
    let summary = stopped.stats;
    let rotated = state.hub.history_dropped();
    tracing::info!(
        "rsysmon daemon stopped; {summary}; {rotated} rotated out of the history; capabilities: {capabilities}"
    );
    stopped.result
}

/// The client bounds: the configured ones, within what the descriptors
/// left after the blocker's reserve allow.
fn client_limits(config: &crate::pipeline::config::Config, nofile: u64) -> anyhow::Result<Limits> {
    let open = limits::open_fds().context("cannot count the daemon's open descriptors")?;
    let fd_budget = limits::client_budget(nofile, open);
    let socket = &config.socket;
    if fd_budget < socket.max_clients {
        tracing::warn!(
            "only {fd_budget} clients fit in the descriptor limit of {nofile} ({open} open, {} kept for the \
             blocker); socket.max_clients = {} cannot be reached: raise LimitNOFILE",
            limits::FD_RESERVE,
            socket.max_clients
        );
    }
    if fd_budget == 0 {
        anyhow::bail!(
            "the descriptor limit of {nofile} leaves no room for clients after the {} kept for the blocker: raise \
             RLIMIT_NOFILE (LimitNOFILE= under systemd)",
            limits::FD_RESERVE
        );
    }
    Ok(Limits { max_clients: socket.max_clients, max_clients_per_uid: socket.max_clients_per_uid, fd_budget })
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RSYSMON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
