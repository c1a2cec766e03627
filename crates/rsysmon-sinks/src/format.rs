//! The one place where a sink's line format is chosen.

use rsysmon_event::{to_json_line, Event};
use serde::Deserialize;

/// How a sink writes each event: `format = "json"` in its section.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LineFormat {
    /// rsysmon's own JSON schema (docs/events.md).
    #[default]
    Json,
}

impl LineFormat {
    /// The name used in configuration.
    pub fn name(self) -> &'static str {
        match self {
            LineFormat::Json => "json",
        }
    }

    /// `event` as one line, without the newline.
    pub fn line(self, event: &Event) -> String {
        match self {
            LineFormat::Json => to_json_line(event),
        }
    }
}
