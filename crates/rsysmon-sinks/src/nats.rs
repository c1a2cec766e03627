//! Fleet export to NATS JetStream.
//!
//! Each event is published to `PREFIX.HOST.KIND` with the header
//! `Nats-Msg-Id: HOST/BOOT_ID/RUN/SEQ`. JetStream drops a message whose id
//! it saw within the stream's duplicate window, so a batch retried after a
//! lost ack or a reconnect is stored once: exactly once per event, and a
//! consumer sees gaps in a host's seq only where rsysmon reported a loss.
//!
//! The client (async-nats) needs tokio; a current-thread runtime lives
//! inside this sink's thread and nowhere else. A batch is published
//! without waiting (the client keeps up to its in-flight limit of acks
//! outstanding), then its acks are awaited: waiting for each ack before
//! the next publish would cap a host at one round trip per event.

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage, stream};
use futures_util::StreamExt;
use rsysmon_event::{Event, SinkName};

use crate::identity::RunIdentity;
use crate::{LineFormat, Partial, Sink};

/// Where and how the NATS sink publishes.
#[derive(Debug, Clone)]
pub struct NatsSettings {
    pub url: String,
    pub stream: String,
    pub subject_prefix: String,
    pub replicas: usize,
    pub duplicate_window: Duration,
    pub format: LineFormat,
}

/// The NATS JetStream sink.
pub struct NatsSink {
    runtime: tokio::runtime::Runtime,
    publisher: Publisher,
}

/// What publishes, apart from the runtime that drives it.
struct Publisher {
    settings: NatsSettings,
    identity: RunIdentity,
    host: String,
    context: Option<jetstream::Context>,
}

impl NatsSink {
    pub fn new(settings: NatsSettings, identity: RunIdentity) -> std::io::Result<NatsSink> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let host = identity.host_token();
        Ok(NatsSink { runtime, publisher: Publisher { settings, identity, host, context: None } })
    }

    /// `PREFIX.HOST.KIND` for `event`.
    pub fn subject(&self, event: &Event) -> String {
        self.publisher.subject(event)
    }

    /// The message id that makes retries exactly-once.
    pub fn message_id(&self, event: &Event) -> String {
        self.publisher.message_id(event)
    }
}

impl Publisher {
    fn subject(&self, event: &Event) -> String {
        format!("{}.{}.{}", self.settings.subject_prefix, self.host, event.kind().name())
    }

    fn message_id(&self, event: &Event) -> String {
        format!("{}/{}/{}/{}", self.identity.host, self.identity.boot_id, self.identity.run, event.seq)
    }

    async fn send(&mut self, events: &[&Event]) -> Result<(), Partial> {
        let context = match &self.context {
            Some(context) => context.clone(),
            None => {
                let context = connect(&self.settings).await.map_err(|e| Partial::new(0, e))?;
                self.context = Some(context.clone());
                context
            }
        };
        self.publish(&context, events).await
    }

    async fn publish(&self, context: &jetstream::Context, events: &[&Event]) -> Result<(), Partial> {
        let mut acks = Vec::with_capacity(events.len());
        let mut send_error = None;
        for event in events {
            let publish = PublishMessage::build()
                .payload(self.settings.format.line(event).into())
                .message_id(self.message_id(event));
            match context.send_publish(self.subject(event), publish).await {
                Ok(ack) => acks.push(ack),
                Err(e) => {
                    send_error = Some(e);
                    break;
                }
            }
        }
        let sent = acks.len();
        for (i, ack) in acks.into_iter().enumerate() {
            if let Err(e) = ack.await {
                return Err(Partial::new(i, format!("no ack from {}: {e}", self.settings.url)));
            }
        }
        match send_error {
            Some(e) => Err(Partial::new(sent, format!("publishing to {}: {e}", self.settings.url))),
            None => Ok(()),
        }
    }
}

async fn connect(settings: &NatsSettings) -> Result<jetstream::Context, String> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .name("rsysmon")
        .connect(settings.url.as_str())
        .await
        .map_err(|e| format!("connecting to {}: {e}", settings.url))?;
    let context = jetstream::new(client);
    context
        .get_or_create_stream(stream::Config {
            name: settings.stream.clone(),
            subjects: vec![format!("{}.>", settings.subject_prefix)],
            num_replicas: settings.replicas,
            duplicate_window: settings.duplicate_window,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("creating stream {} on {}: {e}", settings.stream, settings.url))?;
    Ok(context)
}

impl Sink for NatsSink {
    fn name(&self) -> SinkName {
        SinkName::Nats
    }

    fn send(&mut self, events: &[&Event]) -> Result<(), Partial> {
        self.runtime.block_on(self.publisher.send(events))
    }
}

/// What `rsysmon fleet watch` reads.
#[derive(Debug, Clone)]
pub struct WatchRequest {
    pub url: String,
    pub stream: String,
    pub subject_prefix: String,
    /// Only this host (its name as in subjects); all if None.
    pub host: Option<String>,
    /// Only this kind; all if None.
    pub kind: Option<String>,
    /// From the oldest event the stream keeps, not only new ones.
    pub from_start: bool,
}

impl WatchRequest {
    /// The subject filter: `PREFIX.HOST.KIND` with `*` for what is open.
    pub fn filter(&self) -> String {
        let host = self.host.as_deref().map(crate::identity::subject_token).unwrap_or_else(|| "*".into());
        let kind = self.kind.clone().unwrap_or_else(|| "*".into());
        format!("{}.{host}.{kind}", self.subject_prefix)
    }
}

/// Stream events from JetStream across hosts, in the stream's order, to
/// `each` (the payload, a line) until it returns false.
pub fn watch(request: &WatchRequest, mut each: impl FnMut(&[u8]) -> bool) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the NATS client: {e}"))?;
    runtime.block_on(async {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .name("rsysmon fleet watch")
            .connect(request.url.as_str())
            .await
            .map_err(|e| format!("connecting to {}: {e}", request.url))?;
        let context = jetstream::new(client);
        let stream = context
            .get_stream(&request.stream)
            .await
            .map_err(|e| format!("no stream {} on {}: {e}", request.stream, request.url))?;
        let deliver_policy = match request.from_start {
            true => jetstream::consumer::DeliverPolicy::All,
            false => jetstream::consumer::DeliverPolicy::New,
        };
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                filter_subject: request.filter(),
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("cannot create a consumer on {}: {e}", request.stream))?;
        let mut messages = consumer.messages().await.map_err(|e| format!("cannot read {}: {e}", request.stream))?;
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| format!("reading {}: {e}", request.stream))?;
            if !each(&message.payload) {
                break;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsysmon_event::Detail;

    #[test]
    fn subjects_and_ids_name_host_boot_run_and_seq() {
        let identity = RunIdentity { host: "web-1.example".into(), boot_id: "b00t".into(), run: 17 };
        let settings = NatsSettings {
            url: "nats://127.0.0.1:4222".into(),
            stream: "RSYSMON".into(),
            subject_prefix: "rsysmon".into(),
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
            format: LineFormat::Json,
        };
        let sink = NatsSink::new(settings, identity).unwrap();
        let event = Event::new(42, Default::default(), 1, 1, "x".into(), Detail::ThreadCreate { creator_tid: 1 });
        assert_eq!(sink.subject(&event), "rsysmon.web-1_example.thread-create");
        assert_eq!(sink.message_id(&event), "web-1.example/b00t/17/42");
        let request = WatchRequest {
            url: String::new(),
            stream: "RSYSMON".into(),
            subject_prefix: "rsysmon".into(),
            host: Some("web-1.example".into()),
            kind: None,
            from_start: false,
        };
        assert_eq!(request.filter(), "rsysmon.web-1_example.*");
    }
}
