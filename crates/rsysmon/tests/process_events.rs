//! Process create / exec / exit, seen through the real probes.

mod support;

use std::process::{Command, Stdio};

use serde_json::Value;
use support::{die_with_test, gettid, of, program, real, run_program, Monitor};

fn one(events: &[Value], kind: &str, pid: u32) -> Value {
    let found = of(events, kind, pid);
    assert_eq!(found.len(), 1, "expected exactly one {kind} for pid {pid}, got {found:#?}");
    found.into_iter().next().unwrap()
}

#[test]
fn children_report_create_exec_and_exit_with_codes_and_signals() {
    require_root!();
    let monitor = Monitor::start(&[]);
    let me = std::process::id();
    let my_tid = gettid();

    let mut cmd = Command::new("/bin/true");
    cmd.args(["first", "second arg"]);
    let status_true = die_with_test(&mut cmd).spawn().unwrap();
    let pid_true = status_true.id();
    assert!(status_true.wait_with_output().unwrap().status.success());

    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", "exit 3"]);
    let pid_three = {
        let mut c = die_with_test(&mut cmd).spawn().unwrap();
        assert_eq!(c.wait().unwrap().code(), Some(3));
        c.id()
    };

    let mut cmd = Command::new("/bin/sleep");
    cmd.arg("30").stdout(Stdio::null());
    let mut sleeper = die_with_test(&mut cmd).spawn().unwrap();
    let pid_killed = sleeper.id();
    // Kill only once its exec is reported, so the exec is part of the story.
    monitor.wait_for("sleep's exec", |e| !of(e, "process-exec", pid_killed).is_empty());
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();

    let events = monitor.wait_for("three exits", |e| {
        [pid_true, pid_three, pid_killed].iter().all(|&p| !of(e, "process-exit", p).is_empty())
    });

    for (pid, exe, argv) in [
        (pid_true, real("/bin/true"), vec!["/bin/true", "first", "second arg"]),
        (pid_three, real("/bin/sh"), vec!["/bin/sh", "-c", "exit 3"]),
        (pid_killed, real("/bin/sleep"), vec!["/bin/sleep", "30"]),
    ] {
        let create = one(&events, "process-create", pid);
        assert_eq!(create["tid"], pid);
        assert_eq!(create["ppid"], me);
        assert_eq!(create["creator_tid"], my_tid, "the test thread forked");
        assert_eq!(create["uid"], 0);
        assert_eq!(create["exe"], real(&std::env::current_exe().unwrap().to_string_lossy()));

        let exec = one(&events, "process-exec", pid);
        assert_eq!(exec["exe"], exe);
        assert_eq!(exec["argv"], serde_json::json!(argv));
        assert_eq!(exec["argv_truncated"], false);
        assert_eq!(exec["cwd"], real(&std::env::current_dir().unwrap().to_string_lossy()));
        assert_eq!(exec["old_tid"], pid);
        assert_eq!(exec["old_exe"], create["exe"], "image before the exec is the inherited one");
        assert!(create["seq"].as_u64() < exec["seq"].as_u64());
    }

    let exit = |pid| one(&events, "process-exit", pid);
    assert_eq!((exit(pid_true)["exit_code"].clone(), exit(pid_true)["signal"].clone()), (0.into(), Value::Null));
    assert_eq!(exit(pid_three)["exit_code"], 3);
    assert_eq!(exit(pid_killed)["signal"], 9);
    assert_eq!(exit(pid_killed)["exit_code"], Value::Null);
    assert_eq!(exit(pid_true)["comm"], "true");
    assert!(exit(pid_killed)["lifetime_ns"].as_u64().unwrap() > 0);
    for pid in [pid_true, pid_three, pid_killed] {
        assert!(of(&events, "thread-create", pid).is_empty(), "a process is not a thread");
        assert!(one(&events, "process-exec", pid)["seq"].as_u64() < exit(pid)["seq"].as_u64());
    }
}

#[test]
fn vfork_child_is_a_process_with_its_own_exec_and_exit() {
    require_root!();
    let monitor = Monitor::start(&[]);
    let (parent, lines) = run_program(&program("vfork_exec"), &["/bin/true"]);
    let child = support::field(&lines, "child ")[0];

    let events = monitor.wait_for("the vfork child's exit", |e| !of(e, "process-exit", child).is_empty());
    let create = one(&events, "process-create", child);
    assert_eq!(create["ppid"], parent);
    assert_eq!(create["creator_tid"], parent);
    assert_eq!(one(&events, "process-exec", child)["exe"], real("/bin/true"));
    assert_eq!(one(&events, "process-exit", child)["exit_code"], 0);
    assert!(of(&events, "thread-create", parent).is_empty());
}

#[test]
fn exec_from_a_non_leader_thread_keeps_the_process_id() {
    require_root!();
    let monitor = Monitor::start(&[]);
    let (pid, lines) = run_program(&program("exec_from_thread"), &["/bin/true"]);
    let (leader, thread) = lines
        .iter()
        .find_map(|l| {
            let mut words = l.split(' ');
            (words.next()? == "leader").then_some(())?;
            let leader: u32 = words.next()?.parse().ok()?;
            words.next()?;
            Some((leader, words.next()?.parse::<u32>().ok()?))
        })
        .expect("the program reports its leader and thread");
    assert_eq!(leader, pid);

    let events = monitor.wait_for("the process exit", |e| !of(e, "process-exit", pid).is_empty());
    let create = one(&events, "thread-create", pid);
    assert_eq!(create["tid"], thread);
    let execs = of(&events, "process-exec", pid);
    assert_eq!(execs.len(), 2, "the program's own exec, then the thread's: {execs:#?}");
    assert_eq!(execs[0]["old_tid"], pid);
    let exec = &execs[1];
    assert_eq!(exec["tid"], pid, "after de_thread the exec'ing thread has the leader's id");
    assert_eq!(exec["old_tid"], thread);
    assert_eq!(exec["exe"], real("/bin/true"));
    // The old leader dies inside the exec; the process lives on.
    let exits = of(&events, "process-exit", pid);
    assert_eq!(exits.len(), 1);
    assert!(exec["seq"].as_u64() < exits[0]["seq"].as_u64());
    assert_eq!(exits[0]["exit_code"], 0);
    assert_eq!(of(&events, "process-create", pid).len(), 1);
}

#[test]
fn a_renamed_process_is_reported_under_its_new_name() {
    require_root!();
    let monitor = Monitor::start(&[]);
    let (pid, lines) = run_program(&program("threads"), &["1", "renamed-proc"]);
    let tid = support::field(&lines, "tid ")[0];

    let events = monitor.wait_for("the exit", |e| !of(e, "process-exit", pid).is_empty());
    let exec = one(&events, "process-exec", pid);
    assert!(exec["comm"].as_str().unwrap().starts_with("threads"), "{exec}");
    let thread = one(&events, "thread-create", pid);
    assert_eq!(thread["tid"], tid);
    assert_eq!(thread["comm"], "renamed-proc");
    assert_eq!(one(&events, "process-exit", pid)["comm"], "renamed-proc");
}
