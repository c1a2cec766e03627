//! The daemon's durable outputs (crate `rsysmon-sinks`), started from this
//! one place: each enabled sink gets its own subscription of the hub, a
//! bounded buffer whose overflow is lost at stage `sink:NAME`, and its own
//! thread.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rsysmon_event::{Event, LossStage, SinkName};
use rsysmon_sinks::file::{FileSettings, FileSink};
use rsysmon_sinks::identity::RunIdentity;
use rsysmon_sinks::nats::{NatsSettings, NatsSink};
use rsysmon_sinks::syslog::SyslogSink;
use rsysmon_sinks::{EventSource, LineFormat, OutputsConfig, RunningSink, Sink, SinkStatus};

use crate::hub::queue::EventQueue;
use crate::hub::shared_event::Shared;
use crate::hub::Hub;

/// How long a sink whose destination is down may hold up the daemon's
/// stop before what it holds is given up (and counted).
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// The running sinks.
pub struct Sinks {
    running: Vec<RunningSink>,
}

/// A sink's subscription of the hub.
#[derive(Clone)]
struct Buffer(Arc<EventQueue>);

impl EventSource for Buffer {
    type Item = Shared;

    fn event(item: &Shared) -> &Event {
        item
    }

    fn pop_all(&self, timeout: Duration) -> Vec<Shared> {
        self.0.pop_all(timeout)
    }

    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    fn fill(&self) -> (usize, usize) {
        self.0.fill()
    }

    fn dropped(&self) -> u64 {
        self.0.dropped()
    }
}

impl Sinks {
    /// Start every sink `config` enables. A file that cannot be opened is
    /// an error now; a network destination that is down is retried.
    pub fn start(config: &OutputsConfig, hub: &Hub) -> anyhow::Result<Sinks> {
        let identity = RunIdentity::current();
        let mut sinks = Sinks { running: Vec::new() };
        let file = &config.file;
        if file.enabled {
            let sink = FileSink::open(FileSettings {
                path: file.path.clone(),
                max_bytes: file.max_size_mib * 1024 * 1024,
                keep: file.keep,
                compress: file.compress,
                fsync: file.fsync,
                format: file.format,
            })
            .context("outputs.file")?;
            sinks.add(hub, Box::new(sink), file.path.display().to_string(), file.format, file.buffer_events)?;
        }
        let syslog = &config.syslog;
        if syslog.enabled {
            let sink = SyslogSink::new(
                syslog.address.clone(),
                syslog.facility,
                syslog.app_name.clone(),
                identity.host.clone(),
                syslog.format,
            );
            sinks.add(hub, Box::new(sink), syslog.address.to_string(), syslog.format, syslog.buffer_events)?;
        }
        let nats = &config.nats;
        if nats.enabled {
            let settings = NatsSettings {
                url: nats.url.clone(),
                stream: nats.stream.clone(),
                subject_prefix: nats.subject_prefix.clone(),
                replicas: nats.replicas,
                duplicate_window: Duration::from_secs(nats.duplicate_window_secs),
                format: nats.format,
            };
            let sink = NatsSink::new(settings, identity.clone()).context("outputs.nats")?;
            sinks.add(hub, Box::new(sink), nats.url.clone(), nats.format, nats.buffer_events)?;
        }
        Ok(sinks)
    }

    fn add(
        &mut self,
        hub: &Hub,
        sink: Box<dyn Sink>,
        destination: String,
        format: LineFormat,
        buffer: usize,
    ) -> anyhow::Result<()> {
        let name = sink.name();
        let queue = hub.subscribe(buffer, LossStage::Sink(name));
        let running = RunningSink::start(sink, destination, format, Buffer(queue))
            .with_context(|| format!("cannot start the thread of sink {}", name.name()))?;
        self.running.push(running);
        Ok(())
    }

    /// Every running sink, as `status` shows it.
    pub fn status(&self) -> Vec<SinkStatus> {
        self.running.iter().map(RunningSink::status).collect()
    }

    /// Events lost at `sink:NAME` so far (0 for a sink not running).
    pub fn lost(&self, name: SinkName) -> u64 {
        self.running.iter().filter(|s| s.name() == name).map(RunningSink::lost).sum()
    }

    /// Once the hub is closed: let every sink deliver what it holds, each
    /// given up to [`STOP_GRACE`] if its destination is down.
    pub fn stop(&self) {
        let deadline = std::time::Instant::now() + STOP_GRACE;
        for sink in &self.running {
            sink.stop(deadline);
        }
    }
}
