//! The accept loop: admit or refuse each connection, and never spin.
//!
//! accept(2) fails with EMFILE or ENFILE when descriptors run out, and
//! keeps failing at once for as long as they do: retrying at once would
//! burn a core and flood the log. Such errors back off (doubling up to a
//! second) and are logged at most every ten seconds, with a count of what
//! was not logged.

use std::io::{self, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::access::Peer;
use super::connection;
use super::DaemonState;
use crate::protocol::reply::refusal_line;

const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Accept clients until the listener fails for good (it does not).
pub fn accept_loop(listener: UnixListener, state: Arc<DaemonState>) {
    let mut backoff = FIRST_BACKOFF;
    let mut accept_errors = RateLimitedLog::new(LOG_EVERY);
    let mut refusals = RateLimitedLog::new(LOG_EVERY);
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                backoff = FIRST_BACKOFF;
                if let Err(why) = admit(stream, &state) {
                    refusals.warn(&format!("client refused: {why}"));
                }
            }
            Err(e) if is_transient(&e) => {}
            Err(e) => {
                let exhausted = is_exhaustion(&e);
                accept_errors.warn(&format!(
                    "accepting a client failed: {e}{}",
                    if exhausted { "; waiting before the next accept" } else { "" }
                ));
                thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Give the connection a place and a thread, or tell it why not.
fn admit(stream: UnixStream, state: &Arc<DaemonState>) -> Result<(), String> {
    let peer = Peer::of(&stream).map_err(|e| format!("cannot read the peer's credentials: {e}"))?;
    let ticket = match state.admission.admit(peer.uid) {
        Ok(ticket) => ticket,
        Err(refusal) => {
            refuse(&stream, &refusal.to_string());
            return Err(format!("uid {}: {refusal}", peer.uid));
        }
    };
    let thread_state = Arc::clone(state);
    let shared = Arc::new(stream);
    let for_thread = Arc::clone(&shared);
    let spawned = thread::Builder::new().name("client".into()).spawn(move || {
        connection::serve(&for_thread, peer, &thread_state);
        drop(ticket);
    });
    if let Err(e) = spawned {
        refuse(&shared, "the daemon cannot start a thread for this client; try again later");
        return Err(format!("cannot start a client thread: {e}"));
    }
    Ok(())
}

/// Write one refusal line without ever waiting on the client.
fn refuse(stream: &UnixStream, why: &str) {
    let _ = stream.set_nonblocking(true);
    let _ = writeln!(&*stream, "{}", refusal_line(why));
}

/// The client gave up before it was accepted, or a signal came: try again.
fn is_transient(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ECONNABORTED | libc::EINTR | libc::EPROTO | libc::EAGAIN))
}

/// Out of descriptors or memory: only time helps.
fn is_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

/// A warning logged at most once per period, saying how many like it were
/// not logged in between.
pub struct RateLimitedLog {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    pub fn new(every: Duration) -> Self {
        Self { every, last: None, suppressed: 0 }
    }

    /// Whether a message now would be logged (and if so, how many were
    /// held back since the last one).
    fn take(&mut self, now: Instant) -> Option<u64> {
        if self.last.is_some_and(|last| now.duration_since(last) < self.every) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }

    pub fn warn(&mut self, message: &str) {
        match self.take(Instant::now()) {
            Some(0) => tracing::warn!("{message}"),
            Some(n) => tracing::warn!("{message} ({n} more like it not logged)"),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_warnings_logs_once_per_period() {
        let mut log = RateLimitedLog::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(log.take(t0), Some(0));
        for i in 1..1000 {
            assert_eq!(log.take(t0 + Duration::from_millis(i)), None);
        }
        assert_eq!(log.take(t0 + Duration::from_secs(11)), Some(999));
        assert_eq!(log.take(t0 + Duration::from_secs(12)), None);
    }

    #[test]
    fn descriptor_exhaustion_is_not_transient() {
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        assert!(is_exhaustion(&emfile) && !is_transient(&emfile));
        assert!(is_transient(&io::Error::from_raw_os_error(libc::ECONNABORTED)));
    }
}
