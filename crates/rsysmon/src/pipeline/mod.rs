//! The one way to start the monitor, for `run` and `daemon` alike: from a
//! [`Config`](config::Config), load the probes, start the blocker, build
//! the sensor and the hub; then read the probes into the hub until a
//! signal, and stop everything in the right order.
//!
//! `run` adds a console output (a subscriber of the hub); the daemon adds
//! the control socket. Neither assembles the pipeline itself.

pub mod config;
pub mod priority;
pub mod privilege;
mod reader;
mod test_hold;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use arc_swap::ArcSwap;
use rsysmon_blocker::{BlockerStats, RuleSet};
use rsysmon_event::Host;
use rsysmon_hash::Hasher;
use rsysmon_probe::{Capabilities, Capability, CapabilityState, Enforcement, KernelEnforcement, Probes};

use crate::blocking::exec_rules::ExecRules;
use crate::blocking::kernel_lists::KernelLists;
use crate::blocking::Blocking;
use crate::hub::Hub;
use crate::pipeline::config::Config;
use crate::protocol::BlockerHealth;
use crate::sensor::clock::BootClock;
use crate::sensor::filter::{EventFilter, SharedFilter};
use crate::sensor::host_paths::HostMounts;
use crate::sensor::process_table::ProcessTable;
use crate::sensor::remote_policy::RemoteThreadPolicy;
use crate::sensor::stats::Stats;
use crate::sensor::Sensor;

/// Where the exec rules come from.
pub enum RuleSource {
    /// No blocking: `run` without `--block`.
    Off,
    /// Rules given on the command line, never saved.
    Given(Box<RuleSet>),
    /// The rule file: loaded now, saved on every change (the daemon).
    File(PathBuf),
}

/// A loaded pipeline, ready to read. Build it and run it on the same
/// thread: the probes cannot move to another one.
pub struct Pipeline {
    probes: Probes,
    sensor: Sensor,
    hub: Arc<Hub>,
    stats: Arc<Mutex<Stats>>,
    rules: Option<Arc<ExecRules>>,
    blocking: Option<Blocking>,
    stop: Arc<AtomicBool>,
    nice: i32,
    capabilities: Capabilities,
    filter: SharedFilter,
}

/// Why blocking is off in a `run` without `--block`: nothing to report.
const BLOCKING_NO_RULES: &str = "no --block rules given";

/// The probes' capabilities, and blocking: on when there are rules to
/// enforce and the kernel refuses files reached without execve: by BPF LSM
/// hooks, or else the image-load probes' kill.
fn capabilities(probes: &Probes, rules: &RuleSource) -> Capabilities {
    let mut capabilities = probes.capabilities().clone();
    let lsm = probes.enforcement();
    let blocking = if matches!(rules, RuleSource::Off) {
        CapabilityState::Off(BLOCKING_NO_RULES.into())
    } else if let Some(mechanism) = lsm.mechanism() {
        CapabilityState::On(format!("{mechanism}; fanotify exec permission for path, glob and hash rules"))
    } else {
        let not_lsm = match lsm {
            KernelEnforcement::Unavailable(why) => format!("bpf-lsm not used: {why}"),
            _ => "bpf-lsm not used".into(),
        };
        if !capabilities.is_on(Capability::ImageLoad) {
            CapabilityState::Off(format!("it needs image-load, which is off ({not_lsm})"))
        } else {
            CapabilityState::On(format!("fanotify exec permission, SIGKILL at image load; {not_lsm}"))
        }
    };
    capabilities.set(Capability::Blocking, blocking);
    capabilities
}

/// What a pipeline left behind when it stopped.
pub struct Stopped {
    /// The sensor's counters, as of the last poll.
    pub stats: Stats,
    /// The blocker's decisions, if it ran.
    pub blocker: Option<BlockerStats>,
    /// Why reading ended early, or how stopping the blocker failed.
    pub result: anyhow::Result<()>,
}

impl Pipeline {
    /// Check the privileges, install the signal handlers, load the probes and
    /// start blocking. `history` is the number of events the hub keeps for
    /// later readers, if any.
    pub fn start(config: &Config, rules: RuleSource, history: Option<usize>) -> anyhow::Result<Pipeline> {
        privilege::require_bpf_capabilities()?;
        let stop = stop_on_signals()?;
        let remote_policy = RemoteThreadPolicy::new(config.remote_threads.allow.iter().cloned());
        // Seeded before the probes load: a process that starts in between
        // is in the table or in the events.
        let table = ProcessTable::from_proc();
        let mut probe_config = config.probe_config();
        // The kernel refuses blocked files itself where it can (BPF LSM);
        // the daemon pins that enforcement so it outlives it (fail closed).
        probe_config.enforcement = match &rules {
            RuleSource::Off => Enforcement::Off,
            RuleSource::Given(_) => Enforcement::Lsm { pin_dir: None },
            RuleSource::File(_) => Enforcement::Lsm { pin_dir: Some(config.blocking.pin_dir.clone()) },
        };
        let probes = Probes::load(&probe_config)?;
        let capabilities = capabilities(&probes, &rules);
        if let Some((capability, why)) = capabilities.first_missing(&config.required_capabilities()?) {
            anyhow::bail!("{capability} is required (--require, probes.require) but cannot run: {why}");
        }
        let blocking_on = capabilities.is_on(Capability::Blocking);
        let rules = match rules {
            RuleSource::Off => None,
            RuleSource::Given(set) => Some(ExecRules::new(*set, None, kernel_lists(&probes)?)?),
            RuleSource::File(path) => {
                let set = rsysmon_blocker::store::load(&path)?;
                Some(ExecRules::new(set, Some(path), kernel_lists(&probes)?)?)
            }
        }
        .map(Arc::new);
        // Blocking is whole or nothing: without the image-load probes'
        // kill, the rules are kept but not enforced.
        let blocking = rules
            .as_ref()
            .filter(|_| blocking_on)
            .map(|rules| Blocking::start(rules, config.blocking.on_failure, config.priority.nice))
            .transpose()?;
        let filter: SharedFilter = Arc::new(ArcSwap::from_pointee(
            EventFilter::new(&config.filter)
                .map_err(|e| anyhow::anyhow!("filter.rules: rule {}: {}", e.index + 1, e.why))?,
        ));
        let mut sensor =
            Sensor::new(Arc::new(Host::from_system()), BootClock::now(), table, HostMounts::from_self(), remote_policy)
                .with_filter(Arc::clone(&filter));
        if let Some(limits) = config.hashing.limits() {
            sensor = sensor.with_hasher(Hasher::start(limits).context("cannot start the hashing thread")?);
        }
        Ok(Pipeline {
            probes,
            sensor,
            hub: Arc::new(Hub::new(history)),
            stats: Arc::new(Mutex::new(Stats::default())),
            rules,
            blocking,
            stop,
            nice: config.priority.nice,
            capabilities,
            filter,
        })
    }

    /// Every capability, on with its mechanism or off with why.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// One line per capability that was wanted and cannot run here:
    /// `image-load is off: the kernel lacks …`.
    pub fn notices(&self) -> Vec<String> {
        self.capabilities
            .off()
            .filter(|(c, why)| *c != Capability::Blocking || *why != BLOCKING_NO_RULES)
            .map(|(c, why)| format!("{c} is off: {why}"))
            .collect()
    }

    /// Where the events go; subscribe before [`Pipeline::run`].
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// The sensor's counters, updated after every poll.
    pub fn stats(&self) -> &Arc<Mutex<Stats>> {
        &self.stats
    }

    /// The rules in force, if blocking.
    pub fn rules(&self) -> Option<&Arc<ExecRules>> {
        self.rules.as_ref()
    }

    /// The names of the attached probes.
    pub fn probes(&self) -> &[String] {
        self.probes.attached()
    }

    /// Whether tracefs was missing and the probes mounted it.
    pub fn mounted_tracefs(&self) -> bool {
        self.probes.tracefs() == rsysmon_probe::kernel_fs::Tracefs::Mounted
    }

    /// The filter rules in force: store new ones to change them.
    pub fn filter(&self) -> &SharedFilter {
        &self.filter
    }

    /// A handle on the blocker's counters for another thread, if blocking.
    pub fn blocker_stats(&self) -> Option<rsysmon_blocker::StatsReader> {
        self.blocking.as_ref().map(|b| b.stats_reader().clone())
    }

    /// The number of filesystems the blocker watches, if blocking.
    pub fn blocked_filesystems(&self) -> Option<usize> {
        self.blocking.as_ref().map(|b| b.blocker().map_or(0, |b| b.coverage().marked.len()))
    }

    /// How the exec blocker is doing, if blocking.
    pub fn blocker_health(&self) -> Option<Arc<Mutex<BlockerHealth>>> {
        self.blocking.as_ref().map(|b| Arc::clone(b.health()))
    }

    /// The nice value the reader runs at (`[priority] nice`); an output
    /// that the reader waits for should run at it too.
    pub fn nice(&self) -> i32 {
        self.nice
    }

    /// Set to stop reading (a signal sets it too).
    pub fn stop_flag(&self) -> &Arc<AtomicBool> {
        &self.stop
    }

    /// Read the probes into the hub until stopped, then stop: the blocker
    /// first (it answers every exec still waiting), then the probes, then
    /// the hub, which lets its readers finish.
    pub fn run(self) -> Stopped {
        let Pipeline { probes, sensor, hub, stats, rules: _, mut blocking, stop, nice, capabilities: _, filter: _ } =
            self;
        // Only this thread: threads started before (clients) keep theirs.
        priority::raise_this_thread(nice, "ring-buffer reader");
        let mut result = reader::pump(&probes, sensor, &hub, &stop, &stats, &mut |sensor, hub| match &mut blocking {
            Some(b) => b.publish_refusals(sensor, hub),
            None => Ok(()),
        })
        .map(|_| ());
        let mut blocker = None;
        if let Some(b) = blocking {
            let stopped;
            (blocker, stopped) = b.stop();
            result = result.and(stopped);
        }
        drop(probes);
        hub.close();
        let stats = stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Stopped { stats, blocker, result }
    }
}

/// Set `stop` on SIGINT or SIGTERM.
fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| anyhow::anyhow!("cannot install a handler for signal {signal}: {e}"))?;
    }
    Ok(stop)
}

/// The probes' lists of blocked files and trees, for the exec rules.
fn kernel_lists(probes: &Probes) -> anyhow::Result<KernelLists> {
    Ok(KernelLists::new(probes.blocked_files()?, probes.blocked_trees()?))
}
