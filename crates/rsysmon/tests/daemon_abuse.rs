//! The daemon under attack from local users: floods of idle connections at
//! the default descriptor limit, trickling clients, fake daemons, planted
//! symlinks, rule files in writable directories, values out of range.
//! Exec blocking must stay exactly right throughout.

mod support;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{exec, private_true};

use support::daemon::Daemon;

const NOBODY: u32 = 65534;
const NOGROUP: u32 = 65534;

fn sockaddr(path: &Path) -> libc::sockaddr_un {
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_encoded_bytes();
    assert!(bytes.len() < addr.sun_path.len());
    for (dst, &src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    addr
}

/// A process running as `uid` that holds `count` connections to `socket`
/// open (made before it execs `sleep`), or, with `listen`, a listener of
/// its own at `socket`: a fake daemon. Returns once it runs `sleep`.
fn as_user(uid: u32, socket: &Path, count: usize, listen: bool) -> Child {
    let addr = sockaddr(socket);
    let mut cmd = Command::new("sleep");
    cmd.arg("60").uid(uid).gid(NOGROUP).stdin(Stdio::null());
    // SAFETY: only async-signal-safe calls (setrlimit, socket, bind,
    // listen, connect) on data prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit { rlim_cur: 4096, rlim_max: 4096 };
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
            let addr_ptr = &addr as *const libc::sockaddr_un as *const libc::sockaddr;
            if listen {
                let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
                if fd < 0 || libc::bind(fd, addr_ptr, len) != 0 || libc::listen(fd, 16) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for _ in 0..count {
                let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
                if fd >= 0 {
                    libc::connect(fd, addr_ptr, len);
                }
            }
            Ok(())
        });
    }
    let child = support::die_with_test(&mut cmd).spawn().expect("start a process as another user");
    let comm = format!("/proc/{}/comm", child.id());
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&comm).map(|c| c.trim() != "sleep").unwrap_or(true) {
        assert!(Instant::now() < deadline, "the process as uid {uid} did not get to sleep");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn idle_readers_cannot_starve_the_blocker_at_a_limit_of_1024_descriptors() {
    require_root!();
    let socket_lines = "read_group = \"nogroup\"\nmax_clients = 40\nmax_clients_per_uid = 30\n";
    let mut daemon = Daemon::start_limited("", socket_lines, Some(1024), &[]);
    let (_dir, blocked) = private_true();
    let added = daemon.client(&["block", "add", &blocked]);
    assert!(added.status.success(), "{}", stderr(&added));

    // Two read-group users, 600 connections each: 1,200 descriptors and
    // threads if nothing bounded them.
    let mut first = as_user(NOBODY, &daemon.socket, 600, false);
    let mut second = as_user(NOBODY - 1, &daemon.socket, 600, false);

    assert!(daemon.is_alive(), "the daemon died under the flood");
    for _ in 0..20 {
        assert!(exec("/bin/true").unwrap().success(), "an unrelated exec failed");
        let err = exec(&blocked).expect_err("the blocked file ran");
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    }
    let ls = Command::new("ls").arg("/").output().unwrap();
    assert!(ls.status.success(), "{}", stderr(&ls));

    let status = daemon.status();
    // 30 of the first user, the 10 left under max_clients for the second,
    // and this status request (root is not counted against the limits).
    assert_eq!(status["clients"], 41, "{status}");
    assert!(open_fds(daemon.pid()) < 1024 - 512, "{} descriptors open", open_fds(daemon.pid()));
    let listed = daemon.client(&["block", "list"]);
    assert_eq!(String::from_utf8_lossy(&listed.stdout).trim(), blocked);

    // Refused connections were told why in one line.
    let addr = daemon.socket.clone();
    let refused = Command::new("setpriv")
        .args([&format!("--reuid={NOBODY}"), &format!("--regid={NOGROUP}"), "--clear-groups", "--inh-caps=-all"])
        .arg(support::RSYSMON)
        .args(["status", "--socket"])
        .arg(&addr)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("too many clients: the daemon serves at most 40"), "{}", stderr(&refused));

    let _ = first.kill();
    let _ = second.kill();
    let _ = first.wait();
    let _ = second.wait();
    // Their places are given back.
    let deadline = Instant::now() + Duration::from_secs(10);
    while daemon.status()["clients"] != 1 {
        assert!(Instant::now() < deadline, "{}", daemon.status());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(daemon.is_alive());
}

#[test]
fn a_trickling_client_is_closed_by_the_idle_timeout() {
    require_root!();
    let daemon = Daemon::start_with_socket("", "idle_timeout_secs = 2\n");
    let mut trickle = UnixStream::connect(&daemon.socket).unwrap();
    trickle.set_nonblocking(true).unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    for byte in br#"{"v":1,"op":"status"                                                      "#.iter().cycle() {
        assert!(started.elapsed() < Duration::from_secs(20), "still open after 20 s of trickling");
        let _ = trickle.write(&[*byte]);
        std::thread::sleep(Duration::from_millis(250));
        match trickle.read_to_end(&mut answer) {
            Ok(_) => break,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
    }
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(1500) && elapsed < Duration::from_secs(6), "closed after {elapsed:?}");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.contains("idle timeout: no complete request within 2 s"), "{answer}");

    // The deadline is per request: a client that asks in time stays.
    let mut steady = BufReader::new(UnixStream::connect(&daemon.socket).unwrap());
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(1200));
        writeln!(steady.get_mut(), r#"{{"v":1,"op":"status"}}"#).unwrap();
        let mut line = String::new();
        steady.read_line(&mut line).unwrap();
        assert!(line.contains("\"status\""), "{line}");
    }
}

#[test]
fn clients_refuse_a_fake_daemon_and_the_daemon_refuses_its_directory() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    nix::unistd::chown(&theirs, Some(NOBODY.into()), Some(NOGROUP.into())).unwrap();
    let socket = theirs.join("rsysmon.sock");
    let mut fake = as_user(NOBODY, &socket, 0, true);

    for args in [&["status"][..], &["block", "add", "/bin/nonexistent"][..]] {
        let out = Command::new(support::RSYSMON).args(args).arg("--socket").arg(&socket).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(err.contains("runs as uid 65534, not uid 0"), "{err}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("blocked"));
    }
    let _ = fake.kill();
    let _ = fake.wait();

    let out = daemon_with(&format!("[socket]\npath = {socket:?}\n[blocking]\nrules_file = {:?}\n", rules_in(&dir)));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("refusing the socket directory") && err.contains("owned by uid 65534, not root"), "{err}");
}

fn rules_in(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("rules.json")
}

/// Run `rsysmon daemon` with this config text; it is expected to refuse.
fn daemon_with(config: &str) -> Output {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), config).unwrap();
    let mut cmd = Command::new(support::RSYSMON);
    cmd.arg("daemon").arg("--config").arg(file.path());
    let child = support::die_with_test(&mut cmd).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn the_daemon_refuses_a_rule_file_others_can_replace() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.path().join("rsysmon.sock");
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out =
        daemon_with(&format!("[socket]\npath = {socket:?}\n[blocking]\nrules_file = {:?}\n", open.join("rules.json")));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("directory of the rule file") && err.contains("mode 0777"), "{err}");

    let planted = dir.path().join("rules.json");
    std::fs::write(&planted, r#"{"version":1,"rules":[]}"#).unwrap();
    nix::unistd::chown(&planted, Some(NOBODY.into()), None).unwrap();
    let out = daemon_with(&format!("[socket]\npath = {socket:?}\n[blocking]\nrules_file = {planted:?}\n"));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("refusing the rule file") && err.contains("owned by uid 65534"), "{err}");
    assert!(!socket.exists(), "nothing was started");
}

#[test]
fn run_output_onto_a_planted_symlink_is_refused() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("root-only");
    std::fs::write(&victim, "secret\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A /tmp-like directory: anyone may create files, the sticky bit on.
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let planted = shared.join("events.jsonl");
    symlink(&victim, &planted).unwrap();
    nix::unistd::fchownat(
        None,
        &planted,
        Some(NOBODY.into()),
        Some(NOGROUP.into()),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .unwrap();

    let out = Command::new(support::RSYSMON).arg("run").arg("-o").arg(&planted).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is a symbolic link, which is not followed"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "secret\n");

    // A directory another user owns is refused outright.
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    nix::unistd::chown(&theirs, Some(NOBODY.into()), None).unwrap();
    let out = Command::new(support::RSYSMON).arg("run").arg("-o").arg(theirs.join("out")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("owned by uid 65534"), "{}", stderr(&out));
}

#[test]
fn out_of_range_values_are_refused_from_the_file_and_from_flags_alike() {
    let out = Command::new(support::RSYSMON).args(["daemon", "--queue-size", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("queue.max_events: must be at least 1 and at most"), "{}", stderr(&out));

    let out = daemon_with("# limits\n[queue]\nmax_events = 0\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(", line 3: queue.max_events: must be at least 1 and at most"), "{}", stderr(&out));
    let out = daemon_with("[queue]\nmax_events = 9223372036854775807\n");
    assert!(stderr(&out).contains(", line 2: queue.max_events: must be at least 1 and at most"), "{}", stderr(&out));
    let out = daemon_with("[socket]\nmax_clients = 0\n");
    assert!(stderr(&out).contains(", line 2: socket.max_clients: must be at least 1"), "{}", stderr(&out));
}

#[test]
fn a_second_daemon_and_an_overlong_socket_path_stop_before_attaching() {
    require_root!();
    let daemon = Daemon::start("");
    let started = Instant::now();
    let out = Command::new(support::RSYSMON).arg("daemon").arg("--config").arg(&daemon.config).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("another rsysmon daemon is already listening"), "{err}");
    // That one line is all: nothing was attached (the blocker would have
    // said which filesystems it does not watch).
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));

    let long = format!("/run/{}/rsysmon.sock", "x".repeat(120));
    let out = Command::new(support::RSYSMON).args(["daemon", "--socket", &long]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("a Unix socket path may have at most 107"), "{}", stderr(&out));
}
