//! Capabilities: each runs whole or is off and says why, in one notice
//! line, the startup and exit lines and `status`; `--require` (or
//! probes.require) makes a missing one fatal.
//!
//! A capability is forced off with the loader's test switch,
//! RSYSMON_TEST_HIDE_KERNEL_FEATURES: hiding both ways to look up a VMA
//! (the VMA iterator, 6.7, and bpf_find_vma, 5.17) leaves image loads no
//! way to run, as on a kernel older than 5.17.

mod support;

use std::process::Command;

use support::daemon::Daemon;
use support::{die_with_test, of, program, run_program, Monitor, RSYSMON};

const HIDE: &str = "RSYSMON_TEST_HIDE_KERNEL_FEATURES";
const NO_VMA_LOOKUP: &str = "bpf_iter_task_vma,bpf_find_vma";

fn lines_starting<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(prefix)).collect()
}

#[test]
fn a_capability_the_kernel_cannot_run_is_off_with_one_notice_and_the_rest_runs() {
    require_root!();
    let mut cmd = Command::new(RSYSMON);
    cmd.args(["run", "--json"]).env(HIDE, NO_VMA_LOOKUP);
    let monitor = Monitor::start_command(cmd);
    let (pid, _) = run_program(&program("threads"), &["2"]);
    monitor.wait_for("the process exit", |e| !of(e, "process-exit", pid).is_empty());
    let (events, stderr) = monitor.stop();

    assert_eq!(
        lines_starting(&stderr, "rsysmon: image-load is off: "),
        ["rsysmon: image-load is off: bpf_iter_task_vma is hidden by RSYSMON_TEST_HIDE_KERNEL_FEATURES, and \
          bpf_find_vma is hidden by RSYSMON_TEST_HIDE_KERNEL_FEATURES"],
        "{stderr}"
    );
    // Blocking's kernel half is the image-load probes: off with it, but
    // `run` without --block has nothing to say about it.
    assert!(lines_starting(&stderr, "rsysmon: blocking is off").is_empty(), "{stderr}");
    assert!(lines_starting(&stderr, "rsysmon: injection is off").is_empty(), "{stderr}");
    let capability_lines = lines_starting(&stderr, "rsysmon: capabilities: ");
    assert_eq!(capability_lines.len(), 2, "at start and at exit: {stderr}");
    for line in capability_lines {
        assert!(line.contains("process on (tp_btf sched_process_fork/exec/exit"), "{line}");
        assert!(line.contains(", image-load off (bpf_iter_task_vma is hidden"), "{line}");
        assert!(line.contains(", injection on (sys_exit_ptrace") || line.contains(", injection on (fexit "), "{line}");
    }
    assert!(!stderr.contains("sys_exit_mmap"), "no image-load probe attached: {stderr}");
    // Process and thread events go on; image loads are not reported.
    assert_eq!(of(&events, "process-exit", pid).len(), 1);
    assert_eq!(of(&events, "thread-create", pid).len(), 2);
    assert!(of(&events, "image-load", pid).is_empty());
}

#[test]
fn require_makes_a_missing_capability_fatal_from_the_flag_and_the_config() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[probes]\nrequire = [\"image-load\"]\n").unwrap();
    let flag: &[&str] = &["run", "--require", "injection,image-load"];
    let file: &[&str] = &["run", "--config", config.to_str().unwrap()];
    for args in [flag, file] {
        let mut cmd = Command::new(RSYSMON);
        cmd.args(args).env(HIDE, NO_VMA_LOOKUP);
        let out = die_with_test(&mut cmd).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(
                "image-load is required (--require, probes.require) but cannot run: bpf_iter_task_vma is hidden"
            ),
            "{args:?}: {stderr}"
        );
    }
    // The same requirement is met when the kernel can run it.
    let mut cmd = Command::new(RSYSMON);
    cmd.args(["run", "--json", "--require", "image-load,injection"]);
    let monitor = Monitor::start_command(cmd);
    let (_, stderr) = monitor.stop();
    assert!(lines_starting(&stderr, "rsysmon: capabilities: ")[0].contains("image-load on ("), "{stderr}");
}

#[test]
fn unknown_capabilities_are_refused_by_name() {
    let out = Command::new(RSYSMON).args(["run", "--require", "image_load"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unknown capability \"image_load\""), "{stderr}");
}

#[test]
fn status_shows_each_capability_on_or_off() {
    require_root!();
    // BPF LSM hidden too: where the kernel runs it, blocking needs no
    // image-load probes.
    let daemon = Daemon::start_with_env("", "", &[(HIDE, &format!("{NO_VMA_LOOKUP},bpf_lsm"))]);
    let status = daemon.status();
    let caps = status["capabilities"].as_array().unwrap();
    let names: Vec<&str> = caps.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["process", "image-load", "injection", "blocking"]);
    let on: Vec<bool> = caps.iter().map(|c| c["on"].as_bool().unwrap()).collect();
    assert_eq!(on, [true, false, true, false]);
    assert!(caps[3]["detail"].as_str().unwrap().starts_with("it needs image-load, which is off"), "{caps:?}");

    let out = daemon.client(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("capabilities: ")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("image-load off (bpf_iter_task_vma is hidden"), "{line}");
    assert!(line.contains("blocking off (it needs image-load"), "{line}");
}

/// The variants Debian 12's 6.1 runs (bpf_find_vma image lookups, probe
/// reads for kept pointers, the exit program without group_dead), forced
/// on this kernel: the same events come out.
#[test]
fn the_variants_of_older_kernels_report_the_same_events() {
    require_root!();
    let mut cmd = Command::new(RSYSMON);
    cmd.args(["run", "--json"]).env(HIDE, "bpf_iter_task_vma,bpf_rdonly_cast,sched_process_exit.group_dead");
    let monitor = Monitor::start_command(cmd);
    const K: usize = 8;
    let exe = program("threads");
    let (pid, _) = run_program(&exe, &[&K.to_string()]);
    let events = monitor.wait_for("the process exit", |e| !of(e, "process-exit", pid).is_empty());
    let (_, stderr) = monitor.stop();

    let line = lines_starting(&stderr, "rsysmon: capabilities: ")[0];
    assert!(line.contains("last thread by signal->live"), "{line}");
    // mmap is seen through fexit where trampolines work, where the kernel
    // traces VMA stores (on x86-64), else at the syscall's exit; either way
    // through bpf_find_vma.
    assert!(line.contains("image-load on (") && line.contains("mprotect"), "{line}");
    assert!(line.contains(", bpf_find_vma)"), "{line}");
    assert_eq!(of(&events, "process-exit", pid).len(), 1, "one process exit");
    assert_eq!(of(&events, "process-exit", pid)[0]["tid"], pid);
    assert_eq!(of(&events, "thread-exit", pid).len(), K);
    assert_eq!(of(&events, "thread-create", pid).len(), K);
    let exec = &of(&events, "process-exec", pid)[0];
    assert_eq!(exec["exe"], support::real(exe.to_str().unwrap()), "{exec}");
    let loads = of(&events, "image-load", pid);
    let via = |v: &str| loads.iter().filter(|l| l["via"] == v).count();
    assert_eq!((via("exec"), via("interpreter")), (1, 1), "{loads:#?}");
    let libc: Vec<_> = loads.iter().filter(|l| l["path"].as_str().unwrap().contains("/libc.so")).collect();
    assert_eq!(libc.len(), 1, "{loads:#?}");
    assert_eq!(libc[0]["via"], "mmap");
}
