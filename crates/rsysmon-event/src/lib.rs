//! The events rsysmon reports, and how they are written out.
//!
//! This crate knows nothing of the kernel: the sensor builds [`Event`]s from
//! probe records, and every output (terminal, JSON lines, clients) formats
//! them from here, so there is one text form and one JSON form.

mod event;
mod filter;
mod json;
mod kind;
mod text;

pub use event::{Detail, Event, ImageVia, LossStage, SinkName, Termination};
pub use filter::{BadPattern, CommPattern, Filter};
pub use json::{to_json_line, SCHEMA_VERSION};
pub use kind::{EventKind, UnknownKind};
pub use text::to_text_line;
