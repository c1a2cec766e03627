//! `rsysmon fleet watch`: JetStream to stdout, one line per event.

use std::io::{self, ErrorKind, Write};

use rsysmon_sinks::nats::{watch, WatchRequest};

use crate::cli::fleet::FleetCommand;

pub fn fleet(command: FleetCommand) -> anyhow::Result<()> {
    let FleetCommand::Watch(args) = command;
    let request = WatchRequest {
        url: args.nats,
        stream: args.stream,
        subject_prefix: args.subject_prefix,
        host: args.host,
        kind: args.kind.map(|k| k.name().to_string()),
        from_start: args.all,
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut failed = None;
    watch(&request, |line| match out.write_all(line).and_then(|()| out.write_all(b"\n")).and_then(|()| out.flush()) {
        Ok(()) => true,
        // A reader that went away (`| head`) ends quietly.
        Err(e) if e.kind() == ErrorKind::BrokenPipe => false,
        Err(e) => {
            failed = Some(e);
            false
        }
    })
    .map_err(|e| anyhow::anyhow!(e))?;
    match failed {
        Some(e) => Err(anyhow::anyhow!("writing to stdout failed: {e}")),
        None => Ok(()),
    }
}
