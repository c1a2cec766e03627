//! Thread create / exit, seen through the real probes.

mod support;

use support::{field, of, program, run_program, Monitor};

#[test]
fn threads_are_reported_with_the_tids_they_see_and_never_as_processes() {
    require_root!();
    const K: usize = 16;
    let monitor = Monitor::start(&[]);
    let (pid, lines) = run_program(&program("threads"), &[&K.to_string()]);
    let mut tids = field(&lines, "tid ");
    assert_eq!(field(&lines, "pid "), [pid]);
    assert_eq!(tids.len(), K);

    let events = monitor.wait_for("the process exit", |e| !of(e, "process-exit", pid).is_empty());
    let mut created: Vec<u32> =
        of(&events, "thread-create", pid).iter().map(|e| e["tid"].as_u64().unwrap() as u32).collect();
    let mut exited: Vec<u32> =
        of(&events, "thread-exit", pid).iter().map(|e| e["tid"].as_u64().unwrap() as u32).collect();
    tids.sort();
    created.sort();
    exited.sort();
    // On a mismatch, every event that names one of the tids, to tell a
    // wrong tid from a wrong pid or a missing event.
    let context = || {
        let named: Vec<u32> = tids.iter().chain(&created).copied().collect();
        let all: Vec<&serde_json::Value> =
            events.iter().filter(|e| named.iter().any(|t| e["tid"] == *t || e["pid"] == *t)).collect();
        format!("pid {pid}; events naming these tids: {all:#?}")
    };
    assert_eq!(created, tids, "{}", context());
    assert_eq!(exited, tids, "{}", context());
    for e in of(&events, "thread-create", pid) {
        assert_eq!(e["creator_tid"], pid, "main thread created each");
    }
    for e in of(&events, "thread-exit", pid) {
        assert_eq!(e["exit_code"], 0);
    }
    for tid in &tids {
        assert!(of(&events, "process-create", *tid).is_empty(), "thread {tid} reported as a process");
    }
    assert_eq!(of(&events, "process-exit", pid).len(), 1);
}
