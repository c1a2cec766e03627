//! The hashing service: a cache the event thread reads, and one
//! low-priority worker that fills it.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rsysmon_event::{FileHash, HashStatus};
use rsysmon_fs::FileId;

use crate::file::{hash_file_unless, FileVersion};

/// How much hashing may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashLimits {
    /// Larger files are not hashed (`too-large`).
    pub max_size: u64,
    /// Wall-clock time one file may take on the worker (`over-budget`).
    pub time_budget: Duration,
    /// File versions remembered; the oldest are forgotten beyond this.
    pub cache_entries: usize,
    /// Files waiting for the worker; beyond this, new ones are not hashed
    /// (`over-budget`) until it catches up.
    pub queue: usize,
}

impl Default for HashLimits {
    fn default() -> Self {
        HashLimits {
            max_size: 256 * 1024 * 1024,
            time_budget: Duration::from_secs(10),
            cache_entries: 16_384,
            queue: 1024,
        }
    }
}

/// The event a hash is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashFor {
    /// Its `seq`.
    pub seq: u64,
    /// Its process, and the process's name.
    pub pid: u32,
    pub comm: String,
    /// The file, as it names it.
    pub path: String,
}

/// A hash an event was promised (`pending`): now done, or failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashDone {
    /// The event that said `pending`.
    pub event: HashFor,
    pub file: FileId,
    pub hash: FileHash,
}

/// Counters of the hashing service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HasherStats {
    pub cache_hits: u64,
    pub files_hashed: u64,
    pub bytes_hashed: u64,
    /// Worker time spent hashing, in microseconds.
    pub hashing_us: u64,
    pub failed: u64,
}

#[derive(Default)]
struct Counters {
    cache_hits: AtomicU64,
    files_hashed: AtomicU64,
    bytes_hashed: AtomicU64,
    hashing_us: AtomicU64,
    failed: AtomicU64,
}

struct Job {
    file: File,
    version: FileVersion,
}

#[derive(Default)]
struct State {
    cache: HashMap<FileVersion, Result<String, HashStatus>>,
    order: VecDeque<FileVersion>,
    in_flight: HashMap<FileVersion, Vec<HashFor>>,
}

/// The hashing service. Dropping it stops the worker.
pub struct Hasher {
    limits: HashLimits,
    state: Arc<Mutex<State>>,
    counters: Arc<Counters>,
    jobs: Option<SyncSender<Job>>,
    done: Receiver<HashDone>,
    worker: Option<JoinHandle<()>>,
    /// Set when the service stops: the worker drops what is queued and
    /// gives up the file it is reading, so stopping never waits for hashes.
    stop: Arc<AtomicBool>,
}

impl Hasher {
    /// Start the worker thread.
    pub fn start(limits: HashLimits) -> std::io::Result<Hasher> {
        let (jobs, job_rx) = mpsc::sync_channel::<Job>(limits.queue.max(1));
        let (done_tx, done) = mpsc::channel();
        let state = Arc::new(Mutex::new(State::default()));
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let (state, counters, stop) = (state.clone(), counters.clone(), stop.clone());
            std::thread::Builder::new()
                .name("rsysmon-hash".into())
                .spawn(move || work(job_rx, done_tx, state, counters, limits, &stop))?
        };
        Ok(Hasher { limits, state, counters, jobs: Some(jobs), done, worker: Some(worker), stop })
    }

    /// The hash of `file`, which can be opened as `open_path`, for `event`:
    /// done, a reason there is none, or `pending` (a [`HashDone`] for the
    /// event will follow). Costs a `stat` (and an `open` for a version not
    /// seen before); never waits for a hash.
    pub fn lookup(&self, open_path: &Path, file: FileId, event: HashFor) -> FileHash {
        let Ok(md) = std::fs::metadata(open_path) else { return FileHash::without(HashStatus::Unreachable) };
        if FileId::of(&md) != file {
            // The path now names another file: the one that ran was
            // replaced or renamed since.
            return FileHash::without(HashStatus::Unreachable);
        }
        let version = FileVersion::of(&md);
        if version.size > self.limits.max_size {
            return FileHash::without(HashStatus::TooLarge);
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(known) = state.cache.get(&version) {
            self.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
            return match known {
                Ok(sha256) => FileHash::done(sha256.clone()),
                Err(status) => FileHash::without(*status),
            };
        }
        let waiter = event;
        if let Some(waiters) = state.in_flight.get_mut(&version) {
            waiters.push(waiter);
            return FileHash::without(HashStatus::Pending);
        }
        // Opened here, while the process that ran it most likely lives:
        // /proc/PID/exe of a memfd or a deleted file opens only then.
        let Ok(open) = File::open(open_path) else { return FileHash::without(HashStatus::Unreachable) };
        let Some(jobs) = &self.jobs else { return FileHash::without(HashStatus::Error) };
        match jobs.try_send(Job { file: open, version }) {
            Ok(()) => {
                state.in_flight.insert(version, vec![waiter]);
                FileHash::without(HashStatus::Pending)
            }
            Err(TrySendError::Full(_)) => FileHash::without(HashStatus::OverBudget),
            Err(TrySendError::Disconnected(_)) => FileHash::without(HashStatus::Error),
        }
    }

    /// Hashes finished since the last call.
    pub fn finished(&self) -> impl Iterator<Item = HashDone> + '_ {
        self.done.try_iter()
    }

    /// Counters so far.
    pub fn stats(&self) -> HasherStats {
        let c = &self.counters;
        HasherStats {
            cache_hits: c.cache_hits.load(Ordering::Relaxed),
            files_hashed: c.files_hashed.load(Ordering::Relaxed),
            bytes_hashed: c.bytes_hashed.load(Ordering::Relaxed),
            hashing_us: c.hashing_us.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
        }
    }

    /// Where a process's program can be opened when its path cannot:
    /// `/proc/PID/exe` (a memfd, a deleted file, another mount namespace).
    pub fn proc_exe(pid: u32) -> PathBuf {
        PathBuf::from(format!("/proc/{pid}/exe"))
    }
}

impl Drop for Hasher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.jobs = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

fn work(
    jobs: Receiver<Job>,
    done: Sender<HashDone>,
    state: Arc<Mutex<State>>,
    counters: Arc<Counters>,
    limits: HashLimits,
    stop: &AtomicBool,
) {
    lower_priority();
    for Job { mut file, version } in jobs {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let started = Instant::now();
        let result = hash_file_unless(&mut file, version, started + limits.time_budget, stop);
        drop(file);
        let took = started.elapsed();
        counters.hashing_us.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        match &result {
            Ok(_) => {
                counters.files_hashed.fetch_add(1, Ordering::Relaxed);
                counters.bytes_hashed.fetch_add(version.size, Ordering::Relaxed);
            }
            Err(_) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        let waiters = {
            let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
            // A file that changed while read is not cached: its next
            // version gets its own entry.
            if result != Err(HashStatus::Changed) {
                state.cache.insert(version, result.clone());
                state.order.push_back(version);
                while state.order.len() > limits.cache_entries {
                    if let Some(old) = state.order.pop_front() {
                        state.cache.remove(&old);
                    }
                }
            }
            state.in_flight.remove(&version).unwrap_or_default()
        };
        let hash = match result {
            Ok(sha256) => FileHash::done(sha256),
            Err(status) => FileHash::without(status),
        };
        let file = FileId { dev: version.dev, ino: version.ino };
        for w in waiters {
            if done.send(HashDone { event: w, file, hash: hash.clone() }).is_err() {
                return;
            }
        }
    }
}

/// The worker yields to everything else: nice 19 for the CPU, the idle
/// class for the disk. Both apply to this thread only (Linux schedules
/// threads; setpriority and ioprio_set with this thread's id).
fn lower_priority() {
    // SAFETY: gettid, setpriority and ioprio_set take plain integers and
    // only change this thread's scheduling.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        if libc::setpriority(libc::PRIO_PROCESS, tid, 19) != 0 {
            tracing::debug!("hash worker keeps its priority: {}", std::io::Error::last_os_error());
        }
        const IOPRIO_WHO_PROCESS: libc::c_long = 1;
        const IOPRIO_CLASS_IDLE: libc::c_long = 3;
        libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, tid as libc::c_long, IOPRIO_CLASS_IDLE << 13);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn wait_done(h: &Hasher) -> HashDone {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(d) = h.finished().next() {
                return d;
            }
            assert!(Instant::now() < deadline, "no hash within 30 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn pending_then_done_then_cached_and_a_change_is_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prog");
        std::fs::write(&path, b"abc").unwrap();
        let id = FileId::of(&std::fs::metadata(&path).unwrap());
        let h = Hasher::start(HashLimits::default()).unwrap();
        let name = path.to_str().unwrap();
        let ev = |seq| HashFor { seq, pid: 1, comm: "t".into(), path: name.to_string() };
        assert_eq!(h.lookup(&path, id, ev(7)).hash_status, HashStatus::Pending);
        let done = wait_done(&h);
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!((done.event, done.file), (ev(7), id));
        assert_eq!(done.hash, FileHash::done(abc.into()));
        assert_eq!(h.lookup(&path, id, ev(8)), FileHash::done(abc.into()));
        assert_eq!(h.stats().cache_hits, 1);

        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"d").unwrap();
        drop(f);
        assert_eq!(h.lookup(&path, id, ev(9)).hash_status, HashStatus::Pending);
        let done = wait_done(&h);
        assert_eq!(done.event.seq, 9);
        assert_eq!(
            done.hash.sha256.as_deref(),
            Some("88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589")
        );
    }

    #[test]
    fn stopping_does_not_wait_for_queued_files() {
        let dir = tempfile::tempdir().unwrap();
        let h = Hasher::start(HashLimits::default()).unwrap();
        for i in 0..200 {
            let path = dir.path().join(format!("f{i}"));
            std::fs::write(&path, vec![i as u8; 4 << 20]).unwrap();
            let id = FileId::of(&std::fs::metadata(&path).unwrap());
            h.lookup(&path, id, HashFor { seq: i, pid: 1, comm: "t".into(), path: String::new() });
        }
        let t = Instant::now();
        drop(h);
        assert!(t.elapsed() < Duration::from_secs(2), "stopping took {:?}", t.elapsed());
    }

    #[test]
    fn too_large_and_unreachable_say_why_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![0u8; 4096]).unwrap();
        let id = FileId::of(&std::fs::metadata(&path).unwrap());
        let h = Hasher::start(HashLimits { max_size: 1024, ..HashLimits::default() }).unwrap();
        let ev = |seq| HashFor { seq, pid: 1, comm: "t".into(), path: "big".into() };
        assert_eq!(h.lookup(&path, id, ev(1)).hash_status, HashStatus::TooLarge);
        let other = FileId { dev: id.dev, ino: id.ino + 1 };
        assert_eq!(h.lookup(&path, other, ev(2)).hash_status, HashStatus::Unreachable);
        assert_eq!(h.lookup(&dir.path().join("none"), id, ev(3)).hash_status, HashStatus::Unreachable);
    }
}
