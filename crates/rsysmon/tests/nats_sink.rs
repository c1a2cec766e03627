//! The daemon's NATS JetStream sink against a real nats-server on
//! loopback, read back with `rsysmon fleet watch`.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::daemon::Daemon;
use support::services::NatsServer;
use support::{of, program, run_program, RSYSMON};

/// Everything the stream holds, via `rsysmon fleet watch --all`, once it
/// holds the exit of `pid` and every seq before it. The daemon's sink
/// creates the stream on its own thread: a watch that finds no stream yet
/// is tried again. Around a server restart a retried message can land
/// after later ones, so completeness is judged by seq, not by position.
fn stream_until_exit(url: &str, pid: u32) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (found, events) = watch_until_exit(url, pid, deadline);
        if found || !events.is_empty() || Instant::now() >= deadline {
            let sorted = by_seq(&events);
            let first_gap = gaps(&sorted).first().map(|(a, b)| format!("{} -> {}", a["seq"], b["seq"]));
            assert!(
                found,
                "no exit of {pid} and every seq before it; {} events, first gap {first_gap:?}",
                events.len()
            );
            return events;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn watch_until_exit(url: &str, pid: u32, deadline: Instant) -> (bool, Vec<Value>) {
    let mut cmd = Command::new(RSYSMON);
    cmd.args(["fleet", "watch", "--all", "--nats", url]).stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = support::die_with_test(&mut cmd).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut events = Vec::new();
    let mut exited = false;
    let found = loop {
        let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) else { break false };
        let event: Value = serde_json::from_str(&line).unwrap();
        exited |= event["kind"] == "process-exit" && event["pid"] == pid;
        events.push(event);
        if exited && gaps(&by_seq(&events)).is_empty() {
            break true;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    (found, events)
}

/// The events in seq order.
fn by_seq(events: &[Value]) -> Vec<&Value> {
    let mut sorted: Vec<&Value> = events.iter().collect();
    sorted.sort_by_key(|e| e["seq"].as_u64().unwrap());
    sorted
}

/// Neighbours (in seq order) whose step is not 1, or what a loss event
/// stands for: a duplicate (step 0) or a gap.
fn gaps<'e>(sorted: &[&'e Value]) -> Vec<(&'e Value, &'e Value)> {
    sorted
        .windows(2)
        .filter(|pair| {
            let step = pair[1]["seq"].as_u64().unwrap() as i64 - pair[0]["seq"].as_u64().unwrap() as i64;
            let weight = if pair[1]["kind"] == "loss" { pair[1]["lost"].as_i64().unwrap() } else { 1 };
            step != weight
        })
        .map(|pair| (pair[0], pair[1]))
        .collect()
}

/// Every seq of the daemon's run exactly once: no duplicate, no gap that a
/// loss event does not stand for.
fn assert_exactly_once(events: &[Value]) {
    let sorted = by_seq(events);
    if let Some((a, b)) = gaps(&sorted).first() {
        panic!("duplicate or gap between {a} and {b}");
    }
}

#[test]
fn jetstream_has_every_event_exactly_once_across_a_server_restart() {
    require_root!();
    let nats = NatsServer::start();
    let daemon = Daemon::start(&format!("[outputs.nats]\nenabled = true\nurl = {:?}\n", nats.url()));
    let (pid, _) = run_program(&program("threads"), &["5"]);
    let before = stream_until_exit(&nats.url(), pid);
    assert_eq!(of(&before, "thread-create", pid).len(), 5);
    assert_exactly_once(&before);

    let nats = nats.restart();
    let (pid, _) = run_program(&program("threads"), &["7"]);
    let after = stream_until_exit(&nats.url(), pid);
    assert_eq!(of(&after, "thread-create", pid).len(), 7);
    assert_eq!(&after[..before.len()], &before[..], "the stream kept what it had");
    assert_exactly_once(&after);
    let status = daemon.status();
    assert_eq!(status["lost"]["sink:nats"], 0, "{status}");
}

#[test]
fn fleet_watch_filters_by_kind() {
    require_root!();
    let nats = NatsServer::start();
    let _daemon = Daemon::start(&format!("[outputs.nats]\nenabled = true\nurl = {:?}\n", nats.url()));
    let (pid, _) = run_program(&program("threads"), &["3"]);
    stream_until_exit(&nats.url(), pid);
    let out = Command::new("timeout")
        .args(["3", RSYSMON, "fleet", "watch", "--all", "--kind", "thread-create", "--nats", &nats.url()])
        .output()
        .unwrap();
    let events: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(events.iter().all(|e| e["kind"] == "thread-create"), "{events:?}");
    assert_eq!(of(&events, "thread-create", pid).len(), 3);
}
