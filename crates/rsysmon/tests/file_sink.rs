//! The daemon's file sink, for real: every event of a workload lands in the
//! file, in order, rotated at the configured size, across restarts.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::daemon::Daemon;
use support::{of, program, run_program};

fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line in {}: {e}: {l}", path.display())))
        .collect()
}

/// Wait until the file holds the exit of `pid`; return its events.
fn wait_for_exit(path: &Path, pid: u32) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events = read_lines(path);
        if events.iter().any(|e| e["kind"] == "process-exit" && e["pid"] == pid) {
            return events;
        }
        assert!(Instant::now() < deadline, "no exit of {pid} in {} after 30 s", path.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Each seq follows the one before, or a loss event says why not.
fn assert_no_gap(events: &[Value]) {
    for pair in events.windows(2) {
        let step = pair[1]["seq"].as_u64().unwrap() - pair[0]["seq"].as_u64().unwrap();
        assert_eq!(step, 1, "gap or loss between {} and {}", pair[0], pair[1]);
    }
}

#[test]
fn every_event_of_a_workload_reaches_the_file_and_a_restart_shows_where_it_fell() {
    require_root!();
    let daemon = Daemon::start("");
    let path = daemon.dir().join("events.jsonl");
    let (pid, _) = run_program(&program("threads"), &["20"]);
    let events = wait_for_exit(&path, pid);
    assert_eq!(of(&events, "thread-create", pid).len(), 20);
    assert_eq!(of(&events, "thread-exit", pid).len(), 20);
    assert_eq!(of(&events, "process-exec", pid).len(), 1);
    assert_no_gap(&events);
    let status = daemon.status();
    assert_eq!(status["sinks"][0]["name"], "file");
    assert_eq!(status["lost"]["sink:file"], 0);

    let dir = daemon.stop();
    let first_run = read_lines(&path);
    let last_seq = first_run.last().unwrap()["seq"].as_u64().unwrap();
    let daemon = Daemon::restart(dir);
    let (pid2, _) = run_program(&program("threads"), &["3"]);
    let both = wait_for_exit(&path, pid2);
    // The first run's events are kept whole, then the second run starts
    // again at a low seq: the restart falls exactly between the two.
    assert_eq!(&both[..first_run.len()], &first_run[..]);
    let second = &both[first_run.len()..];
    assert!(second[0]["seq"].as_u64().unwrap() < last_seq, "{} after {last_seq}", second[0]);
    assert_no_gap(second);
    assert_eq!(of(second, "thread-create", pid2).len(), 3);
    drop(daemon);
}

#[test]
fn the_file_rotates_at_its_size_and_keeps_n_files() {
    require_root!();
    let logs = tempfile::tempdir().unwrap();
    let path = logs.path().join("events.jsonl");
    let daemon = Daemon::start(&format!("[outputs.file]\npath = {path:?}\nmax_size_mib = 1\nkeep = 2\n"));
    // 10000 threads: 20000 events, some 4 MiB of JSON lines.
    let mut cmd = Command::new(program("burst"));
    cmd.arg("10000");
    let mut burst = support::die_with_test(&mut cmd).spawn().unwrap();
    let pid = burst.id();
    assert!(burst.wait().unwrap().success());
    let live = wait_for_exit(&path, pid);

    let mut names: Vec<String> =
        std::fs::read_dir(logs.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]);
    let older = [path.with_extension("jsonl.2"), path.with_extension("jsonl.1")];
    for p in &older {
        let size = std::fs::metadata(p).unwrap().len();
        assert!(size <= 1024 * 1024 && size > 1024 * 1024 - 4096, "{}: {size}", p.display());
    }
    // Oldest to newest, the kept files continue one another.
    let mut all: Vec<Value> = older.iter().flat_map(|p| read_lines(p)).collect();
    all.extend(live);
    assert_no_gap(&all);
    assert_eq!(daemon.status()["lost"]["sink:file"], 0);
}
