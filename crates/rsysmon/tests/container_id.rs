//! A process moved into a cgroup named as docker names its containers'
//! gets that container id and that cgroup's id in its events (root, real
//! probes, a real cgroup v2 directory).

mod support;

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{die_with_test, of, Monitor};

/// Where cgroup v2 is mounted: /sys/fs/cgroup, or /sys/fs/cgroup/unified
/// on a hybrid host.
fn cgroup2_root() -> PathBuf {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = mountinfo.lines().find(|l| l.split(" - ").nth(1).is_some_and(|t| t.starts_with("cgroup2 ")));
    PathBuf::from(line.expect("cgroup v2 is mounted").split(' ').nth(4).unwrap())
}

/// A cgroup directory removed (once empty) when the test ends.
struct Cgroup(PathBuf);

impl Drop for Cgroup {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::remove_dir(&self.0).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(parent) = self.0.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

#[test]
fn a_process_in_a_docker_cgroup_has_its_container_id() {
    require_root!();
    let id = format!("{:016x}", std::process::id()).repeat(4);
    let dir = cgroup2_root().join(format!("rsysmon-test-{}", std::process::id())).join(format!("docker-{id}.scope"));
    std::fs::create_dir_all(&dir).expect("create a cgroup");
    let cgroup = Cgroup(dir);
    let cgroup_id = std::fs::metadata(&cgroup.0).unwrap().ino();
    let monitor = Monitor::start(&[]);

    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", "read go; exec /bin/true"]).stdin(Stdio::piped());
    let mut child = die_with_test(&mut cmd).spawn().unwrap();
    let pid = child.id();
    std::fs::write(cgroup.0.join("cgroup.procs"), pid.to_string()).expect("move the child into the cgroup");
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert!(child.wait().unwrap().success());

    let events = monitor.wait_for("exec in the cgroup", |e| {
        of(e, "process-exec", pid).iter().any(|x| x["exe"] == support::real("/bin/true"))
    });
    let exec = of(&events, "process-exec", pid).into_iter().find(|x| x["exe"] == support::real("/bin/true")).unwrap();
    assert_eq!(exec["container_id"], id, "{exec}");
    assert_eq!(exec["cgroup_id"], cgroup_id, "{exec}");
    // Before the move it was no container's.
    let create = &of(&events, "process-create", pid)[0];
    assert!(create.get("container_id").is_none(), "{create}");
}
