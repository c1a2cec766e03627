//! Blocking directory trees in the probes: no file below a blocked
//! directory runs, by any name, at any depth. Root only: loads the real
//! probes.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use rsysmon_probe::{FileId, ProbeConfig, Probes, TreeKind};
use rsysmon_testkit::dynamic_loader;

fn status(cmd: &mut Command) -> ExitStatus {
    cmd.status().unwrap()
}

fn killed(status: ExitStatus) -> bool {
    status.signal() == Some(libc::SIGKILL)
}

fn id(path: &Path) -> FileId {
    FileId::of(&std::fs::metadata(path).unwrap())
}

/// A private directory under the target dir (not tmpfs /tmp: any file
/// system will do, and this one is the test's own).
fn private_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `levels` nested directories named `name` below `top`, made one step at
/// a time relative to the previous one (the whole path may be longer than
/// PATH_MAX), with a copy of /bin/true at the bottom. Returns the bottom
/// directory, open.
fn deep_copy_of_true(top: &Path, name: &str, levels: usize) -> OwnedFd {
    let open = |at: libc::c_int, name: &CString| {
        // SAFETY: `name` is NUL-terminated; openat returns a new fd or -1.
        let fd = unsafe { libc::openat(at, name.as_ptr(), libc::O_DIRECTORY | libc::O_RDONLY | libc::O_CLOEXEC) };
        assert!(fd >= 0, "openat: {}", std::io::Error::last_os_error());
        // SAFETY: fd was just opened and is owned by nobody else.
        unsafe { OwnedFd::from_raw_fd(fd) }
    };
    let mut dir = open(libc::AT_FDCWD, &CString::new(top.as_os_str().as_encoded_bytes()).unwrap());
    let name = CString::new(name).unwrap();
    for _ in 0..levels {
        // SAFETY: as above; mkdirat only creates a directory.
        let rc = unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755) };
        assert!(rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EEXIST));
        dir = open(dir.as_raw_fd(), &name);
    }
    let bytes = std::fs::read("/bin/true").unwrap();
    let file = CString::new("true").unwrap();
    // SAFETY: as above; the new fd is owned by the File.
    let fd = unsafe {
        libc::openat(dir.as_raw_fd(), file.as_ptr(), libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC, 0o755)
    };
    assert!(fd >= 0);
    // SAFETY: fd was just opened.
    let mut out = unsafe { std::fs::File::from_raw_fd(fd) };
    std::io::Write::write_all(&mut out, &bytes).unwrap();
    dir
}

/// Run `program args` with its working directory set to `dir` by fchdir.
fn run_in(dir: &OwnedFd, program: &Path, args: &[&str]) -> ExitStatus {
    let fd = dir.as_raw_fd();
    let mut cmd = Command::new(program);
    cmd.args(args);
    // SAFETY: fchdir is async-signal-safe; it only changes the child's cwd.
    unsafe {
        cmd.pre_exec(move || if libc::fchdir(fd) == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) });
    }
    status(&mut cmd)
}

#[test]
fn files_below_a_blocked_tree_are_killed_by_every_name_and_depth() {
    if !rsysmon_testkit::root_tests_enabled() {
        return;
    }
    let probes = Probes::load(&ProbeConfig::default()).unwrap();
    let trees = probes.blocked_trees().unwrap();
    assert_eq!(trees.capacity(), 16384);
    assert_eq!(probes.blocked_files().unwrap().capacity(), 16384);
    let top = private_dir("trees");
    let blocked = top.join("blkdir");
    let free = top.join("free");
    std::fs::create_dir_all(blocked.join("sub")).unwrap();
    std::fs::create_dir_all(&free).unwrap();
    let evil = blocked.join("sub/evil");
    std::fs::copy("/bin/true", &evil).unwrap();
    std::fs::copy("/bin/true", free.join("ok")).unwrap();
    let loader = dynamic_loader();
    // Long names, few levels: a path far past PATH_MAX that a walk by
    // identity still climbs in 40 steps.
    let long = deep_copy_of_true(&blocked, &"l".repeat(120), 40);
    // Short names, many levels: more directories than a walk climbs.
    let deep_free = deep_copy_of_true(&free, "d", 1100);

    // Nothing blocked yet: everything runs.
    assert!(status(Command::new(&loader).arg(&evil)).success());
    // (ld.so cannot start from a working directory past PATH_MAX: execve.)
    assert!(run_in(&long, Path::new("./true"), &[]).success());
    assert!(run_in(&deep_free, &loader, &["./true"]).success());

    trees.block(id(&blocked), TreeKind::Dir).unwrap();
    trees.set_count(1).unwrap();
    assert!(killed(status(Command::new(&loader).arg(&evil))), "ld.so below the tree");
    assert!(killed(status(&mut Command::new(&evil))), "exec below the tree");
    assert!(killed(run_in(&long, Path::new("./true"), &[])), "a path past PATH_MAX below the tree");
    assert!(killed(run_in(&deep_free, &loader, &["./true"])), "too deep to walk while a tree is blocked");
    assert!(status(Command::new(&loader).arg(free.join("ok"))).success(), "beside the tree");
    assert!(status(&mut Command::new("/bin/true")).success());

    // A bind mount of the tree (in a private mount namespace) is still it.
    let bind = top.join("bind");
    std::fs::create_dir_all(&bind).unwrap();
    let script = format!(
        "mount --bind {} {} && exec {} {}/sub/evil",
        blocked.display(),
        bind.display(),
        loader.display(),
        bind.display()
    );
    let unshared = status(Command::new("unshare").args(["-m", "sh", "-c", &script]));
    assert!(killed(unshared), "ld.so through a bind mount: {unshared:?}");

    // A glob's prefix refuses what execve does not see, not execve.
    trees.block(id(&blocked), TreeKind::GlobPrefix).unwrap();
    assert!(killed(status(Command::new(&loader).arg(&evil))));
    assert!(status(&mut Command::new(&evil)).success(), "exec is the blocker's to judge by the pattern");

    trees.unblock(id(&blocked)).unwrap();
    trees.unblock(id(&blocked)).unwrap();
    trees.set_count(0).unwrap();
    assert!(status(Command::new(&loader).arg(&evil)).success());
    assert!(run_in(&deep_free, &loader, &["./true"]).success(), "no tree blocked: deep files run");
    let _ = std::fs::remove_dir_all(&top);
}
