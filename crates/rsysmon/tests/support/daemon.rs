//! A real `rsysmon daemon` on a private socket, and raw clients for it.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{die_with_test, wait_ready, RSYSMON};

pub struct Daemon {
    child: Child,
    /// Everything the daemon wrote to stderr (its log) so far.
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
    /// The daemon's directory: socket, config, rule file.
    dir: Option<tempfile::TempDir>,
    pub config: PathBuf,
    pub socket: PathBuf,
}

impl Daemon {
    /// Start a daemon with `config` (TOML, without the socket path, which
    /// is set to a private temp dir) and wait until it listens.
    pub fn start(config: &str) -> Daemon {
        Self::start_with_socket(config, "")
    }

    /// As [`Daemon::start`], with extra lines for the `[socket]` table.
    pub fn start_with_socket(config: &str, socket_lines: &str) -> Daemon {
        Self::start_limited(config, socket_lines, None, &[])
    }

    /// As [`Daemon::start_with_socket`], with extra environment variables.
    pub fn start_with_env(config: &str, socket_lines: &str, env: &[(&str, &str)]) -> Daemon {
        Self::start_limited(config, socket_lines, None, env)
    }

    /// As [`Daemon::start_with_socket`], with `RLIMIT_NOFILE` set to
    /// `nofile` (soft and hard, as a unit's `LimitNOFILE=` would) and extra
    /// environment variables.
    pub fn start_limited(config: &str, socket_lines: &str, nofile: Option<u64>, env: &[(&str, &str)]) -> Daemon {
        Self::start_full(config, "", socket_lines, nofile, env)
    }

    /// As [`Daemon::start_limited`], with extra lines for the `[blocking]`
    /// table too.
    pub fn start_full(
        config: &str,
        blocking_lines: &str,
        socket_lines: &str,
        nofile: Option<u64>,
        env: &[(&str, &str)],
    ) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        // Let unprivileged test clients reach the socket; its own mode decides.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let socket = dir.path().join("rsysmon.sock");
        let config_path = dir.path().join("config.toml");
        // The file sink writes into the daemon's directory unless the test
        // configures it.
        let file_sink = match config.contains("[outputs.file]") {
            true => String::new(),
            false => format!("[outputs.file]\npath = {:?}\n", dir.path().join("events.jsonl")),
        };
        std::fs::write(
            &config_path,
            format!(
                "{config}\n{file_sink}[blocking]\nrules_file = {:?}\npin_dir = {:?}\n{blocking_lines}\n[socket]\npath = \
                 {socket:?}\n{socket_lines}\n",
                dir.path().join("rules.json"),
                pin_dir_of(dir.path()),
            ),
        )
        .unwrap();
        Self::start_with(dir, socket, config_path, nofile, env)
    }

    /// Start with a complete config file already written at `config_path`.
    fn start_with(
        dir: tempfile::TempDir,
        socket: PathBuf,
        config_path: PathBuf,
        nofile: Option<u64>,
        env: &[(&str, &str)],
    ) -> Daemon {
        let mut cmd = Command::new(RSYSMON);
        cmd.arg("daemon").arg("--config").arg(&config_path).envs(env.iter().copied()).stderr(Stdio::piped());
        if let Some(n) = nofile {
            let limit = libc::rlimit { rlim_cur: n, rlim_max: n };
            // SAFETY: setrlimit is async-signal-safe and `limit` is a copy
            // owned by the closure.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = die_with_test(&mut cmd).spawn().expect("start rsysmon daemon");
        let log = wait_ready(&mut child, "daemon ready");
        Daemon { child, log, dir: Some(dir), config: config_path, socket }
    }

    /// Run a client subcommand against this daemon.
    pub fn client(&self, args: &[&str]) -> std::process::Output {
        Command::new(RSYSMON).args(args).arg("--socket").arg(&self.socket).output().unwrap()
    }

    /// `rsysmon status --json`, parsed.
    pub fn status(&self) -> Value {
        let out = self.client(&["status", "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// A raw connection that sent `request` and read the header line.
    pub fn connect(&self, request: &str) -> (Value, BufReader<UnixStream>) {
        let mut stream = UnixStream::connect(&self.socket).unwrap();
        writeln!(stream, "{request}").unwrap();
        let mut reader = BufReader::new(stream);
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        (serde_json::from_str(&header).unwrap_or_else(|e| panic!("bad header {header:?}: {e}")), reader)
    }

    /// Kill the daemon (SIGKILL, as a crash would) and keep its directory.
    pub fn crash(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dir.take().expect("the directory is kept until now")
    }

    /// Start a daemon again on the directory of one that crashed.
    pub fn restart(dir: tempfile::TempDir) -> Daemon {
        let socket = dir.path().join("rsysmon.sock");
        let config = dir.path().join("config.toml");
        Self::start_with(dir, socket, config, None, &[])
    }

    /// Where this daemon pins its BPF LSM blocking (where the kernel allows
    /// it): a directory of its own, never a real daemon's.
    pub fn pin_dir(&self) -> PathBuf {
        pin_dir_of(self.dir())
    }

    /// The daemon's directory: socket, config, rule file, events.jsonl.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.as_ref().expect("kept while the daemon runs").path()
    }

    /// Stop the daemon with SIGTERM, as systemd does, and wait for it;
    /// keep its directory.
    pub fn stop(mut self) -> tempfile::TempDir {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), nix::sys::signal::Signal::SIGTERM)
            .unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the daemon exited with {status}");
        self.dir.take().expect("the directory is kept until now")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // What it pinned goes with it, unless the test keeps its directory
        // for a restart (crash, stop).
        if let Some(dir) = &self.dir {
            let _ = rsysmon_probe::pins::unload(&pin_dir_of(dir.path()));
        }
    }
}

/// The pin directory of the daemon whose directory is `dir`.
pub fn pin_dir_of(dir: &std::path::Path) -> PathBuf {
    // bpffs refuses names with a dot (`.tmpXXXX`).
    let name = dir.file_name().expect("a temp dir has a name").to_string_lossy().replace('.', "");
    PathBuf::from(format!("{}/rsysmon-test-{name}", rsysmon_probe::kernel_fs::BPFFS))
}

/// Read JSON event lines from a watch connection into `events` until one
/// satisfies `last`, or panic after 20 s.
pub fn read_until(reader: &mut BufReader<UnixStream>, events: &mut Vec<Value>, last: impl Fn(&Value) -> bool) {
    reader.get_ref().set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut line = String::new();
    loop {
        assert!(Instant::now() < deadline, "timed out; got {} events", events.len());
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => panic!("the daemon closed the stream"),
            Ok(_) => {
                let event: Value = serde_json::from_str(&line).unwrap();
                let done = last(&event);
                events.push(event);
                if done {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("reading the stream: {e}"),
        }
    }
}
