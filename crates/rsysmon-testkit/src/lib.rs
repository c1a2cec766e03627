//! What every rsysmon root integration test needs, in one place.
//!
//! Root tests load real probes or fanotify marks: without root they fail
//! loudly, unless RSYSMON_SKIP_ROOT_TESTS=1 is set on purpose. Processes a
//! test starts must not outlive it.

pub mod bench;
pub mod ecs;

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Whether root tests should run: false only when RSYSMON_SKIP_ROOT_TESTS=1;
/// panics (the test fails) when not root otherwise.
pub fn root_tests_enabled() -> bool {
    if std::env::var("RSYSMON_SKIP_ROOT_TESTS").as_deref() == Ok("1") {
        eprintln!("RSYSMON_SKIP_ROOT_TESTS=1: skipping a root integration test");
        return false;
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "root integration tests need root (BPF, fanotify); set RSYSMON_SKIP_ROOT_TESTS=1 to skip them on purpose"
    );
    true
}

/// Return from the calling test when root tests are disabled on purpose.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::root_tests_enabled() {
            return;
        }
    };
}

/// Make a spawned child die with the thread that spawned it (the test), so
/// no process a test starts outlives it.
pub fn die_with_test(cmd: &mut Command) -> &mut Command {
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and
    // exec here.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// The dynamic loader (ld.so) the calling test binary runs with, from its
/// own maps: the loader a blocked file is run by to get around exec checks.
pub fn dynamic_loader() -> std::path::PathBuf {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let path = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.contains("/ld-linux") || p.contains("/ld-musl"))
        .expect("this test binary is dynamically linked");
    std::path::PathBuf::from(path)
}
