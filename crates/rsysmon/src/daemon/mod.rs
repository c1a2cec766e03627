//! `rsysmon daemon`: the pipeline as a service, with the control socket.
//!
//! The main thread reads the probes into the hub (as in `run`); one thread
//! accepts clients and each client gets a thread of its own. Logs go to
//! stderr (the journal, under systemd) through `tracing`.

mod access;
mod connection;
mod socket;

use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use anyhow::Context;
use rsysmon_probe::{ProbeConfig, Probes};

use crate::blocking;
use crate::blocking::exec_rules::ExecRules;
use crate::cli::DaemonArgs;
use crate::hub::Hub;
use crate::pipeline::config::{Config, DEFAULT_CONFIG};
use crate::pipeline::privilege::require_bpf_capabilities;
use crate::pipeline::stats::Stats;
use crate::pipeline::{pump, stop_on_signals};
use crate::protocol::{QueueStatus, Status};
use crate::sensor::clock::BootClock;
use crate::sensor::host_paths::HostMounts;
use crate::sensor::process_table::ProcessTable;
use crate::sensor::remote_policy::RemoteThreadPolicy;
use crate::sensor::Sensor;

use access::Access;

/// What every connection thread shares.
pub struct DaemonState {
    hub: Arc<Hub>,
    stats: Arc<Mutex<Stats>>,
    started: Instant,
    probes: Vec<String>,
    clients: AtomicUsize,
    access: Access,
    client_backlog: usize,
    rules: ExecRules,
}

impl DaemonState {
    fn status(&self) -> Status {
        let stats = self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let (len, capacity) = self.hub.history_fill();
        let dropped = self.hub.history_dropped();
        let mut lost = stats.losses_by_name();
        lost.insert("queue".into(), dropped);
        lost.insert("client".into(), self.hub.subscriber_stats().1);
        Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_secs: self.started.elapsed().as_secs(),
            probes: self.probes.clone(),
            events: stats.events_by_name(),
            lost,
            queue: QueueStatus { len, capacity, dropped },
            clients: self.clients.load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}

pub fn daemon(args: DaemonArgs) -> anyhow::Result<()> {
    let (config_path, explicit) = match &args.config {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    let mut config = Config::load(&config_path, explicit)?;
    args.apply(&mut config);
    init_logging();
    require_bpf_capabilities()?;
    let stop = stop_on_signals()?;
    let access = Access::new(config.socket.read_group.as_deref())?;

    let table = ProcessTable::from_proc();
    let probe_config = ProbeConfig {
        include_kernel_threads: config.probes.include_kernel_threads,
        ring_buffer_bytes: config.probes.ring_buffer_kib * 1024,
        remote_thread_window: std::time::Duration::from_secs(config.remote_threads.window_secs),
    };
    let remote_policy = RemoteThreadPolicy::new(config.remote_threads.allow.clone());
    let probes = Probes::load(&probe_config)?;
    let rule_set = rsysmon_blocker::store::load(&config.blocking.rules_file)?;
    let rules = ExecRules::new(rule_set, Some(config.blocking.rules_file.clone()), probes.blocked_files()?)?;
    let blocking = blocking::start(&rules)?;
    let listener = socket::bind(&config.socket.path, access.read_gid())?;

    let state = Arc::new(DaemonState {
        hub: Arc::new(Hub::new(Some(config.queue.max_events))),
        stats: Arc::new(Mutex::new(Stats::default())),
        started: Instant::now(),
        probes: probes.attached().to_vec(),
        clients: AtomicUsize::new(0),
        access,
        client_backlog: config.queue.client_backlog,
        rules,
    });

    {
        let state = Arc::clone(&state);
        thread::Builder::new()
            .name("accept".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    match stream {
                        Ok(stream) => {
                            let state = Arc::clone(&state);
                            let spawned = thread::Builder::new()
                                .name("client".into())
                                .spawn(move || connection::serve(stream, &state));
                            if let Err(e) = spawned {
                                tracing::warn!("cannot start a client thread: {e}");
                            }
                        }
                        Err(e) => tracing::warn!("accepting a client failed: {e}"),
                    }
                }
            })
            .context("cannot start the accept thread")?;
    }

    tracing::info!(
        socket = %config.socket.path.display(),
        probes = %state.probes.join(", "),
        queue = config.queue.max_events,
        rules = %config.blocking.rules_file.display(),
        "rsysmon daemon ready: {} probes attached, {} blocking rules on {} filesystems",
        state.probes.len(),
        state.rules.list().len(),
        blocking.blocker.coverage().marked.len()
    );
    let result = pump(
        &probes,
        Sensor::new(BootClock::now(), table, HostMounts::from_self(), remote_policy),
        &state.hub,
        &stop,
        &state.stats,
        &mut |sensor, hub| blocking.publish_refusals(sensor, hub),
    );
    // Answer every exec still waiting before anything else goes away.
    let stopped = blocking.blocker.stop();
    state.hub.close();
    let _ = std::fs::remove_file(&config.socket.path);
    drop(probes);
    let mut summary = state.stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
    summary.count_loss(rsysmon_event::LossStage::Queue, state.hub.history_dropped());
    tracing::info!("rsysmon daemon stopped; {summary}");
    stopped?;
    result.map(|_| ())
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
