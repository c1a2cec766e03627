//! What blocking does when the exec decider dies, per `[blocking]
//! on_failure`: closed (blocked files never run; a new decider starts) or
//! open (blocking ends, the daemon goes on reporting).
//!
//! The decider is made to fail by `RSYSMON_TEST_DECIDER_PANIC_ON`: it
//! panics, outside every catch, right after answering an exec of the given
//! file, exactly as a bug in it would.

mod support;

use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::daemon::Daemon;
use support::{exec, private_true};

/// A daemon blocking `blocked`, whose decider fails at the first exec of
/// `trigger`.
fn daemon(on_failure: &str, trigger: &str, blocked: &str) -> Daemon {
    let daemon = Daemon::start_full(
        "",
        &format!("on_failure = \"{on_failure}\""),
        "",
        None,
        &[("RSYSMON_TEST_DECIDER_PANIC_ON", trigger)],
    );
    let out = daemon.client(&["block", "add", blocked]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(exec(blocked).unwrap_err().raw_os_error(), Some(libc::EPERM));
    let blocker = &daemon.status()["blocker"];
    assert_eq!(blocker["state"], "running", "{blocker}");
    assert_eq!(blocker["on_failure"], on_failure, "{blocker}");
    assert_eq!(blocker["decider_failures"], 0, "{blocker}");
    daemon
}

/// Wait (up to 20 s) until the daemon's blocker status satisfies `done`.
fn wait_for_blocker(daemon: &Daemon, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let blocker = daemon.status()["blocker"].clone();
        if done(&blocker) {
            return blocker;
        }
        assert!(Instant::now() < deadline, "blocker status never got there: {blocker}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn count(log: &str, needle: &str) -> usize {
    log.matches(needle).count()
}

#[test]
fn a_failed_decider_fails_closed_and_a_new_one_takes_over() {
    require_root!();
    let (_dir, blocked) = private_true();
    let (_trigger_dir, trigger) = private_true();
    let mut daemon = daemon("closed", &trigger, &blocked);

    // The trigger itself is allowed; the decider dies right after.
    assert!(exec(&trigger).unwrap().success());
    // From that moment on, the blocked file never runs: refused by a new
    // decider (EPERM) or, while none runs yet, killed by the kernel.
    let until = Instant::now() + Duration::from_secs(2);
    let mut tries = 0;
    while Instant::now() < until {
        match exec(&blocked) {
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}"),
            Ok(status) => assert_eq!(status.signal(), Some(libc::SIGKILL), "the blocked file ran: {status:?}"),
        }
        tries += 1;
    }
    assert!(tries > 10, "only {tries} execs in 2 s");
    let blocker = wait_for_blocker(&daemon, |b| b["state"] == "running" && b["restarts"] == 1);
    assert_eq!(blocker["decider_failures"], 1, "{blocker}");
    assert!(blocker["last_failure"].as_str().unwrap().contains("panicked"), "{blocker}");

    // The new decider refuses with EPERM and allows everything else.
    assert_eq!(exec(&blocked).unwrap_err().raw_os_error(), Some(libc::EPERM));
    assert!(exec(&trigger).unwrap().success());
    assert!(Command::new("/bin/true").status().unwrap().success());
    // The loader path is still the kernel's to refuse.
    let status = Command::new("/lib64/ld-linux-x86-64.so.2").arg(&blocked).status().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");

    assert!(daemon.is_alive());
    let log = daemon.log.lock().unwrap().clone();
    assert_eq!(count(&log, "Failing closed"), 1, "{log}");
    assert_eq!(count(&log, "exec blocker running again"), 1, "{log}");
    let text = String::from_utf8(daemon.client(&["status"]).stdout).unwrap();
    assert!(text.contains("blocker: running (on failure: fail closed), 1 decider failures, 1 restarts"), "{text}");
}

#[test]
fn a_failed_decider_fails_open_when_configured_and_the_daemon_goes_on() {
    require_root!();
    let (_dir, blocked) = private_true();
    let (_trigger_dir, trigger) = private_true();
    let mut daemon = daemon("open", &trigger, &blocked);
    let (_, mut watch) = daemon.connect(r#"{"v":1,"op":"watch","format":"json","filter":{"kinds":["process-exec"]}}"#);

    assert!(exec(&trigger).unwrap().success());
    let blocker = wait_for_blocker(&daemon, |b| b["state"] == "failed open");
    assert_eq!((blocker["decider_failures"].as_u64(), blocker["restarts"].as_u64()), (Some(1), Some(0)), "{blocker}");

    // Nothing is blocked any more: not at execve, not through the loader.
    assert!(exec(&blocked).unwrap().success());
    assert!(Command::new("/lib64/ld-linux-x86-64.so.2").arg(&blocked).status().unwrap().success());
    // The rule is kept for the next daemon, and events still flow.
    let list = daemon.client(&["block", "list"]);
    assert_eq!(String::from_utf8_lossy(&list.stdout), format!("{blocked}\n"));
    let mut events = Vec::new();
    support::daemon::read_until(&mut watch, &mut events, |e| {
        e["kind"] == "process-exec" && e["exe"] == blocked.as_str()
    });

    assert!(daemon.is_alive());
    std::thread::sleep(Duration::from_millis(300));
    let log = daemon.log.lock().unwrap().clone();
    assert_eq!(count(&log, "Failing open"), 1, "{log}");
    assert_eq!(count(&log, "exec blocker running again"), 0, "{log}");
}
