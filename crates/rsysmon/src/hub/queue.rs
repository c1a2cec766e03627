//! A bounded queue of events that never blocks its producer.
//!
//! It never holds more than its capacity (10000 events by default): when full, the oldest event is dropped. Dropped events are not
//! forgotten: they are folded into one `loss` event (for this queue's stage)
//! that waits in front of the oldest kept event, so a reader sees exactly
//! where the gap is and how large it is. The daemon's history is one such
//! queue (stage `queue`); each client's backlog is another (stage `client`).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use rsysmon_event::{Detail, Event, LossStage};

use crate::hub::shared_event::{Shared, SharedEvent};

/// Default capacity, in events.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// A bounded, drop-oldest, many-producer queue with one consumer.
pub struct EventQueue {
    state: Mutex<State>,
    ready: Condvar,
}

struct State {
    queue: VecDeque<Shared>,
    /// Stands for everything dropped since the consumer last read; always
    /// older than everything in `queue`.
    front_loss: Option<Event>,
    capacity: usize,
    stage: LossStage,
    dropped: u64,
    closed: bool,
}

impl EventQueue {
    /// A queue holding at most `capacity` events (at least 1); what it
    /// drops is reported as lost at `stage`.
    pub fn new(capacity: usize, stage: LossStage) -> Self {
        let capacity = capacity.max(1);
        let queue = VecDeque::with_capacity(capacity.min(65_536));
        Self {
            state: Mutex::new(State { queue, front_loss: None, capacity, stage, dropped: 0, closed: false }),
            ready: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a consistent queue behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Add events in order, dropping the oldest as needed: one lock and one
    /// wake-up of the consumer for the lot.
    pub fn push_all(&self, events: &[Shared]) {
        if events.is_empty() {
            return;
        }
        let mut state = self.lock();
        for event in events {
            if state.queue.len() >= state.capacity {
                state.drop_oldest();
            }
            state.queue.push_back(Shared::clone(event));
        }
        drop(state);
        self.ready.notify_one();
    }

    /// Everything queued, oldest first; waits up to `timeout` if empty.
    pub fn pop_all(&self, timeout: Duration) -> Vec<Shared> {
        let mut state = self.lock();
        if state.queue.is_empty() && state.front_loss.is_none() && !state.closed {
            state = self.ready.wait_timeout(state, timeout).unwrap_or_else(|e| e.into_inner()).0;
        }
        let mut out = Vec::with_capacity(state.queue.len() + 1);
        out.extend(state.front_loss.take().map(SharedEvent::new));
        out.extend(state.queue.drain(..));
        out
    }

    /// No more events will come; wakes the consumer.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// The newest `last` events, oldest first, without taking them, and how
    /// many events the queue has dropped so far.
    pub fn snapshot(&self, last: usize) -> (Vec<Shared>, u64) {
        let state = self.lock();
        let skip = state.queue.len().saturating_sub(last);
        (state.queue.iter().skip(skip).cloned().collect(), state.dropped)
    }

    /// Events held now, and the most it holds.
    pub fn fill(&self) -> (usize, usize) {
        let state = self.lock();
        (state.queue.len(), state.capacity)
    }

    /// Where what this queue drops is lost.
    pub fn stage(&self) -> LossStage {
        self.lock().stage
    }

    /// Whether [`EventQueue::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Events (not counting loss events) dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

impl State {
    /// Free one slot by folding the oldest event into the front loss event.
    fn drop_oldest(&mut self) {
        let Some(oldest) = self.queue.pop_front() else { return };
        self.dropped += count_as_drop(&oldest);
        match &mut self.front_loss {
            Some(loss) => {
                if let Detail::Loss { lost, .. } = &mut loss.detail {
                    *lost += oldest.weight();
                }
                loss.seq = oldest.seq;
                loss.time = oldest.time;
            }
            None => self.front_loss = Some(as_loss(&oldest, self.stage)),
        }
    }
}

/// A loss event at `stage` standing for `event` (and what it stood for).
fn as_loss(event: &Event, stage: LossStage) -> Event {
    Event {
        seq: event.seq,
        time: event.time,
        pid: 0,
        tid: 0,
        comm: String::new(),
        detail: Detail::Loss { lost: event.weight(), stage },
    }
}

/// Loss events were counted at their own stage; only real events count as
/// dropped by this queue.
fn count_as_drop(event: &Event) -> u64 {
    match event.detail {
        Detail::Loss { .. } => 0,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::tests::event;

    fn loss(seq: u64, lost: u64, stage: LossStage) -> Event {
        Event { detail: Detail::Loss { lost, stage }, ..event(seq) }
    }

    /// Every seq the producer made is accounted for: delivered, or inside
    /// the loss event delivered in its place.
    fn assert_accounts_for(events: &[Shared], first: u64, last: u64) {
        let mut expected = first;
        for e in events {
            assert_eq!(e.seq - e.weight() + 1, expected, "gap before {e:?}");
            expected = e.seq + 1;
        }
        assert_eq!(expected, last + 1);
    }

    #[test]
    fn overflow_keeps_newest_and_one_loss_event_with_exact_count() {
        let queue = EventQueue::new(100, LossStage::Queue);
        let events: Vec<Shared> = (1..=1000).map(|seq| SharedEvent::new(event(seq))).collect();
        // One batch larger than the queue, then one at a time.
        queue.push_all(&events[..500]);
        for e in &events[500..] {
            queue.push_all(std::slice::from_ref(e));
        }
        let out = queue.pop_all(Duration::ZERO);
        assert_eq!(out.len(), 101);
        assert_eq!(out[0].detail, Detail::Loss { lost: 900, stage: LossStage::Queue });
        assert_eq!(out[0].seq, 900);
        assert_eq!(out[1].seq, 901);
        assert_eq!(out[100].seq, 1000);
        assert_eq!(queue.dropped(), 900);
        assert_accounts_for(&out, 1, 1000);
    }

    #[test]
    fn snapshot_returns_newest_without_taking_them() {
        let queue = EventQueue::new(100, LossStage::Queue);
        queue.push_all(&(1..=1000).map(|seq| SharedEvent::new(event(seq))).collect::<Vec<_>>());
        let (events, dropped) = queue.snapshot(usize::MAX);
        assert_eq!((events.len(), dropped), (100, 900));
        assert_eq!(events[0].seq, 901);
        assert_eq!(queue.snapshot(5).0.iter().map(|e| e.seq).collect::<Vec<_>>(), [996, 997, 998, 999, 1000]);
        assert_eq!(queue.fill(), (100, 100));
    }

    #[test]
    fn kernel_loss_events_fold_into_queue_loss_without_double_counting() {
        let queue = EventQueue::new(3, LossStage::Queue);
        let events = [event(1), loss(5, 4, LossStage::Kernel), event(6), event(7), event(8)];
        queue.push_all(&events.into_iter().map(SharedEvent::new).collect::<Vec<_>>());
        let out = queue.pop_all(Duration::ZERO);
        assert_eq!(out[0].detail, Detail::Loss { lost: 5, stage: LossStage::Queue });
        assert_eq!(out[0].seq, 5);
        assert_eq!(out.len(), 4);
        assert_eq!(queue.dropped(), 1);
        assert_accounts_for(&out, 1, 8);
    }

    #[test]
    fn close_wakes_an_empty_wait() {
        let queue = EventQueue::new(10, LossStage::Client);
        queue.close();
        assert!(queue.pop_all(Duration::from_secs(10)).is_empty());
        assert!(queue.is_closed());
    }
}
