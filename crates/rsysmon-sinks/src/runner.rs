//! The thread behind each sink: take what its buffer holds, deliver it in
//! order, retry with backoff while the destination is down.
//!
//! Nothing is dropped here while the daemon runs: a batch that failed stays
//! in hand and is retried, while the buffer in front (bounded) drops its
//! oldest and says so with a `loss` event for `sink:NAME`, delivered once
//! the destination is back. Only at stop, if the destination is still down
//! when the stop deadline passes, is the batch in hand given up; it is
//! counted too.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rsysmon_event::{Detail, Event, SinkName};
use serde::{Deserialize, Serialize};

use crate::{EventSource, LineFormat, Sink};

/// Most events handed to [`Sink::send`] at once.
pub const MAX_BATCH: usize = 4096;
/// First pause after a failed delivery; doubled up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What a sink is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SinkState {
    /// Nothing delivered yet, no failure yet.
    Starting,
    /// The last delivery succeeded.
    Up,
    /// The last delivery failed; retrying with backoff.
    Retrying,
    /// The sink's thread ended.
    Stopped,
}

impl SinkState {
    fn from_u8(v: u8) -> SinkState {
        match v {
            0 => SinkState::Starting,
            1 => SinkState::Up,
            2 => SinkState::Retrying,
            _ => SinkState::Stopped,
        }
    }

    /// The name used in output.
    pub fn name(self) -> &'static str {
        match self {
            SinkState::Starting => "starting",
            SinkState::Up => "up",
            SinkState::Retrying => "retrying",
            SinkState::Stopped => "stopped",
        }
    }
}

/// A sink as `rsysmon status` and the metrics show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkStatus {
    /// `file`, `syslog` or `nats`.
    pub name: String,
    pub state: SinkState,
    /// Where it writes, e.g. the file's path or the server's URL.
    pub destination: String,
    pub format: String,
    /// Events (loss events included) delivered since start.
    pub delivered: u64,
    /// Events lost at `sink:NAME`: dropped by its full buffer, or given up
    /// at stop.
    pub lost: u64,
    /// Events waiting in its buffer now, and the most it holds.
    pub queued: usize,
    pub capacity: usize,
    /// Seq of the newest event delivered (0 before the first).
    pub last_seq: u64,
    /// Failed deliveries since start, each followed by a retry.
    pub failures: u64,
    /// Why the newest failed delivery failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Counters the sink's thread keeps and any thread may read.
#[derive(Default)]
struct Counters {
    state: AtomicU8,
    delivered: AtomicU64,
    failures: AtomicU64,
    abandoned: AtomicU64,
    last_seq: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// When to give up retrying; set at stop.
    give_up_at: Mutex<Option<Instant>>,
}

type BufferStats = Box<dyn Fn() -> ((usize, usize), u64) + Send + Sync>;

/// A sink running on its own thread.
pub struct RunningSink {
    name: SinkName,
    destination: String,
    format: LineFormat,
    counters: Arc<Counters>,
    buffer: BufferStats,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl RunningSink {
    /// Start delivering what `source` receives to `sink` on a new thread.
    pub fn start<S>(sink: Box<dyn Sink>, destination: String, format: LineFormat, source: S) -> std::io::Result<Self>
    where
        S: EventSource + Clone + Sync,
    {
        let name = sink.name();
        let counters = Arc::new(Counters::default());
        let stats_source = source.clone();
        let buffer: BufferStats = Box::new(move || (stats_source.fill(), stats_source.dropped()));
        let thread = {
            let counters = Arc::clone(&counters);
            std::thread::Builder::new()
                .name(format!("sink-{}", name.name()))
                .spawn(move || deliver(sink, &source, &counters))?
        };
        Ok(RunningSink { name, destination, format, counters, buffer, thread: Mutex::new(Some(thread)) })
    }

    pub fn name(&self) -> SinkName {
        self.name
    }

    /// Events lost at this sink's stage so far.
    pub fn lost(&self) -> u64 {
        (self.buffer)().1 + self.counters.abandoned.load(Ordering::Relaxed)
    }

    pub fn status(&self) -> SinkStatus {
        let ((queued, capacity), _) = (self.buffer)();
        let c = &self.counters;
        SinkStatus {
            name: self.name.name().to_string(),
            state: SinkState::from_u8(c.state.load(Ordering::Relaxed)),
            destination: self.destination.clone(),
            format: self.format.name().to_string(),
            delivered: c.delivered.load(Ordering::Relaxed),
            lost: self.lost(),
            queued,
            capacity,
            last_seq: c.last_seq.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            last_error: c.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    /// Wait for the sink to deliver what its (closed) buffer holds, giving
    /// up on a destination still down at `deadline`.
    pub fn stop(&self, deadline: Instant) {
        *self.counters.give_up_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(deadline);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// The sink's thread: until the buffer is closed and everything delivered
/// (or given up at stop).
fn deliver<S: EventSource>(mut sink: Box<dyn Sink>, source: &S, counters: &Counters) {
    let name = sink.name().name();
    let mut pending: VecDeque<S::Item> = VecDeque::new();
    let mut backoff = FIRST_BACKOFF;
    loop {
        if pending.is_empty() {
            pending.extend(source.pop_all(Duration::from_millis(200)));
            if pending.is_empty() {
                if source.is_closed() {
                    break;
                }
                continue;
            }
        }
        let n = pending.len().min(MAX_BATCH);
        let batch: Vec<&Event> = pending.iter().take(n).map(S::event).collect();
        let result = sink.send(&batch);
        let delivered = match &result {
            Ok(()) => n,
            Err(partial) => partial.delivered.min(n),
        };
        if delivered > 0 {
            counters.last_seq.store(batch[delivered - 1].seq, Ordering::Relaxed);
            counters.delivered.fetch_add(delivered as u64, Ordering::Relaxed);
        }
        drop(batch);
        pending.drain(..delivered);
        match result {
            Ok(()) => {
                if counters.state.swap(1, Ordering::Relaxed) == 2 {
                    tracing::info!("sink {name}: delivering again");
                }
                backoff = FIRST_BACKOFF;
            }
            Err(partial) => {
                counters.failures.fetch_add(1, Ordering::Relaxed);
                if counters.state.swap(2, Ordering::Relaxed) != 2 {
                    tracing::warn!("sink {name}: delivery failed, retrying: {}", partial.error);
                }
                *counters.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(partial.error);
                if past_give_up(counters) {
                    let abandoned =
                        pending.iter().filter(|e| !matches!(S::event(e).detail, Detail::Loss { .. })).count();
                    counters.abandoned.fetch_add(abandoned as u64, Ordering::Relaxed);
                    tracing::warn!("sink {name}: stopping with the destination down; {abandoned} events lost");
                    pending.clear();
                    if source.is_closed() {
                        break;
                    }
                }
                sleep_unless_giving_up(backoff, counters);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    if let Err(e) = sink.close() {
        tracing::warn!("sink {name}: closing failed: {}", e.error);
    }
    counters.state.store(3, Ordering::Relaxed);
}

fn past_give_up(counters: &Counters) -> bool {
    counters.give_up_at.lock().unwrap_or_else(|e| e.into_inner()).is_some_and(|at| Instant::now() >= at)
}

fn sleep_unless_giving_up(pause: Duration, counters: &Counters) {
    let until = Instant::now() + pause;
    while Instant::now() < until && !past_give_up(counters) {
        std::thread::sleep(Duration::from_millis(20).min(until.saturating_duration_since(Instant::now())));
    }
}
