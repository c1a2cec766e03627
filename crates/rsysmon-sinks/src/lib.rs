//! Where the daemon's events go to last: durable outputs.
//!
//! Every sink sits behind the one [`Sink`] trait and runs on a thread of its
//! own ([`runner`]), fed by a bounded buffer of its own ([`EventSource`]):
//! a sink that is slow or whose destination is down costs only itself
//! events, counted at its own loss stage (`sink:NAME`), never the pipeline
//! or another sink. A failed delivery is retried with backoff.

pub mod config;
pub mod file;
pub mod format;
pub mod identity;
pub mod nats;
pub mod runner;
pub mod syslog;
pub mod tls;

use std::fmt;
use std::time::Duration;

use rsysmon_event::{Event, SinkName};

pub use config::OutputsConfig;
pub use format::LineFormat;
pub use runner::{RunningSink, SinkState, SinkStatus};

/// A destination for events.
///
/// [`Sink::send`] is called from the sink's own thread with events in
/// order; it may block (that thread has nothing else to do) but should
/// give up within a few seconds so that shutdown is prompt.
pub trait Sink: Send + 'static {
    /// Which sink this is: names its loss stage.
    fn name(&self) -> SinkName;

    /// Deliver `events`, in order. On failure, say how many of the first
    /// were delivered; the runner retries the rest after a pause.
    fn send(&mut self, events: &[&Event]) -> Result<(), Partial>;

    /// Make what was delivered durable (the file sink's fsync at stop).
    fn close(&mut self) -> Result<(), Partial> {
        Ok(())
    }
}

/// A delivery that failed after `delivered` events.
#[derive(Debug)]
pub struct Partial {
    pub delivered: usize,
    pub error: String,
}

impl Partial {
    pub fn new(delivered: usize, error: impl fmt::Display) -> Self {
        Partial { delivered, error: error.to_string() }
    }
}

/// The bounded buffer in front of a sink. The daemon's hub gives each sink
/// a subscription that drops its oldest events when full and puts a `loss`
/// event for stage `sink:NAME` in their place.
pub trait EventSource: Send + 'static {
    type Item: Send;

    /// The event an item holds.
    fn event(item: &Self::Item) -> &Event;

    /// Everything queued, oldest first; waits up to `timeout` if empty.
    fn pop_all(&self, timeout: Duration) -> Vec<Self::Item>;

    /// No more events will come (the queue may still hold some).
    fn is_closed(&self) -> bool;

    /// Events held now, and the most it holds.
    fn fill(&self) -> (usize, usize);

    /// Events dropped because the sink fell behind.
    fn dropped(&self) -> u64;
}
