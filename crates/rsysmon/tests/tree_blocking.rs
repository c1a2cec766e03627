//! Directory and glob rules stop a file however its code is reached: by
//! execve (EPERM), and by the dynamic loader run directly, dlopen and a
//! plain mmap(PROT_EXEC) (the process is killed before the code runs), at
//! any depth.

mod support;

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use support::exec;

use support::{die_with_test, program, real, shared_library, Monitor};

const LOADER: &str = "/lib64/ld-linux-x86-64.so.2";

/// A directory with `blk/` (to be blocked) and `free/`, each holding a copy
/// of /bin/true (`evil`, `ok`) and of the constructor library (`evil.so`,
/// `ok.so`).
struct Tree {
    _dir: tempfile::TempDir,
    blocked: String,
    free: String,
}

impl Tree {
    fn new() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let root = real(&dir.path().to_string_lossy());
        let lib = shared_library("constructor_lib");
        for (sub, name) in [("blk", "evil"), ("free", "ok")] {
            let at = Path::new(&root).join(sub);
            std::fs::create_dir_all(&at).unwrap();
            std::fs::copy("/bin/true", at.join(name)).unwrap();
            std::fs::copy(&lib, at.join(format!("{name}.so"))).unwrap();
        }
        Tree { blocked: format!("{root}/blk"), free: format!("{root}/free"), _dir: dir }
    }
}

fn output(cmd: &mut Command) -> Output {
    die_with_test(cmd.stdout(Stdio::piped()).stderr(Stdio::piped())).output().unwrap()
}

fn killed(out: &Output) -> bool {
    out.status.signal() == Some(libc::SIGKILL)
}

fn ld_so(file: &str) -> Output {
    output(Command::new(LOADER).arg(file))
}

fn dlopen(lib: &str) -> Output {
    output(Command::new("python3").args(["-c", "import ctypes, sys; ctypes.CDLL(sys.argv[1])", lib]))
}

fn mmap_exec(file: &str) -> Output {
    output(Command::new(program("mmap_exec")).arg(file))
}

/// Every way in to `name` (a copy of true) and `name.so` below `dir` is
/// refused; `ok` and `ok.so` in `free` run.
fn assert_every_way_refused(dir: &str, name: &str, free: &str) {
    let file = format!("{dir}/{name}");
    let lib = format!("{dir}/{name}.so");
    let err = exec(&file).expect_err("execve below the rule");
    assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    let out = ld_so(&file);
    assert!(killed(&out), "ld.so {file}: {out:?}");
    let out = dlopen(&lib);
    assert!(killed(&out), "dlopen {lib}: {out:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("constructor ran"), "{out:?}");
    let out = mmap_exec(&file);
    assert!(killed(&out), "mmap PROT_EXEC {file}: {out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");

    assert!(exec(&format!("{free}/ok")).unwrap().success());
    assert!(ld_so(&format!("{free}/ok")).status.success());
    let out = dlopen(&format!("{free}/ok.so"));
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("constructor ran"), "{out:?}");
    let out = mmap_exec(&format!("{free}/ok"));
    assert_eq!((out.status.code(), out.stdout.as_slice()), (Some(0), &b"mapped\n"[..]), "{out:?}");
    assert!(exec("/bin/true").unwrap().success());
}

#[test]
fn a_directory_rule_stops_ld_so_dlopen_and_mmap_below_it() {
    require_root!();
    let tree = Tree::new();
    std::fs::create_dir_all(format!("{}/sub", tree.blocked)).unwrap();
    std::fs::copy(format!("{}/evil", tree.blocked), format!("{}/sub/evil", tree.blocked)).unwrap();
    std::fs::copy(format!("{}/evil.so", tree.blocked), format!("{}/sub/evil.so", tree.blocked)).unwrap();
    let _monitor = Monitor::start(&["--block", &format!("{}/", tree.blocked)]);
    assert_every_way_refused(&tree.blocked, "evil", &tree.free);
    assert_every_way_refused(&format!("{}/sub", tree.blocked), "evil", &tree.free);
}

#[test]
fn a_glob_rule_stops_ld_so_dlopen_and_mmap_below_its_literal_directory() {
    require_root!();
    let tree = Tree::new();
    let _monitor = Monitor::start(&["--block-glob", &format!("{}/ev*", tree.blocked)]);
    assert_every_way_refused(&tree.blocked, "evil", &tree.free);
    // As documented: below the glob's literal directory, ld.so, dlopen and
    // mmap are refused for every file, matching or not; execve only for
    // files that match.
    std::fs::copy("/bin/true", format!("{}/other", tree.blocked)).unwrap();
    assert!(exec(&format!("{}/other", tree.blocked)).unwrap().success());
    assert!(killed(&ld_so(&format!("{}/other", tree.blocked))));
}

#[test]
fn a_glob_without_a_literal_directory_stops_execve_only_as_documented() {
    require_root!();
    let tree = Tree::new();
    let name = format!("evil-{}", std::process::id());
    std::fs::rename(format!("{}/evil", tree.blocked), format!("{}/{name}", tree.blocked)).unwrap();
    let file = format!("{}/{name}", tree.blocked);
    let _monitor = Monitor::start(&["--block-glob", &format!("/**/{name}")]);
    assert_eq!(exec(&file).unwrap_err().raw_os_error(), Some(libc::EPERM));
    assert!(ld_so(&file).status.success(), "a glob whose prefix is / is not in the kernel's list");
}

/// `levels` directories named `name` nested below `top`, each made
/// relative to the last (the whole path may exceed PATH_MAX), with a copy
/// of /bin/true at the bottom; returns the bottom directory, open.
fn deep_copy_of_true(top: &str, name: &str, levels: usize) -> OwnedFd {
    let open = |at: libc::c_int, name: &CString| {
        // SAFETY: `name` is NUL-terminated; openat returns a new fd or -1.
        let fd = unsafe { libc::openat(at, name.as_ptr(), libc::O_DIRECTORY | libc::O_RDONLY | libc::O_CLOEXEC) };
        assert!(fd >= 0, "openat: {}", std::io::Error::last_os_error());
        // SAFETY: fd was just opened and nothing else owns it.
        unsafe { OwnedFd::from_raw_fd(fd) }
    };
    let mut dir = open(libc::AT_FDCWD, &CString::new(top).unwrap());
    let name = CString::new(name).unwrap();
    for _ in 0..levels {
        // SAFETY: as above; mkdirat only creates a directory.
        assert_eq!(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755) }, 0);
        dir = open(dir.as_raw_fd(), &name);
    }
    let file = CString::new("true").unwrap();
    let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC;
    // SAFETY: as above; the new fd is owned by the File.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), file.as_ptr(), flags, 0o755) };
    assert!(fd >= 0);
    // SAFETY: fd was just opened and nothing else owns it.
    let mut out = unsafe { std::fs::File::from_raw_fd(fd) };
    std::io::Write::write_all(&mut out, &std::fs::read("/bin/true").unwrap()).unwrap();
    dir
}

/// `program args`, started in `dir` (fchdir: its path may be too long to
/// give).
fn run_in(dir: &OwnedFd, program: &str, args: &[&str]) -> std::io::Result<std::process::ExitStatus> {
    let fd = dir.as_raw_fd();
    let mut cmd = Command::new(program);
    cmd.args(args);
    // SAFETY: fchdir is async-signal-safe and only changes the child's cwd.
    unsafe {
        cmd.pre_exec(move || if libc::fchdir(fd) == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) });
    }
    die_with_test(&mut cmd).status()
}

#[test]
fn a_path_longer_than_path_max_below_a_directory_rule_is_refused() {
    require_root!();
    let tree = Tree::new();
    // 40 levels of 120-byte names: 4,840 bytes below the rule.
    let long = deep_copy_of_true(&tree.blocked, &"l".repeat(120), 40);
    // 1,100 levels: deeper than the kernel walks, outside any rule.
    let deep = deep_copy_of_true(&tree.free, "d", 1100);
    assert!(run_in(&long, "./true", &[]).unwrap().success(), "runs before any rule");

    let _monitor = Monitor::start(&["--block", &format!("{}/", tree.blocked)]);
    let err = run_in(&long, "./true", &[]).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    // Reached without execve, decided by the ancestors' identities.
    let status = run_in(&deep, LOADER, &["./true"]).unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "too deep to resolve while a directory rule exists");
    assert!(exec(&format!("{}/ok", tree.free)).unwrap().success());
}

#[test]
fn a_bind_mount_neither_escapes_a_directory_rule_nor_unblocks_it_afterwards() {
    require_root!();
    let tree = Tree::new();
    let bind = format!("{}/../bind", tree.blocked);
    std::fs::create_dir(&bind).unwrap();
    let _monitor = Monitor::start(&["--block", &format!("{}/", tree.blocked)]);
    let evil = format!("{}/evil", tree.blocked);
    assert_eq!(exec(&evil).unwrap_err().raw_os_error(), Some(libc::EPERM));

    assert!(Command::new("mount").args(["--bind", &tree.blocked, &bind]).status().unwrap().success());
    struct Unmount<'a>(&'a str);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&bind);
    // Through the bind mount the blocker sees another name; the kernel's
    // walk by identity still finds the blocked directory.
    let status = exec(&format!("{bind}/evil")).unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    for _ in 0..3 {
        assert_eq!(exec(&evil).unwrap_err().raw_os_error(), Some(libc::EPERM), "the original name, after");
    }
    assert!(exec(&format!("{}/ok", tree.free)).unwrap().success());
}
