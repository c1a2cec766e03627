//! The one name of an output format, and the one way to format an event in
//! it: every output (console, file, syslog, a client's stream) goes through
//! [`Format::line`].

use std::fmt;
use std::str::FromStr;

use crate::event::Event;
use crate::{ecs, json, text};

/// How an event is written out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// rsysmon's own JSON lines, versioned (docs/events.md).
    #[default]
    Json,
    /// The book's one-line text form.
    Text,
    /// Elastic Common Schema documents, one per line.
    Ecs,
}

impl Format {
    /// Every format, as `--format` lists them.
    pub const ALL: [Format; 3] = [Format::Text, Format::Json, Format::Ecs];

    /// The event as one line in this format, without the newline.
    pub fn line(self, event: &Event) -> String {
        match self {
            Format::Json => json::to_json_line(event),
            Format::Text => text::to_text_line(event),
            Format::Ecs => ecs::to_ecs_line(event),
        }
    }

    /// The name used on the command line and in the config file.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Text => "text",
            Format::Ecs => "ecs",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that names no format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format {given:?}; known formats: text, json, ecs")]
pub struct UnknownFormat {
    given: String,
}

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| UnknownFormat { given: s.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_json_is_the_default() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>(), Ok(f));
            assert_eq!(serde_json::to_string(&f).unwrap(), format!("\"{f}\""));
        }
        assert_eq!(Format::default(), Format::Json);
        assert!("xml".parse::<Format>().unwrap_err().to_string().contains("ecs"));
    }
}
