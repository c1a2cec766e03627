//! Which events a reader wants to see.
//!
//! Filters travel from clients to the daemon (JSON), which applies them
//! before sending, so a narrow `watch` costs the daemon little.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::kind::EventKind;

/// A reader's selection. Empty sets select everything; loss events always
/// pass, so a filtered reader still learns that events were dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Filter {
    pub kinds: BTreeSet<EventKind>,
    pub pids: BTreeSet<u32>,
    /// Shell-style pattern on the process name (`*`, `?`, `[…]`).
    pub comm: Option<CommPattern>,
}

/// A compiled `--comm` pattern; (de)serialized as its text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CommPattern(glob::Pattern);

/// A `--comm` pattern that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad process-name pattern {given:?}: {reason}")]
pub struct BadPattern {
    given: String,
    reason: String,
}

impl std::str::FromStr for CommPattern {
    type Err = BadPattern;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        glob::Pattern::new(s)
            .map(CommPattern)
            .map_err(|e| BadPattern { given: s.to_string(), reason: e.msg.to_string() })
    }
}

impl CommPattern {
    pub fn matches(&self, comm: &str) -> bool {
        self.0.matches(comm)
    }
}

impl Serialize for CommPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for CommPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Filter {
    /// Whether `event` is selected.
    pub fn matches(&self, event: &Event) -> bool {
        let kind = event.kind();
        if kind == EventKind::Loss {
            return true;
        }
        (self.kinds.is_empty() || self.kinds.contains(&kind))
            && (self.pids.is_empty() || self.pids.contains(&event.pid))
            && self.comm.as_ref().is_none_or(|p| p.matches(&event.comm))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Detail, LossStage};

    fn event(pid: u32, detail: Detail) -> Event {
        Event::new(1, Default::default(), pid, pid, "python3".into(), detail)
    }

    #[test]
    fn kinds_pids_and_comm_select_but_losses_always_pass() {
        let filter = Filter { kinds: [EventKind::ThreadCreate].into(), pids: [5].into(), comm: None };
        assert!(filter.matches(&event(5, Detail::ThreadCreate { creator_tid: 5 })));
        assert!(!filter.matches(&event(6, Detail::ThreadCreate { creator_tid: 6 })));
        assert!(!filter.matches(&event(5, Detail::ThreadExit { exit_code: Some(0), signal: None })));
        assert!(filter.matches(&event(0, Detail::Loss { lost: 1, stage: LossStage::Kernel })));
        assert!(Filter::default().matches(&event(9, Detail::ThreadCreate { creator_tid: 9 })));

        let py = Filter { comm: Some("py*".parse().unwrap()), ..Filter::default() };
        assert!(py.matches(&event(1, Detail::ThreadCreate { creator_tid: 1 })));
        let sh = Filter { comm: Some("sh".parse().unwrap()), ..Filter::default() };
        assert!(!sh.matches(&event(1, Detail::ThreadCreate { creator_tid: 1 })));
    }

    #[test]
    fn filters_round_trip_as_json_and_reject_unknown_fields() {
        let filter =
            Filter { kinds: [EventKind::ProcessExec].into(), pids: [1, 2].into(), comm: Some("b?sh".parse().unwrap()) };
        let json = serde_json::to_string(&filter).unwrap();
        assert_eq!(json, r#"{"kinds":["process-exec"],"pids":[1,2],"comm":"b?sh"}"#);
        assert_eq!(serde_json::from_str::<Filter>(&json).unwrap(), filter);
        assert!(serde_json::from_str::<Filter>(r#"{"kind":[]}"#).is_err());
        assert!(serde_json::from_str::<Filter>(r#"{"comm":"[unclosed"}"#).is_err());
    }
}
