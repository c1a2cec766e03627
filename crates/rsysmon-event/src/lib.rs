//! The events rsysmon reports, and how they are written out.
//!
//! This crate knows nothing of the kernel: the sensor builds [`Event`]s from
//! probe records, and every output (terminal, JSON lines, clients) formats
//! them from here through [`Format`]: one text form, one JSON form, one ECS form.

mod ecs;
mod event;
mod filter;
mod format;
mod host;
mod json;
mod kind;
mod text;

pub use ecs::{to_ecs, to_ecs_line, ECS_VERSION};
pub use event::{Detail, Event, FileHash, HashStatus, ImageVia, LossStage, ProcessContext, SinkName, Termination};
pub use filter::{BadPattern, CommPattern, Filter};
pub use format::{Format, UnknownFormat};
pub use host::Host;
pub use json::{to_json_line, SCHEMA_VERSION};
pub use kind::{EventKind, UnknownKind};
pub use text::to_text_line;
