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
    /// With TLS: the CA (PEM) that signed rsyslogd's certificate.
    pub ca: Option<PathBuf>,
    dir: tempfile::TempDir,
}

impl Rsyslog {
    pub fn start() -> Rsyslog {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, free_port())
    }

    /// rsyslogd over TLS (RFC 5425, Debian's `rsyslog-gnutls`), with a CA
    /// and a certificate for 127.0.0.1 and localhost made here by openssl.
    pub fn start_tls() -> Rsyslog {
        let dir = tempfile::tempdir().unwrap();
        make_certificates(dir.path());
        Self::start_in(dir, free_port())
    }

    fn start_in(dir: tempfile::TempDir, port: u16) -> Rsyslog {
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let received = dir.path().join("received.log");
        let config = dir.path().join("rsyslog.conf");
        let ca = dir.path().join("ca.pem");
        let ca = ca.exists().then_some(ca);
        let (global_tls, module_tls) = match &ca {
            None => (String::new(), String::new()),
            Some(ca) => (
                format!(
                    r#" DefaultNetstreamDriver="gtls" DefaultNetstreamDriverCAFile="{}" DefaultNetstreamDriverCertFile="{}" DefaultNetstreamDriverKeyFile="{}""#,
                    ca.display(),
                    dir.path().join("cert.pem").display(),
                    dir.path().join("key.pem").display()
                ),
                r#" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon""#.to_string(),
            ),
        };
        std::fs::write(
            &config,
            format!(
                r#"global(workDirectory="{work}"{global_tls})
module(load="imtcp"{module_tls})
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
        Rsyslog { child, port, received, ca, dir }
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

/// A CA, and a server certificate it signed for 127.0.0.1 and localhost:
/// ca.pem, cert.pem, key.pem in `dir`.
fn make_certificates(dir: &std::path::Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl (make deps)");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=rsysmon test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
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
