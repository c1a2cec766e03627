//! Event kinds by name, as users type them in `--kind`.

use std::fmt;
use std::str::FromStr;

/// The kinds of event, named as in the output (`process-create`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    ProcessCreate,
    ProcessExec,
    ProcessExit,
    ThreadCreate,
    ThreadExit,
    ProcessTamper,
    RemoteThread,
    ExecBlocked,
    ImageLoad,
    ImageHash,
    Loss,
}

impl EventKind {
    /// Every kind, in the order summaries list them.
    pub const ALL: [EventKind; 11] = [
        EventKind::ProcessCreate,
        EventKind::ProcessExec,
        EventKind::ProcessExit,
        EventKind::ThreadCreate,
        EventKind::ThreadExit,
        EventKind::ProcessTamper,
        EventKind::RemoteThread,
        EventKind::ExecBlocked,
        EventKind::ImageLoad,
        EventKind::ImageHash,
        EventKind::Loss,
    ];

    /// The name used in output and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::ProcessCreate => "process-create",
            EventKind::ProcessExec => "process-exec",
            EventKind::ProcessExit => "process-exit",
            EventKind::ThreadCreate => "thread-create",
            EventKind::ThreadExit => "thread-exit",
            EventKind::ProcessTamper => "process-tamper",
            EventKind::RemoteThread => "remote-thread",
            EventKind::ExecBlocked => "exec-blocked",
            EventKind::ImageLoad => "image-load",
            EventKind::ImageHash => "image-hash",
            EventKind::Loss => "loss",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `--kind` value that names no kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event kind {given:?}; known kinds: {}", EventKind::ALL.map(EventKind::name).join(", "))]
pub struct UnknownKind {
    given: String,
}

impl serde::Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for EventKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for EventKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventKind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| UnknownKind { given: s.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(k.name().parse::<EventKind>(), Ok(k));
        }
        assert!("process".parse::<EventKind>().unwrap_err().to_string().contains("process-create"));
    }
}
