//! A bounded queue of events, in one of two kinds.
//!
//! A *dropping* queue never blocks its producer. It never holds more than
//! its capacity: when full, the oldest event is dropped. Dropped events are
//! not forgotten: they are folded into one `loss` event (for this queue's
//! stage) that waits in front of the oldest kept event, so a reader sees
//! exactly where the gap is and how large it is. The daemon's history is one
//! such queue (stage `queue`); each client's backlog is another (stage
//! `client`): a slow client loses its own events and holds back nobody.
//!
//! A *waiting* queue makes its producer wait for room instead. The producer
//! is the ring-buffer reader, so while it waits the kernel ring buffer (the
//! one big buffer, megabytes) fills instead of a user-space queue dropping:
//! a short stall of the consumer costs nothing, and a long one is lost at
//! stage `kernel`, counted exactly there. `run`'s output is such a queue.
//! Once the monitor is stopping it still waits while the consumer keeps
//! taking events, but not for one that took nothing for [`GIVE_UP_AFTER`]:
//! from then on it drops (counted at its stage), so a stuck consumer cannot
//! keep the monitor from exiting.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rsysmon_event::{Detail, Event, LossStage};

use crate::hub::shared_event::{Shared, SharedEvent};

/// Default capacity, in events.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Default backlog of one daemon client, in events: 2 s at 100,000
/// events/s, so a client that is briefly descheduled on a busy machine
/// misses nothing. The events are shared with the other queues; a stalled
/// client holds at most this many of them alive (about 300 bytes each:
/// 60 MiB of RSS when full, measured with thread events).
pub const DEFAULT_CLIENT_BACKLOG: usize = 200_000;

/// What a full queue does with the next event.
#[derive(Debug, Clone)]
pub enum WhenFull {
    /// Drop the oldest event (counted, and reported as a loss event).
    DropOldest,
    /// Wait for the consumer to make room; drop the oldest only once
    /// `give_up` is set (the monitor is stopping) and the consumer has taken
    /// nothing for [`GIVE_UP_AFTER`].
    Wait { give_up: Arc<AtomicBool> },
}

/// How long a waiting producer sleeps before it looks at `give_up` again.
const RECHECK: Duration = Duration::from_millis(50);

/// How long a stopping monitor waits for a consumer that takes nothing.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(1);

/// A bounded queue with one consumer, dropping or waiting when full.
pub struct EventQueue {
    state: Mutex<State>,
    /// Signalled when events arrive (or the queue closes).
    ready: Condvar,
    /// Signalled when the consumer made room (or the queue closes).
    room: Condvar,
    when_full: WhenFull,
}

struct State {
    queue: VecDeque<Shared>,
    /// Stand for everything dropped since the consumer last read, one per
    /// stage (a dropped `loss` event keeps its own stage, so a reader's
    /// count per stage is `status`'s); always older than everything in
    /// `queue`.
    front_loss: Vec<Event>,
    capacity: usize,
    stage: LossStage,
    dropped: u64,
    closed: bool,
    /// How long producers waited for room, in total.
    waited: Duration,
    /// A stopping producer gave up on the consumer; cleared when it reads.
    consumer_stuck: bool,
}

impl EventQueue {
    /// A queue holding at most `capacity` events (at least 1); what it
    /// drops is reported as lost at `stage`.
    pub fn new(capacity: usize, stage: LossStage) -> Self {
        Self::with(capacity, stage, WhenFull::DropOldest)
    }

    /// A queue holding at most `capacity` events (at least 1) that does
    /// `when_full` when full; what it drops is reported as lost at `stage`.
    pub fn with(capacity: usize, stage: LossStage, when_full: WhenFull) -> Self {
        let capacity = capacity.max(1);
        let queue = VecDeque::with_capacity(capacity.min(65_536));
        let state = State {
            queue,
            front_loss: Vec::new(),
            capacity,
            stage,
            dropped: 0,
            closed: false,
            waited: Duration::ZERO,
            consumer_stuck: false,
        };
        Self { state: Mutex::new(state), ready: Condvar::new(), room: Condvar::new(), when_full }
    }

    /// Whether a full queue makes its producer wait.
    pub fn waits(&self) -> bool {
        matches!(self.when_full, WhenFull::Wait { .. })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a consistent queue behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Add events in order: one lock and one wake-up of the consumer for
    /// the lot (per queue-full of them, when waiting). When full, drop the
    /// oldest or wait for room, as the queue was made to. A closed queue
    /// has no consumer left and takes nothing.
    pub fn push_all(&self, events: &[Shared]) {
        if events.is_empty() {
            return;
        }
        let mut state = self.lock();
        for event in events {
            if state.queue.len() >= state.capacity {
                state = self.make_room(state);
                if state.closed {
                    return;
                }
            }
            state.queue.push_back(Shared::clone(event));
        }
        drop(state);
        self.ready.notify_one();
    }

    /// Free at least one slot of a full queue: drop the oldest event, or
    /// wake the consumer and wait until it took some.
    fn make_room<'a>(&'a self, mut state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        let WhenFull::Wait { give_up } = &self.when_full else {
            state.drop_oldest();
            return state;
        };
        let start = Instant::now();
        while state.queue.len() >= state.capacity && !state.closed {
            if give_up.load(Ordering::Relaxed) && (state.consumer_stuck || start.elapsed() >= GIVE_UP_AFTER) {
                state.consumer_stuck = true;
                state.drop_oldest();
                break;
            }
            self.ready.notify_one();
            state = self.room.wait_timeout(state, RECHECK).unwrap_or_else(|e| e.into_inner()).0;
        }
        state.waited += start.elapsed();
        state
    }

    /// Everything queued, oldest first; waits up to `timeout` if empty.
    pub fn pop_all(&self, timeout: Duration) -> Vec<Shared> {
        let mut state = self.lock();
        if state.queue.is_empty() && state.front_loss.is_empty() && !state.closed {
            state = self.ready.wait_timeout(state, timeout).unwrap_or_else(|e| e.into_inner()).0;
        }
        let mut out = Vec::with_capacity(state.queue.len() + 1);
        out.extend(state.take_front_loss().into_iter().map(SharedEvent::new));
        out.extend(state.queue.drain(..));
        state.consumer_stuck = false;
        drop(state);
        self.room.notify_all();
        out
    }

    /// No more events will come, or none will be read; wakes both sides.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
        self.room.notify_all();
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

    /// How long producers waited for room, in total (back-pressure that
    /// the kernel ring buffer absorbed).
    pub fn waited(&self) -> Duration {
        self.lock().waited
    }
}

impl State {
    /// Free one slot by folding the oldest event into the front loss event
    /// of its stage: this queue's, or the stage of a dropped loss event.
    fn drop_oldest(&mut self) {
        let Some(oldest) = self.queue.pop_front() else { return };
        self.dropped += count_as_drop(&oldest);
        let stage = match oldest.detail {
            Detail::Loss { stage, .. } => stage,
            _ => self.stage,
        };
        let weight = oldest.weight();
        let held = self.front_loss.iter_mut().find(|l| matches!(l.detail, Detail::Loss { stage: s, .. } if s == stage));
        match held {
            Some(loss) => {
                if let Detail::Loss { lost, .. } = &mut loss.detail {
                    *lost += weight;
                }
            }
            None => self.front_loss.push(as_loss(&oldest, stage)),
        }
        // Every front loss event ends at the newest dropped event for now;
        // their sequence numbers are spread over the span when taken.
        for loss in &mut self.front_loss {
            loss.seq = oldest.seq;
            loss.time = oldest.time;
        }
    }

    /// The front loss events, numbered so that together they cover the
    /// dropped span exactly: each ends where the next begins.
    fn take_front_loss(&mut self) -> Vec<Event> {
        let mut losses = std::mem::take(&mut self.front_loss);
        let mut end = losses.last().map(|l| l.seq).unwrap_or_default();
        for loss in losses.iter_mut().rev() {
            loss.seq = end;
            end = end.saturating_sub(loss.weight());
        }
        losses
    }
}

/// A loss event at `stage` standing for `event` (and what it stood for).
fn as_loss(event: &Event, stage: LossStage) -> Event {
    let mut loss = Event::new(event.seq, event.time, 0, 0, String::new(), Detail::Loss { lost: event.weight(), stage });
    loss.host = event.host.clone();
    loss
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
    fn a_dropped_kernel_loss_keeps_its_stage_and_is_not_counted_twice() {
        let queue = EventQueue::new(3, LossStage::Queue);
        let events = [event(1), loss(5, 4, LossStage::Kernel), event(6), event(7), event(8)];
        queue.push_all(&events.into_iter().map(SharedEvent::new).collect::<Vec<_>>());
        let out = queue.pop_all(Duration::ZERO);
        // The reader's totals per stage are what `status` says: 1 lost
        // here, 4 in the kernel.
        assert_eq!(out[0].detail, Detail::Loss { lost: 1, stage: LossStage::Queue });
        assert_eq!(out[0].seq, 1);
        assert_eq!(out[1].detail, Detail::Loss { lost: 4, stage: LossStage::Kernel });
        assert_eq!(out[1].seq, 5);
        assert_eq!(out.len(), 5);
        assert_eq!(queue.dropped(), 1);
        assert_accounts_for(&out, 1, 8);
    }

    fn waiting(capacity: usize) -> (Arc<EventQueue>, Arc<AtomicBool>) {
        let give_up = Arc::new(AtomicBool::new(false));
        let queue = EventQueue::with(capacity, LossStage::Queue, WhenFull::Wait { give_up: Arc::clone(&give_up) });
        (Arc::new(queue), give_up)
    }

    #[test]
    fn a_waiting_queue_holds_its_producer_back_and_loses_nothing() {
        let (queue, _) = waiting(10);
        let events: Vec<Shared> = (1..=1000).map(|seq| SharedEvent::new(event(seq))).collect();
        let producer = {
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || {
                for chunk in events.chunks(64) {
                    queue.push_all(chunk);
                }
            })
        };
        // A consumer slower than the producer: the producer must wait.
        let mut seen = Vec::new();
        while seen.len() < 1000 {
            std::thread::sleep(Duration::from_millis(1));
            seen.extend(queue.pop_all(Duration::from_secs(5)).iter().map(|e| e.seq));
        }
        producer.join().unwrap();
        assert_eq!(seen, (1..=1000).collect::<Vec<_>>());
        assert_eq!(queue.dropped(), 0);
        assert!(queue.waited() > Duration::ZERO);
        assert!(queue.waits());
    }

    #[test]
    fn a_stopping_waiting_queue_gives_up_on_a_stuck_consumer_and_counts_what_it_drops() {
        let (queue, give_up) = waiting(10);
        let events: Vec<Shared> = (1..=30).map(|seq| SharedEvent::new(event(seq))).collect();
        give_up.store(true, Ordering::Relaxed);
        let start = Instant::now();
        queue.push_all(&events);
        // One wait for the stuck consumer, not one per event.
        let took = start.elapsed();
        assert!(took >= GIVE_UP_AFTER && took < 3 * GIVE_UP_AFTER, "{took:?}");
        let out = queue.pop_all(Duration::ZERO);
        assert_eq!(out[0].detail, Detail::Loss { lost: 20, stage: LossStage::Queue });
        assert_eq!(queue.dropped(), 20);
        assert_accounts_for(&out, 1, 30);
    }

    #[test]
    fn a_stopping_waiting_queue_still_waits_for_a_slow_consumer() {
        let (queue, give_up) = waiting(10);
        give_up.store(true, Ordering::Relaxed);
        let consumer = {
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || {
                let mut seen = 0;
                while seen < 50 {
                    std::thread::sleep(GIVE_UP_AFTER / 10);
                    seen += queue.pop_all(Duration::from_secs(5)).len();
                }
            })
        };
        queue.push_all(&(1..=50).map(|seq| SharedEvent::new(event(seq))).collect::<Vec<_>>());
        consumer.join().unwrap();
        assert_eq!(queue.dropped(), 0);
    }

    #[test]
    fn closing_a_waiting_queue_releases_its_producer() {
        let (queue, _) = waiting(2);
        let producer = {
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || queue.push_all(&(1..=5).map(|s| SharedEvent::new(event(s))).collect::<Vec<_>>()))
        };
        std::thread::sleep(Duration::from_millis(100));
        assert!(!producer.is_finished());
        queue.close();
        producer.join().unwrap();
    }

    #[test]
    fn close_wakes_an_empty_wait() {
        let queue = EventQueue::new(10, LossStage::Client);
        queue.close();
        assert!(queue.pop_all(Duration::from_secs(10)).is_empty());
        assert!(queue.is_closed());
    }
}
