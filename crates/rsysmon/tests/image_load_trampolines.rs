//! Image loads by mmap and mprotect through BPF trampolines (fexit on
//! vm_mmap_pgoff and do_mprotect_pkey) where the kernel allows them: no
//! syscall tracepoint, and every syscall entry seen, the 32-bit one
//! included. Where the kernel refuses trampolines (this development VM),
//! the tracepoint mechanism must be named instead, with the same events
//! for the 64-bit calls. `RSYSMON_EXPECT_BPF_TRAMPOLINES=1` (set by the
//! guest stage, whose 6.1 kernel runs fexit programs) turns a fallback into
//! a failure.

mod support;

use support::{field, of, program, real, run_program, shared_library, Monitor};

const HIDE: &str = "RSYSMON_TEST_HIDE_KERNEL_FEATURES";
const FEXIT: &str = "image-load on (fexit vm_mmap_pgoff + fexit do_mprotect_pkey, ";

fn expect_trampolines() -> bool {
    std::env::var("RSYSMON_EXPECT_BPF_TRAMPOLINES").is_ok_and(|v| v == "1")
}

fn line<'a>(stderr: &'a str, prefix: &str) -> &'a str {
    stderr.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix:?} line: {stderr}"))
}

fn hex(lines: &[String], key: &str) -> u64 {
    let value = lines.iter().find_map(|l| l.strip_prefix(key)).unwrap_or_else(|| panic!("no {key:?}: {lines:?}"));
    u64::from_str_radix(value.trim(), 16).unwrap()
}

fn page() -> u64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as u64 }
}

/// dlopen (mmap), mprotect adding PROT_EXEC: one image each, through fexit
/// where trampolines work, with no image-load syscall tracepoint attached;
/// through the tracepoints otherwise, and said so.
#[test]
fn image_loads_by_mmap_and_mprotect_use_fexit_where_trampolines_work() {
    require_root!();
    let monitor = Monitor::start(&[]);
    let lib = real(&shared_library("image_test_lib").to_string_lossy());
    let (pid, lines) = run_program(&program("dlopen_twice"), &[&lib]);
    let (mpid, mlines) = run_program(&program("mprotect_exec"), &[&lib]);
    let events = monitor.wait_for("both processes' exits", |e| {
        !of(e, "process-exit", pid).is_empty() && !of(e, "process-exit", mpid).is_empty()
    });
    let (_, stderr) = monitor.stop();

    let loads: Vec<_> = of(&events, "image-load", pid).into_iter().filter(|l| l["path"] == lib).collect();
    let bases: Vec<u64> =
        lines.iter().filter_map(|l| l.strip_prefix("base ")).map(|b| u64::from_str_radix(b, 16).unwrap()).collect();
    assert_eq!(loads.iter().map(|l| l["base"].as_u64().unwrap()).collect::<Vec<_>>(), bases, "{loads:#?}");
    assert!(loads.iter().all(|l| l["via"] == "mmap"), "{loads:#?}");
    let protected: Vec<_> = of(&events, "image-load", mpid).into_iter().filter(|l| l["path"] == lib).collect();
    assert_eq!(protected.len(), 1, "four mprotects, one image: {protected:#?}");
    assert_eq!(protected[0]["via"], "mprotect");
    assert_eq!(protected[0]["base"].as_u64(), Some(hex(&mlines, "base ")));
    assert_eq!(protected[0]["size"].as_u64(), Some(2 * page()));

    let capabilities = line(&stderr, "rsysmon: capabilities: ");
    let watching = line(&stderr, "rsysmon: watching");
    if capabilities.contains(FEXIT) {
        for probe in ["fexit/vm_mmap_pgoff", "fexit/do_mprotect_pkey"] {
            assert!(watching.contains(probe), "{watching}");
        }
        for probe in
            ["sys_exit_mmap", "sys_exit_mprotect", "sys_exit_pkey_mprotect", "tp_btf/vma_store", "tp_btf/ma_write"]
        {
            assert!(!watching.contains(probe), "{probe}: {watching}");
        }
    } else {
        assert!(!expect_trampolines(), "RSYSMON_EXPECT_BPF_TRAMPOLINES=1 but: {capabilities}");
        assert!(capabilities.contains("mprotect, "), "{capabilities}");
        assert!(!watching.contains("fexit/"), "{watching}");
    }
}

/// A 64-bit process makes a file mapping executable with mprotect and then
/// pkey_mprotect through `int 0x80`: no syscall tracepoint fires for those,
/// do_mprotect_pkey runs for both. One image, at the mapping.
#[cfg(target_arch = "x86_64")]
#[test]
fn an_mprotect_through_the_32_bit_syscall_entry_is_an_image_load_with_fexit() {
    require_root!();
    let monitor = Monitor::start(&[]);
    let lib = real(&shared_library("image_test_lib").to_string_lossy());
    let (pid, lines) = run_program(&program("mprotect_int80"), &[&lib]);
    let (base, tid) = (hex(&lines, "base "), field(&lines, "tid ")[0]);
    let events = monitor.wait_for("the process exit", |e| !of(e, "process-exit", pid).is_empty());
    let (_, stderr) = monitor.stop();
    if !line(&stderr, "rsysmon: capabilities: ").contains(FEXIT) {
        assert!(!expect_trampolines(), "RSYSMON_EXPECT_BPF_TRAMPOLINES=1 but: {stderr}");
        return; // the syscall tracepoints do not see 32-bit calls
    }
    let loads: Vec<_> = of(&events, "image-load", pid).into_iter().filter(|l| l["path"] == lib).collect();
    assert_eq!(loads.len(), 1, "mprotect then pkey_mprotect, one image: {loads:#?}");
    assert_eq!(loads[0]["via"], "mprotect");
    assert_eq!(loads[0]["base"].as_u64(), Some(base));
    assert!(base < 1 << 32);
    assert_eq!(loads[0]["tid"], tid);
    assert_eq!(loads[0]["size"].as_u64(), Some(2 * page()));
}

/// Hiding trampolines brings back the tracepoint mechanism, with the same
/// events for a 64-bit mprotect.
#[test]
fn hidden_trampolines_bring_back_the_tracepoint_plan() {
    require_root!();
    let monitor = Monitor::start_with_env(&[], &[(HIDE, "bpf_trampoline")]);
    let lib = real(&shared_library("image_test_lib").to_string_lossy());
    let (pid, lines) = run_program(&program("mprotect_exec"), &[&lib]);
    let events = monitor.wait_for("the image load", |e| {
        of(e, "image-load", pid).iter().any(|l| l["path"] == lib) && !of(e, "process-exit", pid).is_empty()
    });
    let (_, stderr) = monitor.stop();
    let capabilities = line(&stderr, "rsysmon: capabilities: ");
    let image_load = capabilities.split(", injection").next().unwrap();
    assert!(!image_load.contains("fexit"), "{capabilities}");
    assert!(
        capabilities.contains("sys_exit_mprotect") || capabilities.contains("sys_exit_mmap/mprotect"),
        "{capabilities}"
    );
    assert!(!line(&stderr, "rsysmon: watching").contains("fexit/"), "{stderr}");
    let loads: Vec<_> = of(&events, "image-load", pid).into_iter().filter(|l| l["path"] == lib).collect();
    assert_eq!(loads.len(), 1, "{loads:#?}");
    assert_eq!(loads[0]["base"].as_u64(), Some(hex(&lines, "base ")));
}
