//! The kernel's memory of allowed files never outlives the reason a file
//! was allowed: an exec allowed under one name is not remembered for a
//! name a rule blocks (bind mounts, hard links), and a new mount forgets
//! what was remembered. Files with one name are still remembered.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{assert_refused, assert_runs, copy_of, real, rule, rules, Running};

/// A bind mount this test made, unmounted when dropped.
struct BindMount(PathBuf);

impl BindMount {
    fn new(from: &Path, at: &Path) -> BindMount {
        let status = Command::new("mount").arg("--bind").arg(from).arg(at).status().unwrap();
        assert!(status.success(), "mount --bind {} {}", from.display(), at.display());
        BindMount(at.to_path_buf())
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// `blk/evil` and `free/`, `bind/` below a new temporary directory.
fn layout() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = PathBuf::from(real(dir.path()));
    let (blk, free, bind) = (root.join("blk"), root.join("free"), root.join("bind"));
    for d in [&blk, &free, &bind] {
        fs::create_dir(d).unwrap();
    }
    copy_of("/bin/true", &blk, "evil");
    (dir, blk, free, bind)
}

fn dir_rule(dir: &Path) -> rsysmon_blocker::ExecRule {
    rule(format!("{}/", dir.display()))
}

/// The tests that mount, and the one that needs no mount to happen, one
/// at a time.
static MOUNTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn an_exec_allowed_through_a_bind_mount_does_not_unblock_the_directory() {
    require_root!();
    let _one = MOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    let (_dir, blk, _free, bind) = layout();
    let running = Running::start(rules([dir_rule(&blk)]));
    assert_refused(blk.join("evil"), None);
    let _mount = BindMount::new(&blk, &bind);
    // Another name, which the directory rule does not match (documented;
    // the kernel's walk by identity stops it when the probes run).
    assert_runs(bind.join("evil"), None);
    assert_runs(bind.join("evil"), None);
    for _ in 0..3 {
        assert_refused(blk.join("evil"), None);
    }
    running.blocker.stop().unwrap();
}

#[test]
fn an_exec_allowed_through_a_hard_link_does_not_unblock_the_directory() {
    require_root!();
    let (_dir, blk, free, _bind) = layout();
    fs::hard_link(blk.join("evil"), free.join("alias")).unwrap();
    let running = Running::start(rules([dir_rule(&blk)]));
    assert_runs(free.join("alias"), None);
    assert_runs(free.join("alias"), None);
    assert_refused(blk.join("evil"), None);
    running.blocker.stop().unwrap();
}

#[test]
fn a_new_mount_forgets_what_was_allowed_under_the_old_names() {
    require_root!();
    let _one = MOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    let (_dir, _blk, free, bind) = layout();
    let tool = copy_of("/bin/true", &free, "tool");
    let running = Running::start(rules([dir_rule(&bind)]));
    assert_runs(&tool, None);
    assert_runs(&tool, None);
    // Now the same file also lies below the blocked directory.
    let _mount = BindMount::new(&free, &bind);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while support::run(bind.join("tool"), &[], None).is_ok() {
        assert!(std::time::Instant::now() < deadline, "{} still runs after the mount", bind.join("tool").display());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_refused(bind.join("tool"), None);
    running.blocker.stop().unwrap();
}

#[test]
fn a_file_with_one_name_is_still_remembered() {
    require_root!();
    let _one = MOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    let (_dir, blk, free, _bind) = layout();
    let tool = copy_of("/bin/true", &free, "tool");
    let running = Running::start(rules([dir_rule(&blk)]));
    // Any mount on the machine (other tests make some) flushes the memory:
    // a few tries for a quiet moment.
    let remembered = (0..10).any(|_| {
        assert_runs(&tool, None);
        let asked = running.blocker.stats().allowed;
        for _ in 0..5 {
            assert_runs(&tool, None);
        }
        // Other execs on the machine may be asked about meanwhile, but
        // not five more of this one.
        running.blocker.stats().allowed < asked + 5
    });
    assert!(remembered, "every exec of {} was asked about", tool.display());
    running.blocker.stop().unwrap();
}
