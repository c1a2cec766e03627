//! The daemon's counters as Prometheus metrics (text format 0.0.4).
//!
//! Rendered at each scrape from the same [`Status`] that `rsysmon status`
//! shows, so the two agree by construction: a new registry is filled from
//! the snapshot and encoded. Nothing here sits on the event path.

use std::fmt;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use rsysmon_blocker::{BlockerStats, LATENCY_BOUNDS_US};

use crate::protocol::Status;

pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

type Labels = Vec<(&'static str, String)>;

/// The metrics text for `status` and, if blocking, the blocker's decision
/// times. `server` counts the metrics listener's own refusals.
pub fn render(status: &Status, blocker: Option<&BlockerStats>, server: &ServerCounts) -> String {
    let mut registry = Registry::with_prefix("rsysmon");
    let counters = |registry: &mut Registry,
                    name: &str,
                    help: &str,
                    label: &'static str,
                    values: &mut dyn Iterator<Item = (String, u64)>| {
        let family = Family::<Labels, Counter>::default();
        for (value, n) in values {
            family.get_or_create(&vec![(label, value)]).inc_by(n);
        }
        registry.register(name, help, family);
    };
    let gauges = |registry: &mut Registry,
                  name: &str,
                  help: &str,
                  label: &'static str,
                  values: &mut dyn Iterator<Item = (String, i64)>| {
        let family = Family::<Labels, Gauge>::default();
        for (value, n) in values {
            family.get_or_create(&vec![(label, value)]).set(n);
        }
        registry.register(name, help, family);
    };
    let gauge = |registry: &mut Registry, name: &str, help: &str, n: i64| {
        let g = Gauge::<i64>::default();
        g.set(n);
        registry.register(name, help, g);
    };
    let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);

    counters(
        &mut registry,
        "events",
        "Events produced since start, per kind",
        "kind",
        &mut status.events.iter().map(|(k, n)| (k.clone(), *n)),
    );
    counters(
        &mut registry,
        "lost_events",
        "Events lost since start, per stage (kernel, decode, queue, client, sink:NAME)",
        "stage",
        &mut status.lost.iter().map(|(k, n)| (k.clone(), *n)),
    );
    counters(
        &mut registry,
        "filtered_events",
        "Events dropped by the configured filter rules, per kind (not a loss)",
        "kind",
        &mut status.filtered.iter().map(|(k, n)| (k.clone(), *n)),
    );
    gauge(&mut registry, "last_seq", "Seq of the newest event handed to clients and sinks", int(status.last_seq));
    gauge(&mut registry, "history_events", "Events the daemon's history holds", status.queue.len as i64);
    gauge(
        &mut registry,
        "history_capacity_events",
        "Events the daemon's history holds at most",
        status.queue.capacity as i64,
    );
    let rotated = Counter::<u64>::default();
    rotated.inc_by(status.queue.rotated);
    registry.register("history_rotated_events", "Events rotated out of the history (not a loss)", rotated);
    gauge(&mut registry, "clients", "Clients connected to the control socket", status.clients as i64);
    gauge(&mut registry, "uptime_seconds", "Seconds since the daemon started", int(status.uptime_secs));
    gauge(&mut registry, "probes_attached", "Probe attach points attached", status.probes.len() as i64);
    gauges(
        &mut registry,
        "capability_on",
        "1 if the capability runs, 0 if it is off (see rsysmon status for why)",
        "capability",
        &mut status.capabilities.iter().map(|c| (c.name.clone(), i64::from(c.on))),
    );
    gauge(
        &mut registry,
        "config_reload_failures",
        "1 if the newest configuration reload was refused",
        i64::from(status.config.last_error.is_some()),
    );

    let sinks = |f: &dyn Fn(&rsysmon_sinks::SinkStatus) -> u64| -> std::vec::IntoIter<(String, u64)> {
        status.sinks.iter().map(|s| (s.name.clone(), f(s))).collect::<Vec<_>>().into_iter()
    };
    counters(
        &mut registry,
        "sink_delivered_events",
        "Events a sink delivered since start",
        "sink",
        &mut sinks(&|s| s.delivered),
    );
    counters(
        &mut registry,
        "sink_failures",
        "Failed deliveries of a sink, each retried",
        "sink",
        &mut sinks(&|s| s.failures),
    );
    gauges(
        &mut registry,
        "sink_queued_events",
        "Events waiting in a sink's buffer",
        "sink",
        &mut sinks(&|s| s.queued as u64).map(|(n, v)| (n, int(v))),
    );
    gauges(
        &mut registry,
        "sink_capacity_events",
        "Events a sink's buffer holds at most",
        "sink",
        &mut sinks(&|s| s.capacity as u64).map(|(n, v)| (n, int(v))),
    );
    gauges(
        &mut registry,
        "sink_lag_events",
        "Seqs between the newest event published and the newest a sink delivered",
        "sink",
        &mut sinks(&|s| status.last_seq.saturating_sub(s.last_seq)).map(|(n, v)| (n, int(v))),
    );
    gauges(
        &mut registry,
        "sink_up",
        "1 if the sink's newest delivery succeeded",
        "sink",
        &mut sinks(&|s| u64::from(s.state == rsysmon_sinks::SinkState::Up)).map(|(n, v)| (n, int(v))),
    );

    if let Some(b) = &status.blocker {
        let decisions = [
            ("allowed", b.allowed),
            ("denied", b.denied),
            ("own", b.own),
            ("failed", b.failures),
            ("unreadable", b.unreadable),
            ("kernel-refused", b.kernel_refused),
        ];
        counters(
            &mut registry,
            "blocker_decisions",
            "Exec decisions of the blocker since start (kernel-refused: execs and mappings the BPF LSM hooks refused without asking the daemon)",
            "decision",
            &mut decisions.into_iter().map(|(d, n)| (d.to_string(), n)),
        );
    }
    if let Some(stats) = blocker {
        registry.register_with_unit(
            "blocker_decision",
            "Time from reading an exec event to writing its answer",
            Unit::Seconds,
            DecisionTimes::new(stats),
        );
    }
    let refused = Family::<Labels, Counter>::default();
    refused.get_or_create(&vec![("reason", "busy".into())]).inc_by(server.busy);
    refused.get_or_create(&vec![("reason", "bad-request".into())]).inc_by(server.bad);
    registry.register("metrics_refused_requests", "Requests the metrics listener refused", refused);

    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry);
    text
}

/// The metrics listener's own refusals.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerCounts {
    /// Connections closed at once: every slot was taken.
    pub busy: u64,
    /// Requests answered with an error: too large, too slow, not a GET of
    /// /metrics.
    pub bad: u64,
}

/// The blocker's decision-time histogram, in seconds.
#[derive(Debug)]
struct DecisionTimes {
    sum: f64,
    count: u64,
    /// (upper bound, decisions in that bucket alone).
    buckets: Vec<(f64, u64)>,
}

impl DecisionTimes {
    fn new(stats: &BlockerStats) -> Self {
        let h = &stats.latency;
        let bounds = LATENCY_BOUNDS_US.iter().map(|&us| us as f64 / 1e6).chain([f64::INFINITY]);
        let buckets = bounds.zip(h.counts.iter().copied()).collect();
        DecisionTimes { sum: h.sum_us / 1e6, count: h.count, buckets }
    }
}

impl EncodeMetric for DecisionTimes {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), fmt::Error> {
        encoder.encode_histogram::<NoLabelSet>(self.sum, self.count, &self.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}
