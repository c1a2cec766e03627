//! `rsysmon run --block`: refused execs fail with EPERM and show up as
//! `exec-blocked` events in the same stream as the kernel events.

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use support::{die_with_test, of, real, Monitor};

fn copy_of_true(dir: &Path, name: &str) -> String {
    let to = dir.join(name);
    fs::copy(real("/bin/true"), &to).unwrap();
    to.to_string_lossy().into_owned()
}

#[test]
fn blocked_exec_fails_with_eperm_and_is_an_exec_blocked_event() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let evil = copy_of_true(dir.path(), "evil");
    let harmless = copy_of_true(dir.path(), "harmless");
    let monitor = Monitor::start(&["--block", &evil]);

    let mut cmd = Command::new(&evil);
    let err = die_with_test(&mut cmd).status().expect_err("a blocked exec must fail");
    assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");

    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", "echo $$; exec \"$0\"", &evil]).stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = die_with_test(&mut cmd).output().unwrap();
    let shell: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"));

    let mut cmd = Command::new(&harmless);
    assert!(die_with_test(&mut cmd).status().unwrap().success());

    let events = monitor.wait_for("the shell's exec-blocked event", |e| !of(e, "exec-blocked", shell).is_empty());
    let blocked = of(&events, "exec-blocked", shell);
    assert_eq!(blocked.len(), 1, "{blocked:#?}");
    assert_eq!(blocked[0]["path"], real(&evil));
    assert_eq!(blocked[0]["rule"], real(&evil));
    assert_eq!(blocked[0]["comm"], "sh");
    assert_eq!(blocked[0]["tid"], shell);
    // The refused exec never became a process-exec; the shell's own did.
    let execs = of(&events, "process-exec", shell);
    assert_eq!(execs.len(), 1, "{execs:#?}");
    assert!(execs[0]["seq"].as_u64() < blocked[0]["seq"].as_u64());

    let (events, stderr) = monitor.stop();
    assert!(events.iter().all(|e| e["kind"] != "exec-blocked" || e["path"] != real(&harmless)));
    assert!(stderr.contains("rsysmon: blocker:"), "{stderr}");
    // Stopped: the file runs again.
    let mut cmd = Command::new(&evil);
    assert!(die_with_test(&mut cmd).status().unwrap().success());
}

#[test]
fn bad_block_rules_are_refused_before_anything_starts() {
    require_root!();
    let own = real(support::RSYSMON);
    let cases: [(&[&str], &str); 5] = [
        (&["--block", "relative/evil"], "is relative"),
        (&["--block", ""], "empty rule"),
        (&["--block", "/"], "every executable"),
        (&["--block", &own], "must keep running"),
        (&["--block-glob", "/**/rsysmon*"], "must keep running"),
    ];
    for (args, expected) in cases {
        let out = Command::new(support::RSYSMON).arg("run").args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn a_user_without_privileges_cannot_block() {
    require_root!();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"])
        .args([support::RSYSMON, "run", "--block", "/nonexistent/rsysmon-test/evil"])
        .output()
        .expect("setpriv (util-linux) runs the binary as nobody");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("rsysmon: missing CAP_BPF"), "{stderr}");
}
