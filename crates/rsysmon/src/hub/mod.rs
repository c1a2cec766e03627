//! Where the sensor's events go: a bounded history and every subscriber.
//!
//! The history and each client's backlog are bounded queues that drop
//! their oldest events (and say so) when full, so a stalled client costs
//! itself events, never the pipeline or the others. An output that must see
//! every event (`run`'s console or file) subscribes with a *waiting* queue
//! instead: when it falls behind, publishing waits, the reader stops
//! draining the ring buffer, and the kernel ring buffer holds the surplus
//! (see [`queue`]). Every dropping queue gets a batch before any waiting
//! queue does, so a waiting output never delays a client.

pub mod queue;
pub mod shared_event;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rsysmon_event::{Event, EventKind, LossStage};

use crate::hub::queue::{EventQueue, WhenFull};
use crate::hub::shared_event::{Shared, SharedEvent};

/// Remote-thread detections kept for `rsysmon remote-threads`.
pub const DETECTIONS_KEPT: usize = 1000;

/// The daemon's history plus its live subscribers.
pub struct Hub {
    history: Option<EventQueue>,
    /// Remote threads, kept apart so that a busy system does not push them
    /// out of the history before anyone lists them.
    detections: EventQueue,
    subscribers: Mutex<Vec<Arc<EventQueue>>>,
    /// Seq of the newest event published.
    last_seq: AtomicU64,
}

impl Hub {
    /// A hub keeping the newest `history` events (none if `None`).
    pub fn new(history: Option<usize>) -> Self {
        Self {
            history: history.map(|n| EventQueue::new(n, LossStage::Queue)),
            detections: EventQueue::new(DETECTIONS_KEPT, LossStage::Queue),
            subscribers: Mutex::new(Vec::new()),
            last_seq: AtomicU64::new(0),
        }
    }

    fn subscribers(&self) -> MutexGuard<'_, Vec<Arc<EventQueue>>> {
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hand an event to the history and to every subscriber.
    pub fn publish(&self, event: Event) {
        self.publish_all(vec![event]);
    }

    /// Hand events, in order, to the history and to every subscriber: each
    /// queue is locked and its reader woken once for the whole batch.
    pub fn publish_all(&self, events: impl IntoIterator<Item = Event>) {
        let events: Vec<Shared> = events.into_iter().map(SharedEvent::new).collect();
        self.publish_shared(&events);
    }

    /// As [`Hub::publish_all`], for events already shared: the reader
    /// wraps each event once, as the sensor makes it, instead of moving it
    /// (400 bytes) into a batch and then again into its allocation.
    pub fn publish_shared(&self, events: &[Shared]) {
        let Some(newest) = events.last() else {
            return;
        };
        self.last_seq.fetch_max(newest.seq, Ordering::Relaxed);
        let mut subscribers = self.subscribers();
        // Subscribers that went away are dropped here, on the next batch.
        subscribers.retain(|s| !s.is_closed());
        let mut waiting = Vec::new();
        for s in subscribers.iter() {
            if s.waits() {
                waiting.push(Arc::clone(s));
            } else {
                s.push_all(events);
            }
        }
        // Not held while waiting: `status` and new clients need it.
        drop(subscribers);
        let detections: Vec<Shared> = events.iter().filter(|e| e.kind() == EventKind::RemoteThread).cloned().collect();
        self.detections.push_all(&detections);
        if let Some(history) = &self.history {
            history.push_all(events);
        }
        for s in waiting {
            s.push_all(events);
        }
    }

    /// A new live subscriber: every event published from now on, until it
    /// closes its queue, with a backlog of `capacity` events whose overflow
    /// is lost at `stage`.
    pub fn subscribe(&self, capacity: usize, stage: LossStage) -> Arc<EventQueue> {
        let queue = Arc::new(EventQueue::new(capacity, stage));
        self.subscribers().push(Arc::clone(&queue));
        queue
    }

    /// A new live subscriber that misses nothing: every event published
    /// from now on, with a backlog of `capacity` events; when the backlog
    /// is full, publishing waits for it (the kernel ring buffer fills
    /// meanwhile). Once `give_up` is set (the monitor is stopping) it drops
    /// its oldest instead, counted at stage `queue`.
    pub fn subscribe_waiting(&self, capacity: usize, give_up: Arc<AtomicBool>) -> Arc<EventQueue> {
        let queue = Arc::new(EventQueue::with(capacity, LossStage::Queue, WhenFull::Wait { give_up }));
        self.subscribers().push(Arc::clone(&queue));
        queue
    }

    /// The newest `last` events kept, and how many the history has dropped.
    pub fn history(&self, last: usize) -> (Vec<Shared>, u64) {
        self.history.as_ref().map(|h| h.snapshot(last)).unwrap_or_default()
    }

    /// The remote threads detected, oldest first (the newest
    /// [`DETECTIONS_KEPT`]).
    pub fn detections(&self) -> Vec<Shared> {
        self.detections.snapshot(usize::MAX).0
    }

    /// Seq of the newest event published (0 before the first): how far a
    /// sink's last delivered seq lags behind.
    pub fn last_seq(&self) -> u64 {
        self.last_seq.load(Ordering::Relaxed)
    }

    /// Events the history holds, and the most it holds.
    pub fn history_fill(&self) -> (usize, usize) {
        self.history.as_ref().map(EventQueue::fill).unwrap_or_default()
    }

    /// Events the history dropped when full.
    pub fn history_dropped(&self) -> u64 {
        self.history.as_ref().map(EventQueue::dropped).unwrap_or_default()
    }

    /// Live client subscribers, and the events they missed in total
    /// (sinks count their own).
    pub fn subscriber_stats(&self) -> (usize, u64) {
        let subscribers = self.subscribers();
        let clients = || subscribers.iter().filter(|s| s.stage() == LossStage::Client);
        (clients().filter(|s| !s.is_closed()).count(), clients().map(|s| s.dropped()).sum())
    }

    /// Close every subscriber: no more events will come.
    pub fn close(&self) {
        for s in self.subscribers().iter() {
            s.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsysmon_event::Detail;
    use std::time::Duration;

    /// A small event with sequence number `seq`.
    pub(crate) fn event(seq: u64) -> Event {
        Event::new(seq, Default::default(), 1, 1, "x".into(), Detail::ThreadCreate { creator_tid: 1 })
    }

    #[test]
    fn a_stalled_subscriber_loses_alone_and_is_told_exactly() {
        let hub = Hub::new(Some(1000));
        let fast = hub.subscribe(10, LossStage::Client);
        let slow = hub.subscribe(10, LossStage::Client);
        let mut fast_seen = Vec::new();
        for seq in 1..=100 {
            hub.publish(event(seq));
            fast_seen.extend(fast.pop_all(Duration::ZERO));
        }
        assert_eq!(fast_seen.len(), 100);
        let slow_seen = slow.pop_all(Duration::ZERO);
        assert_eq!(slow_seen.len(), 11);
        assert_eq!(slow_seen[0].detail, Detail::Loss { lost: 90, stage: LossStage::Client });
        assert_eq!(slow_seen[0].seq, 90);
        assert_eq!(hub.subscriber_stats(), (2, 90));
        assert_eq!(hub.history(usize::MAX).0.len(), 100);
    }

    #[test]
    fn a_waiting_subscriber_holds_back_publishing_but_not_the_clients() {
        let hub = Arc::new(Hub::new(None));
        let output = hub.subscribe_waiting(10, Arc::new(AtomicBool::new(false)));
        let client = hub.subscribe(1000, LossStage::Client);
        let publisher = {
            let hub = Arc::clone(&hub);
            std::thread::spawn(move || hub.publish_all((1..=100).map(event)))
        };
        // The client has the whole batch while the output still holds the
        // publisher back.
        let mut client_seen = Vec::new();
        while client_seen.len() < 100 {
            client_seen.extend(client.pop_all(Duration::from_secs(5)).iter().map(|e| e.seq));
        }
        assert!(!publisher.is_finished());
        assert_eq!(hub.subscriber_stats(), (1, 0), "the waiting output is not a client");
        let mut output_seen = Vec::new();
        while output_seen.len() < 100 {
            output_seen.extend(output.pop_all(Duration::from_secs(5)).iter().map(|e| e.seq));
        }
        publisher.join().unwrap();
        assert_eq!(output_seen, (1..=100).collect::<Vec<_>>());
        assert_eq!(output.dropped(), 0);
    }

    #[test]
    fn closed_subscribers_are_forgotten() {
        let hub = Hub::new(None);
        let s = hub.subscribe(10, LossStage::Client);
        s.close();
        hub.publish(event(1));
        assert_eq!(hub.subscriber_stats().0, 0);
    }
}
