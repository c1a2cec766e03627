//! Blocking a file by identity in the probes: its code never runs, however
//! it is reached. Root only: loads the real probes.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use rsysmon_probe::{decode, FileId, ImageVia, KernelRecord, ProbeConfig, Probes};
use rsysmon_testkit::dynamic_loader;

fn run(program: &Path, args: &[&Path]) -> (u32, ExitStatus) {
    let mut child = Command::new(program).args(args).spawn().unwrap();
    (child.id(), child.wait().unwrap())
}

/// Image-load records the probes wrote for `pid`, waiting until `done`.
fn images_of(probes: &Probes, pid: u32, done: impl Fn(&[(ImageVia, bool, u64)]) -> bool) -> Vec<(ImageVia, bool, u64)> {
    let found = std::cell::RefCell::new(Vec::new());
    let reader = probes
        .reader(|bytes| {
            if let Ok(KernelRecord::ImageLoad { header, via, blocked, file, .. }) = decode(bytes) {
                if header.pid == pid {
                    found.borrow_mut().push((via, blocked, file.ino));
                }
            }
        })
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done(&found.borrow()) {
        assert!(Instant::now() < deadline, "timed out; image loads of {pid}: {:?}", found.borrow());
        reader.poll(Duration::from_millis(50)).unwrap();
    }
    drop(reader);
    found.into_inner()
}

#[test]
fn blocked_file_is_killed_however_it_is_reached_and_runs_again_when_unblocked() {
    if !rsysmon_testkit::root_tests_enabled() {
        return;
    }
    let probes = Probes::load(&ProbeConfig::default()).unwrap();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("blocked-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("true");
    std::fs::copy("/bin/true", &copy).unwrap();
    let id = FileId::of(&std::fs::metadata(&copy).unwrap());
    let loader = dynamic_loader();

    probes.block_file(id).unwrap();
    probes.block_file(id).unwrap(); // twice is fine

    // The loader run directly maps the file itself: no execve of it.
    let (pid, status) = run(&loader, &[&copy]);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "ld.so {} must be killed: {status}", copy.display());
    let loads = images_of(&probes, pid, |l| l.iter().any(|&(_, blocked, _)| blocked));
    assert!(loads.contains(&(ImageVia::Mmap, true, id.ino)), "{loads:?}");

    // execve of it: killed at exec, before its first instruction.
    let (_, status) = run(&copy, &[]);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "exec of the blocked copy: {status}");

    // The same program elsewhere is another file.
    assert!(run(&loader, &[Path::new("/bin/true")]).1.success());

    probes.unblock_file(id).unwrap();
    probes.unblock_file(id).unwrap(); // twice is fine
    assert!(run(&loader, &[&copy]).1.success(), "unblocked, it runs");
    let _ = std::fs::remove_dir_all(&dir);
}
