//! Blocking in the kernel with BPF LSM, failing closed: the daemon pins its
//! hooks and rule maps, so a blocked file stays refused (EPERM) while the
//! daemon is killed, and after it restarts, until `rsysmon unload`.
//!
//! On a kernel that refuses BPF LSM programs (this development VM) the
//! daemon must say so, name the fallback (fanotify and the image-load
//! kill) with the reason, and still block. `RSYSMON_EXPECT_BPF_LSM=1` (set
//! by the guest stage, whose kernel boots with `lsm=...,bpf`) turns a
//! fallback into a failure.

mod support;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use rsysmon_testkit::dynamic_loader;
use serde_json::Value;
use support::daemon::Daemon;
use support::{die_with_test, program, real, shared_library, RSYSMON};

fn expect_lsm() -> bool {
    std::env::var("RSYSMON_EXPECT_BPF_LSM").is_ok_and(|v| v == "1")
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A copy of /bin/true of this test's own, so blocking it touches nothing
/// else on the machine.
fn copy_of_true(dir: &Path, name: &str) -> String {
    let to = dir.join(name);
    std::fs::copy(real("/bin/true"), &to).unwrap();
    to.to_string_lossy().into_owned()
}

/// The blocking capability's detail in `status`.
fn blocking_detail(daemon: &Daemon) -> String {
    let status = daemon.status();
    let caps = status["capabilities"].as_array().unwrap();
    let blocking = caps.iter().find(|c| c["name"] == "blocking").unwrap_or_else(|| panic!("{caps:?}"));
    assert_eq!(blocking["on"], Value::Bool(true), "{blocking}");
    blocking["detail"].as_str().unwrap().to_string()
}

fn exec(path: &str) -> std::io::Result<std::process::ExitStatus> {
    die_with_test(&mut Command::new(path)).status()
}

fn assert_eperm(path: &str, when: &str) {
    let err = exec(path).expect_err(when);
    assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{when}: {err}");
}

/// `ld.so FILE`: its exit status and stderr.
fn run_by_loader(file: &str) -> (std::process::ExitStatus, String) {
    let mut cmd = Command::new(dynamic_loader());
    cmd.arg(file).stdout(Stdio::null()).stderr(Stdio::piped());
    let out = die_with_test(&mut cmd).output().unwrap();
    (out.status, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `map_exec_ways MODE FILE`: "mapped" or "refused ERRNO MESSAGE".
fn map_exec(mode: &str, file: &str) -> String {
    let mut cmd = Command::new(program("map_exec_ways"));
    cmd.args([mode, file]).stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = die_with_test(&mut cmd).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(out.status.signal().is_none(), "{mode} {file}: killed ({}): {stdout}", out.status);
    stdout
}

/// Every way of mapping `file` executable fails with EPERM; the caller
/// lives on.
fn assert_every_mapping_refused(file: &str, library: &str, when: &str) {
    let (status, stderr) = run_by_loader(file);
    assert!(status.signal().is_none() && !status.success(), "{when}: ld.so {file}: {status} {stderr}");
    assert!(stderr.contains("Operation not permitted") || stderr.contains("failed to map"), "{when}: {stderr}");
    for mode in ["mmap", "mmap2", "mprotect"] {
        let out = map_exec(mode, file);
        assert!(out.starts_with(&format!("refused {}", libc::EPERM)), "{when}: {mode}: {out}");
    }
    let out = map_exec("dlopen", library);
    // glibc reports the refused mmap as a failed segment map, without errno.
    assert!(out.starts_with("refused") && out.contains("failed to map segment"), "{when}: dlopen: {out}");
    assert_eq!(map_exec("dlopen", &real("/lib/x86_64-linux-gnu/libm.so.6")), "mapped", "an allowed library");
}

/// The refused mmap of `file` by a process of this test is an image-load
/// event marked blocked, with base 0 (nothing was mapped).
fn assert_refusal_reported(daemon: &Daemon, file: &str) {
    let mut cmd = Command::new(program("map_exec_ways"));
    cmd.args(["mmap", file]).stdout(Stdio::piped());
    let child = die_with_test(&mut cmd).spawn().unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("refused"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let listed = ok(&daemon.client(&["events", "--json", "--pid", &pid.to_string()]));
        let events: Vec<Value> = listed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let refused: Vec<&Value> =
            events.iter().filter(|e| e["kind"] == "image-load" && e["blocked"] == Value::Bool(true)).collect();
        if let Some(e) = refused.first() {
            assert_eq!(refused.len(), 1, "{refused:#?}");
            assert_eq!(e["path"], real(file), "{e}");
            assert_eq!(e["via"], "mmap", "{e}");
            assert_eq!(e["base"], 0, "{e}");
            return;
        }
        assert!(std::time::Instant::now() < deadline, "no blocked image-load for {pid}: {events:#?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// `status` counts one more kernel refusal after exactly one refused mmap
/// of `file`.
fn assert_one_more_kernel_refusal(daemon: &Daemon, file: &str) {
    let refused = || daemon.status()["blocker"]["kernel_refused"].as_u64().unwrap();
    // The count is read from the kernel between ring-buffer polls: wait
    // until it stops moving before taking the baseline.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut before = refused();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let now = refused();
        if now == before {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "kernel_refused never settled");
        before = now;
    }
    assert!(map_exec("mmap", file).starts_with(&format!("refused {}", libc::EPERM)));
    loop {
        let now = refused();
        if now == before + 1 {
            break;
        }
        assert!(now <= before, "one refused mmap counted as {}", now - before);
        assert!(std::time::Instant::now() < deadline, "kernel_refused stayed {now}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let text = ok(&daemon.client(&["status"]));
    assert!(text.contains(&format!("{} refused in the kernel (BPF LSM)", before + 1)), "{text}");
}

#[test]
fn blocking_names_its_mechanism_and_a_blocked_file_stays_refused_while_the_daemon_is_down() {
    require_root!();
    let files = tempfile::tempdir().unwrap();
    let evil = copy_of_true(files.path(), "evil");
    let harmless = copy_of_true(files.path(), "harmless");
    let lib_dir = files.path().join("lib");
    std::fs::create_dir(&lib_dir).unwrap();
    let library = lib_dir.join("libevil.so");
    std::fs::copy(shared_library("image_test_lib"), &library).unwrap();
    let library = library.to_string_lossy().into_owned();

    let daemon = Daemon::start("");
    let pin_dir = daemon.pin_dir();
    ok(&daemon.client(&["block", "add", &evil]));
    ok(&daemon.client(&["block", "add", &format!("{}/", lib_dir.display())]));
    assert_eperm(&evil, "blocked");
    assert!(exec(&harmless).unwrap().success());
    let detail = blocking_detail(&daemon);

    if !detail.starts_with("bpf-lsm ") {
        // The fallback: fanotify at execve, the image-load kill for the
        // loader; the reason BPF LSM is not used is given.
        assert!(!expect_lsm(), "RSYSMON_EXPECT_BPF_LSM=1 but blocking is: {detail}");
        assert!(detail.starts_with("fanotify exec permission, SIGKILL at image load; bpf-lsm not used: "), "{detail}");
        let (status, _) = run_by_loader(&evil);
        assert_eq!(status.signal(), Some(libc::SIGKILL), "ld.so on the fallback is killed: {status}");
        assert!(!pin_dir.exists(), "nothing is pinned on the fallback");
        assert_eq!(daemon.status()["blocker"]["kernel_refused"], 0, "no kernel refusal without the hooks");
        let dir = daemon.crash();
        assert!(exec(&evil).unwrap().success(), "fanotify fails open (docs/blocking.md)");
        drop(dir);
        return;
    }

    assert_eq!(
        detail,
        format!(
            "bpf-lsm bprm_check_security/mmap_file/file_mprotect, pinned at {}; fanotify exec permission for path, \
             glob and hash rules",
            pin_dir.display()
        )
    );
    assert_every_mapping_refused(&evil, &library, "daemon running");
    assert_refusal_reported(&daemon, &evil);
    assert_one_more_kernel_refusal(&daemon, &evil);
    for mode in ["mmap", "mmap2", "mprotect"] {
        assert_eq!(map_exec(mode, &harmless), "mapped", "{mode} of an allowed file");
    }

    // Killed as a crash would: the kernel goes on refusing.
    let dir = daemon.crash();
    assert_eperm(&evil, "while the daemon is dead");
    assert_every_mapping_refused(&evil, &library, "daemon dead");
    assert!(exec(&harmless).unwrap().success());

    // Restarted on the same rules: it adopts the pinned maps.
    let daemon = Daemon::restart(dir);
    let detail = blocking_detail(&daemon);
    assert!(detail.contains(&format!("pinned at {} (adopted)", pin_dir.display())), "{detail}");
    assert_eperm(&evil, "after the restart");
    assert_every_mapping_refused(&evil, &library, "after the restart");

    // A rule removed while it runs is gone from the pinned map too.
    ok(&daemon.client(&["block", "remove", &evil]));
    assert!(exec(&evil).unwrap().success(), "runs once its rule is removed");
    ok(&daemon.client(&["block", "add", &evil]));
    assert_eperm(&evil, "blocked again");

    // Dead again, then unloaded: everything runs.
    let dir = daemon.crash();
    assert_eperm(&evil, "dead again");
    let out = Command::new(RSYSMON).args(["unload", "--pin-dir"]).arg(&pin_dir).output().unwrap();
    let said = ok(&out);
    assert!(said.contains(&format!("from {}", pin_dir.display())), "{said}");
    for pin in ["link_lsm_bprm_check", "link_lsm_mmap_file", "link_lsm_file_mprotect", "blocked_files"] {
        assert!(said.contains(pin), "{pin}: {said}");
    }
    assert!(!pin_dir.exists());
    assert!(exec(&evil).unwrap().success(), "runs after rsysmon unload");
    assert_eq!(map_exec("mmap", &evil), "mapped");
    let out = Command::new(RSYSMON).args(["unload", "--pin-dir"]).arg(&pin_dir).output().unwrap();
    assert!(ok(&out).contains("nothing pinned"));
    drop(dir);
}

#[test]
fn a_restarted_daemon_drops_what_its_rules_no_longer_hold() {
    require_root!();
    let files = tempfile::tempdir().unwrap();
    let evil = copy_of_true(files.path(), "evil");
    let daemon = Daemon::start("");
    if !blocking_detail(&daemon).starts_with("bpf-lsm ") {
        assert!(!expect_lsm(), "RSYSMON_EXPECT_BPF_LSM=1 but: {}", blocking_detail(&daemon));
        return;
    }
    ok(&daemon.client(&["block", "add", &evil]));
    let dir = daemon.crash();
    assert_eperm(&evil, "dead");
    // The rule file loses the rule while no daemon runs (an admin restoring
    // an older file): the restarted daemon's lists follow the file.
    std::fs::write(dir.path().join("rules.json"), r#"{"version":1,"rules":[]}"#).unwrap();
    let _ = std::fs::remove_file(dir.path().join("rules.json.log"));
    let daemon = Daemon::restart(dir);
    assert!(blocking_detail(&daemon).contains("(adopted)"));
    assert!(exec(&evil).unwrap().success(), "the adopted list was reconciled with the rule file");
}

#[test]
fn unload_is_for_root_and_says_so() {
    let out = Command::new(RSYSMON).args(["unload", "--help"]).output().unwrap();
    let help = ok(&out);
    assert!(help.contains("/sys/fs/bpf/rsysmon") && help.contains("--pin-dir"), "{help}");
    if nix::unistd::geteuid().is_root() {
        return;
    }
    let out = Command::new(RSYSMON).arg("unload").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("must run as root"));
}
