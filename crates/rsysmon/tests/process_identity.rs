//! Who a process is beyond its pid: entity ids across exec and pid reuse,
//! namespace pids, user names and the host (root, real probes).

mod support;

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

use serde_json::Value;
use support::{field, of, program, run_program, Monitor};

fn ns_inode(kind: &str) -> u64 {
    std::fs::metadata(format!("/proc/self/ns/{kind}")).unwrap().ino()
}

#[test]
fn entity_id_is_stable_across_exec_and_names_the_parent() {
    require_root!();
    let monitor = Monitor::start(&[]);
    // A thread of this process, so that it sends an event of its own.
    std::thread::spawn(|| ()).join().unwrap();
    let child = Command::new("/bin/sh").args(["-c", "exec /bin/sleep 0.2"]).spawn().unwrap();
    let pid = child.id();
    child.wait_with_output().unwrap();
    let events = monitor.wait_for("exit of sh→sleep", |e| !of(e, "process-exit", pid).is_empty());
    let create = &of(&events, "process-create", pid)[0];
    let execs = of(&events, "process-exec", pid);
    assert_eq!(execs.len(), 2, "sh, then sleep: {execs:#?}");
    let exec = &execs[0];
    let exit = &of(&events, "process-exit", pid)[0];
    let id = create["entity_id"].as_str().expect("entity_id");
    assert_eq!(id.len(), 32);
    assert_eq!(exec["entity_id"], id);
    assert_eq!(execs[1]["entity_id"], id);
    assert_eq!(exit["entity_id"], id);
    for image in of(&events, "image-load", pid) {
        assert_eq!(image["entity_id"], id);
    }
    // The parent is this test process: every event it sends has its id.
    assert_eq!(create["ppid"], std::process::id());
    let ours: Vec<&Value> = events.iter().filter(|e| e["pid"] == std::process::id()).collect();
    let parent_id = &create["parent_entity_id"];
    assert!(parent_id.is_string(), "{create}");
    for e in &ours {
        assert_eq!(&e["entity_id"], parent_id, "{e}");
    }
    assert!(!ours.is_empty(), "no event of the test process itself");
    // process-exec names the parent's program and arguments.
    let me = std::fs::read_link("/proc/self/exe").unwrap();
    assert_eq!(exec["parent_exe"], me.to_str().unwrap());
    assert_eq!(exec["parent_argv"][0], std::env::args().next().unwrap());
    assert_eq!(execs[1]["argv"], serde_json::json!(["/bin/sleep", "0.2"]));
    assert_eq!(execs[1]["old_exe"], support::real("/bin/sh"));
    assert_eq!(execs[1]["parent_exe"], me.to_str().unwrap());
    // And the user and the host.
    assert_eq!((create["uid"].as_u64(), create["user"].as_str()), (Some(0), Some("root")));
    assert_eq!(create["group"], "root");
    let machine_id = std::fs::read_to_string("/etc/machine-id").unwrap();
    assert_eq!(create["host"]["id"], machine_id.trim());
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert_eq!(create["host"]["boot_id"], boot_id.trim().replace('-', ""));
    assert_eq!(create["pid_ns"], ns_inode("pid"));
    assert_eq!(create["mnt_ns"], ns_inode("mnt"));
    assert!(create.get("ns_pid").is_none(), "same namespace: no ns_pid: {create}");
}

#[test]
fn two_processes_with_the_same_pid_have_different_entity_ids() {
    require_root!();
    let monitor = Monitor::start(&[]);
    let (parent, lines) = run_program(&program("reuse_pid"), &[]);
    let pid = *field(&lines, "pid").first().expect("the program got the same pid twice");
    let events = monitor.wait_for("both processes with the reused pid", |e| {
        of(e, "process-exit", pid).iter().filter(|x| x["parent_entity_id"].is_string()).count() >= 2
            || of(e, "process-create", pid).iter().filter(|c| c["ppid"] == parent).count() >= 2
                && of(e, "process-exit", pid).len() >= 2
    });
    let creates: Vec<Value> = of(&events, "process-create", pid).into_iter().filter(|c| c["ppid"] == parent).collect();
    assert_eq!(creates.len(), 2, "{creates:#?}");
    let (a, b) = (&creates[0]["entity_id"], &creates[1]["entity_id"]);
    assert!(a.is_string() && b.is_string());
    assert_ne!(a, b, "a reused pid got the same entity_id");
    assert_eq!(creates[0]["parent_entity_id"], creates[1]["parent_entity_id"]);
    // Each exit carries the id of its own process.
    let exits = of(&events, "process-exit", pid);
    let exit_ids: Vec<&Value> = exits.iter().map(|e| &e["entity_id"]).collect();
    assert!(exit_ids.contains(&a) && exit_ids.contains(&b), "{exits:#?}");
}

#[test]
fn namespace_pids_match_what_the_process_prints() {
    require_root!();
    let monitor = Monitor::start(&[]);
    let prog = program("print_pids");
    let out = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(&prog)
        .stderr(Stdio::inherit())
        .output()
        .expect("run unshare (util-linux)");
    assert!(out.status.success());
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    let (ns_pid, ns_tid) = (field(&lines, "pid")[0], field(&lines, "tid")[0]);
    assert_eq!((ns_pid, ns_tid), (1, 1), "the first process of a new pid namespace");
    let prog = prog.to_str().unwrap().to_string();
    let events = monitor.wait_for("exec of print_pids in its namespace", |e| {
        e.iter().any(|x| x["kind"] == "process-exec" && x["exe"] == prog.as_str())
    });
    let exec = events.iter().find(|x| x["kind"] == "process-exec" && x["exe"] == prog.as_str()).unwrap();
    assert_eq!(exec["ns_pid"], ns_pid, "{exec}");
    assert_eq!(exec["ns_tid"], ns_tid, "{exec}");
    assert_ne!(exec["pid"], ns_pid);
    assert_ne!(exec["pid_ns"], ns_inode("pid"));
    assert_ne!(exec["mnt_ns"], ns_inode("mnt"));
    // --mount-proc only remounts /proc: the program's path is still the
    // host's, seen from another mount namespace.
    assert_eq!(exec["ns_view"], true);
}
