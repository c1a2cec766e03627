//! Blocking rules managed through the daemon, for real.

mod support;

use std::io::ErrorKind;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use support::{exec, private_true};

use serde_json::Value;
use support::daemon::{read_until, Daemon};

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn block_add_refuses_the_exec_at_once_and_remove_allows_it_again() {
    require_root!();
    let daemon = Daemon::start("");
    let (_dir, copy) = private_true();
    let (_, mut watch) = daemon.connect(r#"{"v":1,"op":"watch","format":"json","filter":{"kinds":["exec-blocked"]}}"#);

    assert!(exec(&copy).unwrap().success());
    assert_eq!(ok(&daemon.client(&["block", "add", &copy])), format!("blocked: {copy}\n"));
    assert_eq!(ok(&daemon.client(&["block", "list"])), format!("{copy}\n"));

    let err = exec(&copy).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    let mut events = Vec::new();
    read_until(&mut watch, &mut events, |e: &Value| e["kind"] == "exec-blocked" && e["path"] == copy.as_str());
    let blocked = events.last().unwrap();
    assert_eq!(blocked["rule"], copy.as_str());
    // The refused process is the child the test forked; it lives on.
    assert!(blocked["pid"].as_u64().unwrap() > 0 && blocked["pid"] != std::process::id());

    // Reached through the dynamic loader instead of execve: killed first.
    let status = Command::new("/lib64/ld-linux-x86-64.so.2").arg(&copy).status().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    assert!(Command::new("/lib64/ld-linux-x86-64.so.2").arg("/bin/true").status().unwrap().success());

    assert_eq!(ok(&daemon.client(&["block", "remove", &copy])), format!("unblocked: {copy}\n"));
    assert!(exec(&copy).unwrap().success());
    assert!(Command::new("/lib64/ld-linux-x86-64.so.2").arg(&copy).status().unwrap().success());
    assert_eq!(ok(&daemon.client(&["block", "list"])), "");
}

#[test]
fn rules_survive_a_crash_and_restart() {
    require_root!();
    let daemon = Daemon::start("");
    let (_dir, copy) = private_true();
    ok(&daemon.client(&["block", "add", &copy]));
    let dir = daemon.crash();

    let daemon = Daemon::restart(dir);
    assert_eq!(ok(&daemon.client(&["block", "list", "--json"])), format!("[\"{copy}\"]\n"));
    assert_eq!(exec(&copy).unwrap_err().raw_os_error(), Some(libc::EPERM));
    ok(&daemon.client(&["block", "remove", &copy]));
    assert!(exec(&copy).unwrap().success());
}

#[test]
fn bad_rules_and_unprivileged_clients_change_nothing() {
    require_root!();
    let daemon = Daemon::start_with_socket("", "read_group = \"nogroup\"");
    let (_dir, copy) = private_true();

    for bad in [vec!["relative/path"], vec![""], vec!["/"], vec!["with\nnewline"], vec!["--glob", "**"]] {
        let mut args = vec!["block", "add"];
        args.extend(bad.iter());
        let out = daemon.client(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{bad:?} was accepted");
        assert!(stderr.starts_with("rsysmon: the daemon refused: "), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    // The daemon may not block itself.
    let own = std::fs::canonicalize(support::RSYSMON).unwrap();
    assert_eq!(daemon.client(&["block", "add", &own.to_string_lossy()]).status.code(), Some(1));

    // A member of the read group may watch, but not change or list rules.
    let nobody = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=nogroup", "--clear-groups", "--inh-caps=-all", support::RSYSMON])
        .args(["block", "add", &copy, "--socket"])
        .arg(&daemon.socket)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&nobody.stderr);
    assert_eq!(nobody.status.code(), Some(1));
    assert!(stderr.contains("only root may change"), "{stderr}");

    assert_eq!(ok(&daemon.client(&["block", "list"])), "");
    assert!(exec(&copy).unwrap().success());
    assert!(!matches!(exec(&copy), Err(e) if e.kind() == ErrorKind::PermissionDenied));
}

/// A copy of /bin/true with bytes of its own after the ELF image: it runs
/// as true does, but no other file on the machine has its SHA-256.
fn unique_true(dir: &std::path::Path) -> String {
    let path = dir.join("unique-true");
    std::fs::copy("/bin/true", &path).unwrap();
    let mut tail = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    std::io::Write::write_all(&mut tail, format!("rsysmon-test {} {stamp}", std::process::id()).as_bytes()).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn a_blocked_hash_stops_copies_and_renamed_files() {
    require_root!();
    let daemon = Daemon::start("");
    let dir = tempfile::tempdir().unwrap();
    let original = unique_true(dir.path());
    assert!(exec(&original).unwrap().success());
    let out = Command::new("sha256sum").arg(&original).output().unwrap();
    let sha256 = String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string();
    let (_, mut watch) = daemon.connect(r#"{"v":1,"op":"watch","format":"json","filter":{"kinds":["exec-blocked"]}}"#);

    assert_eq!(
        ok(&daemon.client(&["block", "add", "--sha256", &sha256.to_uppercase()])),
        format!("blocked: sha256:{sha256}\n")
    );
    assert_eq!(ok(&daemon.client(&["block", "list"])), format!("sha256:{sha256}\n"));
    // The file itself, a copy and a renamed file: one content, all refused.
    let copy = dir.path().join("copy").to_string_lossy().into_owned();
    std::fs::copy(&original, &copy).unwrap();
    let renamed = dir.path().join("renamed").to_string_lossy().into_owned();
    std::fs::rename(&original, &renamed).unwrap();
    for path in [&renamed, &copy] {
        let err = exec(path).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{path}: {err}");
    }
    let mut events = Vec::new();
    read_until(&mut watch, &mut events, |e: &Value| e["kind"] == "exec-blocked" && e["path"] == copy.as_str());
    assert!(events.iter().all(|e| e["rule"] == format!("sha256:{sha256}")), "{events:#?}");
    // A changed copy is another content: it runs.
    std::io::Write::write_all(&mut std::fs::OpenOptions::new().append(true).open(&copy).unwrap(), b"x").unwrap();
    assert!(exec(&copy).unwrap().success());
    // Other programs are untouched, and the rule goes away by its text.
    assert!(exec("/bin/true").unwrap().success());
    let bad = daemon.client(&["block", "add", "--sha256", "abc"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("64 hex digits"));
    assert_eq!(
        ok(&daemon.client(&["block", "remove", &format!("sha256:{sha256}")])),
        format!("unblocked: sha256:{sha256}\n")
    );
    assert!(exec(&renamed).unwrap().success());
}
