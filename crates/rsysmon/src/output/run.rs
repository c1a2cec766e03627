//! `rsysmon run`: the whole pipeline in the foreground.
//!
//! This thread reads the probes into the hub; an output thread formats and
//! prints from its own bounded queue. The queue waits when full, so a slow
//! terminal or disk holds the reader back and the kernel ring buffer
//! absorbs the stall: nothing is dropped in user space. Only if the ring
//! buffer fills too are events lost, counted at stage `kernel`.

use std::io::{self, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;

use anyhow::Context;
use rsysmon_event::LossStage;

use crate::blocking;
use crate::cli::RunArgs;
use crate::output::test_pause::{Pause, PausingWriter};
use crate::output::{file, write_events, Format};
use crate::pipeline::{priority, Pipeline, RuleSource};

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = args.pipeline.config(None)?;
    let rules = match blocking::rules(&args.block, &args.block_glob)? {
        Some(set) => RuleSource::Given(Box::new(set)),
        None => RuleSource::Off,
    };
    let pause = Pause::from_env()?;
    // Opened before anything is attached, so a refused path costs nothing.
    let out: Box<dyn Write + Send> = match &args.output {
        Some(path) => Box::new(file::create(path)?),
        None => Box::new(io::stdout()),
    };
    let pipeline = Pipeline::start(&config, rules, None)?;
    let filter = args.filter.filter();
    let format: Format = args.filter.format();
    let out = PausingWriter::new(out, pause);
    let output_queue = pipeline.hub().subscribe_waiting(config.queue.max_events, Arc::clone(pipeline.stop_flag()));

    let writer = {
        let (queue, stop, nice) = (Arc::clone(&output_queue), Arc::clone(pipeline.stop_flag()), pipeline.nice());
        thread::Builder::new()
            .name("output".into())
            .spawn(move || {
                // The reader waits for this thread: it must not be starved either.
                priority::raise_this_thread(nice, "output");
                let written = write_events(&queue, &filter, format, out);
                // The reader went away (or writing failed): stop reading.
                stop.store(true, Ordering::Relaxed);
                written
            })
            .context("cannot start the output thread")?
    };

    if pipeline.mounted_tracefs() {
        eprintln!("rsysmon: mounted tracefs at {}", rsysmon_probe::kernel_fs::TRACEFS);
    }
    eprintln!("rsysmon: capabilities: {}", pipeline.capabilities());
    for notice in pipeline.notices() {
        eprintln!("rsysmon: {notice}");
    }
    let capabilities = pipeline.capabilities().clone();
    if let Some(filesystems) = pipeline.blocked_filesystems() {
        eprintln!("rsysmon: blocking execs on {filesystems} filesystems");
    }
    eprintln!(
        "rsysmon: watching, {} probes attached ({}); Ctrl-C to stop",
        pipeline.probes().len(),
        pipeline.probes().join(", ")
    );

    let stopped = pipeline.run();
    let written = writer.join().map_err(|_| anyhow::anyhow!("the output thread panicked"))?;

    let mut stats = stopped.stats;
    stats.count_loss(LossStage::Queue, output_queue.dropped());
    eprintln!("rsysmon: {stats}");
    eprintln!("rsysmon: capabilities: {capabilities}");
    let waited = output_queue.waited();
    if !waited.is_zero() {
        eprintln!(
            "rsysmon: the output fell behind for {} ms in all; the ring buffer held the events",
            waited.as_millis()
        );
    }
    if let Some(reason) = stats.last_decode_error() {
        eprintln!("rsysmon: newest bad ring-buffer record: {reason}");
    }
    if let Some(b) = stopped.blocker {
        eprintln!(
            "rsysmon: blocker: {} execs allowed, {} denied; decision p50 {:.1} µs, p99 {:.1} µs (last {})",
            b.allowed + b.own,
            b.denied,
            b.p50_us,
            b.p99_us,
            b.window
        );
        if b.unreadable > 0 {
            eprintln!(
                "rsysmon: blocker: {} exec events could not be read ({}); the kernel denied those execs",
                b.unreadable,
                nix::errno::Errno::from_raw(b.last_read_errno)
            );
        }
    }
    written.context("writing events failed")?;
    stopped.result
}
