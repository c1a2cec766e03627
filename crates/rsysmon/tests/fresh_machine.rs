//! A machine where nothing was mounted by hand: no tracefs, no debugfs.
//! rsysmon mounts tracefs itself, as systemd would, and its syscall
//! tracepoints attach.
//!
//! The machine is made fresh in a private mount namespace (`unshare -m`),
//! where every tracefs and debugfs mount is taken away; the host's mounts
//! are untouched.

mod support;

use std::process::Command;

use support::{of, program, run_program, Monitor, RSYSMON};

#[test]
fn run_mounts_tracefs_on_a_fresh_machine_and_reports_mmap_image_loads() {
    require_root!();
    // In the new namespace: unmount every tracefs and debugfs (deepest
    // first), check that none is left, then become rsysmon.
    let script = r#"
        set -e
        for m in $(findmnt -rn -t tracefs,debugfs -o TARGET | sort -r); do umount -l "$m"; done
        if [ -n "$(findmnt -rn -t tracefs,debugfs -o TARGET)" ]; then echo "tracefs still mounted" >&2; exit 1; fi
        exec "$0" run --json
    "#;
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", script, RSYSMON]);
    let monitor = Monitor::start_command(cmd);

    // Any dynamically linked program: ld.so maps libc with mmap(PROT_EXEC);
    // image loads attach whole, with their mprotect probe, a syscall
    // tracepoint that needs tracefs.
    let (pid, _) = run_program(&program("threads"), &["1"]);
    monitor.wait_for("an image load by mmap", |e| of(e, "image-load", pid).iter().any(|l| l["via"] == "mmap"));
    let (events, stderr) = monitor.stop();
    assert!(stderr.contains("rsysmon: mounted tracefs at /sys/kernel/tracing"), "{stderr}");
    assert_eq!(of(&events, "process-exit", pid).len(), 1, "{stderr}");
}
