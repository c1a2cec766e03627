//! Writing events out: the terminal or a file, as text or JSON lines.

pub mod file;
pub mod metrics;
pub mod metrics_http;
pub mod run;
pub mod sinks;
pub mod test_pause;

use std::io::{self, Write};
use std::time::Duration;

use rsysmon_event::Filter;

use crate::hub::queue::EventQueue;
pub use crate::hub::shared_event::Format;

/// Take events from `queue` and write the selected ones until the queue is
/// closed and empty. A reader that went away (broken pipe) ends the loop
/// quietly and closes the queue.
pub fn write_events(queue: &EventQueue, filter: &Filter, format: Format, out: impl Write) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(64 * 1024, out);
    let result = (|| loop {
        let batch = queue.pop_all(Duration::from_millis(200));
        if batch.is_empty() && queue.is_closed() {
            return out.flush();
        }
        for event in batch.iter().filter(|e| filter.matches(e)) {
            out.write_all(event.line(format).as_bytes())?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
    })();
    queue.close();
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
