//! Blocking with BPF LSM hooks, and pinned so it outlives the probes.
//! Root only: loads the real probes.
//!
//! Where the kernel refuses LSM programs (this development VM lists `bpf`
//! but refuses them with EPERM) the probes say why and the tests check the
//! fallback. `RSYSMON_EXPECT_BPF_LSM=1` (the guest stage sets it) makes a
//! fallback a failure: there the LSM itself must be tested.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use rsysmon_probe::bpf_lsm;
use rsysmon_probe::features::KernelFeatures;
use rsysmon_probe::{pins, Enforcement, FileId, KernelEnforcement, ProbeConfig, Probes};
use rsysmon_testkit::{die_with_test, require_root};

fn expect_lsm() -> bool {
    std::env::var("RSYSMON_EXPECT_BPF_LSM").is_ok_and(|v| v == "1")
}

fn load(pin_dir: Option<PathBuf>) -> Probes {
    let config = ProbeConfig { enforcement: Enforcement::Lsm { pin_dir }, ..ProbeConfig::default() };
    Probes::load(&config).unwrap()
}

fn copy_of_true(dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    std::fs::copy("/bin/true", &to).unwrap();
    to
}

fn exec(path: &Path) -> std::io::Result<std::process::ExitStatus> {
    die_with_test(&mut Command::new(path)).status()
}

fn id(path: &Path) -> FileId {
    FileId::of(&std::fs::metadata(path).unwrap())
}

/// A pin directory of this test alone, removed at the end whatever happens.
struct TestPins(PathBuf);

impl TestPins {
    fn new(name: &str) -> TestPins {
        TestPins(PathBuf::from(format!(
            "{}/rsysmon-test-{name}-{}",
            rsysmon_probe::kernel_fs::BPFFS,
            std::process::id()
        )))
    }
}

impl Drop for TestPins {
    fn drop(&mut self) {
        let _ = pins::unload(&self.0);
    }
}

#[test]
fn the_mechanism_is_bpf_lsm_where_the_kernel_allows_it_else_the_reason_is_given() {
    require_root!();
    let features = KernelFeatures::detect().unwrap();
    let usable = bpf_lsm::lsm_usable(&features);
    let probes = load(None);
    match probes.enforcement() {
        KernelEnforcement::Lsm { pinned: None, adopted: false, not_pinned: None, replaced: None } => {
            assert!(usable.is_ok());
            assert_eq!(
                probes.enforcement().mechanism().unwrap(),
                "bpf-lsm bprm_check_security/mmap_file/file_mprotect, not pinned"
            );
            for hook in ["lsm/bprm_check_security", "lsm/mmap_file", "lsm/file_mprotect"] {
                assert!(probes.attached().iter().any(|a| a == hook), "{hook} in {:?}", probes.attached());
            }
        }
        KernelEnforcement::Unavailable(why) => {
            assert!(!expect_lsm(), "RSYSMON_EXPECT_BPF_LSM=1 but BPF LSM is not used: {why}");
            assert_eq!(Err(why.clone()), usable, "the probes and the detection agree");
            assert!(probes.attached().iter().all(|a| !a.starts_with("lsm/")));
            assert_eq!(probes.enforcement().mechanism(), None);
            eprintln!("BPF LSM not used here: {why}");
        }
        other => panic!("{other:?}"),
    }
    // Not wanted: never loaded.
    let probes = Probes::load(&ProbeConfig::default()).unwrap();
    assert_eq!(probes.enforcement(), &KernelEnforcement::NotWanted);
    assert!(probes.attached().iter().all(|a| !a.starts_with("lsm/")));
}

#[test]
fn trampolines_are_found_by_attaching_one() {
    require_root!();
    let features = KernelFeatures::detect().unwrap();
    match bpf_lsm::trampolines_usable(&features) {
        Ok(()) => {}
        // This development VM refuses fentry programs at load.
        Err(why) => {
            assert!(!expect_lsm(), "the guest's kernel runs fentry programs: {why}");
            assert!(why.starts_with("the kernel refused a fentry program"), "{why}");
        }
    }
}

#[test]
fn hiding_bpf_lsm_chooses_the_fallback_and_says_so() {
    require_root!();
    let features = KernelFeatures::new([], [bpf_lsm::BPF_LSM.to_string()].into());
    let why = bpf_lsm::lsm_usable(&features).unwrap_err();
    assert!(why.contains("hidden"), "{why}");
}

#[test]
fn a_blocked_exec_and_exec_mapping_fail_with_eperm_and_the_pins_outlive_the_probes() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let evil = copy_of_true(dir.path(), "evil");
    let harmless = copy_of_true(dir.path(), "harmless");
    let pin = TestPins::new("probes");
    let probes = load(Some(pin.0.clone()));
    if !probes.enforcement().is_lsm() {
        assert!(!expect_lsm(), "RSYSMON_EXPECT_BPF_LSM=1 but: {:?}", probes.enforcement());
        // The fallback: the image-load probes kill instead.
        probes.block_file(id(&evil)).unwrap();
        let status = exec(&evil).unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
        assert!(!pin.0.exists(), "nothing is pinned without the LSM");
        return;
    }
    assert!(
        matches!(probes.enforcement(), KernelEnforcement::Lsm { pinned: Some(p), adopted: false, .. } if *p == pin.0),
        "{:?}",
        probes.enforcement()
    );
    probes.block_file(id(&evil)).unwrap();
    let err = exec(&evil).expect_err("a blocked exec fails");
    assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    assert!(exec(&harmless).unwrap().success());
    assert!(probes.lsm_refusals() >= 1);

    // The probes are gone, the pinned links and maps are not.
    drop(probes);
    let err = exec(&evil).expect_err("still refused after the probes are gone");
    assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");

    // Loaded again: the pinned map is adopted with its entry.
    let probes = load(Some(pin.0.clone()));
    assert!(matches!(probes.enforcement(), KernelEnforcement::Lsm { adopted: true, .. }), "{:?}", probes.enforcement());
    assert!(probes.enforcement().mechanism().unwrap().ends_with("(adopted)"));
    let err = exec(&evil).expect_err("still refused");
    assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    drop(probes);

    let removed = pins::unload(&pin.0).unwrap();
    assert!(removed.iter().any(|n| n == "link_lsm_bprm_check"), "{removed:?}");
    assert!(removed.iter().any(|n| n == "blocked_files"), "{removed:?}");
    assert!(!pin.0.exists());
    assert!(exec(&evil).unwrap().success(), "runs once unloaded");
}

/// A map pinned by another version of the probes (here: a hash map of the
/// wrong size where `blocked_files` belongs) is replaced, not a reason to
/// give up BPF LSM, and the new map enforces.
#[test]
fn a_pinned_map_of_another_version_is_replaced_and_the_new_one_enforces() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let evil = copy_of_true(dir.path(), "evil");
    let pin = TestPins::new("stale");
    pins::prepare(&pin.0).unwrap();
    let stale_path = pins::map_path(&pin.0, "blocked_files");
    let opts = libbpf_rs::libbpf_sys::bpf_map_create_opts {
        sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_map_create_opts>() as _,
        ..Default::default()
    };
    let mut stale = libbpf_rs::MapHandle::create(libbpf_rs::MapType::Hash, Some("blocked_files"), 8, 8, 16, &opts)
        .expect("create a map");
    stale.pin(&stale_path).unwrap();
    drop(stale);

    let probes = load(Some(pin.0.clone()));
    if !probes.enforcement().is_lsm() {
        assert!(!expect_lsm(), "RSYSMON_EXPECT_BPF_LSM=1 but: {:?}", probes.enforcement());
        return;
    }
    let mechanism = probes.enforcement().mechanism().unwrap();
    assert!(
        mechanism.contains(&format!(
            "pinned at {} (replaced pinned maps of another version: blocked_files: pinned type 1, key 8 B, value 8 B, \
             16 entries",
            pin.0.display()
        )),
        "{mechanism}"
    );
    assert!(matches!(probes.enforcement(), KernelEnforcement::Lsm { adopted: false, .. }));
    let pinned = libbpf_rs::MapHandle::from_pinned_path(&stale_path).unwrap();
    assert_ne!(libbpf_rs::MapCore::key_size(&pinned), 8, "the new map is pinned in its place");
    probes.block_file(id(&evil)).unwrap();
    let err = exec(&evil).expect_err("a blocked exec fails");
    assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
}
