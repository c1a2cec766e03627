//! What the running kernel offers the probes, read once from its BTF.
//!
//! The probes are one CO-RE object for every supported kernel; where a
//! kernel lacks a kfunc, a helper or a tracepoint argument, the loader
//! picks another variant ([`crate::plan`]). Everything it needs to know is
//! in `/sys/kernel/btf/vmlinux`: kfuncs and helpers are functions there,
//! and a BTF tracepoint's arguments are the parameters of its
//! `btf_trace_NAME` typedef.
//!
//! For tests, `RSYSMON_TEST_HIDE_KERNEL_FEATURES=name,...` makes the loader
//! treat the named features as missing (the names of [`Feature::name`],
//! and `tracefs`), so the fallbacks of an older kernel run on this one.

use std::collections::BTreeSet;
use std::fmt;

use libbpf_rs::btf::types::{Func, FuncProto, Ptr, Typedef};
use libbpf_rs::btf::Btf;

use crate::error::ProbeError;

/// The environment variable that hides features, for tests.
pub const HIDE_ENV: &str = "RSYSMON_TEST_HIDE_KERNEL_FEATURES";
/// The name under which a missing tracefs can be pretended.
pub const TRACEFS: &str = "tracefs";

/// A kernel facility some probe variant depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Feature {
    /// `bpf_loop` (5.17): the path walk and the image lookups.
    Loop,
    /// `bpf_find_vma` (5.17): image lookups, one VMA at a time.
    FindVma,
    /// The task-VMA iterator kfuncs (6.7): image lookups in one pass.
    VmaIterator,
    /// The `bpf_rdonly_cast` kfunc (6.2): direct loads through pointers
    /// kept in maps (`bpf_core_cast`).
    RdonlyCast,
    /// `group_dead` as an argument of the sched_process_exit tracepoint.
    ExitGroupDead,
    /// The BTF tracepoint `maple_tree:ma_write` (maple tree writes, 6.1):
    /// image loads by mmap at the store of the new VMA.
    MaWrite,
    /// The BTF tracepoint `mmap:vma_store` (VMA stores only), present in
    /// the kernels that still have vma_mas_store(), 6.1 among them.
    VmaStore,
}

impl Feature {
    pub const ALL: [Feature; 7] = [
        Feature::Loop,
        Feature::FindVma,
        Feature::VmaIterator,
        Feature::RdonlyCast,
        Feature::ExitGroupDead,
        Feature::MaWrite,
        Feature::VmaStore,
    ];

    /// The name used in messages and in [`HIDE_ENV`].
    pub fn name(self) -> &'static str {
        match self {
            Feature::Loop => "bpf_loop",
            Feature::FindVma => "bpf_find_vma",
            Feature::VmaIterator => "bpf_iter_task_vma",
            Feature::RdonlyCast => "bpf_rdonly_cast",
            Feature::ExitGroupDead => "sched_process_exit.group_dead",
            Feature::MaWrite => "maple_tree.ma_write",
            Feature::VmaStore => "mmap.vma_store",
        }
    }

    /// The first mainline kernel that has it.
    pub fn since(self) -> &'static str {
        match self {
            Feature::Loop | Feature::FindVma => "5.17",
            Feature::VmaIterator => "6.7",
            Feature::RdonlyCast => "6.2",
            Feature::ExitGroupDead => "6.16",
            Feature::MaWrite | Feature::VmaStore => "6.1",
        }
    }

    /// Whether the kernel whose BTF this is has the feature.
    fn in_btf(self, btf: &Btf<'_>) -> bool {
        match self {
            Feature::Loop => btf.type_by_name::<Typedef<'_>>("btf_bpf_loop").is_some(),
            Feature::FindVma => btf.type_by_name::<Typedef<'_>>("btf_bpf_find_vma").is_some(),
            Feature::VmaIterator => ["bpf_iter_task_vma_new", "bpf_iter_task_vma_next", "bpf_iter_task_vma_destroy"]
                .iter()
                .all(|name| btf.type_by_name::<Func<'_>>(name).is_some()),
            Feature::RdonlyCast => btf.type_by_name::<Func<'_>>("bpf_rdonly_cast").is_some(),
            // typedef void (*btf_trace_sched_process_exit)(void *, struct task_struct *, bool);
            Feature::ExitGroupDead => tracepoint_args(btf, "sched_process_exit").is_some_and(|n| n >= 2),
            // (fn, mas, piv, val)
            Feature::MaWrite => tracepoint_args(btf, "ma_write") == Some(4),
            // (mt, vma)
            Feature::VmaStore => tracepoint_args(btf, "vma_store") == Some(2),
        }
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The arguments a BTF tracepoint passes (its typedef's parameters less the
/// leading context pointer), or None if the kernel has no such tracepoint.
fn tracepoint_args(btf: &Btf<'_>, tracepoint: &str) -> Option<usize> {
    let typedef = btf.type_by_name::<Typedef<'_>>(&format!("btf_trace_{tracepoint}"))?;
    let ptr = Ptr::try_from(typedef.next_type()?.skip_mods_and_typedefs()).ok()?;
    let proto = FuncProto::try_from(ptr.next_type()?.skip_mods_and_typedefs()).ok()?;
    Some(proto.len().saturating_sub(1))
}

/// The features of the running kernel, less any hidden for a test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelFeatures {
    present: BTreeSet<Feature>,
    hidden: BTreeSet<String>,
}

impl KernelFeatures {
    /// Read the running kernel's BTF, then apply [`HIDE_ENV`].
    pub fn detect() -> Result<KernelFeatures, ProbeError> {
        let btf = Btf::from_vmlinux().map_err(|e| ProbeError::bpf("read the kernel's BTF", e))?;
        let present: Vec<Feature> = Feature::ALL.into_iter().filter(|f| f.in_btf(&btf)).collect();
        let hidden = std::env::var(HIDE_ENV).map(|v| parse_hidden(&v)).unwrap_or_default();
        Ok(KernelFeatures::new(present, hidden))
    }

    /// Features as given; `hidden` names (see [`HIDE_ENV`]) are taken away.
    pub fn new(present: impl IntoIterator<Item = Feature>, hidden: BTreeSet<String>) -> KernelFeatures {
        let present = present.into_iter().filter(|f| !hidden.contains(f.name())).collect();
        KernelFeatures { present, hidden }
    }

    /// What the newest kernels offer: every feature but `mmap:vma_store`,
    /// which went with vma_mas_store().
    pub fn all() -> KernelFeatures {
        KernelFeatures::new(Feature::ALL.into_iter().filter(|f| *f != Feature::VmaStore), BTreeSet::new())
    }

    pub fn has(&self, feature: Feature) -> bool {
        self.present.contains(&feature)
    }

    /// Whether a test asked to pretend `name` is missing.
    pub fn is_hidden(&self, name: &str) -> bool {
        self.hidden.contains(name)
    }

    /// Why `feature` is missing, for a notice: "bpf_iter_task_vma (6.7) is
    /// missing", or that a test hid it.
    pub fn why_missing(&self, feature: Feature) -> String {
        if self.is_hidden(feature.name()) {
            format!("{feature} is hidden by {HIDE_ENV}")
        } else {
            format!("the kernel lacks {feature} ({}+)", feature.since())
        }
    }
}

/// `a, b,,c` → {a, b, c}.
fn parse_hidden(value: &str) -> BTreeSet<String> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (major, minor) of the running kernel.
    fn running_kernel() -> (u32, u32) {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut parts = release.trim().split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
        (parts.next().unwrap(), parts.next().unwrap())
    }

    fn at_least(kernel: (u32, u32), since: &str) -> bool {
        let (major, minor) = since.split_once('.').unwrap();
        kernel >= (major.parse().unwrap(), minor.parse().unwrap())
    }

    #[test]
    fn detected_features_match_the_running_kernel_version() {
        if !std::path::Path::new(crate::error::KERNEL_BTF).exists() {
            panic!("{} is missing: the kernel has no BTF", crate::error::KERNEL_BTF);
        }
        let btf = Btf::from_vmlinux().expect("read the kernel's BTF");
        let kernel = running_kernel();
        for feature in Feature::ALL {
            if feature == Feature::VmaStore {
                continue; // removed again later: no version says whether it is there
            }
            assert_eq!(
                feature.in_btf(&btf),
                at_least(kernel, feature.since()),
                "{feature} (since {}) on {kernel:?}",
                feature.since()
            );
        }
    }

    #[test]
    fn hidden_features_are_missing_and_say_so() {
        let hidden = parse_hidden(" bpf_rdonly_cast,,bpf_iter_task_vma ,tracefs");
        let features = KernelFeatures::new(Feature::ALL, hidden);
        assert!(!features.has(Feature::RdonlyCast));
        assert!(!features.has(Feature::VmaIterator));
        assert!(features.has(Feature::FindVma));
        assert!(features.is_hidden(TRACEFS));
        assert_eq!(features.why_missing(Feature::VmaIterator), format!("bpf_iter_task_vma is hidden by {HIDE_ENV}"));
        let old = KernelFeatures::new([Feature::Loop], BTreeSet::new());
        assert_eq!(old.why_missing(Feature::RdonlyCast), "the kernel lacks bpf_rdonly_cast (6.2+)");
    }
}
