//! `rsysmon run`: the whole pipeline in the foreground.
//!
//! This thread reads the probes into the hub; an output thread formats and
//! prints from its own bounded queue, so a slow terminal costs queue space
//! (reported as loss at the `queue` stage), never kernel events.

use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread;

use anyhow::Context;
use rsysmon_event::LossStage;
use rsysmon_probe::{ProbeConfig, Probes};

use crate::blocking;
use crate::blocking::exec_rules::ExecRules;
use crate::cli::RunArgs;
use crate::hub::Hub;
use crate::output::{write_events, Format};
use crate::pipeline::privilege::require_bpf_capabilities;
use crate::pipeline::stats::Stats;
use crate::pipeline::{pump, stop_on_signals};
use crate::sensor::clock::BootClock;
use crate::sensor::host_paths::HostMounts;
use crate::sensor::process_table::ProcessTable;
use crate::sensor::remote_policy::RemoteThreadPolicy;
use crate::sensor::Sensor;

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    require_bpf_capabilities()?;
    let filter = args.filter.filter();
    let format = if args.filter.json { Format::Json } else { Format::Text };
    let out: Box<dyn Write + Send> = match &args.output {
        Some(path) => Box::new(File::create(path).with_context(|| format!("cannot create {}", path.display()))?),
        None => Box::new(io::stdout()),
    };
    let stop = stop_on_signals()?;

    let block_rules = blocking::rules(&args.block, &args.block_glob)?;
    let config = ProbeConfig {
        include_kernel_threads: args.include_kernel,
        ring_buffer_bytes: args.ring_buffer_kib * 1024,
        remote_thread_window: std::time::Duration::from_secs(args.remote_window_secs),
    };
    let remote_policy = RemoteThreadPolicy::new(args.allow_remote_creator.iter().cloned());
    let table = ProcessTable::from_proc();
    let probes = Probes::load(&config)?;
    let hub = Hub::new(None);
    let output_queue = hub.subscribe(args.queue_size, LossStage::Queue);

    let writer = {
        let (queue, stop) = (Arc::clone(&output_queue), Arc::clone(&stop));
        thread::Builder::new()
            .name("output".into())
            .spawn(move || {
                let written = write_events(&queue, &filter, format, out);
                // The reader went away (or writing failed): stop reading.
                stop.store(true, Ordering::Relaxed);
                written
            })
            .context("cannot start the output thread")?
    };

    let exec_rules = match block_rules {
        Some(set) => Some(ExecRules::new(set, None, probes.blocked_files()?)?),
        None => None,
    };
    let blocking = exec_rules.as_ref().map(|r| blocking::start(r)).transpose()?;
    if let Some(b) = &blocking {
        eprintln!("rsysmon: blocking execs on {} filesystems", b.blocker.coverage().marked.len());
    }

    eprintln!(
        "rsysmon: watching, {} probes attached ({}); Ctrl-C to stop",
        probes.attached().len(),
        probes.attached().join(", ")
    );

    let shared = Mutex::new(Stats::default());
    let sensor = Sensor::new(BootClock::now(), table, HostMounts::from_self(), remote_policy);
    let mut pumped = pump(&probes, sensor, &hub, &stop, &shared, &mut |sensor, hub| match &blocking {
        Some(b) => b.publish_refusals(sensor, hub),
        None => Ok(()),
    });
    // Stop blocking first: it answers every exec still waiting.
    let mut blocker_summary = None;
    if let Some(b) = blocking {
        blocker_summary = Some(b.blocker.stats());
        if let Err(e) = b.blocker.stop() {
            pumped = pumped.and(Err(e.into()));
        }
    }
    drop(probes);
    hub.close();
    let written = writer.join().map_err(|_| anyhow::anyhow!("the output thread panicked"))?;

    let mut stats = shared.into_inner().unwrap_or_else(|e| e.into_inner());
    stats.count_loss(LossStage::Queue, output_queue.dropped());
    eprintln!("rsysmon: {stats}");
    if let Some(b) = blocker_summary {
        eprintln!(
            "rsysmon: blocker: {} execs allowed, {} denied; decision p50 {:.1} µs, p99 {:.1} µs (last {})",
            b.allowed + b.own,
            b.denied,
            b.p50_us,
            b.p99_us,
            b.window
        );
    }
    written.context("writing events failed")?;
    pumped.map(|_| ())
}
