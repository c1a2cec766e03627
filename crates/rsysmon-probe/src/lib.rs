//! rsysmon's kernel side: the BPF probes, how they are loaded and attached,
//! and the ring buffer they write to.
//!
//! The probes are C with CO-RE (`src/bpf/`), compiled by clang in `build.rs`
//! into one BPF object. Its record layouts come from `src/bpf/records.h`
//! through bindgen, so the probes and [`records`] cannot disagree.

mod blocked_files;
mod decode;
mod file_id;
mod loader;
pub mod records;
mod skel;

pub use blocked_files::BlockedFiles;
pub use decode::{decode, Creator, DecodeError, Header, ImageVia, KernelPath, KernelRecord, TamperMethod};
pub use file_id::FileId;
pub use loader::{ProbeConfig, ProbeError, Probes, RecordReader};
