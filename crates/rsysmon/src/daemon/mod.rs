//! `rsysmon daemon`: the pipeline as a service, with the control socket.
//!
//! The main thread reads the probes into the hub (as in `run`); one thread
//! accepts clients and each client gets a thread of its own. Logs go to
//! stderr (the journal, under systemd) through `tracing`.

mod access;
mod connection;
mod socket;

use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use anyhow::Context;

use crate::blocking::exec_rules::ExecRules;
use crate::cli::DaemonArgs;
use crate::hub::Hub;
use crate::pipeline::config::DEFAULT_CONFIG;
use crate::pipeline::{Pipeline, RuleSource};
use crate::protocol::{QueueStatus, Status};
use crate::sensor::stats::Stats;

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
    rules: Arc<ExecRules>,
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
            last_decode_error: stats.last_decode_error().map(str::to_string),
        }
    }
}

pub fn daemon(args: DaemonArgs) -> anyhow::Result<()> {
    let mut config = args.pipeline.config(Some(Path::new(DEFAULT_CONFIG)))?;
    if let Some(socket) = &args.socket {
        config.socket.path = socket.clone();
        config.validate().context("invalid settings")?;
    }
    init_logging();
    let pipeline =
        Pipeline::start(&config, RuleSource::File(config.blocking.rules_file.clone()), Some(config.queue.max_events))?;
    if pipeline.mounted_tracefs() {
        tracing::info!("mounted tracefs at {}", rsysmon_probe::kernel_fs::TRACEFS);
    }
    let access = Access::new(config.socket.read_group.as_deref())?;
    let listener = socket::bind(&config.socket.path, access.read_gid())?;

    let state = Arc::new(DaemonState {
        hub: Arc::clone(pipeline.hub()),
        stats: Arc::clone(pipeline.stats()),
        started: Instant::now(),
        probes: pipeline.probes().to_vec(),
        clients: AtomicUsize::new(0),
        access,
        client_backlog: config.queue.client_backlog,
        rules: Arc::clone(pipeline.rules().context("the daemon always has a rule set")?),
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
        pipeline.blocked_filesystems().unwrap_or(0)
    );
    let stopped = pipeline.run();
    let _ = std::fs::remove_file(&config.socket.path);
    let mut summary = stopped.stats;
    summary.count_loss(rsysmon_event::LossStage::Queue, state.hub.history_dropped());
    tracing::info!("rsysmon daemon stopped; {summary}");
    stopped.result
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
