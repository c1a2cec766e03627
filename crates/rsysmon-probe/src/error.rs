//! Why the probes could not be loaded or read.

/// Where the kernel's BTF is; CO-RE needs it.
pub(crate) const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";
/// The loader's own mount namespace, whose inode the probes compare against.
pub(crate) const OWN_MOUNT_NS: &str = "/proc/self/ns/mnt";

/// Why the probes could not be loaded or read.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(
        "the kernel has no BTF ({KERNEL_BTF} is missing): rsysmon needs a kernel built with CONFIG_DEBUG_INFO_BTF=y"
    )]
    NoKernelBtf,
    #[error("permission denied loading BPF probes: run as root (or with CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN)")]
    PermissionDenied,
    #[error("cannot read {OWN_MOUNT_NS}: {0}; is /proc mounted?")]
    MountNamespace(#[source] std::io::Error),
    #[error(
        "the BPF object has a program {0:?} that belongs to no capability; every program must be listed in capability.rs"
    )]
    UnplacedProgram(String),
    #[error("{capability} is required but cannot run on this kernel: {reason}")]
    Required { capability: crate::Capability, reason: String },
    #[error("could not replace a pinned map of another version: {0}")]
    StalePin(#[source] std::io::Error),
    #[error("could not {action}")]
    Bpf {
        action: String,
        #[source]
        source: libbpf_rs::Error,
    },
}

impl ProbeError {
    pub(crate) fn bpf(action: impl Into<String>, source: libbpf_rs::Error) -> Self {
        if source.kind() == libbpf_rs::ErrorKind::PermissionDenied {
            return ProbeError::PermissionDenied;
        }
        ProbeError::Bpf { action: action.into(), source }
    }
}
