//! `rsysmon unload`: remove the pinned BPF LSM blocking (links and rule
//! maps) that outlives the daemon.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rsysmon_probe::pins;

use crate::cli::UnloadArgs;
use crate::pipeline::config::{Config, DEFAULT_CONFIG};

/// Remove the pins and say what went.
pub fn unload(args: UnloadArgs) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!("rsysmon unload must run as root: it removes the kernel's blocking hooks");
    }
    let dir = pin_dir(&args)?;
    let unloaded = pins::unload(&dir).with_context(|| format!("cannot remove the pins in {}", dir.display()))?;
    let removed = &unloaded.removed;
    if removed.is_empty() {
        println!("nothing pinned at {}", dir.display());
    } else {
        println!("removed {} pins from {}: {}", removed.len(), dir.display(), removed.join(", "));
        if unloaded.still_attached.is_empty() {
            println!("the kernel no longer refuses blocked files");
        } else {
            println!(
                "still attached, held by a running process (a daemon?): {}; they detach when it ends",
                unloaded.still_attached.join(", ")
            );
        }
    }
    Ok(())
}

/// `--pin-dir`, else the config file's `blocking.pin_dir`, else the default.
fn pin_dir(args: &UnloadArgs) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &args.pin_dir {
        anyhow::ensure!(dir.is_absolute(), "--pin-dir must be an absolute path");
        return Ok(dir.clone());
    }
    let (path, explicit) = match &args.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    if !explicit && !Path::new(&path).exists() {
        return Ok(PathBuf::from(pins::DEFAULT_PIN_DIR));
    }
    Ok(Config::load(&path, explicit)?.blocking.pin_dir)
}
