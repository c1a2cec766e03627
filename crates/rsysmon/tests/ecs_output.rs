//! `--format ecs`: real events as Elastic Common Schema documents, every
//! field checked against ECS's published field list (root, real probes).

mod support;

use rsysmon_testkit::ecs::ecs_problems;
use serde_json::Value;
use support::{program, run_program, Monitor};

fn about(events: &[Value], pid: u32) -> Vec<Value> {
    events.iter().filter(|e| e["process"]["pid"] == pid).cloned().collect()
}

#[test]
fn real_events_are_valid_ecs_documents() {
    require_root!();
    let monitor = Monitor::start_in("ecs", &[]);
    let (pid, _) = run_program(&program("threads"), &[]);
    let events = monitor.wait_for("the program's exit in ECS", |e| {
        about(e, pid).iter().any(|d| d["event"]["action"] == "process-exit")
    });
    let docs = about(&events, pid);
    let actions: Vec<&str> = docs.iter().filter_map(|d| d["event"]["action"].as_str()).collect();
    for action in ["process-create", "process-exec", "image-load", "thread-create", "thread-exit", "process-exit"] {
        assert!(actions.contains(&action), "no {action} in {actions:?}");
    }
    for doc in &events {
        let problems = ecs_problems(doc);
        assert!(problems.is_empty(), "{problems:#?}\n{doc:#}");
    }
    let exec = docs.iter().find(|d| d["event"]["action"] == "process-exec").unwrap();
    assert_eq!(exec["process"]["executable"], support::real(program("threads").to_str().unwrap()));
    assert_eq!(exec["process"]["entity_id"].as_str().map(str::len), Some(32));
    assert!(exec["process"]["parent"]["entity_id"].is_string());
    assert_eq!(exec["ecs"]["version"], rsysmon_event::ECS_VERSION);
    assert!(exec["host"]["boot"]["id"].is_string() && exec["host"]["id"].is_string());
    let libc =
        docs.iter().find(|d| d["dll"]["name"].as_str().is_some_and(|n| n.starts_with("libc.so"))).expect("libc loaded");
    assert_eq!(libc["event"]["category"][0], "library");
}
