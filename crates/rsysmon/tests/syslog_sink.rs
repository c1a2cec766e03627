//! The daemon's syslog sink against a real rsyslog on loopback.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::daemon::Daemon;
use support::services::Rsyslog;
use support::{of, program, run_program};

/// The JSON events inside the received RFC 5424 messages, checked as they
/// are parsed: header, kind as MSGID, seq in structured data.
fn events(messages: &[String]) -> Vec<Value> {
    messages
        .iter()
        .map(|m| {
            let (header, json) = m.split_once("] {").unwrap_or_else(|| panic!("no structured data: {m}"));
            let event: Value = serde_json::from_str(&format!("{{{json}")).unwrap();
            let fields: Vec<&str> = header.split(' ').collect();
            assert!(fields[0].starts_with('<') && fields[0].ends_with(">1"), "{m}");
            let pri: u32 = fields[0][1..fields[0].len() - 2].parse().unwrap();
            assert_eq!(pri / 8, 17, "facility local1: {m}");
            assert_eq!(fields[3], "rsysmon-test");
            assert_eq!(fields[5], event["kind"], "{m}");
            assert_eq!(fields[6..].join(" "), format!("[rsysmon@32473 seq=\"{}\"", event["seq"]), "{m}");
            event
        })
        .collect()
}

fn wait_for_exit(rsyslog: &Rsyslog, pid: u32) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events = events(&rsyslog.messages());
        if events.iter().any(|e| e["kind"] == "process-exit" && e["pid"] == pid) {
            return events;
        }
        assert!(Instant::now() < deadline, "no exit of {pid} at rsyslog after 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A 20-thread workload reaches `rsyslog` whole: 20 creates, 20 exits,
/// every seq once, in order, none missing (each message kept whole).
fn twenty_threads_arrive_whole(rsyslog: &Rsyslog) {
    let (pid, _) = run_program(&program("threads"), &["20"]);
    let events = wait_for_exit(rsyslog, pid);
    assert_eq!(of(&events, "thread-create", pid).len(), 20);
    assert_eq!(of(&events, "thread-exit", pid).len(), 20);
    for pair in events.windows(2) {
        assert_eq!(pair[1]["seq"].as_u64().unwrap(), pair[0]["seq"].as_u64().unwrap() + 1, "{}", pair[1]);
    }
}

/// A daemon whose syslog sink sends to `rsyslog` over TCP.
fn daemon_to(rsyslog: &Rsyslog) -> Daemon {
    Daemon::start(&format!(
        "[outputs.syslog]\nenabled = true\naddress = \"tcp:127.0.0.1:{}\"\nfacility = \"local1\"\napp_name = \"rsysmon-test\"\n",
        rsyslog.port
    ))
}

#[test]
fn rsyslog_receives_every_event_of_a_workload_octet_counted() {
    require_root!();
    let rsyslog = Rsyslog::start();
    let daemon = daemon_to(&rsyslog);
    twenty_threads_arrive_whole(&rsyslog);
    let status = daemon.status();
    let sink = status["sinks"].as_array().unwrap().iter().find(|s| s["name"] == "syslog").unwrap().clone();
    assert_eq!(sink["state"], "up", "{sink}");
    assert_eq!(status["lost"]["sink:syslog"], 0);
}

#[test]
fn with_rsyslog_down_the_sink_retries_and_delivers_after_it_returns() {
    require_root!();
    let rsyslog = Rsyslog::start();
    let daemon = daemon_to(&rsyslog);
    let (pid, _) = run_program(&program("threads"), &["2"]);
    wait_for_exit(&rsyslog, pid);
    let stopped = rsyslog.stop();
    // While it is down, the sink fails, keeps the events and retries.
    std::thread::sleep(Duration::from_millis(300));
    let (pid, _) = run_program(&program("threads"), &["5"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = daemon.status();
        let sink = status["sinks"].as_array().unwrap().iter().find(|s| s["name"] == "syslog").unwrap().clone();
        if sink["state"] == "retrying" {
            assert!(sink["last_error"].as_str().unwrap().contains("127.0.0.1"), "{sink}");
            break;
        }
        assert!(Instant::now() < deadline, "the sink never noticed rsyslog was down: {sink}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let rsyslog = Rsyslog::restart(stopped);
    let events = wait_for_exit(&rsyslog, pid);
    assert_eq!(of(&events, "thread-create", pid).len(), 5);
    assert_eq!(daemon.status()["lost"]["sink:syslog"], 0);
}

#[test]
fn over_tls_rsyslog_receives_every_event_and_an_untrusted_collector_gets_none() {
    require_root!();
    let rsyslog = Rsyslog::start_tls();
    let ca = rsyslog.ca.clone().unwrap();
    let syslog = |address: &str, ca: &std::path::Path| {
        format!(
            "[outputs.syslog]\nenabled = true\naddress = \"{address}\"\nca_file = {ca:?}\nfacility = \"local1\"\n\
             app_name = \"rsysmon-test\"\n"
        )
    };
    let daemon = Daemon::start(&syslog(&format!("tls:127.0.0.1:{}", rsyslog.port), &ca));
    twenty_threads_arrive_whole(&rsyslog);
    let sink = daemon.status()["sinks"].as_array().unwrap().iter().find(|s| s["name"] == "syslog").unwrap().clone();
    assert_eq!(sink["state"], "up", "{sink}");
    assert_eq!(sink["destination"], format!("tls:127.0.0.1:{}", rsyslog.port));
    drop(daemon);

    // The system's CAs do not trust the test's CA: the handshake fails, the
    // sink says why and retries, and nothing reaches rsyslog in the clear.
    let received = rsyslog.messages().len();
    let daemon = Daemon::start(&syslog(
        &format!("tls:127.0.0.1:{}", rsyslog.port),
        std::path::Path::new("/etc/ssl/certs/ca-certificates.crt"),
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = daemon.status();
        let sink = status["sinks"].as_array().unwrap().iter().find(|s| s["name"] == "syslog").unwrap().clone();
        if sink["state"] == "retrying" {
            let error = sink["last_error"].as_str().unwrap();
            assert!(error.to_lowercase().contains("certificate"), "{sink}");
            break;
        }
        assert!(Instant::now() < deadline, "the untrusted collector was never refused: {sink}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(rsyslog.messages().len(), received);
}
