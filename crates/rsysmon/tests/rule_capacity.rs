//! Many rules through the daemon, for real: 10,000 file rules are all
//! enforced, in user space and in the kernel, survive a restart, and cost
//! no more to add at the end than at the start; a full rule set starts, and
//! refuses one more rule cleanly.

mod support;

use std::io::{BufRead, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::{Duration, Instant};
use support::exec;

use serde_json::Value;
use support::daemon::Daemon;

const LOADER: &str = "/lib64/ld-linux-x86-64.so.2";
/// The most rules a set holds (rsysmon_blocker::MAX_RULES).
const MAX_RULES: usize = 16384;

fn ld_so(path: &str) -> std::process::ExitStatus {
    support::die_with_test(Command::new(LOADER).arg(path)).status().unwrap()
}

fn list(daemon: &Daemon) -> Vec<String> {
    let out = daemon.client(&["block", "list", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Assert `copy` (of /bin/true) is refused by execve and killed by ld.so.
fn assert_blocked(copy: &str) {
    assert_eq!(exec(copy).unwrap_err().raw_os_error(), Some(libc::EPERM));
    assert_eq!(ld_so(copy).signal(), Some(libc::SIGKILL), "ld.so {copy}");
}

#[test]
fn ten_thousand_file_rules_are_enforced_survive_a_restart_and_add_in_constant_time() {
    require_root!();
    let files = tempfile::tempdir().unwrap();
    let mut paths: Vec<String> = (0..9_999)
        .map(|i| {
            let path = files.path().join(format!("f{i}"));
            std::fs::write(&path, b"").unwrap();
            path.to_string_lossy().into_owned()
        })
        .collect();
    let copy = files.path().join("true-copy").to_string_lossy().into_owned();
    std::fs::copy("/bin/true", &copy).unwrap();
    paths.push(copy.clone());

    let daemon = Daemon::start("");
    let (_, mut conn) = daemon.connect(r#"{"v":1,"op":"status"}"#);
    let mut took = Vec::with_capacity(paths.len());
    let mut line = String::new();
    for path in &paths {
        let started = Instant::now();
        writeln!(conn.get_mut(), "{}", serde_json::json!({"v": 1, "op": "block-add", "rule": path})).unwrap();
        line.clear();
        conn.read_line(&mut line).unwrap();
        took.push(started.elapsed());
        let reply: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(reply["ok"], true, "{line}");
    }
    let mean = |d: &[Duration]| d.iter().sum::<Duration>() / d.len() as u32;
    let (first, last) = (mean(&took[..1000]), mean(&took[took.len() - 1000..]));
    eprintln!("block add: first 1,000 {first:?} each, last 1,000 {last:?} each");
    assert!(last <= first * 3 + Duration::from_millis(2), "adds slow down with the rule count: {first:?} → {last:?}");
    assert_eq!(list(&daemon).len(), 10_000);
    assert_blocked(&copy);
    assert!(exec("/bin/true").unwrap().success());

    let dir = daemon.crash();
    let daemon = Daemon::restart(dir);
    assert_eq!(list(&daemon), paths);
    assert_blocked(&copy);
    assert!(ld_so("/bin/true").success());
}

#[test]
fn a_full_rule_set_starts_and_refuses_one_more_rule_changing_nothing() {
    require_root!();
    let files = tempfile::tempdir().unwrap();
    let copy = |name: &str| {
        let path = files.path().join(name);
        std::fs::copy("/bin/true", &path).unwrap();
        path.to_string_lossy().into_owned()
    };
    let (first, second) = (copy("first"), copy("second"));
    let first_id = std::fs::metadata(&first).unwrap();

    // A rule file holding the most rules there may be, written while the
    // daemon is down: every one a file the kernel must hold.
    let dir = Daemon::start("").crash();
    let mut rules: Vec<Value> = (1..MAX_RULES as u64)
        .map(|i| serde_json::json!({"file": format!("/nonexistent/rsysmon-full/{i}"), "dev": 1, "ino": i}))
        .collect();
    use std::os::unix::fs::MetadataExt;
    rules.push(serde_json::json!({"file": first, "dev": first_id.dev(), "ino": first_id.ino()}));
    let file = serde_json::json!({"version": 1, "rules": rules});
    std::fs::write(dir.path().join("rules.json"), file.to_string()).unwrap();

    let daemon = Daemon::restart(dir);
    assert_eq!(list(&daemon).len(), MAX_RULES);
    assert_blocked(&first);

    let out = daemon.client(&["block", "add", &second]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("remove one first"), "{stderr}");
    assert_eq!(list(&daemon).len(), MAX_RULES);
    assert!(!list(&daemon).contains(&second));
    assert!(exec(&second).unwrap().success(), "a refused rule is not enforced");
    assert!(ld_so(&second).success());

    let out = daemon.client(&["block", "remove", "/nonexistent/rsysmon-full/1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = daemon.client(&["block", "add", &second]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_blocked(&second);
}
