//! Real servers the sink tests deliver to, each on a loopback port of its
//! own with its own configuration and work directory, killed with the test.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::die_with_test;

/// A free loopback port (free when this returns; the server binds it next).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_listening(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} exited with {status} before listening on {port}");
        }
        assert!(Instant::now() < deadline, "{what} not listening on {port} after 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// rsyslogd (Debian's `rsyslog`) receiving RFC 5424 over TCP on loopback
/// and writing each message as received, one per line, to `received`.
pub struct Rsyslog {
    child: Child,
    pub port: u16,
    pub received: PathBuf,
    dir: tempfile::TempDir,
}

impl Rsyslog {
    pub fn start() -> Rsyslog {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, free_port())
    }

    fn start_in(dir: tempfile::TempDir, port: u16) -> Rsyslog {
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let received = dir.path().join("received.log");
        let config = dir.path().join("rsyslog.conf");
        std::fs::write(
            &config,
            format!(
                r#"global(workDirectory="{work}")
module(load="imtcp")
template(name="raw" type="string" string="%rawmsg%\n")
ruleset(name="test") {{
    action(type="omfile" file="{received}" template="raw")
}}
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="test")
"#,
                work = work.display(),
                received = received.display()
            ),
        )
        .unwrap();
        let mut cmd = Command::new("/usr/sbin/rsyslogd");
        cmd.arg("-n").arg("-f").arg(&config).arg("-i").arg(dir.path().join("rsyslogd.pid"));
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = die_with_test(&mut cmd).spawn().expect("start rsyslogd (Debian package rsyslog)");
        wait_listening(port, &mut child, "rsyslogd");
        Rsyslog { child, port, received, dir }
    }

    /// The messages received so far.
    pub fn messages(&self) -> Vec<String> {
        std::fs::read_to_string(&self.received).unwrap_or_default().lines().map(str::to_string).collect()
    }

    /// Stop rsyslogd (SIGTERM, letting it write what it received).
    pub fn stop(mut self) -> (tempfile::TempDir, u16) {
        terminate(&mut self.child);
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (dir, self.port)
    }

    /// Start again on the same port and files.
    pub fn restart((dir, port): (tempfile::TempDir, u16)) -> Rsyslog {
        Self::start_in(dir, port)
    }
}

fn terminate(child: &mut Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// nats-server (Debian's `nats-server`) with JetStream, on loopback, its
/// store in a directory of its own.
pub struct NatsServer {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl NatsServer {
    pub fn start() -> NatsServer {
        Self::start_in(tempfile::tempdir().unwrap(), free_port())
    }

    fn start_in(dir: tempfile::TempDir, port: u16) -> NatsServer {
        let mut cmd = Command::new("/usr/sbin/nats-server");
        cmd.args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"]).arg(dir.path().join("store"));
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = die_with_test(&mut cmd).spawn().expect("start nats-server (Debian package nats-server)");
        wait_listening(port, &mut child, "nats-server");
        NatsServer { child, port, dir }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stop the server and start it again on the same port and store.
    pub fn restart(mut self) -> NatsServer {
        terminate(&mut self.child);
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        Self::start_in(dir, self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
