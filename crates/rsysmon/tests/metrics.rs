//! The daemon's Prometheus `/metrics`, for real: scraped over HTTP, parsed
//! with a Prometheus text parser, equal to `rsysmon status` at the same
//! moment and to the events a workload made.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use prometheus_parse::{Sample, Scrape, Value as Metric};
use serde_json::Value;
use support::daemon::Daemon;
use support::run_program;

/// A loopback port free a moment ago.
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// GET `path`; the status line and the body.
fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no head in {answer:?}"));
    (head.lines().next().unwrap().to_string(), body.to_string())
}

fn scrape(addr: SocketAddr) -> Vec<Sample> {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap_or_else(|e| panic!("{e}\n{body}")).samples
}

fn number(v: &Metric) -> f64 {
    match v {
        Metric::Counter(n) | Metric::Gauge(n) | Metric::Untyped(n) => *n,
        other => panic!("not a number: {other:?}"),
    }
}

/// The samples of `metric`, by the value of `label`.
fn by_label(samples: &[Sample], metric: &str, label: &str) -> BTreeMap<String, u64> {
    samples
        .iter()
        .filter(|s| s.metric == metric)
        .map(|s| {
            (
                s.labels.get(label).unwrap_or_else(|| panic!("{metric} without {label}")).to_string(),
                number(&s.value) as u64,
            )
        })
        .collect()
}

fn one(samples: &[Sample], metric: &str) -> u64 {
    let found: Vec<&Sample> = samples.iter().filter(|s| s.metric == metric).collect();
    assert_eq!(found.len(), 1, "{metric}: {found:?}");
    number(&found[0].value) as u64
}

fn json_map(v: &Value) -> BTreeMap<String, u64> {
    v.as_object().unwrap().iter().map(|(k, n)| (k.clone(), n.as_u64().unwrap())).collect()
}

#[test]
fn metrics_parse_and_equal_status_and_the_workload() {
    require_root!();
    // Only the workload's own program is reported (every other process on
    // the machine is filtered out), so the counters can be caught still.
    let work = tempfile::tempdir().unwrap();
    let threads = work.path().join("metrics-threads");
    std::fs::copy(support::program("threads"), &threads).unwrap();
    let addr = free_port();
    let daemon = Daemon::start(&format!(
        "[[filter.rules]]\naction = \"include\"\nkind = \"*\"\nfield = \"exe\"\nop = \"begins-with\"\nvalue = {:?}\n\
         [outputs.metrics]\nenabled = true\nlisten = \"{addr}\"\n",
        format!("{}/", work.path().display())
    ));
    let (pid, _) = run_program(&threads, &["20"]);

    // Wait until the workload's exit went through, then take status,
    // metrics, status until nothing moved in between.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (before, status, samples) = loop {
        assert!(Instant::now() < deadline, "the counters never held still");
        let before = daemon.status();
        let samples = scrape(addr);
        let after = daemon.status();
        let exited = before["events"]["process-exit"].as_u64().unwrap() >= 1;
        let still = before["events"] == after["events"]
            && before["lost"] == after["lost"]
            && before["sinks"][0]["delivered"] == after["sinks"][0]["delivered"]
            && before["last_seq"] == after["last_seq"];
        if exited && still && after["sinks"][0]["queued"] == 0 {
            break (before, after, samples);
        }
        std::thread::sleep(Duration::from_millis(200));
    };

    // Every counter equals status.
    assert_eq!(by_label(&samples, "rsysmon_events_total", "kind"), json_map(&status["events"]));
    assert_eq!(by_label(&samples, "rsysmon_lost_events_total", "stage"), json_map(&status["lost"]));
    assert_eq!(one(&samples, "rsysmon_last_seq"), status["last_seq"].as_u64().unwrap());
    // `status` counts the connection asking it; the scrape has none.
    assert_eq!(one(&samples, "rsysmon_clients") + 1, status["clients"].as_u64().unwrap());
    let sink = &status["sinks"][0];
    assert_eq!(sink["name"], "file");
    assert_eq!(
        by_label(&samples, "rsysmon_sink_delivered_events_total", "sink")["file"],
        sink["delivered"].as_u64().unwrap()
    );
    assert_eq!(by_label(&samples, "rsysmon_sink_queued_events", "sink")["file"], 0);
    assert_eq!(by_label(&samples, "rsysmon_sink_lag_events", "sink")["file"], 0);
    assert_eq!(by_label(&samples, "rsysmon_sink_up", "sink")["file"], 1);
    let capabilities: BTreeMap<String, u64> = status["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), u64::from(c["on"].as_bool().unwrap())))
        .collect();
    assert_eq!(by_label(&samples, "rsysmon_capability_on", "capability"), capabilities);
    assert_eq!(by_label(&samples, "rsysmon_capability_on", "capability")["process"], 1);

    // And the workload: one exec, 20 threads, one exit, of our pid only.
    let events = json_map(&status["events"]);
    assert_eq!(events["process-exec"], 1, "{events:?}");
    assert_eq!(events["thread-create"], 20, "{events:?}");
    assert_eq!(events["thread-exit"], 20, "{events:?}");
    assert_eq!(events["process-exit"], 1, "{events:?}");
    let file = std::fs::read_to_string(daemon.dir().join("events.jsonl")).unwrap();
    let lines: Vec<Value> = file.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.iter().all(|e| e["pid"] == pid), "only the workload's pid is reported");
    assert_eq!(lines.len() as u64, sink["delivered"].as_u64().unwrap());
    // The rest of the machine is filtered all the time: the scrape's counts
    // lie between the two status answers around it.
    let filtered = by_label(&samples, "rsysmon_filtered_events_total", "kind");
    let (low, high) = (json_map(&before["filtered"]), json_map(&status["filtered"]));
    for (kind, n) in &high {
        let at_scrape = filtered.get(kind).copied().unwrap_or(0);
        assert!(low.get(kind).copied().unwrap_or(0) <= at_scrape && at_scrape <= *n, "{kind}: {filtered:?} {high:?}");
    }
    assert!(filtered.keys().all(|k| high.contains_key(k)), "{filtered:?} {high:?}");

    // The blocker's decisions, when it runs, and their histogram.
    if let Some(blocker) = status.get("blocker") {
        // Every exec on the machine moves them: the scrape came before the
        // second status.
        let decisions = by_label(&samples, "rsysmon_blocker_decisions_total", "decision");
        for (name, key) in [("allowed", "allowed"), ("denied", "denied"), ("failed", "failures")] {
            assert!(decisions[name] <= blocker[key].as_u64().unwrap(), "{name}: {decisions:?} {blocker}");
        }
        assert!(samples
            .iter()
            .any(|s| s.metric == "rsysmon_blocker_decision_seconds" && matches!(s.value, Metric::Histogram(_))));
    }
    drop(daemon);
}

#[test]
fn the_listener_is_loopback_by_default_and_refuses_what_is_not_a_scrape() {
    require_root!();
    let addr = free_port();
    let mut daemon = Daemon::start(&format!("[outputs.metrics]\nenabled = true\nlisten = \"{addr}\"\n"));
    assert_eq!(get(addr, "/").0, "HTTP/1.1 404 Not Found");
    // Silent connections take the listener's slots, never the daemon.
    let silent: Vec<TcpStream> = (0..50).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let status = daemon.status();
    assert_eq!(status["clients"], 1, "only the status request itself");
    drop(silent);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n");
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        if answer.starts_with(b"HTTP/1.1 200 OK") {
            let text = String::from_utf8(answer).unwrap();
            assert!(text.contains("rsysmon_metrics_refused_requests_total{reason=\"busy\"}"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "the listener did not recover from silent connections");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(daemon.is_alive());
    assert!(Path::new(&daemon.socket).exists());
    // The default listens on loopback only.
    assert_eq!(
        rsysmon_sinks::OutputsConfig::default().metrics.listen.parse::<SocketAddr>().unwrap().ip(),
        std::net::IpAddr::from([127, 0, 0, 1])
    );
}
