//! Filter rules in the daemon's configuration, for real: they drop exactly
//! the events they match (counted as filtered, taking no seq), and SIGHUP
//! puts a new file's rules in force, or keeps the old ones when the new
//! file is bad.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::daemon::Daemon;
use support::{of, run_program};

/// A copy of the `threads` program at `dir/NAME`.
fn copy_of_threads(dir: &Path, name: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::copy(support::program("threads"), &path).unwrap();
    path
}

fn rule(action: &str, kind: &str, field: &str, op: &str, value: &str) -> String {
    format!(
        "[[filter.rules]]\naction = {action:?}\nkind = {kind:?}\nfield = {field:?}\nop = {op:?}\nvalue = {value:?}\n"
    )
}

fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Wait until the file sink wrote the exit of `pid`.
fn events_until_exit(daemon: &Daemon, pid: u32) -> Vec<Value> {
    let path = daemon.dir().join("events.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events = read_lines(&path);
        if events.iter().any(|e| e["kind"] == "process-exit" && e["pid"] == pid) {
            return events;
        }
        assert!(Instant::now() < deadline, "no exit of {pid} after 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn filtered(daemon: &Daemon, kind: &str) -> u64 {
    daemon.status()["filtered"][kind].as_u64().unwrap_or(0)
}

/// Replace the filter rules in the daemon's file (they open it) and send
/// SIGHUP; wait until status shows the reload taken or refused.
fn reload(daemon: &Daemon, old_rules: &str, new_rules: &str) {
    let text = std::fs::read_to_string(&daemon.config).unwrap();
    assert!(text.starts_with(old_rules), "{text}");
    let before = daemon.status()["config"].clone();
    std::fs::write(&daemon.config, format!("{new_rules}{}", &text[old_rules.len()..])).unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(daemon.pid() as i32), nix::sys::signal::Signal::SIGHUP).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while daemon.status()["config"] == before {
        assert!(Instant::now() < deadline, "the daemon did not react to SIGHUP");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn rules_drop_exactly_what_they_match_and_sighup_swaps_them_or_keeps_them() {
    require_root!();
    let work = tempfile::tempdir().unwrap();
    let quiet = copy_of_threads(&work.path().join("quiet"), "threads");
    let loud = copy_of_threads(&work.path().join("loud"), "threads");
    let quiet_dir = format!("{}/", work.path().join("quiet").display());
    let first = rule("exclude", "thread-create", "exe", "begins-with", &quiet_dir);
    let daemon = Daemon::start(&first);

    // Only the quiet copy's thread-creates go, and only those: its exits,
    // exec and the other copy's threads stay.
    let (quiet_pid, _) = run_program(&quiet, &["7"]);
    let (loud_pid, _) = run_program(&loud, &["5"]);
    let events = events_until_exit(&daemon, loud_pid);
    assert_eq!(of(&events, "thread-create", quiet_pid).len(), 0);
    assert_eq!(of(&events, "thread-exit", quiet_pid).len(), 7);
    assert_eq!(of(&events, "process-exec", quiet_pid).len(), 1);
    assert_eq!(of(&events, "thread-create", loud_pid).len(), 5);
    assert_eq!(filtered(&daemon, "thread-create"), 7, "exactly the quiet copy's threads");
    // A dropped event takes no seq: the file has no gap.
    for pair in events.windows(2) {
        assert_eq!(pair[1]["seq"].as_u64().unwrap(), pair[0]["seq"].as_u64().unwrap() + 1, "{}", pair[1]);
    }

    // A good reload: now the loud copy's thread exits go instead.
    let loud_dir = format!("{}/", work.path().join("loud").display());
    let second = rule("exclude", "thread-exit", "exe", "glob", &format!("{loud_dir}thr*"));
    reload(&daemon, &first, &second);
    let status = daemon.status();
    assert_eq!(status["config"]["reloads"], 1, "{}", status["config"]);
    assert!(status["config"].get("last_error").is_none());
    let (quiet_pid, _) = run_program(&quiet, &["3"]);
    let (loud_pid, _) = run_program(&loud, &["4"]);
    events_until_exit(&daemon, quiet_pid);
    let events = events_until_exit(&daemon, loud_pid);
    assert_eq!(of(&events, "thread-create", quiet_pid).len(), 3);
    assert_eq!(of(&events, "thread-exit", loud_pid).len(), 0);
    assert_eq!(of(&events, "thread-create", loud_pid).len(), 4);
    assert_eq!(filtered(&daemon, "thread-exit"), 4);
    assert_eq!(filtered(&daemon, "thread-create"), 7);

    // A bad reload: refused with the line and key; the second rules stay.
    let bad = rule("exclude", "thread-create", "exe", "sounds-like", "/");
    reload(&daemon, &second, &bad);
    let status = daemon.status();
    let error = status["config"]["last_error"].as_str().unwrap_or_else(|| panic!("{}", status["config"]));
    assert!(error.contains("line 5") && error.contains("sounds-like"), "{error}");
    assert_eq!(status["config"]["reloads"], 1);
    let (loud_pid, _) = run_program(&loud, &["2"]);
    let events = events_until_exit(&daemon, loud_pid);
    assert_eq!(of(&events, "thread-exit", loud_pid).len(), 0, "the previous rules are still in force");
    assert_eq!(of(&events, "thread-create", loud_pid).len(), 2);
    assert_eq!(filtered(&daemon, "thread-exit"), 6);

    // A rule on a kind that is never filtered is refused the same way,
    // and a later good file clears the error.
    let bad_kind = "[[filter.rules]]\naction = \"exclude\"\nkind = \"loss\"\n".to_string();
    reload(&daemon, &bad, &bad_kind);
    let error = daemon.status()["config"]["last_error"].as_str().unwrap().to_string();
    assert!(error.contains("line 1: filter.rules: rule 1: kind: loss events are never filtered"), "{error}");
    reload(&daemon, &bad_kind, &second);
    let status = daemon.status();
    assert_eq!(status["config"]["reloads"], 2);
    assert!(status["config"].get("last_error").is_none(), "{}", status["config"]);
    drop(daemon);
}
