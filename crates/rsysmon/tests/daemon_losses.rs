//! Forced loss at two stages at once, through the daemon: what each
//! client's stream says it lost, per stage, is what `status` counts.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::daemon::{read_until, Daemon};
use support::{assert_accounted, exec, private_true, program, run_program};

const WATCH_JSON: &str = r#"{"v":1,"op":"watch","format":"json"}"#;

/// Loss per stage as a stream tells it.
fn losses(events: &[Value]) -> BTreeMap<String, u64> {
    let mut by_stage = BTreeMap::new();
    for e in events.iter().filter(|e| e["kind"] == "loss") {
        *by_stage.entry(e["stage"].as_str().unwrap().to_string()).or_default() += e["lost"].as_u64().unwrap();
    }
    by_stage
}

#[test]
fn with_forced_kernel_and_client_loss_every_stream_agrees_with_status_per_stage() {
    require_root!();
    let hold_dir = tempfile::tempdir().unwrap();
    let hold = hold_dir.path().join("hold-reader");
    let hold_text = hold.to_str().unwrap();
    // One page of ring, and a client may fall 100 events behind.
    let daemon = Daemon::start_full(
        "[probes]\nring_buffer_kib = 4\n[queue]\nclient_backlog = 100\n[hashing]\nenabled = false",
        "",
        "",
        None,
        &[("RSYSMON_TEST_HOLD_READER", hold_text)],
    );
    let (_, mut reading) = daemon.connect(WATCH_JSON);
    let (_, mut stalled) = daemon.connect(WATCH_JSON);
    // The reading client reads all along, until the marker runs: a copy
    // of true that nothing else runs.
    let (_marker_dir, marker) = private_true();
    let is_marker = {
        let marker = marker.clone();
        move |e: &Value| e["kind"] == "process-exec" && e["exe"] == marker.as_str()
    };
    let reader = {
        let is_marker = is_marker.clone();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            read_until(&mut reading, &mut seen, is_marker);
            seen
        })
    };

    // Kernel loss: a burst while nothing reads the ring.
    std::fs::write(&hold, "").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (held_pid, _) = run_program(&program("burst"), &["3000"]);
    std::fs::remove_file(&hold).unwrap();
    // Client loss: a burst the stalled client does not read.
    let _ = run_program(&program("burst"), &["3000"]);

    // Let every loss be counted, then mark the end of the span.
    let mut kernel = daemon.status()["lost"]["kernel"].clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = daemon.status()["lost"]["kernel"].clone();
        if now == kernel || Instant::now() > deadline {
            break;
        }
        kernel = now;
    }
    assert!(exec(&marker).unwrap().success());
    let seen = reader.join().unwrap();
    let mut late = Vec::new();
    read_until(&mut stalled, &mut late, is_marker);
    let status = daemon.status();

    assert_accounted(&seen);
    assert_accounted(&late);
    let lost_in_status = |stage: &str| status["lost"][stage].as_u64().unwrap();
    let (reading_lost, stalled_lost) = (losses(&seen), losses(&late));
    assert!(lost_in_status("kernel") > 1000, "the held burst lost only {}: {status}", lost_in_status("kernel"));
    assert!(lost_in_status("client") > 0, "the stalled client lost nothing: {status}");
    // Both were told every kernel loss. Client losses are each client's
    // own: the stalled one lost some; the reading one keeps up on a quiet
    // machine but may fall behind on a loaded one. Together they are what
    // status counts.
    assert_eq!(reading_lost.get("kernel").copied(), Some(lost_in_status("kernel")), "{reading_lost:?} vs {status}");
    assert_eq!(stalled_lost.get("kernel").copied(), Some(lost_in_status("kernel")), "{stalled_lost:?} vs {status}");
    let client = |lost: &BTreeMap<String, u64>| lost.get("client").copied().unwrap_or(0);
    assert!(client(&stalled_lost) > 0, "{stalled_lost:?}");
    assert_eq!(
        client(&reading_lost) + client(&stalled_lost),
        lost_in_status("client"),
        "{reading_lost:?} + {stalled_lost:?} vs {status}"
    );
    for stage in ["decode", "queue"] {
        assert_eq!(lost_in_status(stage), 0, "{status}");
    }
    // The held burst's events are partly gone.
    let created = seen.iter().filter(|e| e["kind"] == "thread-create" && e["pid"] == held_pid).count();
    assert!(created < 3000, "{created}");
}
