//! The host's files as every other rsysmon crate sees them: a file's
//! identity ([`FileId`]: device and inode, as stat(2) reports them) and the
//! mount table ([`mountinfo`]), defined once for the probes, the blocker
//! and the sensor.

mod file_id;
pub mod mountinfo;

pub use file_id::FileId;
