//! The blocker against real execs: fanotify on this machine, copies of
//! system binaries in fresh temporary directories.

mod support;

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

use support::*;

#[test]
fn blocked_exec_fails_with_eperm_and_is_reported() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let evil = copy_of("/bin/true", dir.path(), "evil");
    let harmless = copy_of("/bin/true", dir.path(), "harmless");
    let mut running = Running::start(rules([rule(&evil)]));

    assert_refused(&evil, None);
    // Through a shell, as a user would: it says why and lives on.
    let out = run("/bin/sh", &["-c", "echo $$; \"$0\"; echo survived $?", evil.to_str().unwrap()], None).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
    assert!(stdout.contains("survived 126"), "{stdout}");
    // The shell exec's the last command itself: the refused process is the
    // shell, whose pid it printed.
    let out = run("/bin/sh", &["-c", "echo $$; exec \"$0\"", evil.to_str().unwrap()], None).unwrap();
    let shell_pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(!out.status.success());

    assert_runs(&harmless, None);
    assert_runs("/bin/true", None);

    let refusal = running.refusal_of(&evil);
    assert_eq!(refusal.path, real(&evil));
    assert_eq!(refusal.rule, real(&evil));
    let by_shell: Vec<_> = running.refusals().into_iter().filter(|b| b.pid == shell_pid).collect();
    assert_eq!(by_shell.len(), 1, "{by_shell:#?}");
    assert_eq!(by_shell[0].comm, "sh");
    assert_eq!(by_shell[0].path, real(&evil));
    assert!(running.refusals().iter().all(|b| b.path != real(&harmless)));

    let stats = running.blocker.stats();
    assert!(stats.denied >= 3, "{stats:?}");
    assert!(stats.allowed >= 2, "{stats:?}");
    assert!(stats.window > 0 && stats.p99_us >= stats.p50_us && stats.p50_us > 0.0, "{stats:?}");
    running.blocker.stop().unwrap();
}

#[test]
fn rules_change_while_running() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let tool = copy_of("/bin/true", dir.path(), "tool");
    let running = Running::start(rules([]));
    assert_runs(&tool, None);

    running.set_rules(rules([rule(&tool)]));
    assert_refused(&tool, None);

    let mut without = rules([rule(&tool)]);
    without.remove(tool.as_os_str()).unwrap();
    running.set_rules(without);
    assert_runs(&tool, None);
}

#[test]
fn other_names_of_a_blocked_file_stay_blocked() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let blocked_dir = dir.path().join("blocked");
    let elsewhere = dir.path().join("elsewhere");
    let bind_target = dir.path().join("bind");
    for d in [&blocked_dir, &elsewhere, &bind_target] {
        fs::create_dir(d).unwrap();
    }
    let evil = copy_of("/bin/true", &blocked_dir, "evil");
    let _running = Running::start(rules([rule(&evil)]));

    let link = elsewhere.join("symlink");
    symlink(&evil, &link).unwrap();
    assert_refused(&link, None);

    let hardlink = elsewhere.join("hardlink");
    fs::hard_link(&evil, &hardlink).unwrap();
    assert_refused(&hardlink, None);

    assert_refused("./evil", Some(&blocked_dir));
    assert_refused("../blocked/evil", Some(&elsewhere));

    let _bind = MountGuard::bind(&blocked_dir, &bind_target);
    assert_eq!(fs::metadata(bind_target.join("evil")).unwrap().ino(), fs::metadata(&evil).unwrap().ino());
    assert_refused(bind_target.join("evil"), None);

    // A copy is another file: not blocked.
    let copy = elsewhere.join("copy");
    fs::copy(&evil, &copy).unwrap();
    assert_runs(&copy, None);
}

#[test]
fn script_whose_interpreter_is_blocked_is_refused() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let shell = copy_of("/bin/sh", dir.path(), "blocked-sh");
    let script = dir.path().join("script");
    fs::write(&script, format!("#!{}\nexit 0\n", shell.display())).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let mut running = Running::start(rules([]));
    assert_runs(&script, None);

    running.set_rules(rules([rule(&shell)]));
    assert_refused(&script, None);
    assert_eq!(running.refusal_of(&shell).rule, real(&shell));
}

#[test]
fn dir_and_glob_rules_block_below_and_only_there() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad");
    let deep = bad.join("deeper");
    let globbed = dir.path().join("globbed");
    for d in [&deep, &globbed] {
        fs::create_dir_all(d).unwrap();
    }
    let in_bad = copy_of("/bin/true", &deep, "x");
    let beside_bad = copy_of("/bin/true", dir.path(), "bad-sibling");
    let matching = copy_of("/bin/true", &globbed, "tool.bin");
    let not_matching = copy_of("/bin/true", &globbed, "tool.ok");
    let dir_rule = rule(format!("{}/", bad.display()));
    let glob_rule = rule(format!("glob:{}/*.bin", real(&globbed)));
    let (dir_text, glob_text) = (dir_rule.to_string(), glob_rule.to_string());
    let mut running = Running::start(rules([dir_rule, glob_rule]));

    assert_refused(&in_bad, None);
    assert_refused(&matching, None);
    assert_runs(&beside_bad, None);
    assert_runs(&not_matching, None);
    assert_eq!(running.refusal_of(&in_bad).rule, dir_text);
    assert_eq!(running.refusal_of(&matching).rule, glob_text);
}

#[test]
fn ten_thousand_rules_still_let_unblocked_binaries_run() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let evil = copy_of("/bin/true", dir.path(), "evil");
    let harmless = copy_of("/bin/true", dir.path(), "harmless");
    let mut many: Vec<_> = (0..9_997).map(|i| rule(format!("/nonexistent/rsysmon-test/file{i}"))).collect();
    many.push(rule("/nonexistent/rsysmon-test/dir/"));
    many.push(rule("glob:/nonexistent/rsysmon-test/*.bin"));
    many.push(rule(&evil));
    let set = rules(many);
    assert_eq!(set.len(), 10_000);
    let _running = Running::start(set);

    assert_runs(&harmless, None);
    assert_runs("/bin/true", None);
    assert_refused(&evil, None);
}

#[test]
fn a_filesystem_mounted_after_start_is_covered() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let mount_point = dir.path().join("fresh");
    fs::create_dir(&mount_point).unwrap();
    let running = Running::start(rules([]));

    let _tmpfs = MountGuard::tmpfs(&mount_point);
    let evil = copy_of("/bin/true", &mount_point, "evil");
    let dev = fs::metadata(&evil).unwrap().dev();
    let device = format!("{}:{}", libc::major(dev), libc::minor(dev));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !running.blocker.coverage().is_marked(&device) {
        assert!(
            std::time::Instant::now() < deadline,
            "new tmpfs {device} never marked: {:?}",
            running.blocker.coverage()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_runs(&evil, None);
    running.set_rules(rules([rule(&evil)]));
    assert_refused(&evil, None);
}

#[test]
fn a_stopped_blocker_blocks_nothing() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let evil = copy_of("/bin/true", dir.path(), "evil");
    let running = Running::start(rules([rule(&evil)]));
    assert_refused(&evil, None);
    assert!(running.blocker.is_running());
    running.blocker.stop().unwrap();
    assert_runs(&evil, None);
}

#[test]
fn exempt_executables_are_never_asked_about() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let exempt = copy_of("/bin/true", dir.path(), "exempt");
    let other = copy_of("/bin/true", dir.path(), "other");
    // Rules made without protection, so one names the exempt file: the
    // kernel never asks, so it runs anyway.
    let rules = rsysmon_blocker::shared(rules([rule(&exempt), rule(&other)]));
    let protected = rsysmon_blocker::Protected::none().with(&exempt);
    let blocker = rsysmon_blocker::Blocker::start_with(rules, &protected, |_| {}).unwrap();
    assert_eq!(blocker.exempt(), [real(&exempt)]);
    assert_runs(&exempt, None);
    assert_refused(&other, None);
    blocker.stop().unwrap();
}

#[test]
fn stopping_while_execs_are_in_flight_leaves_none_waiting() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    // Distinct files: an allowed file is remembered by the kernel and its
    // next exec no longer asks, so only first execs keep the decider busy.
    let tools: Vec<Vec<_>> = (0..2)
        .map(|t| (0..300).map(|i| copy_of("/bin/true", dir.path(), &format!("tool-{t}-{i}"))).collect())
        .collect();
    let running = Running::start(rules([]));
    let (done, finished) = std::sync::mpsc::channel();
    for tools in tools {
        let done = done.clone();
        std::thread::spawn(move || {
            for tool in &tools {
                assert_runs(tool, None);
            }
            let _ = done.send(());
        });
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while running.blocker.stats().allowed < 50 {
        assert!(std::time::Instant::now() < deadline, "the spawners never got going");
        std::thread::yield_now();
    }
    running.blocker.stop().unwrap();
    for _ in 0..2 {
        finished
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("an exec was left waiting after the blocker stopped");
    }
}

#[test]
fn a_file_the_kernel_remembers_as_allowed_is_refused_once_a_rule_names_it() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let tool = copy_of("/bin/true", dir.path(), "cached");
    let running = Running::start(rules([]));
    // Allowed, so the kernel now lets its execs through without asking.
    for _ in 0..3 {
        assert_runs(&tool, None);
    }
    running.set_rules(rules([rule(&tool)]));
    assert_refused(&tool, None);
    running.set_rules(rules([]));
    assert_runs(&tool, None);
    assert_runs(&tool, None);
    running.set_rules(rules([rule(&tool)]));
    assert_refused(&tool, None);
    running.blocker.stop().unwrap();
}
