//! The `/metrics` listener: a deliberately small HTTP/1.x server.
//!
//! It answers `GET /metrics` (and `HEAD`) and nothing else, then closes the
//! connection. Whoever can reach the port cannot hurt the daemon through
//! it:
//! - at most [`MAX_CONNECTIONS`] connections are served at once, each on a
//!   thread of its own; more are closed at once (counted, `busy`);
//! - a request head may be [`MAX_REQUEST_BYTES`] long and must arrive whole
//!   within [`REQUEST_DEADLINE`]; trickling bytes does not extend it;
//! - the answer must be taken within [`WRITE_DEADLINE`];
//! - a request body is never read.
//!
//! So a flood or a slow client can at worst make scrapes wait or fail; the
//! event path, the control socket and the blocker share nothing with it
//! but a snapshot of the counters.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::output::metrics::ServerCounts;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 4;
/// Longest request head (request line and headers) read.
pub const MAX_REQUEST_BYTES: usize = 8192;
/// Time a client has to send its whole request head.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// Time a client has to take the whole answer.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(5);

/// What the listener serves: the metrics text, rendered per request.
pub type Render = dyn Fn(&ServerCounts) -> String + Send + Sync;

/// Counters of the listener, shared with its connection threads.
#[derive(Default)]
struct Counters {
    active: AtomicUsize,
    busy: AtomicU64,
    bad: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> ServerCounts {
        ServerCounts { busy: self.busy.load(Ordering::Relaxed), bad: self.bad.load(Ordering::Relaxed) }
    }
}

/// Bind `address` now (an error names it) and serve from a thread of its
/// own for as long as the daemon runs. Returns the bound address.
pub fn start(address: SocketAddr, render: Arc<Render>) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(address)
        .with_context(|| format!("outputs.metrics: cannot listen on {address} (outputs.metrics.listen)"))?;
    let bound = listener.local_addr().context("outputs.metrics: the listener has no address")?;
    let counters = Arc::new(Counters::default());
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || accept_loop(listener, counters, render))
        .context("cannot start the metrics thread")?;
    Ok(bound)
}

fn accept_loop(listener: TcpListener, counters: Arc<Counters>, render: Arc<Render>) {
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors or memory: wait instead of spinning.
                tracing::debug!("metrics: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if counters.active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            counters.active.fetch_sub(1, Ordering::AcqRel);
            counters.busy.fetch_add(1, Ordering::Relaxed);
            // Dropped: closed at once, nothing read.
            continue;
        }
        let counters_for_thread = Arc::clone(&counters);
        let render = Arc::clone(&render);
        let spawned = std::thread::Builder::new().name("metrics-conn".into()).spawn(move || {
            // A refusal is counted before it is answered; a broken
            // connection when it breaks.
            if let Err(Refused::Io) = serve(stream, &counters_for_thread, &*render) {
                counters_for_thread.bad.fetch_add(1, Ordering::Relaxed);
            }
            counters_for_thread.active.fetch_sub(1, Ordering::AcqRel);
        });
        if spawned.is_err() {
            counters.active.fetch_sub(1, Ordering::AcqRel);
            counters.busy.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Why a request was not answered with the metrics.
#[derive(Debug)]
enum Refused {
    Status(&'static str),
    Io,
}

impl From<io::Error> for Refused {
    fn from(_: io::Error) -> Self {
        Refused::Io
    }
}

/// One connection: read the head, answer, close. An error means the
/// request was refused or the client went away.
fn serve(mut stream: TcpStream, counters: &Counters, render: &Render) -> Result<(), Refused> {
    stream.set_write_timeout(Some(WRITE_DEADLINE))?;
    let result = read_head(&mut stream).and_then(|head| route(&head));
    match result {
        Ok(head_only) => {
            let body = render(&counters.snapshot());
            let header = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                crate::output::metrics::CONTENT_TYPE,
                body.len()
            );
            write_all_by(&mut stream, header.as_bytes())?;
            if !head_only {
                write_all_by(&mut stream, body.as_bytes())?;
            }
            Ok(())
        }
        Err(Refused::Status(status)) => {
            // Before the answer: a client that reads it and scrapes again
            // sees this refusal counted.
            counters.bad.fetch_add(1, Ordering::Relaxed);
            let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = write_all_by(&mut stream, answer.as_bytes());
            linger(&mut stream);
            Err(Refused::Status(status))
        }
        Err(Refused::Io) => Err(Refused::Io),
    }
}

/// Closing with unread bytes would reset the connection and could
/// discard the error answer before the client reads it: say we are done,
/// then read (and drop) a bounded amount for a short while first.
fn linger(stream: &mut TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let deadline = Instant::now() + Duration::from_millis(500);
    let mut sink = [0u8; 4096];
    let mut left: usize = 64 * 1024;
    while left > 0 {
        let wait = deadline.saturating_duration_since(Instant::now());
        if wait.is_zero() || stream.set_read_timeout(Some(wait)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

/// The request head, read until the empty line within the size and time
/// limits.
fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, Refused> {
    let deadline = Instant::now() + REQUEST_DEADLINE;
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Refused::Status("408 Request Timeout"));
        }
        stream.set_read_timeout(Some(left))?;
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Err(Refused::Io),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(Refused::Status("408 Request Timeout"))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        head.extend_from_slice(&chunk[..n]);
        let end = head.windows(4).position(|w| w == b"\r\n\r\n");
        if end.unwrap_or(head.len()) > MAX_REQUEST_BYTES {
            return Err(Refused::Status("431 Request Header Fields Too Large"));
        }
        if let Some(end) = end {
            head.truncate(end);
            return Ok(head);
        }
    }
}

/// `Ok(true)` for HEAD, `Ok(false)` for GET of /metrics.
fn route(head: &[u8]) -> Result<bool, Refused> {
    let line = head.split(|&b| b == b'\r' || b == b'\n').next().unwrap_or_default();
    let line = std::str::from_utf8(line).map_err(|_| Refused::Status("400 Bad Request"))?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refused::Status("400 Bad Request"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(Refused::Status("505 HTTP Version Not Supported"));
    }
    let path = target.split('?').next().unwrap_or_default();
    if path != "/metrics" {
        return Err(Refused::Status("404 Not Found"));
    }
    match method {
        "GET" => Ok(false),
        "HEAD" => Ok(true),
        _ => Err(Refused::Status("405 Method Not Allowed")),
    }
}

/// Write everything, or fail once [`WRITE_DEADLINE`] has passed in total.
fn write_all_by(stream: &mut TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    let deadline = Instant::now() + WRITE_DEADLINE;
    while !bytes.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_write_timeout(Some(left))?;
        match stream.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> SocketAddr {
        start("127.0.0.1:0".parse().unwrap(), Arc::new(|c: &ServerCounts| format!("busy {}\nbad {}\n", c.busy, c.bad)))
            .unwrap()
    }

    fn ask(addr: SocketAddr, request: &[u8]) -> String {
        // A refused connection may reset: what was read until then counts.
        let mut s = TcpStream::connect(addr).unwrap();
        let _ = s.write_all(request);
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        String::from_utf8(answer).unwrap()
    }

    #[test]
    fn answers_get_of_metrics_and_refuses_the_rest() {
        let addr = server();
        let ok = ask(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n") && ok.ends_with("busy 0\nbad 0\n"), "{ok}");
        assert!(ask(addr, b"GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(ask(addr, b"POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        assert!(ask(addr, b"nonsense\r\n\r\n").starts_with("HTTP/1.1 400"));
        let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_REQUEST_BYTES));
        assert!(ask(addr, huge.as_bytes()).starts_with("HTTP/1.1 431"));
        let head = ask(addr, b"HEAD /metrics HTTP/1.0\r\n\r\n");
        assert!(head.starts_with("HTTP/1.1 200 OK") && head.ends_with("\r\n\r\n"), "{head}");
        let counted = ask(addr, b"GET /metrics?x=1 HTTP/1.1\r\n\r\n");
        assert!(counted.ends_with("busy 0\nbad 4\n"), "{counted}");
    }

    #[test]
    fn silent_clients_take_only_their_slots_and_only_until_the_deadline() {
        let addr = server();
        let silent: Vec<TcpStream> = (0..MAX_CONNECTIONS).map(|_| TcpStream::connect(addr).unwrap()).collect();
        std::thread::sleep(Duration::from_millis(300));
        // Every slot is taken: the next one is closed at once.
        let started = Instant::now();
        let refused = ask(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
        assert_eq!(refused, "");
        assert!(started.elapsed() < Duration::from_secs(2));
        // Once the silent ones time out, scrapes work again.
        std::thread::sleep(REQUEST_DEADLINE + Duration::from_secs(1));
        let ok = ask(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK"), "{ok}");
        assert!(ok.contains(&format!("busy 1\nbad {MAX_CONNECTIONS}\n")), "{ok}");
        drop(silent);
    }
}
