//! RFC 5424 syslog: to the local `/dev/log` (one datagram per message) or
//! to a collector over TCP, framed by octet counting (RFC 6587 §3.4.1:
//! `LEN SP MESSAGE`, so a message may hold any byte, newlines included).
//!
//! Each message is
//! `<PRI>1 TIMESTAMP HOST APP-NAME PID KIND [rsysmon@32473 seq="N"] LINE`:
//! the event's kind is the MSGID, its seq sits in structured data, and MSG
//! is the event as one line in the sink's format (JSON by default).
//! Severity is `warning` for exec-blocked, remote-thread, process-tamper
//! and loss events, `info` for the rest.
//!
//! Plain TCP syslog has no acknowledgements: what the kernel accepted is
//! counted as delivered. A collector that closed the connection is noticed
//! before the next batch (a peeked end of stream) and the batch goes to a
//! new connection; events written into a connection the collector had
//! already closed are gone without a trace. Use NATS where every event
//! must be accounted for.

use std::fmt;
use std::io::{self, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use chrono::SecondsFormat;
use rsysmon_event::{Event, EventKind, SinkName};
use serde::Deserialize;

use crate::{LineFormat, Partial, Sink};

/// Where syslog messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogAddress {
    /// A local datagram socket, `/dev/log` by default.
    Unix(PathBuf),
    /// `HOST:PORT` of a collector, over TCP with octet counting.
    Tcp(String),
    /// `HOST:PORT` of a collector, over TLS (RFC 5425), octet counting.
    Tls(String),
}

impl Default for SyslogAddress {
    fn default() -> Self {
        SyslogAddress::Unix(PathBuf::from("/dev/log"))
    }
}

impl fmt::Display for SyslogAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyslogAddress::Unix(path) => write!(f, "unix:{}", path.display()),
            SyslogAddress::Tcp(addr) => write!(f, "tcp:{addr}"),
            SyslogAddress::Tls(addr) => write!(f, "tls:{addr}"),
        }
    }
}

impl FromStr for SyslogAddress {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let host_port = |a: &&str| a.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
        if let Some(path) = s.strip_prefix("unix:").filter(|p| p.starts_with('/')) {
            Ok(SyslogAddress::Unix(PathBuf::from(path)))
        } else if let Some(addr) = s.strip_prefix("tcp:").filter(host_port) {
            Ok(SyslogAddress::Tcp(addr.to_string()))
        } else if let Some(addr) = s.strip_prefix("tls:").filter(host_port) {
            Ok(SyslogAddress::Tls(addr.to_string()))
        } else {
            Err(format!("{s:?} is none of unix:/PATH, tcp:HOST:PORT, tls:HOST:PORT"))
        }
    }
}

impl<'de> Deserialize<'de> for SyslogAddress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// The syslog facilities a daemon may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facility(u8);

impl Default for Facility {
    fn default() -> Self {
        Facility::DAEMON
    }
}

const FACILITIES: [(&str, u8); 12] = [
    ("user", 1),
    ("daemon", 3),
    ("auth", 4),
    ("authpriv", 10),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

impl Facility {
    /// `daemon`, the default.
    pub const DAEMON: Facility = Facility(3);

    pub fn name(self) -> &'static str {
        FACILITIES.iter().find(|(_, code)| *code == self.0).map(|(name, _)| *name).unwrap_or("daemon")
    }
}

impl<'de> Deserialize<'de> for Facility {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        FACILITIES.iter().find(|(n, _)| *n == name).map(|(_, code)| Facility(*code)).ok_or_else(|| {
            let names: Vec<&str> = FACILITIES.iter().map(|(n, _)| *n).collect();
            serde::de::Error::custom(format!("unknown facility {name:?}; one of {}", names.join(", ")))
        })
    }
}

/// The syslog sink.
pub struct SyslogSink {
    address: SyslogAddress,
    facility: Facility,
    app_name: String,
    hostname: String,
    format: LineFormat,
    /// The CAs a `tls:` collector's certificate is checked against.
    ca_file: PathBuf,
    conn: Option<Conn>,
}

enum Conn {
    Unix(UnixDatagram),
    Tcp(io::BufWriter<TcpStream>),
    Tls(Box<io::BufWriter<crate::tls::TlsStream>>),
}

impl SyslogSink {
    pub fn new(
        address: SyslogAddress,
        facility: Facility,
        app_name: String,
        hostname: String,
        format: LineFormat,
    ) -> Self {
        SyslogSink {
            address,
            facility,
            app_name,
            hostname,
            format,
            ca_file: PathBuf::from(DEFAULT_CA_FILE),
            conn: None,
        }
    }

    /// Check a `tls:` collector's certificate against the CAs in `ca_file`
    /// instead of the system's.
    pub fn with_ca_file(mut self, ca_file: PathBuf) -> Self {
        self.ca_file = ca_file;
        self
    }

    fn connect(&self) -> io::Result<Conn> {
        match &self.address {
            SyslogAddress::Unix(path) => {
                let socket = UnixDatagram::unbound()?;
                socket.connect(path)?;
                socket.set_write_timeout(Some(Duration::from_secs(5)))?;
                Ok(Conn::Unix(socket))
            }
            SyslogAddress::Tcp(addr) => Ok(Conn::Tcp(io::BufWriter::with_capacity(64 * 1024, tcp_connect(addr)?))),
            SyslogAddress::Tls(addr) => {
                let config = crate::tls::client_config(&self.ca_file)?;
                let tcp = tcp_connect(addr)?;
                let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
                let stream = crate::tls::connect(&config, host, tcp)?;
                Ok(Conn::Tls(Box::new(io::BufWriter::with_capacity(64 * 1024, stream))))
            }
        }
    }

    /// One RFC 5424 message, without framing.
    pub fn message(&self, event: &Event) -> String {
        let severity = match event.kind() {
            EventKind::ExecBlocked | EventKind::RemoteThread | EventKind::ProcessTamper | EventKind::Loss => 4,
            _ => 6,
        };
        format!(
            "<{}>1 {} {} {} {} {} [rsysmon@32473 seq=\"{}\"] {}",
            self.facility.0 * 8 + severity,
            event.time.to_rfc3339_opts(SecondsFormat::Micros, true),
            self.hostname,
            self.app_name,
            std::process::id(),
            event.kind().name(),
            event.seq,
            self.format.line(event)
        )
    }

    fn send_all(&mut self, events: &[&Event]) -> Result<(), Partial> {
        let messages: Vec<String> = events.iter().map(|e| self.message(e)).collect();
        let conn = self.conn.as_mut().expect("connected before sending");
        match conn {
            Conn::Unix(socket) => {
                for (i, message) in messages.iter().enumerate() {
                    socket.send(message.as_bytes()).map_err(|e| Partial::new(i, e))?;
                }
                Ok(())
            }
            Conn::Tcp(stream) => write_framed(stream, &messages),
            Conn::Tls(stream) => write_framed(stream.as_mut(), &messages),
        }
    }
}

impl Sink for SyslogSink {
    fn name(&self) -> SinkName {
        SinkName::Syslog
    }

    fn send(&mut self, events: &[&Event]) -> Result<(), Partial> {
        let closed = match &mut self.conn {
            Some(Conn::Tcp(s)) => peer_closed(s.get_ref()),
            Some(Conn::Tls(s)) => crate::tls::peer_closed(s.get_mut()),
            _ => false,
        };
        if closed {
            self.conn = None;
        }
        if self.conn.is_none() {
            let conn = self.connect().map_err(|e| Partial::new(0, format!("connecting to {}: {e}", self.address)))?;
            self.conn = Some(conn);
        }
        let result = self.send_all(events);
        if result.is_err() {
            self.conn = None;
        }
        result.map_err(|p| Partial::new(p.delivered, format!("sending to {}: {}", self.address, p.error)))
    }

    fn close(&mut self) -> Result<(), Partial> {
        match &mut self.conn {
            Some(Conn::Tcp(stream)) => stream.flush().map_err(|e| Partial::new(0, e)),
            Some(Conn::Tls(stream)) => {
                stream.flush().map_err(|e| Partial::new(0, e))?;
                let tls = stream.get_mut();
                tls.conn.send_close_notify();
                let _ = tls.flush();
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Where a `tls:` collector's CA is looked for by default (Debian's bundle).
pub const DEFAULT_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Octet counting (RFC 6587 3.4.1, RFC 5425): `LEN SP MESSAGE`. What sits
/// in the buffer is not delivered until flushed.
fn write_framed(stream: &mut impl Write, messages: &[String]) -> Result<(), Partial> {
    for message in messages {
        write!(stream, "{} {message}", message.len()).map_err(|e| Partial::new(0, e))?;
    }
    stream.flush().map_err(|e| Partial::new(0, e))
}

/// A TCP connection to `addr` (HOST:PORT), trying each address it
/// resolves to.
fn tcp_connect(addr: &str) -> io::Result<TcpStream> {
    let addrs: Vec<_> = std::net::ToSocketAddrs::to_socket_addrs(addr)?.collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{addr} resolves to no address"));
    for a in addrs {
        match TcpStream::connect_timeout(&a, Duration::from_secs(5)) {
            Ok(stream) => {
                stream.set_write_timeout(Some(Duration::from_secs(5)))?;
                // Bounds the TLS handshake; a plain collector never writes.
                stream.set_read_timeout(Some(Duration::from_secs(5)))?;
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A syslog collector never writes back: a readable end of stream (or an
/// error) means it closed the connection.
fn peer_closed(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    // SAFETY: recv writes at most one byte into `byte`; MSG_DONTWAIT keeps
    // it from blocking.
    let n = unsafe {
        libc::recv(
            std::os::fd::AsRawFd::as_raw_fd(stream),
            byte.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n == 0 || (n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsysmon_event::Detail;

    #[test]
    fn addresses_parse_and_print() {
        assert_eq!("unix:/dev/log".parse(), Ok(SyslogAddress::Unix("/dev/log".into())));
        assert_eq!("tcp:127.0.0.1:6514".parse(), Ok(SyslogAddress::Tcp("127.0.0.1:6514".into())));
        assert!("tcp:host".parse::<SyslogAddress>().is_err());
        assert!("udp:h:1".parse::<SyslogAddress>().is_err());
        assert_eq!("tls:logs.example:6514".parse(), Ok(SyslogAddress::Tls("logs.example:6514".into())));
        assert_eq!(SyslogAddress::Tcp("h:1".into()).to_string(), "tcp:h:1");
    }

    #[test]
    fn a_message_is_rfc5424_with_kind_seq_and_json() {
        let sink =
            SyslogSink::new(SyslogAddress::default(), Facility(16), "rsysmon".into(), "web-1".into(), LineFormat::Json);
        let event = Event::new(
            42,
            chrono::DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap(),
            7,
            7,
            "sh".into(),
            Detail::ExecBlocked { path: "/tmp/x".into(), rule: "/tmp/x".into() },
        );
        let m = sink.message(&event);
        let prefix = format!(
            "<132>1 2023-11-14T22:13:20.123456Z web-1 rsysmon {} exec-blocked [rsysmon@32473 seq=\"42\"] {{",
            std::process::id()
        );
        assert!(m.starts_with(&prefix), "{m}");
        assert!(m.ends_with(&LineFormat::Json.line(&event)));
    }
}
