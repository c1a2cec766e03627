//! `rsysmon run`: the whole pipeline in the foreground.
//!
//! This thread reads the probes into the hub; an output thread formats and
//! prints from its own bounded queue, so a slow terminal costs queue space
//! (reported as loss at the `queue` stage), never kernel events.

use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;

use anyhow::Context;
use rsysmon_event::LossStage;

use crate::blocking;
use crate::cli::RunArgs;
use crate::output::{write_events, Format};
use crate::pipeline::{Pipeline, RuleSource};

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = args.pipeline.config(None)?;
    let rules = match blocking::rules(&args.block, &args.block_glob)? {
        Some(set) => RuleSource::Given(Box::new(set)),
        None => RuleSource::Off,
    };
    let pipeline = Pipeline::start(&config, rules, None)?;
    let filter = args.filter.filter();
    let format = if args.filter.json { Format::Json } else { Format::Text };
    let out: Box<dyn Write + Send> = match &args.output {
        Some(path) => Box::new(File::create(path).with_context(|| format!("cannot create {}", path.display()))?),
        None => Box::new(io::stdout()),
    };
    let output_queue = pipeline.hub().subscribe(config.queue.max_events, LossStage::Queue);

    let writer = {
        let (queue, stop) = (Arc::clone(&output_queue), Arc::clone(pipeline.stop_flag()));
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
    }
    written.context("writing events failed")?;
    stopped.result
}
