//! SHA-256 of executed programs and loaded images, compared with
//! sha256sum (root, real probes).

mod support;

use std::io::Write;
use std::process::Command;

use serde_json::Value;
use support::{of, run_program, Monitor};

fn sha256sum(path: &str) -> String {
    let out = Command::new("sha256sum").arg(path).output().expect("run sha256sum (coreutils)");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
}

/// The event's hash: in it, or in the `image-hash` that completes it.
fn hash_of(events: &[Value], event: &Value) -> Option<String> {
    match event["hash_status"].as_str()? {
        "done" => event["sha256"].as_str().map(str::to_string),
        "pending" => events
            .iter()
            .find(|e| e["kind"] == "image-hash" && e["for_seq"] == event["seq"])
            .and_then(|e| e["sha256"].as_str().map(str::to_string)),
        other => panic!("no hash: {other} in {event}"),
    }
}

fn hashed(events: &[Value], event: &Value) -> bool {
    match event["hash_status"].as_str() {
        Some("done") => true,
        Some("pending") => events.iter().any(|e| e["kind"] == "image-hash" && e["for_seq"] == event["seq"]),
        _ => true,
    }
}

#[test]
fn program_and_libc_hashes_equal_sha256sum_and_a_changed_file_is_hashed_again() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let prog = dir.path().join("hashme");
    std::fs::copy("/bin/true", &prog).unwrap();
    let prog_path = support::real(prog.to_str().unwrap());
    let monitor = Monitor::start(&[]);

    let (pid, _) = run_program(&prog, &[]);
    let events = monitor.wait_for("the program's and libc's hashes", |e| {
        let exec = of(e, "process-exec", pid);
        let images = of(e, "image-load", pid);
        !exec.is_empty()
            && images.iter().any(|i| i["path"].as_str().is_some_and(|p| p.contains("libc.so")))
            && exec.iter().chain(images.iter()).all(|x| hashed(e, x))
    });
    let exec = &of(&events, "process-exec", pid)[0];
    let first = hash_of(&events, exec).expect("program hash");
    assert_eq!(first, sha256sum(&prog_path));
    let libc = of(&events, "image-load", pid)
        .into_iter()
        .find(|i| i["path"].as_str().is_some_and(|p| p.contains("libc.so")))
        .unwrap();
    let libc_path = libc["path"].as_str().unwrap().to_string();
    assert_eq!(hash_of(&events, &libc).expect("libc hash"), sha256sum(&libc_path));

    // Bytes after the end of an ELF file change nothing it runs, but they
    // change the file: the next exec must bring the new file's hash.
    let mut f = std::fs::OpenOptions::new().append(true).open(&prog).unwrap();
    f.write_all(b"changed").unwrap();
    drop(f);
    let (pid2, _) = run_program(&prog, &[]);
    let events = monitor
        .wait_for("the changed program's hash", |e| of(e, "process-exec", pid2).first().is_some_and(|x| hashed(e, x)));
    let second = hash_of(&events, &of(&events, "process-exec", pid2)[0]).expect("hash of the changed file");
    assert_eq!(second, sha256sum(&prog_path));
    assert_ne!(second, first);

    // The same file again: answered from the cache, in the event itself.
    let (pid3, _) = run_program(&prog, &[]);
    let events = monitor.wait_for("a third exec", |e| !of(e, "process-exec", pid3).is_empty());
    let third = &of(&events, "process-exec", pid3)[0];
    assert_eq!(third["hash_status"], "done", "{third}");
    assert_eq!(third["sha256"], second);
}

#[test]
fn a_too_large_file_says_so_and_hashing_can_be_turned_off() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[hashing]\nmax_size_mib = 1\n").unwrap();
    let big = dir.path().join("big");
    std::fs::copy("/bin/true", &big).unwrap();
    std::fs::OpenOptions::new().append(true).open(&big).unwrap().set_len(2 << 20).unwrap();
    let monitor = Monitor::start(&["--config", config.to_str().unwrap()]);
    let (pid, _) = run_program(&big, &[]);
    let events = monitor.wait_for("exec of the big file", |e| !of(e, "process-exec", pid).is_empty());
    assert_eq!(of(&events, "process-exec", pid)[0]["hash_status"], "too-large");
    drop(monitor);

    std::fs::write(&config, "[hashing]\nenabled = false\n").unwrap();
    let monitor = Monitor::start(&["--config", config.to_str().unwrap()]);
    let (pid, _) = run_program(&big, &[]);
    let events = monitor.wait_for("exec without hashing", |e| !of(e, "process-exec", pid).is_empty());
    let exec = &of(&events, "process-exec", pid)[0];
    assert_eq!(exec["hash_status"], "disabled");
    assert!(exec.get("sha256").is_none());
}
