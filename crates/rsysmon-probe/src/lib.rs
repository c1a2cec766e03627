//! rsysmon's kernel side: the BPF probes, how they are loaded and attached,
//! and the ring buffer they write to.
//!
//! The probes are C with CO-RE (`src/bpf/`), compiled by clang in `build.rs`
//! into one BPF object. Its record layouts come from `src/bpf/records.h`
//! through bindgen, so the probes and [`records`] cannot disagree.

mod blocked_files;
mod blocked_trees;
pub mod bpf_lsm;
mod capability;
mod decode;
mod error;
pub mod features;
pub mod kernel_fs;
mod loader;
pub mod pins;
pub mod plan;
pub mod records;
mod skel;
pub mod takeover_hooks;

pub use blocked_files::BlockedFiles;
pub use blocked_trees::{BlockedTrees, TreeKind};
pub use capability::{Capabilities, Capability, CapabilityState, UnknownCapability};
pub use decode::{decode, Creator, DecodeError, Header, KernelPath, KernelRecord, TamperMethod};
pub use error::ProbeError;
pub use loader::{Enforcement, KernelEnforcement, ProbeConfig, Probes, RecordReader};
pub use rsysmon_event::ImageVia;
pub use rsysmon_fs::FileId;
