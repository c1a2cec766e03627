//! Every kind of event, with every optional field filled, written as ECS:
//! each field must be in ECS's published field list with its type.

use std::sync::Arc;

use chrono::TimeZone;
use rsysmon_event::{to_ecs, Detail, Event, EventKind, FileHash, HashStatus, Host, ImageVia, LossStage};
use rsysmon_testkit::ecs::{ecs_problems, ECS_FIELDS_VERSION};

fn full(detail: Detail) -> Event {
    let time = chrono::Utc.timestamp_opt(1_700_000_000, 5).unwrap();
    let mut e = Event::new(42, time, 4242, 4243, "python3".into(), detail);
    e.host = Arc::new(Host { name: "web1".into(), id: "a".repeat(32), boot_id: "b".repeat(32) });
    e.process.entity_id = Some("c".repeat(32));
    e.process.parent_entity_id = Some("d".repeat(32));
    e.process.start = Some(time);
    e.process.ns_pid = Some(1);
    e.process.ns_tid = Some(2);
    e.process.pid_ns = Some(4026531836);
    e.process.mnt_ns = Some(4026531841);
    e.process.cgroup_id = Some(1234);
    e.process.container_id = Some("e".repeat(64));
    e
}

fn every_kind() -> Vec<Event> {
    let sha = FileHash::done("f".repeat(64));
    vec![
        full(Detail::ProcessCreate {
            ppid: 1,
            parent_comm: "bash".into(),
            creator_tid: 1,
            uid: 1000,
            gid: 1000,
            user: Some("alice".into()),
            group: Some("staff".into()),
            exe: "/usr/bin/bash".into(),
        }),
        full(Detail::ProcessExec {
            exe: "/usr/bin/python3".into(),
            argv: vec!["python3".into(), "-c".into(), "pass".into()],
            argv_truncated: false,
            cwd: "/root".into(),
            old_exe: Some("/usr/bin/bash".into()),
            old_tid: 4243,
            ns_view: true,
            parent_exe: Some("/usr/bin/bash".into()),
            parent_argv: Some(vec!["bash".into()]),
            hash: sha.clone(),
        }),
        full(Detail::ProcessExit { exit_code: Some(0), signal: None, core_dumped: false, lifetime_ns: 5 }),
        full(Detail::ProcessExit { exit_code: None, signal: Some(9), core_dumped: true, lifetime_ns: 5 }),
        full(Detail::ThreadCreate { creator_tid: 4242 }),
        full(Detail::ThreadExit { exit_code: Some(0), signal: Some(1) }),
        full(Detail::ProcessTamper {
            creator_pid: 7,
            creator_tid: 8,
            creator_comm: "gdb".into(),
            method: "ptrace-poke".into(),
            count: 3,
        }),
        full(Detail::RemoteThread {
            target_creator_tid: 4242,
            creator_pid: 7,
            creator_tid: 8,
            creator_comm: "gdb".into(),
            method: "ptrace-setregs".into(),
            tamper_time: Default::default(),
        }),
        full(Detail::ExecBlocked { path: "/tmp/evil".into(), rule: "/tmp/evil".into() }),
        full(Detail::ImageLoad {
            base: 0x7f00_0000_0000,
            size: 4096,
            path: "/usr/lib/x86_64-linux-gnu/libc.so.6".into(),
            ns_path: Some("/lib/libc.so.6".into()),
            dev: 2049,
            inode: 77,
            via: ImageVia::Mmap,
            blocked: false,
            hash: sha.clone(),
        }),
        full(Detail::ImageHash { for_seq: 40, path: "/usr/bin/python3".into(), dev: 2049, inode: 78, hash: sha }),
        full(Detail::ImageHash {
            for_seq: 41,
            path: "memfd:x".into(),
            dev: 1,
            inode: 2,
            hash: FileHash::without(HashStatus::Unreachable),
        }),
        full(Detail::Loss { lost: 3, stage: LossStage::Kernel }),
    ]
}

#[test]
fn every_kind_of_event_is_valid_ecs() {
    let events = every_kind();
    let kinds: std::collections::BTreeSet<_> = events.iter().map(Event::kind).collect();
    assert_eq!(kinds.len(), EventKind::ALL.len(), "a kind has no sample here");
    assert_eq!(rsysmon_event::ECS_VERSION, ECS_FIELDS_VERSION);
    for event in &events {
        let doc = to_ecs(event);
        let problems = ecs_problems(&doc);
        assert!(problems.is_empty(), "{}: {problems:#?}\n{doc:#}", event.kind());
    }
}

#[test]
fn ecs_names_the_process_host_and_image() {
    let events = every_kind();
    let exec = to_ecs(&events[1]);
    assert_eq!(exec["process"]["entity_id"], "c".repeat(32));
    assert_eq!(exec["process"]["parent"]["entity_id"], "d".repeat(32));
    assert_eq!(exec["process"]["hash"]["sha256"], "f".repeat(64));
    assert_eq!(exec["process"]["thread"]["id"], 4243);
    assert_eq!(exec["process"]["vpid"], 1);
    assert_eq!(exec["process"]["args"][1], "-c");
    assert_eq!(exec["host"]["boot"]["id"], "b".repeat(32));
    assert_eq!(exec["container"]["id"], "e".repeat(64));
    assert_eq!(exec["event"]["sequence"], 42);
    assert_eq!(exec["@timestamp"], "2023-11-14T22:13:20.000000005Z");
    let image = to_ecs(&events[9]);
    assert_eq!(image["dll"]["path"], "/usr/lib/x86_64-linux-gnu/libc.so.6");
    assert_eq!(image["dll"]["name"], "libc.so.6");
    assert_eq!(image["dll"]["hash"]["sha256"], "f".repeat(64));
    assert_eq!(image["event"]["category"][0], "library");
    let create = to_ecs(&events[0]);
    assert_eq!((create["user"]["id"].as_str(), create["user"]["name"].as_str()), (Some("1000"), Some("alice")));
}
