//! Sequence numbers and loss events: nothing is lost silently.

mod support;

use serde_json::Value;
use support::{assert_accounted, of, program, run_program, Monitor};

#[test]
fn seq_is_gap_free_when_nothing_is_lost() {
    require_root!();
    // A queue deep enough that other tests flooding the box cannot make
    // this reader lose events.
    let monitor = Monitor::start(&["--queue-size", "2000000"]);
    let (pid, _) = run_program(&program("burst"), &["200"]);
    monitor.wait_for("the burst's exit", |e| !of(e, "process-exit", pid).is_empty());
    let (events, stderr) = monitor.stop();
    assert_eq!(events[0]["seq"], 1);
    assert!(events.iter().all(|e| e["kind"] != "loss"), "unexpected loss: {stderr}");
    assert_accounted(&events);
    assert_eq!(of(&events, "thread-create", pid).len(), 200);
    assert!(stderr.contains("lost: kernel=0 decode=0 queue=0"), "{stderr}");
}

#[test]
fn a_full_ring_buffer_is_reported_as_a_loss_equal_to_the_gap() {
    require_root!();
    // A one-page ring, and nobody reading it while the burst runs.
    let monitor = Monitor::start(&["--ring-buffer-kib", "4"]);
    monitor.pause();
    let (pid, _) = run_program(&program("burst"), &["2000"]);
    monitor.resume();
    monitor.wait_for("a kernel loss event", |e| e.iter().any(|e| e["kind"] == "loss"));
    let (pid_after, _) = run_program(&program("burst"), &["1"]);
    monitor.wait_for("an exit after the loss", |e| !of(e, "process-exit", pid_after).is_empty());
    let (events, stderr) = monitor.stop();

    assert_accounted(&events);
    let losses: Vec<&Value> = events.iter().filter(|e| e["kind"] == "loss").collect();
    let lost: u64 = losses.iter().map(|e| e["lost"].as_u64().unwrap()).sum();
    assert!(losses.iter().all(|e| e["stage"] == "kernel"));
    // 2000 threads make 4000 records; one page holds far fewer.
    assert!(lost > 1000, "only {lost} lost");
    let seen = of(&events, "thread-create", pid).len() + of(&events, "thread-exit", pid).len();
    assert!(seen < 4000, "saw all {seen}");
    assert!(stderr.contains(&format!("lost: kernel={lost} ")), "summary must match the loss events: {stderr}");
}
