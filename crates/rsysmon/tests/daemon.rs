//! The daemon, its control socket and the client commands, for real.

mod support;

use std::io::{BufRead, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::daemon::{read_until, Daemon};
use support::{assert_accounted, of, program, run_program};

const WATCH_JSON: &str = r#"{"v":1,"op":"watch","format":"json"}"#;

fn seqs_of(events: &[Value], pid: u32) -> Vec<u64> {
    events.iter().filter(|e| e["pid"] == pid).map(|e| e["seq"].as_u64().unwrap()).collect()
}

fn exited(pid: u32) -> impl Fn(&Value) -> bool {
    move |e: &Value| e["kind"] == "process-exit" && e["pid"] == pid
}

#[test]
fn two_watchers_and_the_history_agree_on_seq_numbers() {
    require_root!();
    let daemon = Daemon::start("");
    let (h1, mut w1) = daemon.connect(WATCH_JSON);
    let (h2, mut w2) = daemon.connect(WATCH_JSON);
    assert_eq!((h1["ok"].clone(), h2["ok"].clone()), (true.into(), true.into()));

    let (pid, _) = run_program(&program("threads"), &["20"]);
    let (mut e1, mut e2) = (Vec::new(), Vec::new());
    read_until(&mut w1, &mut e1, exited(pid));
    read_until(&mut w2, &mut e2, exited(pid));

    let out = daemon.client(&["events", "--json", "--pid", &pid.to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let history: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();

    let expected = seqs_of(&e1, pid);
    // process-create, exec, 20 thread-create, 20 thread-exit, process-exit,
    // and the images the program loads
    let lifecycle =
        e1.iter().filter(|e| e["pid"] == pid && e["kind"] != "image-load" && e["kind"] != "image-hash").count();
    assert_eq!(lifecycle, 43, "{e1:#?}");
    assert!(expected.len() > 43);
    // Hashes of the program's files may come after its exit; the history,
    // asked later, can hold them: compare up to the exit.
    let last = *expected.last().unwrap();
    let upto_exit = |events: &[Value]| seqs_of(events, pid).into_iter().filter(|&s| s <= last).collect::<Vec<_>>();
    assert_eq!(upto_exit(&e2), expected);
    assert_eq!(upto_exit(&history), expected);
    assert_accounted(&e1);
    assert_accounted(&e2);
}

#[test]
fn a_stalled_client_is_told_exactly_what_it_missed_and_others_lose_nothing() {
    require_root!();
    let daemon = Daemon::start("[queue]\nclient_backlog = 10000");
    let (_, mut reading) = daemon.connect(WATCH_JSON);
    let (_, mut stalled) = daemon.connect(WATCH_JSON);

    // 10000 threads: 20000 events, more than the socket buffer and a
    // backlog of 10000 hold for a client that does not read.
    let mut cmd = Command::new(program("burst"));
    cmd.arg("10000");
    let mut burst = support::die_with_test(&mut cmd).spawn().unwrap();
    let pid = burst.id();
    let mut seen = Vec::new();
    read_until(&mut reading, &mut seen, exited(pid));
    assert!(burst.wait().unwrap().success());
    assert_eq!(of(&seen, "thread-create", pid).len(), 10000);
    assert_eq!(of(&seen, "thread-exit", pid).len(), 10000);
    assert!(seen.iter().all(|e| e["kind"] != "loss"), "the reading client lost events");
    assert_accounted(&seen);

    let mut late = Vec::new();
    read_until(&mut stalled, &mut late, exited(pid));
    assert_accounted(&late);
    let client_losses: Vec<&Value> = late.iter().filter(|e| e["kind"] == "loss" && e["stage"] == "client").collect();
    assert!(!client_losses.is_empty(), "the stalled client was not told it missed events");
    let lost: u64 = client_losses.iter().map(|e| e["lost"].as_u64().unwrap()).sum();
    // What it saw plus what it was told it missed is its whole span.
    let weight = |e: &Value| if e["kind"] == "loss" { e["lost"].as_u64().unwrap() } else { 1 };
    let span = late.last().unwrap()["seq"].as_u64().unwrap() - late[0]["seq"].as_u64().unwrap() + weight(&late[0]);
    assert_eq!(late.iter().map(weight).sum::<u64>(), span);
    assert!(daemon.status()["lost"]["client"].as_u64().unwrap() >= lost);
}

#[test]
fn a_full_queue_keeps_the_newest_and_counts_what_it_dropped() {
    require_root!();
    let daemon = Daemon::start("[queue]\nmax_events = 100");
    let (pid, _) = run_program(&program("burst"), &["600"]);
    let (_, mut watch) = daemon.connect(WATCH_JSON);
    let (pid_after, _) = run_program(&program("burst"), &["1"]);
    read_until(&mut watch, &mut Vec::new(), exited(pid_after));

    let (header, mut lines) = daemon.connect(r#"{"v":1,"op":"events","format":"json"}"#);
    assert_eq!(header["count"], 100);
    let events: Vec<Value> = (0..100)
        .map(|_| {
            let mut line = String::new();
            lines.read_line(&mut line).unwrap();
            serde_json::from_str(&line).unwrap()
        })
        .collect();
    assert_accounted(&events);
    let dropped = header["rotated"].as_u64().unwrap();
    let last_seq = events[99]["seq"].as_u64().unwrap();
    if events.iter().all(|e| e["kind"] != "loss") {
        // Every event ever published is either kept or counted as dropped.
        assert_eq!(dropped + 100, last_seq);
    }
    // The first program alone made 1203 events (create, exec, 600 thread
    // create/exit pairs, exit), the second 5.
    assert!(dropped + 100 >= 1208, "dropped {dropped}");
    assert!(of(&events, "thread-create", pid).is_empty(), "the oldest were not dropped");

    let status = daemon.status();
    assert_eq!(status["queue"]["len"], 100);
    assert_eq!(status["queue"]["capacity"], 100);
    assert!(status["queue"]["rotated"].as_u64().unwrap() >= dropped);
    // Rotating the history is not a loss.
    assert_eq!(status["lost"]["queue"], 0, "{status}");
}

fn as_nobody(daemon: &Daemon, gid: &str, args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid=65534", &format!("--regid={gid}"), "--clear-groups", "--inh-caps=-all"])
        .arg(support::RSYSMON)
        .args(args)
        .arg("--socket")
        .arg(&daemon.socket)
        .output()
        .unwrap()
}

#[test]
fn only_root_and_the_read_group_may_read() {
    require_root!();
    let daemon = Daemon::start_with_socket("", "read_group = \"nogroup\"");
    let member = as_nobody(&daemon, "nogroup", &["status"]);
    assert!(member.status.success(), "{}", String::from_utf8_lossy(&member.stderr));
    assert!(String::from_utf8_lossy(&member.stdout).contains("probes:"));

    let outsider = as_nobody(&daemon, "daemon", &["events", "--last", "1"]);
    let stderr = String::from_utf8_lossy(&outsider.stderr);
    assert_eq!(outsider.status.code(), Some(1));
    assert!(stderr.starts_with("rsysmon: permission denied on"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1);
}

#[test]
fn clients_explain_a_missing_daemon_and_a_version_mismatch() {
    require_root!();
    let out =
        Command::new(support::RSYSMON).args(["status", "--socket", "/nonexistent/rsysmon.sock"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.starts_with("rsysmon: the daemon is not running"), "{stderr}");

    let daemon = Daemon::start("");
    let (header, _) = daemon.connect(r#"{"v":99,"op":"status"}"#);
    assert_eq!(header["ok"], false);
    assert!(header["error"].as_str().unwrap().contains("version 99"), "{header}");
}

#[test]
fn garbage_on_the_socket_hurts_only_its_sender() {
    require_root!();
    let mut daemon = Daemon::start("");
    let (_, mut watch) = daemon.connect(WATCH_JSON);

    let send = |bytes: &[u8]| {
        let mut s = UnixStream::connect(&daemon.socket).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(bytes);
        s
    };
    let mut noise = 0x2545f4914f6cdd1du64;
    for _ in 0..50 {
        let bytes: Vec<u8> = (0..200)
            .map(|_| {
                noise ^= noise << 13;
                noise ^= noise >> 7;
                noise ^= noise << 17;
                noise as u8
            })
            .chain([b'\n'])
            .collect();
        drop(send(&bytes));
    }
    drop(send(b"\xff\xfe\xfd\n"));
    drop(send(br#"{"v":1,"op":"wat"#)); // half a request, then gone
                                        // 100 MB without a newline: the daemon gives up after 64 KiB.
    let mut flood = UnixStream::connect(&daemon.socket).unwrap();
    flood.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let chunk = vec![b'x'; 1 << 20];
    let mut written = 0usize;
    while written < 100 << 20 {
        match flood.write(&chunk) {
            Ok(n) => written += n,
            Err(_) => break,
        }
    }
    assert!(written < 100 << 20, "the daemon kept reading a 100 MB line");
    let mut answer = String::new();
    let _ = std::io::BufReader::new(&flood).read_line(&mut answer);
    assert!(answer.is_empty() || answer.contains("too long") || answer.contains("longer than"), "{answer}");

    // A bad request on a good connection gets an error and the connection goes on.
    let mut conn = UnixStream::connect(&daemon.socket).unwrap();
    writeln!(conn, "not json\n{{\"v\":1,\"op\":\"status\"}}").unwrap();
    let mut reader = std::io::BufReader::new(conn);
    let (mut first, mut second) = (String::new(), String::new());
    reader.read_line(&mut first).unwrap();
    reader.read_line(&mut second).unwrap();
    assert!(first.contains("\"ok\":false"), "{first}");
    assert!(second.contains("\"status\""), "{second}");

    assert!(daemon.is_alive());
    let (pid, _) = run_program(&program("threads"), &["1"]);
    read_until(&mut watch, &mut Vec::new(), exited(pid));
    assert!(daemon.status()["clients"].as_u64().unwrap() >= 1);
}

#[test]
fn remote_threads_lists_what_the_daemon_detected() {
    require_root!();
    let daemon = Daemon::start("");
    let target = support::target::Target::start();
    let (injector, _) = run_program(&program("inject_vm_write"), &[&target.pid.to_string(), &target.trigger]);
    let tid = target.remote_tid();

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let listed = loop {
        let out = daemon.client(&["remote-threads", "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let listed: Vec<Value> =
            String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        if listed.iter().any(|e| e["pid"] == target.pid) || std::time::Instant::now() > deadline {
            break listed;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mine: Vec<&Value> = listed.iter().filter(|e| e["pid"] == target.pid).collect();
    assert_eq!(mine.len(), 1, "{listed:#?}");
    assert_eq!(mine[0]["kind"], "remote-thread");
    assert_eq!(mine[0]["tid"], tid);
    assert_eq!(mine[0]["creator_pid"], injector);

    let text = daemon.client(&["remote-threads"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.lines().any(|l| l.contains(&format!("Remote thread {tid} created in process {}", target.pid))),
        "{text}"
    );
}
