//! `rsysmon fleet …`: reading what many hosts' daemons export.

use clap::{Args, Subcommand};
use rsysmon_event::EventKind;

pub const FLEET_HELP: &str = "\
Reads the events that daemons with [outputs.nats] enabled publish to NATS
JetStream, one JSON line per event, across hosts, in the stream's order.
Subjects are PREFIX.HOST.KIND; a host's seq has a gap only where its
daemon reported a loss. See docs/outputs.md.

Examples:
  rsysmon fleet watch --nats nats://10.0.0.1:4222
  rsysmon fleet watch --nats nats://10.0.0.1:4222 --host web-1 --kind exec-blocked
  rsysmon fleet watch --nats nats://10.0.0.1:4222 --all > fleet.jsonl";

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Stream events from JetStream across hosts.
    Watch(FleetWatchArgs),
}

#[derive(Debug, Args)]
pub struct FleetWatchArgs {
    /// NATS server URL (any server of the cluster).
    #[arg(long, value_name = "URL")]
    pub nats: String,
    /// Only this host (as the daemon names it: `uname -n`).
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Only this kind of event.
    #[arg(long, value_name = "KIND")]
    pub kind: Option<EventKind>,
    /// From the oldest event the stream keeps, not only from now on.
    #[arg(long)]
    pub all: bool,
    /// The JetStream stream (outputs.nats.stream).
    #[arg(long, value_name = "NAME", default_value = "RSYSMON")]
    pub stream: String,
    /// The subject prefix (outputs.nats.subject_prefix).
    #[arg(long, value_name = "PREFIX", default_value = "rsysmon")]
    pub subject_prefix: String,
}
