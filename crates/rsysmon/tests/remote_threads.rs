//! Remote threads and process tampering, with real injectors.
//!
//! Where the kernel runs BPF trampolines, takeovers are seen by fexit
//! programs and no syscall tracepoint; elsewhere (this development VM) by
//! syscall exit tracepoints. `RSYSMON_EXPECT_BPF_TRAMPOLINES=1` (the guest
//! stage sets it) makes the tests fail on a silent fallback.

mod support;

use std::process::{Child, Command, Stdio};

use serde_json::Value;
use support::target::Target;
use support::{die_with_test, field, of, program, run_program, Monitor};

/// Whether the fexit mechanism must be in use (the guest stage says so).
fn expect_trampolines() -> bool {
    std::env::var("RSYSMON_EXPECT_BPF_TRAMPOLINES").is_ok_and(|v| v == "1")
}

/// The syscall tracepoints of the old takeover probes.
const INJECTION_TRACEPOINTS: [&str; 5] = [
    "syscalls/sys_exit_ptrace",
    "syscalls/sys_exit_process_vm_writev",
    "syscalls/sys_exit_open",
    "syscalls/sys_exit_openat",
    "syscalls/sys_exit_creat",
];

/// Check, from a stopped monitor's stderr, which mechanism saw the
/// takeovers: fexit with none of the injection syscall tracepoints
/// attached, or (where trampolines are refused) the tracepoints.
fn assert_injection_mechanism(stderr: &str) {
    let line = stderr.lines().find(|l| l.starts_with("rsysmon: capabilities: ")).expect("capabilities line");
    let watching = stderr.lines().find(|l| l.starts_with("rsysmon: watching")).expect("the watching line");
    if line.contains("injection on (fexit ") {
        for section in
            ["fexit/arch_ptrace", "fexit/ptrace_attach", "fexit/mem_open", "fexit/__x64_sys_process_vm_writev"]
        {
            assert!(watching.contains(section), "{section}: {watching}");
        }
        for tracepoint in INJECTION_TRACEPOINTS {
            assert!(!watching.contains(tracepoint), "{tracepoint}: {watching}");
        }
    } else {
        assert!(!expect_trampolines(), "RSYSMON_EXPECT_BPF_TRAMPOLINES=1 but: {line}");
        assert!(line.contains("injection on (sys_exit_ptrace/process_vm_writev/open*; fexit not used: "), "{line}");
        assert!(watching.contains("tracepoint/syscalls/sys_exit_ptrace"), "{watching}");
    }
}

fn remote_threads_in(events: &[Value], pid: u32) -> Vec<Value> {
    of(events, "remote-thread", pid)
}

fn tampers(events: &[Value], target: u32, creator: u32) -> Vec<Value> {
    of(events, "process-tamper", target).into_iter().filter(|e| e["creator_pid"] == creator).collect()
}

fn tamper_methods(events: &[Value], target: u32, creator: u32) -> Vec<String> {
    tampers(events, target, creator).iter().map(|e| e["method"].as_str().unwrap().to_string()).collect()
}

/// Whether the remote thread `tid` and a takeover by `creator` with each of
/// `methods` have arrived. Takeovers are published once their repeats have
/// stopped for a second, so they may follow the remote thread.
fn detected(events: &[Value], target: u32, tid: u32, creator: u32, methods: &[&str]) -> bool {
    let seen = tamper_methods(events, target, creator);
    remote_threads_in(events, target).iter().any(|r| r["tid"] == tid)
        && methods.iter().all(|m| seen.iter().any(|s| s == m))
}

#[test]
fn a_ptrace_injection_is_one_remote_thread_naming_both_sides() {
    require_root!();
    let monitor = Monitor::start(&[]);
    let target = Target::start();
    let (injector, lines) = run_program(&program("inject_ptrace"), &[&target.pid.to_string(), &target.entry]);
    let injector_tid = field(&lines, "injector tid ")[0];
    let tid = target.remote_tid();

    let events = monitor.wait_for("the remote thread and its takeovers", |e| {
        detected(e, target.pid, tid, injector, &["ptrace-attach", "ptrace-setregs"])
    });
    let found = remote_threads_in(&events, target.pid);
    assert_eq!(found.len(), 1, "{found:#?}");
    let remote = &found[0];
    assert_eq!(remote["tid"], tid);
    assert_eq!(remote["creator_pid"], injector);
    assert_eq!(remote["creator_tid"], injector_tid);
    // Test programs are named NAME-PID; comm keeps the first 15 bytes.
    assert!(remote["creator_comm"].as_str().unwrap().starts_with("inject_ptrace"), "{remote}");
    assert_eq!(remote["target_creator_tid"], target.pid, "the hijacked main thread ran clone()");
    assert_eq!(remote["method"], "ptrace-setregs");
    assert!(remote["comm"].as_str().unwrap().starts_with("inject_target"), "{remote}");

    let created = of(&events, "thread-create", target.pid);
    assert!(created.iter().any(|e| e["tid"] == tid), "the remote thread is also a thread-create");
    // One attach, then two register writes (hijack and restore) a moment
    // apart: one event that counts both.
    let mut seen: Vec<(String, u64)> = tampers(&events, target.pid, injector)
        .iter()
        .map(|e| (e["method"].as_str().unwrap().to_string(), e["count"].as_u64().unwrap()))
        .collect();
    seen.sort();
    assert_eq!(seen, [("ptrace-attach".to_string(), 1), ("ptrace-setregs".to_string(), 2)]);
    assert_injection_mechanism(&monitor.stop().1);
}

#[test]
fn a_process_vm_writev_trigger_is_a_remote_thread() {
    require_root!();
    let monitor = Monitor::start(&[]);
    let target = Target::start();
    let (injector, lines) = run_program(&program("inject_vm_write"), &[&target.pid.to_string(), &target.trigger]);
    let injector_tid = field(&lines, "injector tid ")[0];
    let tid = target.remote_tid();

    let events = monitor.wait_for("the remote thread and its takeover", |e| {
        detected(e, target.pid, tid, injector, &["process-vm-writev"])
    });
    let found = remote_threads_in(&events, target.pid);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["tid"], tid);
    assert_eq!(found[0]["creator_pid"], injector);
    assert_eq!(found[0]["creator_tid"], injector_tid);
    assert_eq!(found[0]["method"], "process-vm-writev");
    assert_eq!(tamper_methods(&events, target.pid, injector), ["process-vm-writev"]);
    assert_eq!(tampers(&events, target.pid, injector)[0]["count"], 1);
    assert_injection_mechanism(&monitor.stop().1);
}

#[test]
fn writing_proc_pid_mem_is_a_remote_thread_however_the_file_is_named() {
    require_root!();
    let monitor = Monitor::start(&[]);
    for mode in ["absolute", "relative", "dotdot"] {
        let target = Target::start();
        let (injector, lines) =
            run_program(&program("inject_proc_mem"), &[&target.pid.to_string(), &target.trigger, mode]);
        let injector_tid = field(&lines, "injector tid ")[0];
        let tid = target.remote_tid();

        let events = monitor
            .wait_for("the remote thread and its takeover", |e| detected(e, target.pid, tid, injector, &["proc-mem"]));
        let found = remote_threads_in(&events, target.pid);
        assert_eq!(found.len(), 1, "{mode}: {found:#?}");
        assert_eq!(found[0]["tid"], tid, "{mode}");
        assert_eq!(found[0]["creator_pid"], injector, "{mode}");
        assert_eq!(found[0]["creator_tid"], injector_tid, "{mode}");
        assert_eq!(found[0]["method"], "proc-mem", "{mode}");
        assert_eq!(tamper_methods(&events, target.pid, injector), ["proc-mem"], "{mode}");
    }
    assert_injection_mechanism(&monitor.stop().1);
}

/// With `--no-syscall-tracepoints`, where trampolines work, every kind of
/// takeover is still seen (fexit); where they do not, injection is off and
/// says why.
#[test]
fn without_syscall_tracepoints_takeovers_are_seen_where_trampolines_work() {
    require_root!();
    let monitor = Monitor::start(&["--no-syscall-tracepoints"]);
    let ptrace_target = Target::start();
    let (by_ptrace, _) =
        run_program(&program("inject_ptrace"), &[&ptrace_target.pid.to_string(), &ptrace_target.entry]);
    let ptrace_tid = ptrace_target.remote_tid();
    let vm_target = Target::start();
    let (by_vm, _) = run_program(&program("inject_vm_write"), &[&vm_target.pid.to_string(), &vm_target.trigger]);
    let vm_tid = vm_target.remote_tid();
    let mem_target = Target::start();
    let (by_mem, _) =
        run_program(&program("inject_proc_mem"), &[&mem_target.pid.to_string(), &mem_target.trigger, "relative"]);
    let mem_tid = mem_target.remote_tid();
    if !monitor.stderr().contains("injection on (fexit ") {
        let (events, stderr) = monitor.stop();
        assert!(!expect_trampolines(), "RSYSMON_EXPECT_BPF_TRAMPOLINES=1 but: {stderr}");
        assert!(stderr.contains("injection off (syscall tracepoints are off"), "{stderr}");
        assert!(of(&events, "process-tamper", ptrace_target.pid).is_empty(), "{events:#?}");
        return;
    }
    let events = monitor.wait_for("the three remote threads and their takeovers", |e| {
        detected(e, ptrace_target.pid, ptrace_tid, by_ptrace, &["ptrace-attach", "ptrace-setregs"])
            && detected(e, vm_target.pid, vm_tid, by_vm, &["process-vm-writev"])
            && detected(e, mem_target.pid, mem_tid, by_mem, &["proc-mem"])
    });
    let (_, stderr) = monitor.stop();
    let watching = stderr.lines().find(|l| l.starts_with("rsysmon: watching")).expect("the watching line");
    assert!(!watching.contains("tracepoint/syscalls/"), "{watching}");
    assert_injection_mechanism(&stderr);
    assert_eq!(remote_threads_in(&events, ptrace_target.pid)[0]["method"], "ptrace-setregs");
    assert_eq!(remote_threads_in(&events, vm_target.pid)[0]["method"], "process-vm-writev");
    assert_eq!(remote_threads_in(&events, mem_target.pid)[0]["method"], "proc-mem");
}

/// PTRACE_POKEUSER and process_vm_writev through the 32-bit syscall entry
/// (`int 0x80`) of a 64-bit process: seen where takeovers are fexit
/// programs (compat_arch_ptrace, the 32-bit process_vm_writev entry);
/// syscall tracepoints never fire for them (docs/events.md).
#[cfg(target_arch = "x86_64")]
#[test]
fn takeovers_through_the_32_bit_syscall_entry_are_seen_by_fexit() {
    require_root!();
    let monitor = Monitor::start(&[]);
    let fexit = monitor.stderr().contains("injection on (fexit ");
    let (injector, lines) = run_program(&program("takeover_int80"), &[]);
    assert_eq!((field(&lines, "poke "), field(&lines, "written ")), (vec![0], vec![8]), "{lines:?}");
    let child = field(&lines, "child ")[0];
    if !fexit {
        assert!(!expect_trampolines(), "RSYSMON_EXPECT_BPF_TRAMPOLINES=1 but: {}", monitor.stderr());
        eprintln!("not checked: takeovers are seen by syscall tracepoints here, which miss int 0x80");
        return;
    }
    let events = monitor.wait_for("both 32-bit takeovers", |e| {
        let seen = tamper_methods(e, child, injector);
        ["ptrace-poke", "process-vm-writev"].iter().all(|m| seen.iter().any(|s| s == m))
    });
    let poke = tampers(&events, child, injector).into_iter().find(|e| e["method"] == "ptrace-poke").unwrap();
    assert_eq!(poke["tid"], child, "{poke}");
    assert_eq!(poke["count"], 1, "{poke}");
    assert!(poke["creator_comm"].as_str().unwrap().starts_with("takeover_int80"), "{poke}");
}

/// The pending syscall of a seized thread rewritten into clone() with
/// PTRACE_SET_SYSCALL_INFO: no register or memory write request is made,
/// so the thread's being traced (or having been seized) is what makes it
/// remote, whether the clone runs still traced ("stay") or after the
/// injector detached ("detach").
#[test]
fn a_syscall_rewritten_into_clone_is_a_remote_thread_by_the_tracer() {
    require_root!();
    // "stay-late" clones 2 s after the seize: past a 1 s window, only the
    // tracer still attached makes the thread remote.
    for (mode, window) in [("detach", "10"), ("stay", "10"), ("stay-late", "1")] {
        let monitor = Monitor::start(&["--remote-window-secs", window]);
        let target = Target::start();
        let (injector, lines) =
            run_program(&program("inject_syscall_info"), &[&target.pid.to_string(), &target.landing, mode]);
        if lines.iter().any(|l| l == "unsupported") {
            eprintln!("skipped: this kernel has no PTRACE_SET_SYSCALL_INFO (Linux 6.16)");
            return;
        }
        let injector_tid = field(&lines, "injector tid ")[0];
        let tid = target.remote_tid();
        if mode != "detach" {
            assert_eq!(field(&lines, "cloned "), [tid], "{lines:?}");
        }

        let events = monitor.wait_for("the remote thread and its takeover", |e| {
            detected(e, target.pid, tid, injector, &["ptrace-seize"])
        });
        let found = remote_threads_in(&events, target.pid);
        assert_eq!(found.len(), 1, "{mode}: {found:#?}");
        let remote = &found[0];
        assert_eq!(remote["tid"], tid, "{mode}");
        assert_eq!(remote["creator_pid"], injector, "{mode}");
        assert_eq!(remote["creator_tid"], injector_tid, "{mode}");
        assert_eq!(remote["target_creator_tid"], target.pid, "{mode}: the main thread made the clone");
        assert_eq!(remote["method"], "ptrace-seize", "{mode}");
        assert_eq!(tamper_methods(&events, target.pid, injector), ["ptrace-seize"], "{mode}");
    }
}

fn gdb_call(pid: u32) -> Child {
    let mut cmd = Command::new("gdb");
    cmd.args(["-p", &pid.to_string(), "-batch", "-nx", "-ex", "call (void)spawn_thread()"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    die_with_test(&mut cmd).spawn().expect("gdb (make deps installs it)")
}

#[test]
fn gdb_calling_a_function_is_a_remote_thread_by_gdb_unless_allowed() {
    require_root!();
    let monitor = Monitor::start(&[]);
    let target = Target::start();
    let mut gdb = gdb_call(target.pid);
    let gdb_pid = gdb.id();
    let tid = target.remote_tid();
    assert!(gdb.wait().unwrap().success());

    let events =
        monitor.wait_for("gdb's remote thread", |e| remote_threads_in(e, target.pid).iter().any(|r| r["tid"] == tid));
    let remote = remote_threads_in(&events, target.pid).into_iter().find(|r| r["tid"] == tid).unwrap();
    assert_eq!(remote["creator_pid"], gdb_pid);
    assert_eq!(remote["creator_comm"], "gdb");
    drop(monitor);

    // The same with gdb allow-listed: the thread is seen, not reported as remote.
    let gdb_exe =
        support::real(String::from_utf8(Command::new("which").arg("gdb").output().unwrap().stdout).unwrap().trim());
    let monitor = Monitor::start(&["--allow-remote-creator", &gdb_exe]);
    let mut gdb = gdb_call(target.pid);
    let tid = target.remote_tid();
    assert!(gdb.wait().unwrap().success());
    let events = monitor.wait_for("the thread", |e| of(e, "thread-create", target.pid).iter().any(|t| t["tid"] == tid));
    assert!(remote_threads_in(&events, target.pid).is_empty(), "allow-listed creator reported");
}

/// gdb's `call` makes a few hundred ptrace requests into its target: one
/// `process-tamper` per method, each counting its repeats.
#[test]
fn one_gdb_call_is_one_tamper_event_per_method_with_a_count() {
    require_root!();
    let monitor = Monitor::start(&[]);
    let target = Target::start();
    let mut gdb = gdb_call(target.pid);
    let gdb_pid = gdb.id();
    let tid = target.remote_tid();
    assert!(gdb.wait().unwrap().success());

    monitor.wait_for("gdb's register writes", |e| detected(e, target.pid, tid, gdb_pid, &["ptrace-setregs"]));
    // gdb is gone: anything more it caused is published within about a
    // second; a repeat published on its own would show up by then.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let events = monitor.events();
    let found = tampers(&events, target.pid, gdb_pid);
    let mut methods = tamper_methods(&events, target.pid, gdb_pid);
    methods.sort();
    methods.dedup();
    let of_method = |method: &str| found.iter().filter(|e| e["method"] == method).collect::<Vec<_>>();
    // The register writes of the call come in one burst; gdb's other
    // phases (attach, breakpoints in and out) may be more than a second
    // apart on a busy machine, so at most one more event each.
    let setregs = of_method("ptrace-setregs");
    assert_eq!(setregs.len(), 1, "{found:#?}");
    assert!(setregs[0]["count"].as_u64().unwrap() > 1, "{found:#?}");
    assert_eq!(of_method("ptrace-attach").len(), 1, "{found:#?}");
    assert_eq!(of_method("ptrace-attach")[0]["count"], 1, "{found:#?}");
    assert!(found.len() <= 2 * methods.len(), "{found:#?}");
    let total: u64 = found.iter().map(|e| e["count"].as_u64().unwrap()).sum();
    eprintln!("one gdb call: {} process-tamper events for {total} takeovers: {methods:?}", found.len());
    assert!(total > 10 * found.len() as u64, "{found:#?}");
}

#[test]
fn ordinary_threads_forks_strace_and_self_writes_are_not_remote() {
    require_root!();
    let monitor = Monitor::start(&[]);

    let (threads_pid, _) = run_program(&program("threads"), &["1000"]);
    let (self_pid, _) = run_program(&program("self_mem_write"), &[]);
    let mut strace = Command::new("strace");
    strace.args(["-f", "-o", "/dev/null"]).arg(program("threads")).arg("50");
    let strace_out = die_with_test(&mut strace).stdout(Stdio::piped()).spawn().unwrap().wait_with_output().unwrap();
    assert!(strace_out.status.success());
    let traced_pid =
        field(&String::from_utf8_lossy(&strace_out.stdout).lines().map(str::to_string).collect::<Vec<_>>(), "pid ")[0];
    let mut storm = Command::new("/bin/sh");
    storm.args(["-c", "for i in $(seq 100); do /bin/true; done"]);
    let storm = die_with_test(&mut storm).spawn().unwrap();
    let storm_pid = storm.id();
    assert!(storm.wait_with_output().unwrap().status.success());

    let events = monitor.wait_for("every exit", |e| {
        [threads_pid, self_pid, traced_pid, storm_pid].iter().all(|&p| !of(e, "process-exit", p).is_empty())
    });
    assert_eq!(of(&events, "thread-create", threads_pid).len(), 1000);
    assert_eq!(of(&events, "thread-create", traced_pid).len(), 50);
    let storm_children: Vec<u64> = events
        .iter()
        .filter(|e| e["kind"] == "process-create" && e["ppid"] == storm_pid)
        .map(|e| e["pid"].as_u64().unwrap())
        .collect();
    // 100 × /bin/true, plus the subshell of $(seq 100).
    assert_eq!(storm_children.len(), 101);

    for pid in [threads_pid, self_pid, traced_pid, storm_pid].into_iter().map(u64::from).chain(storm_children) {
        let pid = pid as u32;
        assert!(remote_threads_in(&events, pid).is_empty(), "false remote thread in {pid}");
    }
    assert!(of(&events, "process-tamper", self_pid).is_empty(), "writing to oneself is not tampering");
    // strace attaches (reported) but never writes into its tracee.
    for e in of(&events, "process-tamper", traced_pid) {
        assert!(e["method"] == "ptrace-seize" || e["method"] == "ptrace-attach", "{e}");
    }
}
