//! Image loads, seen through the real probes: the program and its
//! interpreter at exec, libraries the loader maps, dlopen, mprotect, memfd
//! images, files seen through another mount namespace, and anonymous
//! executable memory that is not an image.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use support::{die_with_test, field, of, program, real, run_program, shared_library, Monitor};

/// One line of /proc/PID/maps.
struct Mapping {
    start: u64,
    end: u64,
    executable: bool,
    path: String,
}

fn maps(pid: u32) -> Vec<Mapping> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap()
        .lines()
        .map(|line| {
            let mut words = line.split_whitespace();
            let (start, end) = words.next().unwrap().split_once('-').unwrap();
            let perms = words.next().unwrap();
            let path = words.nth(3).unwrap_or("").to_string();
            Mapping {
                start: u64::from_str_radix(start, 16).unwrap(),
                end: u64::from_str_radix(end, 16).unwrap(),
                executable: perms.contains('x'),
                path,
            }
        })
        .collect()
}

fn hex(lines: &[String], key: &str) -> Vec<u64> {
    lines.iter().filter_map(|l| l.strip_prefix(key).and_then(|v| u64::from_str_radix(v.trim(), 16).ok())).collect()
}

fn images(events: &[Value], pid: u32) -> Vec<Value> {
    of(events, "image-load", pid)
}

fn with_path(events: &[Value], pid: u32, path: &str) -> Vec<Value> {
    images(events, pid).into_iter().filter(|e| e["path"] == path).collect()
}

#[test]
fn program_interpreter_and_libraries_are_reported_at_their_maps_base() {
    require_root!();
    let monitor = Monitor::start(&[]);
    let exe = program("image_libs_pause");
    let mut cmd = Command::new(&exe);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = die_with_test(&mut cmd).spawn().unwrap();
    let pid = child.id();
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut ready).unwrap();
    assert!(ready.starts_with("ready "), "{ready}");
    // main is running: the loader has mapped everything it will.
    let mapped = maps(pid);
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());

    let files: Vec<&str> = {
        let mut files: Vec<&str> =
            mapped.iter().filter(|m| m.executable && m.path.starts_with('/')).map(|m| m.path.as_str()).collect();
        files.dedup();
        files
    };
    let libm = files.iter().find(|f| f.contains("/libm.so")).expect("the program links libm");
    let events = monitor.wait_for("libm's image load", |e| !with_path(e, pid, libm).is_empty());
    assert_eq!(files.len(), 4, "program, interpreter, libc, libm: {files:?}");
    assert_eq!(images(&events, pid).len(), files.len(), "one event per image: {:#?}", images(&events, pid));

    for file in &files {
        let found = with_path(&events, pid, file);
        assert_eq!(found.len(), 1, "exactly one image-load for {file}: {found:#?}");
        let event = &found[0];
        let of_file: Vec<&Mapping> = mapped.iter().filter(|m| m.path == *file).collect();
        let base = event["base"].as_u64().unwrap();
        assert_eq!(base, of_file[0].start, "base of {file} is its first line in maps");
        let extent = of_file.last().unwrap().end - base;
        assert!(event["size"].as_u64().unwrap() >= extent, "size of {file} covers its mappings: {event}");
        assert_eq!(event["tid"], pid);
        assert_eq!(event["comm"], "image_libs_paus");
        assert_eq!(event["ns_path"], Value::Null);
        assert_eq!(event["blocked"], false);
        let meta = std::fs::metadata(file).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!((event["dev"].as_u64(), event["inode"].as_u64()), (Some(meta.dev()), Some(meta.ino())));
    }
    let via = |path: &str| with_path(&events, pid, path)[0]["via"].clone();
    assert_eq!(via(&real(&exe.to_string_lossy())), "exec");
    let interpreter = files.iter().find(|f| f.contains("/ld-linux")).expect("an ELF interpreter");
    assert_eq!(via(interpreter), "interpreter");
    assert_eq!(via(libm), "mmap");
    let exec = of(&events, "process-exec", pid);
    assert!(exec[0]["seq"].as_u64() < images(&events, pid)[0]["seq"].as_u64(), "exec comes before its images");
}

#[test]
fn dlopen_reports_each_load_at_the_dladdr_base() {
    require_root!();
    let monitor = Monitor::start(&[]);
    let lib = real(&shared_library("image_test_lib").to_string_lossy());
    let (pid, lines) = run_program(&program("dlopen_twice"), &[&lib]);
    let tid = field(&lines, "tid ")[0];
    let bases = hex(&lines, "base ");
    assert_eq!(bases.len(), 2, "{lines:?}");

    let events = monitor.wait_for("two loads of the library", |e| with_path(e, pid, &lib).len() >= 2);
    let loads = with_path(&events, pid, &lib);
    assert_eq!(loads.len(), 2, "dlclose + dlopen is a new load, and nothing more: {loads:#?}");
    for (load, base) in loads.iter().zip(&bases) {
        assert_eq!(load["base"].as_u64(), Some(*base));
        assert_eq!(load["tid"], tid);
        assert!(load["comm"].as_str().unwrap().starts_with("dlopen_twice"), "{load}");
        assert_eq!(load["via"], "mmap");
    }
}

#[test]
fn mprotect_adding_exec_to_a_file_mapping_is_one_image_load() {
    require_root!();
    let monitor = Monitor::start(&[]);
    let file = real(&shared_library("image_test_lib").to_string_lossy());
    let (pid, lines) = run_program(&program("mprotect_exec"), &[&file]);
    let tid = field(&lines, "tid ")[0];
    let base = hex(&lines, "base ")[0];

    let events = monitor.wait_for("the process exit", |e| !of(e, "process-exit", pid).is_empty());
    let loads = with_path(&events, pid, &file);
    assert_eq!(loads.len(), 1, "four mprotects, one image: {loads:#?}");
    assert_eq!(loads[0]["via"], "mprotect");
    assert_eq!(loads[0]["base"].as_u64(), Some(base));
    assert_eq!(loads[0]["tid"], tid);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    assert_eq!(loads[0]["size"].as_u64(), Some(2 * page), "the whole two-page mapping");
    let own = with_path(&events, pid, &real(&program("mprotect_exec").to_string_lossy()));
    assert_eq!(own.len(), 1, "re-protecting its own text is no new image: {own:#?}");
    assert_eq!(own[0]["via"], "exec");
}

#[test]
fn a_file_mapped_far_into_it_above_many_mappings_is_found_at_its_address() {
    require_root!();
    let monitor = Monitor::start(&[]);
    let file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("far-offset-{}", std::process::id()));
    let (pid, lines) = run_program(&program("exec_map_far_offset"), &[file.to_str().unwrap()]);
    let tid = field(&lines, "tid ")[0];
    let base = hex(&lines, "base ")[0];

    let events = monitor.wait_for("the process exit", |e| !of(e, "process-exit", pid).is_empty());
    let path = real(file.to_str().unwrap());
    std::fs::remove_file(&file).unwrap();
    let loads = with_path(&events, pid, &path);
    assert_eq!(loads.len(), 1, "{loads:#?}");
    assert_eq!(loads[0]["via"], "mmap");
    assert_eq!(loads[0]["base"].as_u64(), Some(base));
    assert_eq!(loads[0]["tid"], tid);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    assert_eq!(loads[0]["size"].as_u64(), Some(page));
}

/// A 64-bit process maps an executable file through the 32-bit syscall
/// entry (`int 0x80`, mmap2), which no syscall tracepoint sees: the VMA
/// store does.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_mapping_made_through_the_32_bit_syscall_entry_is_an_image_load() {
    require_root!();
    let monitor = Monitor::start(&[]);
    let file = real(&shared_library("image_test_lib").to_string_lossy());
    let (pid, lines) = run_program(&program("mmap2_int80"), &[&file]);
    let tid = field(&lines, "tid ")[0];
    let base = hex(&lines, "base ")[0];
    assert!(base < 1 << 32, "{lines:?}");

    let events = monitor.wait_for("the process exit", |e| !of(e, "process-exit", pid).is_empty());
    let loads = with_path(&events, pid, &file);
    assert_eq!(loads.len(), 1, "{loads:#?}");
    assert_eq!(loads[0]["via"], "mmap");
    assert_eq!(loads[0]["base"].as_u64(), Some(base));
    assert_eq!(loads[0]["tid"], tid);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    assert_eq!(loads[0]["size"].as_u64(), Some(2 * page), "the two pages mapped");
}

/// A blocked library mapped through the 32-bit entry never runs: the
/// mapping fails with EPERM where BPF LSM enforces (lsm_blocking.rs), and
/// elsewhere the image-load probe kills the process before it returns.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_blocked_file_mapped_through_the_32_bit_syscall_entry_never_runs() {
    require_root!();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("int80-blocked-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("libblocked.so");
    std::fs::copy(shared_library("image_test_lib"), &copy).unwrap();
    let copy = real(copy.to_str().unwrap());
    let monitor = Monitor::start(&["--block", &copy]);

    let mut cmd = Command::new(program("mmap2_int80"));
    cmd.arg(&copy).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = die_with_test(&mut cmd).spawn().unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.stdout.is_empty(), "the mapping must not succeed: {out:?}");
    use std::os::unix::process::ExitStatusExt;
    if out.status.signal() == Some(libc::SIGKILL) {
        let events = monitor.wait_for("the blocked load", |e| !with_path(e, pid, &copy).is_empty());
        let loads = with_path(&events, pid, &copy);
        assert_eq!(loads.len(), 1, "{loads:#?}");
        assert_eq!(loads[0]["blocked"], true);
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("mmap2: error {}", libc::EPERM)), "killed or refused: {out:?}");
        let (_, monitor_stderr) = monitor.stop();
        assert!(!monitor_stderr.contains("bpf-lsm not used"), "EPERM comes from the LSM: {monitor_stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// With no syscall tracepoint attached (no syscall of the machine on the
/// slow path), dlopen and the 32-bit mmap2 are still image loads.
#[cfg(target_arch = "x86_64")]
#[test]
fn without_syscall_tracepoints_mmap_image_loads_are_still_reported() {
    require_root!();
    let monitor = Monitor::start(&["--no-syscall-tracepoints"]);
    let lib = real(&shared_library("image_test_lib").to_string_lossy());
    let (pid, lines) = run_program(&program("dlopen_twice"), &[&lib]);
    let bases = hex(&lines, "base ");
    let (pid32, lines32) = run_program(&program("mmap2_int80"), &[&lib]);
    let base32 = hex(&lines32, "base ")[0];

    let events = monitor.wait_for("both processes' loads", |e| {
        with_path(e, pid, &lib).len() >= 2 && !with_path(e, pid32, &lib).is_empty()
    });
    let loads = with_path(&events, pid, &lib);
    assert_eq!(loads.iter().map(|l| l["base"].as_u64().unwrap()).collect::<Vec<_>>(), bases, "{loads:#?}");
    assert_eq!(with_path(&events, pid32, &lib)[0]["base"].as_u64(), Some(base32));
    let (_, stderr) = monitor.stop();
    let watching = stderr.lines().find(|l| l.starts_with("rsysmon: watching")).expect("the watching line");
    assert!(!watching.contains("tracepoint/syscalls/"), "{watching}");
    // The VMA store, or fexit where the kernel runs trampolines.
    let store = watching.contains("tp_btf/ma_write") || watching.contains("tp_btf/vma_store");
    assert!(store || watching.contains("fexit/vm_mmap_pgoff"), "{watching}");
    // Takeovers need a syscall tracepoint unless trampolines work (fexit).
    assert!(
        stderr.contains("injection off (syscall tracepoints are off") || stderr.contains("injection on (fexit "),
        "{stderr}"
    );
}

#[test]
fn fileless_image_from_a_memfd_is_marked_memfd() {
    require_root!();
    let monitor = Monitor::start(&[]);
    let (pid, _) = run_program(&program("memfd_exec"), &["/bin/true", "true"]);

    let events = monitor.wait_for("the process exit", |e| !of(e, "process-exit", pid).is_empty());
    assert_eq!(of(&events, "process-exit", pid)[0]["exit_code"], 0);
    let execs = images(&events, pid).into_iter().filter(|e| e["via"] == "exec").collect::<Vec<_>>();
    assert_eq!(execs.len(), 2, "the launcher, then the memfd image: {execs:#?}");
    assert_eq!(execs[1]["path"], "memfd:payload");
    assert_eq!(execs[1]["ns_path"], Value::Null);
}

#[test]
fn program_in_a_private_mount_namespace_shows_host_and_namespace_paths() {
    require_root!();
    let monitor = Monitor::start(&[]);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("mount-ns-{}", std::process::id()));
    let (source, view) = (dir.join("source"), dir.join("view"));
    std::fs::create_dir_all(&source).unwrap();
    std::fs::create_dir_all(&view).unwrap();
    std::fs::copy("/bin/true", source.join("true")).unwrap();

    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", r#"mount --bind "$0" "$1" && exec "$1/true""#])
        .arg(&source)
        .arg(&view);
    let child = die_with_test(&mut cmd).spawn().unwrap();
    let pid = child.id();
    assert!(child.wait_with_output().unwrap().status.success());

    let events = monitor.wait_for("the process exit", |e| !of(e, "process-exit", pid).is_empty());
    let host = real(&source.join("true").to_string_lossy());
    let loads = with_path(&events, pid, &host);
    assert_eq!(loads.len(), 1, "true, by its host path: {:#?}", images(&events, pid));
    assert_eq!(loads[0]["via"], "exec");
    assert_eq!(loads[0]["ns_path"], real(&view.to_string_lossy()) + "/true");
    // The same file systems are mounted in the copy of the namespace: the
    // libraries look the same from both sides.
    let libc = images(&events, pid).into_iter().find(|e| e["path"].as_str().unwrap().contains("/libc.so"));
    assert_eq!(libc.expect("libc was loaded")["ns_path"], Value::Null);
    let _ = std::fs::remove_dir_all(&dir);
}

/// An overlay's layers, made by the test; when mounted on the host,
/// unmounted when dropped.
struct Overlay {
    merged: std::path::PathBuf,
    dir: std::path::PathBuf,
    options: String,
    mounted: bool,
}

impl Overlay {
    /// `lower` and `upper` files are (path in the overlay, source) pairs.
    fn new(name: &str, lower: &[(&str, &Path)], upper: &[(&str, &Path)]) -> Overlay {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let layer = |layer: &str, files: &[(&str, &Path)]| {
            for (path, source) in files {
                let to = dir.join(layer).join(path);
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::copy(source, &to).unwrap();
            }
        };
        for d in ["lower", "upper", "work", "merged"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        layer("lower", lower);
        layer("upper", upper);
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            dir.join("lower").display(),
            dir.join("upper").display(),
            dir.join("work").display()
        );
        Overlay { merged: dir.join("merged"), dir, options, mounted: false }
    }

    /// Mount it in the host's mount namespace.
    fn mount(&mut self) {
        let status =
            Command::new("mount").args(["-t", "overlay", "overlay", "-o", &self.options]).arg(&self.merged).status();
        assert!(status.unwrap().success(), "mount -t overlay at {}", self.merged.display());
        self.mounted = true;
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(&self.merged).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Run `cmd` with a piped stdin until it prints its ready line; returns
/// its pid and /proc/PID/maps, then lets it end.
fn maps_when_ready(cmd: &mut Command) -> (u32, Vec<Mapping>) {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = die_with_test(cmd).spawn().unwrap();
    let pid = child.id();
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut ready).unwrap();
    assert!(ready.starts_with("ready "), "{ready}");
    let mapped = maps(pid);
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    (pid, mapped)
}

/// A program and a library on overlayfs are mapped from the overlay's
/// backing files; their image loads show the path the process used, as
/// /proc/PID/maps does, not the layer's path.
#[test]
fn images_on_an_overlay_show_the_path_maps_shows() {
    require_root!();
    let monitor = Monitor::start(&[]);
    let exe = program("dlopen_pause");
    let lib = shared_library("image_test_lib");
    let mut overlay = Overlay::new("overlay", &[("bin/mt", &exe)], &[("lib/libx.so", &lib)]);
    overlay.mount();
    let (mt, libx) = (overlay.merged.join("bin/mt"), overlay.merged.join("lib/libx.so"));
    let (pid, mapped) = maps_when_ready(Command::new(&mt).arg(&libx));

    for (file, via) in [(&mt, "exec"), (&libx, "mmap")] {
        let file = file.to_str().unwrap();
        assert!(mapped.iter().any(|m| m.executable && m.path == file), "maps shows {file}");
        let events = monitor.wait_for("the image load", |e| !with_path(e, pid, file).is_empty());
        let found = with_path(&events, pid, file);
        assert_eq!(found.len(), 1, "{:#?}", images(&events, pid));
        assert_eq!(found[0]["via"], via);
        assert_eq!(found[0]["ns_path"], Value::Null);
        assert_eq!(found[0]["base"].as_u64(), mapped.iter().find(|m| m.path == file).map(|m| m.start));
    }
    drop(overlay);
}

/// The same overlay mounted only inside a private mount namespace, as a
/// container's root is: `ns_path` is what the process (and its maps)
/// shows, `path` is where the host has the file, in the overlay's layers.
#[test]
fn images_on_an_overlay_in_another_mount_namespace_show_both_views() {
    require_root!();
    let monitor = Monitor::start(&[]);
    let exe = program("dlopen_pause");
    let lib = shared_library("image_test_lib");
    let overlay = Overlay::new("overlay-ns", &[("bin/mt", &exe)], &[("lib/libx.so", &lib)]);
    let merged = overlay.merged.to_str().unwrap();
    let script = r#"mount -t overlay overlay -o "$0" "$1" && exec "$1/bin/mt" "$1/lib/libx.so""#;
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", script, &overlay.options, merged]);
    let (pid, mapped) = maps_when_ready(&mut cmd);

    let host = |layer: &str, path: &str| real(&overlay.dir.join(layer).join(path).to_string_lossy());
    for (seen, host, via) in
        [("bin/mt", host("lower", "bin/mt"), "exec"), ("lib/libx.so", host("upper", "lib/libx.so"), "mmap")]
    {
        let seen = format!("{merged}/{seen}");
        assert!(mapped.iter().any(|m| m.executable && m.path == seen), "maps shows {seen}");
        let events = monitor.wait_for("the image load", |e| !with_path(e, pid, &host).is_empty());
        let found = with_path(&events, pid, &host);
        assert_eq!(found.len(), 1, "{:#?}", images(&events, pid));
        assert_eq!((found[0]["via"].as_str(), found[0]["ns_path"].as_str()), (Some(via), Some(seen.as_str())));
    }
    drop(overlay);
}

#[test]
fn anonymous_executable_memory_is_not_an_image() {
    require_root!();
    let monitor = Monitor::start(&["--kind", "image-load"]);
    let exe = program("jit_exec");
    let (pid, lines) = run_program(&exe, &[]);
    assert_eq!(lines, ["ok 42"], "the JIT code ran");

    // The exit is filtered out here; libc is the last image the loader maps.
    let events = monitor.wait_for("libc's image load", |e| {
        images(e, pid).iter().any(|i| i["path"].as_str().unwrap().contains("/libc.so"))
    });
    let (events, _) = {
        drop(events);
        monitor.stop()
    };
    assert!(events.iter().all(|e| e["kind"] == "image-load" || e["kind"] == "loss"), "--kind filters");
    let loads = images(&events, pid);
    let paths: Vec<&str> = loads.iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths.len(), 3, "program, interpreter, libc and nothing for the JIT: {loads:#?}");
    assert_eq!(paths[0], real(&exe.to_string_lossy()));
    assert!(loads.iter().all(|e| e["via"] != "mprotect"), "{loads:#?}");
}
