//! A stalled output holds the reader back and the kernel ring buffer
//! absorbs the stall: nothing is dropped in user space. Only when the ring
//! buffer is too small is anything lost, counted at stage `kernel`, equal
//! to the gap in seq.

mod support;

use serde_json::Value;
use support::{assert_accounted, field, lifetime_of, of, program, run_program, Monitor};

/// The test switch that pauses `run`'s output: AFTER_MS:FOR_MS.
const PAUSE: (&str, &str) = ("RSYSMON_TEST_PAUSE_OUTPUT", "300:500");

/// The milliseconds in "the output fell behind for N ms", or 0.
fn waited_ms(stderr: &str) -> u64 {
    stderr.split("fell behind for ").nth(1).and_then(|rest| rest.split(' ').next()?.parse().ok()).unwrap_or(0)
}

/// 50,000 events/s for 2 s: 25,000 threads a second (create + exit),
/// shared by two workers. Returns the pid and how many threads it made,
/// workers included.
fn paced_threads() -> (u32, usize) {
    let (pid, lines) = run_program(&program("paced_threads"), &["25000", "2", "2"]);
    let made = field(&lines, "threads");
    assert_eq!(made.len(), 1, "{lines:?}");
    (pid, made[0] as usize + 2)
}

#[test]
fn a_stalled_output_loses_nothing_the_ring_buffer_holds_the_events() {
    require_root!();
    // A user-space queue of only 1,000 events: the 500 ms pause fills it
    // many times over.
    let monitor = Monitor::start_with_env(&["--queue-size", "1000"], &[PAUSE]);
    let (pid, threads) = paced_threads();
    monitor.wait_for("the generator's exit", |e| !of(e, "process-exit", pid).is_empty());
    let (events, stderr) = monitor.stop();

    assert!(events.iter().all(|e| e["kind"] != "loss"), "lost events: {stderr}");
    assert!(stderr.contains("lost: kernel=0 decode=0 queue=0"), "{stderr}");
    assert_accounted(&events);
    let lifetime = lifetime_of(&events, pid);
    assert_eq!(of(lifetime, "thread-create", pid).len(), threads);
    assert_eq!(of(lifetime, "thread-exit", pid).len(), threads);
    // The reader did wait for the output: the pause was absorbed, not
    // missed.
    assert!(waited_ms(&stderr) >= 250, "the reader did not wait for the paused output: {stderr}");
}

#[test]
fn stopping_during_a_stall_still_writes_every_event() {
    require_root!();
    // The output stalls on its first write for 800 ms; the monitor is told
    // to stop meanwhile, with 4,000 events more than its queue holds.
    let monitor = Monitor::start_with_env(&["--queue-size", "1000"], &[("RSYSMON_TEST_PAUSE_OUTPUT", "0:800")]);
    let (pid, _) = run_program(&program("burst"), &["2000"]);
    let (events, stderr) = monitor.stop();

    assert!(events.iter().all(|e| e["kind"] != "loss"), "lost events: {stderr}");
    assert!(stderr.contains("lost: kernel=0 decode=0 queue=0"), "{stderr}");
    let lifetime = lifetime_of(&events, pid);
    assert_eq!(of(lifetime, "thread-create", pid).len(), 2000);
    assert_eq!(of(lifetime, "thread-exit", pid).len(), 2000);
    assert_accounted(&events);
}

#[test]
fn with_a_tiny_ring_buffer_a_stalled_output_loses_at_kernel_exactly_the_gap() {
    require_root!();
    let monitor = Monitor::start_with_env(&["--queue-size", "1000", "--ring-buffer-kib", "4"], &[PAUSE]);
    let (pid, threads) = paced_threads();
    // The generator's own exit may be among the lost: wait instead for a
    // process started once the ring had room again.
    let mut seen_after = false;
    for _ in 0..20 {
        let (after, _) = run_program(&program("burst"), &["1"]);
        std::thread::sleep(std::time::Duration::from_millis(500));
        if !of(&monitor.events(), "process-exit", after).is_empty() {
            seen_after = true;
            break;
        }
    }
    assert!(seen_after, "the monitor never caught up");
    let (events, stderr) = monitor.stop();

    assert_accounted(&events);
    let losses: Vec<&Value> = events.iter().filter(|e| e["kind"] == "loss").collect();
    assert!(losses.iter().all(|e| e["stage"] == "kernel"), "{losses:?}");
    let lost: u64 = losses.iter().map(|e| e["lost"].as_u64().unwrap()).sum();
    // A 500 ms pause at 50,000 events/s is 25,000 events; one page holds
    // a few dozen.
    assert!(lost > 1000, "only {lost} lost");
    let seen = of(&events, "thread-create", pid).len() + of(&events, "thread-exit", pid).len();
    assert!(seen < 2 * threads, "saw all {seen}");
    assert!(stderr.contains(&format!("lost: kernel={lost} decode=0 queue=0")), "{stderr}");
}
