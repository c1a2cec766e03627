//! `rsysmon run`: the whole pipeline in the foreground.
//!
//! The reader loop (this thread) drains the ring buffer into the sensor and
//! the hub; a writer thread formats and prints, so a slow terminal costs
//! queue space, never kernel events.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::Context;
use rsysmon_event::{Filter, LossStage};
use rsysmon_probe::{ProbeConfig, Probes};

use crate::cli::RunArgs;
use crate::clock::BootClock;
use crate::hub::Hub;
use crate::mounts::HostMounts;
use crate::output::{write_events, Format};
use crate::privilege::require_bpf_capabilities;
use crate::process_table::ProcessTable;
use crate::sensor::Sensor;

/// How long the reader sleeps when the probes have not woken it. Bounds how
/// long an event can wait in the ring on a quiet system.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    require_bpf_capabilities()?;
    let filter = Filter { kinds: args.kind.iter().copied().collect(), pids: args.pid.iter().copied().collect() };
    let format = if args.json { Format::Json } else { Format::Text };
    let out: Box<dyn Write + Send> = match &args.output {
        Some(path) => Box::new(File::create(path).with_context(|| format!("cannot create {}", path.display()))?),
        None => Box::new(io::stdout()),
    };

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).context("cannot install signal handlers")?;
    }

    let config = ProbeConfig { include_kernel_threads: args.include_kernel, ring_buffer_bytes: args.ring_buffer_kib * 1024 };
    let table = ProcessTable::from_proc();
    let probes = Probes::load(&config)?;
    let hub = Arc::new(Hub::new(args.queue_size));
    let sensor = RefCell::new(Sensor::new(BootClock::now(), table, HostMounts::from_self()));

    let writer = {
        let hub = Arc::clone(&hub);
        thread::Builder::new()
            .name("output".into())
            .spawn(move || write_events(&hub, &filter, format, out))
            .context("cannot start the output thread")?
    };

    eprintln!(
        "rsysmon: watching, {} probes attached ({}); Ctrl-C to stop",
        probes.attached().len(),
        probes.attached().join(", ")
    );

    let reader = probes.reader(|bytes| hub.push(sensor.borrow_mut().on_record(bytes)))?;
    let mut result = Ok(());
    while !stop.load(Ordering::Relaxed) && !hub.is_closed() {
        if let Err(e) = reader.poll(POLL_INTERVAL) {
            result = Err(e.into());
            break;
        }
        match probes.kernel_losses() {
            Ok(total) => hub.push_opt(sensor.borrow_mut().on_kernel_losses(total)),
            Err(e) => {
                result = Err(e.into());
                break;
            }
        }
    }
    // What is already in the ring still counts.
    let _ = reader.poll(Duration::ZERO);
    if let Ok(total) = probes.kernel_losses() {
        hub.push_opt(sensor.borrow_mut().on_kernel_losses(total));
    }
    drop(reader);
    drop(probes);
    hub.close();
    let written = writer.join().map_err(|_| anyhow::anyhow!("the output thread panicked"))?;

    let mut stats = sensor.borrow().stats().clone();
    stats.count_loss(LossStage::Queue, hub.dropped());
    eprintln!("rsysmon: {stats}");
    written.context("writing events failed")?;
    result
}
