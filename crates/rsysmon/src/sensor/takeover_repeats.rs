//! One `process-tamper` event per burst, not one per request.
//!
//! A debugger's `call` makes a few hundred PTRACE_SETREGS and POKEs into
//! its target within a fraction of a second; each is a takeover record from
//! the kernel. The first takeover of a (creator process, target process,
//! method) opens a window; repeats within it are counted into that one
//! event. The window stays open while repeats come less than
//! [`REPEAT_QUIET`] apart, for at most [`REPEAT_MAX`] from the first, so a
//! burst that a busy machine stretches is still one event and a steady
//! stream is one event per [`REPEAT_MAX`]. The event is published when the
//! window closes (at the reader's next poll, at most a poll interval
//! later), carrying the first takeover's time, threads and names and the
//! number of takeovers it stands for.
//!
//! Only the report waits: whether a new thread is remote is decided in the
//! kernel from its own takeover marks, so holding an event back here never
//! delays or loses a `remote-thread`.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::time::Duration;

use rsysmon_probe::{Creator, Header, TamperMethod};

/// A window closes when no repeat came for this long...
pub const REPEAT_QUIET: Duration = Duration::from_secs(1);
/// ...or this long after its first takeover.
pub const REPEAT_MAX: Duration = Duration::from_secs(10);

/// Open windows kept at once. Past that, a takeover with a new key is
/// published on its own at once: a flood of distinct targets cannot make
/// the sensor hold unbounded state, and nothing is dropped.
const MAX_OPEN: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    creator_pid: u32,
    target_pid: u32,
    method: TamperMethod,
}

/// A takeover and how many times it happened within its window.
#[derive(Debug, Clone, PartialEq)]
pub struct Takeover {
    /// The first takeover's header: its time, target thread and name.
    pub header: Header,
    pub creator: Creator,
    /// Takeovers this one stands for, itself included (at least 1).
    pub count: u64,
    /// Time of the last of them (CLOCK_BOOTTIME).
    pub last_ns: u64,
}

impl Takeover {
    /// A takeover seen once so far.
    pub fn new(header: Header, creator: Creator) -> Self {
        let last_ns = header.time_ns;
        Self { header, creator, count: 1, last_ns }
    }
}

/// Takeovers whose window is still open.
#[derive(Debug)]
pub struct TakeoverRepeats {
    quiet_ns: u64,
    max_ns: u64,
    open: HashMap<Key, Takeover>,
}

impl Default for TakeoverRepeats {
    fn default() -> Self {
        Self::new(REPEAT_QUIET, REPEAT_MAX)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl TakeoverRepeats {
    pub fn new(quiet: Duration, max: Duration) -> Self {
        Self { quiet_ns: nanos(quiet), max_ns: nanos(max), open: HashMap::new() }
    }

    /// Whether `t`'s window is closed at `now_ns`.
    fn closed(&self, t: &Takeover, now_ns: u64) -> bool {
        now_ns.saturating_sub(t.last_ns) >= self.quiet_ns || now_ns.saturating_sub(t.header.time_ns) >= self.max_ns
    }

    /// A takeover record. Returns what is to be published now: nothing
    /// while its window is open, or the earlier window of the same key that
    /// this record proves closed (the record then opens a new one), or the
    /// record itself when too many windows are open.
    pub fn add(&mut self, header: Header, creator: Creator) -> Option<Takeover> {
        let key = Key { creator_pid: creator.pid, target_pid: header.pid, method: creator.method };
        let time_ns = header.time_ns;
        if let Some(open) = self.open.get(&key) {
            if self.closed(open, time_ns) {
                return self.open.insert(key, Takeover::new(header, creator));
            }
        }
        let full = self.open.len() >= MAX_OPEN;
        match self.open.entry(key) {
            Entry::Occupied(mut open) => {
                let open = open.get_mut();
                open.count += 1;
                open.last_ns = open.last_ns.max(time_ns);
                None
            }
            Entry::Vacant(_) if full => Some(Takeover::new(header, creator)),
            Entry::Vacant(slot) => {
                slot.insert(Takeover::new(header, creator));
                None
            }
        }
    }

    /// Takeovers whose window has closed by `now_ns` (CLOCK_BOOTTIME),
    /// oldest first; they are forgotten.
    pub fn due(&mut self, now_ns: u64) -> Vec<Takeover> {
        let keys: Vec<Key> = self.open.iter().filter(|(_, t)| self.closed(t, now_ns)).map(|(k, _)| *k).collect();
        self.remove(keys)
    }

    /// Every open takeover, oldest first, as when the pipeline stops.
    pub fn drain(&mut self) -> Vec<Takeover> {
        let keys: Vec<Key> = self.open.keys().copied().collect();
        self.remove(keys)
    }

    fn remove(&mut self, keys: Vec<Key>) -> Vec<Takeover> {
        let mut out: Vec<Takeover> = keys.iter().filter_map(|k| self.open.remove(k)).collect();
        out.sort_by_key(|t| t.header.time_ns);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn header(pid: u32, time_ns: u64) -> Header {
        Header { time_ns, pid, tid: pid + 1, comm: "target".into(), ..Header::default() }
    }

    fn creator(pid: u32, method: TamperMethod) -> Creator {
        Creator { pid, tid: pid, comm: "gdb".into(), method }
    }

    fn repeats() -> TakeoverRepeats {
        TakeoverRepeats::new(Duration::from_secs(1), Duration::from_secs(10))
    }

    #[test]
    fn repeats_within_the_window_are_one_takeover_with_a_count() {
        let mut r = repeats();
        // 280 requests 3 ms apart: 837 ms, less than a second between any two.
        for i in 0..280 {
            assert_eq!(r.add(header(10, 5_000 * MS + i * 3 * MS), creator(7, TamperMethod::PtraceSetRegs)), None);
        }
        assert!(r.due(6_836 * MS).is_empty(), "the window is still open");
        let due = r.due(6_837 * MS);
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].count, due[0].last_ns), (280, 5_837 * MS));
        assert_eq!(due[0].header, header(10, 5_000 * MS), "the first takeover's time and thread");
        assert!(r.due(u64::MAX).is_empty(), "published once");
    }

    #[test]
    fn a_steady_stream_is_one_event_per_longest_window() {
        let mut r = repeats();
        let mut published = Vec::new();
        for i in 0..=25 {
            published.extend(r.add(header(10, i * 500 * MS), creator(7, TamperMethod::PtracePoke)));
        }
        published.extend(r.drain());
        let seen: Vec<(u64, u64)> = published.iter().map(|t| (t.header.time_ns / MS, t.count)).collect();
        assert_eq!(seen, [(0, 20), (10_000, 6)]);
    }

    #[test]
    fn each_creator_target_and_method_has_its_own_window() {
        let mut r = repeats();
        r.add(header(10, 3 * MS), creator(7, TamperMethod::PtraceSetRegs));
        r.add(header(10, MS), creator(7, TamperMethod::PtracePoke));
        r.add(header(11, 2 * MS), creator(7, TamperMethod::PtraceSetRegs));
        r.add(header(10, 4 * MS), creator(8, TamperMethod::PtraceSetRegs));
        r.add(header(10, 5 * MS), creator(7, TamperMethod::PtraceSetRegs));
        let all = r.drain();
        let seen: Vec<(u64, u64)> = all.iter().map(|t| (t.header.time_ns / MS, t.count)).collect();
        assert_eq!(seen, [(1, 1), (2, 1), (3, 2), (4, 1)], "oldest first");
    }

    #[test]
    fn a_repeat_after_a_quiet_second_publishes_the_old_one_and_opens_a_new_one() {
        let mut r = repeats();
        r.add(header(10, 0), creator(7, TamperMethod::ProcMem));
        r.add(header(10, 500 * MS), creator(7, TamperMethod::ProcMem));
        let closed = r.add(header(10, 1_500 * MS), creator(7, TamperMethod::ProcMem)).unwrap();
        assert_eq!((closed.header.time_ns, closed.count), (0, 2));
        let rest = r.drain();
        assert_eq!(rest.len(), 1);
        assert_eq!((rest[0].header.time_ns, rest[0].count), (1_500 * MS, 1));
    }

    #[test]
    fn past_the_open_limit_new_takeovers_are_published_at_once() {
        let mut r = repeats();
        for pid in 0..MAX_OPEN as u32 {
            assert_eq!(r.add(header(pid, 0), creator(7, TamperMethod::PtracePoke)), None);
        }
        let now = r.add(header(u32::MAX, 0), creator(7, TamperMethod::PtracePoke)).unwrap();
        assert_eq!((now.header.pid, now.count), (u32::MAX, 1));
        assert_eq!(r.open.len(), MAX_OPEN);
        // An open window still takes its repeats.
        assert_eq!(r.add(header(0, 1), creator(7, TamperMethod::PtracePoke)), None);
        assert_eq!(r.drain().len(), MAX_OPEN);
    }
}
