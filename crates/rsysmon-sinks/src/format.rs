//! The one place where a sink's line format is chosen.

use rsysmon_event::{to_json_line, Event, Format};
use serde::Deserialize;

/// How a sink writes each event: `format = "json"` in its section.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LineFormat {
    /// rsysmon's own JSON schema (docs/events.md).
    #[default]
    Json,
    /// Elastic Common Schema documents (docs/events.md, *ECS*).
    Ecs,
}

impl LineFormat {
    /// The name used in configuration.
    pub fn name(self) -> &'static str {
        match self {
            LineFormat::Json => "json",
            LineFormat::Ecs => "ecs",
        }
    }

    /// `event` as one line, without the newline.
    pub fn line(self, event: &Event) -> String {
        match self {
            LineFormat::Json => to_json_line(event),
            LineFormat::Ecs => Format::Ecs.line(event),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecs_is_a_sink_format_and_the_same_document_as_the_console_writes() {
        let f: LineFormat = serde_json::from_str("\"ecs\"").unwrap();
        assert_eq!((f, f.name()), (LineFormat::Ecs, "ecs"));
        let event =
            Event::new(1, Default::default(), 1, 1, "x".into(), rsysmon_event::Detail::ThreadCreate { creator_tid: 1 });
        assert_eq!(f.line(&event), Format::Ecs.line(&event));
    }
}
