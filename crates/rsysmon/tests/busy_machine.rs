//! A machine whose CPUs are saturated by ordinary processes: the monitor,
//! at its raised priority and with the ring buffer as its buffer, still
//! reports every process and every thread.

mod support;

use std::collections::HashMap;
use std::process::{Child, Command};

use serde_json::Value;
use support::{die_with_test, field, of, program, run_program, Monitor};

/// Busy loops at normal priority, two per CPU, for at most `seconds`;
/// killed (by pid) when dropped.
struct Storm(Vec<Child>);

impl Storm {
    fn start(seconds: u32) -> Storm {
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let spin = program("spin");
        let children = (0..2 * cpus)
            .map(|_| {
                let mut cmd = Command::new(&spin);
                cmd.arg(seconds.to_string());
                die_with_test(&mut cmd).spawn().expect("start a busy loop")
            })
            .collect();
        Storm(children)
    }
}

impl Drop for Storm {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Field 19 of /proc/PID/task/TID/stat: the thread's nice value.
fn nice_of(pid: u32, tid: u32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    after_comm.split(' ').nth(16).unwrap().parse().unwrap()
}

/// The thread of `pid` named `name`.
fn thread_named(pid: u32, name: &str) -> u32 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|tid| std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).unwrap().trim() == name)
        .unwrap_or_else(|| panic!("no thread {name} in {pid}"))
}

/// How many events of each (kind, pid) there are.
fn counts(events: &[Value]) -> HashMap<(String, u64), usize> {
    let mut counts = HashMap::new();
    for e in events {
        let key = (e["kind"].as_str().unwrap_or_default().to_string(), e["pid"].as_u64().unwrap_or_default());
        *counts.entry(key).or_default() += 1;
    }
    counts
}

#[test]
fn the_reader_and_output_run_at_the_raised_priority() {
    require_root!();
    let monitor = Monitor::start(&[]);
    let pid = monitor.pid();
    assert_eq!(nice_of(pid, pid), -10, "reader (main thread)");
    assert_eq!(nice_of(pid, thread_named(pid, "output")), -10, "output");
    monitor.stop();
}

#[test]
fn a_cpu_storm_does_not_cost_a_single_process() {
    require_root!();
    let monitor = Monitor::start(&[]);
    let storm = Storm::start(120);
    let (pid, lines) = run_program(&program("spawn_many"), &["2000"]);
    let children = field(&lines, "child");
    assert_eq!(children.len(), 2000, "spawn_many failed");
    monitor.wait_for("the spawner's exit", |e| !of(e, "process-exit", pid).is_empty());
    drop(storm);
    let (events, stderr) = monitor.stop();

    let counts = counts(&events);
    for kind in ["process-create", "process-exec", "process-exit"] {
        let missing: Vec<u32> =
            children.iter().copied().filter(|c| counts.get(&(kind.to_string(), *c as u64)) != Some(&1)).collect();
        assert!(missing.is_empty(), "{} of 2000 children without exactly one {kind}: {stderr}", missing.len());
    }
    assert!(events.iter().all(|e| e["kind"] != "loss"), "lost events: {stderr}");
    assert!(stderr.contains("lost: kernel=0 decode=0 queue=0"), "{stderr}");
}

#[test]
fn a_cpu_storm_does_not_cost_a_single_thread() {
    require_root!();
    let monitor = Monitor::start(&[]);
    let storm = Storm::start(120);
    // 20,000 events/s asked for, 3 s; under the storm the generator gets
    // what it gets, and every thread it made must be reported.
    let (pid, lines) = run_program(&program("paced_threads"), &["10000", "3", "2"]);
    let threads = field(&lines, "threads")[0] as usize + 2;
    monitor.wait_for("the generator's exit", |e| !of(e, "process-exit", pid).is_empty());
    drop(storm);
    let (events, stderr) = monitor.stop();

    assert_eq!(of(&events, "thread-create", pid).len(), threads);
    assert_eq!(of(&events, "thread-exit", pid).len(), threads);
    assert!(events.iter().all(|e| e["kind"] != "loss"), "lost events: {stderr}");
    assert!(stderr.contains("lost: kernel=0 decode=0 queue=0"), "{stderr}");
}
