//! SIGHUP: read the configuration file again and put its filter rules in
//! force, atomically.
//!
//! The new file is parsed and checked whole first (the same checks as at
//! start); only then are the new rules swapped in, in one store that the
//! reader sees between two events. A file with an error is refused: the
//! error (file, line, key) is logged and shown by `rsysmon status`, and the
//! rules in force stay. Other sections are read and checked too but take
//! effect at the next start; the log says so when they changed.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use signal_hook::consts::SIGHUP;
use signal_hook::iterator::Signals;

use crate::cli::PipelineArgs;
use crate::daemon::DaemonState;
use crate::pipeline::config::{Config, DEFAULT_CONFIG};
use crate::sensor::filter::{EventFilter, SharedFilter};

/// Catch SIGHUP from now on (it would end the daemon otherwise) and
/// reload on each one, on a thread of its own.
pub fn on_sighup(
    args: PipelineArgs,
    mut current: Config,
    filter: SharedFilter,
    state: Arc<DaemonState>,
) -> anyhow::Result<()> {
    let mut signals = Signals::new([SIGHUP]).context("cannot install a handler for SIGHUP")?;
    std::thread::Builder::new()
        .name("reload".into())
        .spawn(move || {
            for _ in signals.forever() {
                match reload(&args, &current, &filter) {
                    Ok((config, rules)) => {
                        let mut status = state.config_status();
                        status.reloads += 1;
                        status.filter_rules = rules;
                        status.last_error = None;
                        current = config;
                    }
                    Err(e) => {
                        let why = format!("{e:#}");
                        tracing::error!("configuration reload refused; the previous configuration stays: {why}");
                        state.config_status().last_error = Some(why);
                    }
                }
            }
        })
        .context("cannot start the reload thread")?;
    Ok(())
}

/// Load and check the file; put its filter rules in force. Returns the
/// new configuration and its number of filter rules.
fn reload(args: &PipelineArgs, current: &Config, filter: &SharedFilter) -> anyhow::Result<(Config, usize)> {
    let new = args.config(Some(Path::new(DEFAULT_CONFIG)))?;
    let compiled =
        EventFilter::new(&new.filter).map_err(|e| anyhow::anyhow!("filter.rules: rule {}: {}", e.index + 1, e.why))?;
    let rules = compiled.rules();
    filter.store(Arc::new(compiled));
    let mut unchanged = new.clone();
    unchanged.filter = current.filter.clone();
    // --socket is applied after the file is read.
    unchanged.socket.path = current.socket.path.clone();
    // Flags given at start override the file then as now.
    if &unchanged != current {
        tracing::warn!("configuration reloaded: settings outside [filter] changed and take effect at the next start");
    }
    tracing::info!("configuration reloaded: {rules} filter rules in force");
    Ok((new, rules))
}
