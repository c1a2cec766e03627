//! What the root integration tests share: a real `rsysmon run --json`
//! monitor whose events can be waited for, and test programs built from
//! `tests/programs/*.c`.
//!
//! Every monitor sees every process on the machine, so tests select the
//! events of the pids they started, never "the next event".
#![allow(dead_code)]

pub mod daemon;
pub mod services;
pub mod target;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

pub use rsysmon_testkit::{die_with_test, root_tests_enabled};

use serde_json::Value;

pub const RSYSMON: &str = env!("CARGO_BIN_EXE_rsysmon");

/// Skip the calling test when root tests are disabled on purpose.
#[macro_export]
macro_rules! require_root {
    () => {
        if !support::root_tests_enabled() {
            return;
        }
    };
}

/// The calling thread's id.
pub fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() as u32 }
}

/// A running `rsysmon run --format json` (or ecs).
pub struct Monitor {
    child: Child,
    events: Arc<Mutex<Vec<Value>>>,
    reader: Option<thread::JoinHandle<()>>,
    stderr: Arc<Mutex<String>>,
}

impl Monitor {
    /// Start a monitor with extra `rsysmon run` arguments and wait until
    /// its probes are attached.
    pub fn start(args: &[&str]) -> Monitor {
        Monitor::start_in("json", args)
    }

    /// Start a monitor writing `--format FORMAT` (json or ecs: one JSON
    /// document per line).
    pub fn start_in(format: &str, args: &[&str]) -> Monitor {
        Self::start_with_env_in(format, args, &[])
    }

    /// As [`Monitor::start`], with extra environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Monitor {
        Self::start_with_env_in("json", args, env)
    }

    fn start_with_env_in(format: &str, args: &[&str], env: &[(&str, &str)]) -> Monitor {
        let mut cmd = Command::new(RSYSMON);
        cmd.arg("run").args(["--format", format]).args(args);
        cmd.envs(env.iter().copied());
        Monitor::start_command(cmd)
    }

    /// Start `cmd`, which must end up running `rsysmon run --json` in its
    /// own process (e.g. through `unshare` and `exec`), and wait until its
    /// probes are attached.
    pub fn start_command(mut cmd: Command) -> Monitor {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = die_with_test(&mut cmd).spawn().expect("start rsysmon");
        let stdout = child.stdout.take().unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let events = Arc::clone(&events);
            thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let value: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                    events.lock().unwrap().push(value);
                }
            })
        };
        let stderr = wait_ready(&mut child, "probes attached");
        Monitor { child, events, reader: Some(reader), stderr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its stderr so far (the startup lines once started).
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Everything received so far.
    pub fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }

    /// Wait until `done` holds for the events received, or panic after 20 s
    /// showing what did arrive for `pid`s the test cares about.
    pub fn wait_for(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let events = self.events();
            if done(&events) {
                return events;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; stderr: {}", self.stderr.lock().unwrap());
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stop with SIGINT as a user would; returns all events and stderr.
    pub fn stop(mut self) -> (Vec<Value>, String) {
        // SAFETY: kill on a pid we spawned and have not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().expect("wait for rsysmon");
        if let Some(r) = self.reader.take() {
            r.join().expect("reader thread");
        }
        // Give the stderr thread a moment to read the summary line.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.stderr.lock().unwrap().contains("rsysmon: events:") && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        let stderr = self.stderr.lock().unwrap().clone();
        assert!(status.success(), "rsysmon exited with {status}; stderr: {stderr}");
        (self.events(), stderr)
    }

    /// Pause the monitor's process (SIGSTOP): the kernel keeps writing into
    /// the ring buffer while nothing reads it.
    pub fn pause(&self) {
        // SAFETY: kill on a pid we spawned.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGSTOP) };
    }

    pub fn resume(&self) {
        // SAFETY: kill on a pid we spawned.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGCONT) };
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Read `child`'s stderr into the returned text until it exits, and wait
/// (up to 60 s) for a line containing `marker`.
pub fn wait_ready(child: &mut Child, marker: &'static str) -> Arc<Mutex<String>> {
    let stderr: ChildStderr = child.stderr.take().expect("stderr is piped");
    let text = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let text = Arc::clone(&text);
        thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut text = text.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
                if line.contains(marker) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(());
                    }
                }
            }
        });
    }
    if rx.recv_timeout(Duration::from_secs(60)).is_err() {
        let _ = child.kill();
        panic!("no {marker:?} within 60 s (exit: {:?}); stderr: {}", child.try_wait(), text.lock().unwrap());
    }
    text
}

/// The events from the creation of process `pid`, a child of this test
/// process, to its exit, both included: on a busy machine pids wrap
/// quickly, and events before or after that span with the same pid belong
/// to another process.
pub fn lifetime_of(events: &[Value], pid: u32) -> &[Value] {
    let is = |e: &Value, kind: &str| e["kind"] == kind && e["pid"] == pid;
    let start = events
        .iter()
        .position(|e| is(e, "process-create") && e["ppid"] == std::process::id())
        .unwrap_or_else(|| panic!("no creation of {pid} by this test"));
    let end = events[start..].iter().position(|e| is(e, "process-exit")).map_or(events.len(), |i| start + i + 1);
    &events[start..end]
}

/// Events of one kind about one pid, in arrival order.
pub fn of(events: &[Value], kind: &str, pid: u32) -> Vec<Value> {
    events.iter().filter(|e| e["kind"] == kind && e["pid"] == pid).cloned().collect()
}

/// Build `tests/programs/NAME.c` once per test binary; returns its path.
/// A first line `// cc: FLAGS` adds link flags (e.g. `-ldl`).
pub fn program(name: &str) -> PathBuf {
    build(name, &[])
}

/// Build `tests/programs/NAME.c` as a shared library (`-shared -fPIC`)
/// once per test binary; returns its path.
pub fn shared_library(name: &str) -> PathBuf {
    build(name, &["-shared", "-fPIC"])
}

fn build(name: &str, mode: &[&str]) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap();
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs").join(format!("{name}.c"));
    let text = std::fs::read_to_string(&src).unwrap_or_else(|e| panic!("reading {}: {e}", src.display()));
    let link_flags: Vec<&str> = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("// cc:"))
        .map(|flags| flags.split_whitespace().collect())
        .unwrap_or_default();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("programs");
    std::fs::create_dir_all(&dir).unwrap();
    let suffix = if mode.contains(&"-shared") { ".so" } else { "" };
    let out = dir.join(format!("{name}-{}{suffix}", std::process::id()));
    let status = Command::new("cc")
        .args(["-O1", "-pthread", "-Wall"])
        .args(mode)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .args(&link_flags)
        .status()
        .expect("run cc (install gcc: make deps)");
    assert!(status.success(), "compiling {} failed", src.display());
    built.insert(name.to_string(), out.clone());
    out
}

/// Run a test program to completion; returns its stdout lines.
pub fn run_program(path: &Path, args: &[&str]) -> (u32, Vec<String>) {
    let mut cmd = Command::new(path);
    cmd.args(args).stdout(Stdio::piped());
    let child = die_with_test(&mut cmd).spawn().expect("spawn test program");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait for test program");
    let lines = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    (pid, lines)
}

/// The number after `key ` in the line starting with it: "tid 123" → 123.
pub fn field(lines: &[String], key: &str) -> Vec<u32> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(key).and_then(|rest| rest.trim().split(' ').next()?.parse().ok()))
        .collect()
}

/// Real path, as the kernel reports it (no symlinks).
pub fn real(path: &str) -> String {
    std::fs::canonicalize(path).unwrap().to_string_lossy().into_owned()
}

/// A private copy of /bin/true in a temp dir of its own: the only thing
/// the blocking tests ever block.
pub fn private_true() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("true-copy");
    std::fs::copy("/bin/true", &copy).unwrap();
    (dir, copy.to_string_lossy().into_owned())
}

/// Run `path` with no arguments and wait for it.
pub fn exec(path: &str) -> std::io::Result<std::process::ExitStatus> {
    die_with_test(&mut Command::new(path)).status()
}

/// Every seq step between neighbours is what the second stands for: 1, or
/// a loss event's `lost`. Nothing missing, nothing twice, nothing unsaid.
pub fn assert_accounted(events: &[Value]) {
    for pair in events.windows(2) {
        let (prev, next) = (&pair[0], &pair[1]);
        let step = next["seq"].as_u64().unwrap() as i64 - prev["seq"].as_u64().unwrap() as i64;
        let weight = if next["kind"] == "loss" { next["lost"].as_i64().unwrap() } else { 1 };
        assert_eq!(step, weight, "unexplained seq step between {prev} and {next}");
    }
}
