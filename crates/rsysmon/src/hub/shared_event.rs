//! An event as it travels to many readers: shared, and formatted once.
//!
//! The hub hands the same event to the history and to every client; each
//! client wants it as a JSON, ECS or text line. Sharing one allocation and
//! formatting each form at most once keeps ten clients from costing ten
//! serializations per event.

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

pub use rsysmon_event::Format;
use rsysmon_event::{to_json_line, to_text_line, Event};

/// An event with its formatted lines, computed on first use.
#[derive(Debug)]
pub struct SharedEvent {
    event: Event,
    json: OnceLock<String>,
    text: OnceLock<String>,
    ecs: OnceLock<String>,
}

/// What queues hold: cheap to clone.
pub type Shared = Arc<SharedEvent>;

impl SharedEvent {
    pub fn new(event: Event) -> Shared {
        Arc::new(SharedEvent { event, json: OnceLock::new(), text: OnceLock::new(), ecs: OnceLock::new() })
    }

    /// The event as one line in `format`, without the newline.
    pub fn line(&self, format: Format) -> &str {
        match format {
            Format::Json => self.json.get_or_init(|| to_json_line(&self.event)),
            Format::Text => self.text.get_or_init(|| to_text_line(&self.event)),
            Format::Ecs => self.ecs.get_or_init(|| Format::Ecs.line(&self.event)),
        }
    }
}

impl Deref for SharedEvent {
    type Target = Event;

    fn deref(&self) -> &Event {
        &self.event
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsysmon_event::Detail;

    #[test]
    fn lines_are_formatted_once_and_match_the_formatters() {
        let event = Event::new(3, Default::default(), 1, 2, "x".into(), Detail::ThreadCreate { creator_tid: 1 });
        let shared = SharedEvent::new(event.clone());
        let first = shared.line(Format::Json) as *const str;
        assert_eq!(shared.line(Format::Json), to_json_line(&event));
        assert_eq!(shared.line(Format::Json) as *const str, first);
        assert_eq!(shared.line(Format::Text), to_text_line(&event));
        assert_eq!(shared.line(Format::Ecs), Format::Ecs.line(&event));
        assert_eq!(shared.seq, 3);
    }
}
