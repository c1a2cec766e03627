//! Which events a reader wants to see.

use std::collections::BTreeSet;

use crate::event::Event;
use crate::kind::EventKind;

/// A reader's selection. Empty sets select everything; loss events always
/// pass, so a filtered reader still learns that events were dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub kinds: BTreeSet<EventKind>,
    pub pids: BTreeSet<u32>,
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Detail, LossStage};

    fn event(pid: u32, detail: Detail) -> Event {
        Event { seq: 1, time: Default::default(), pid, tid: pid, comm: String::new(), detail }
    }

    #[test]
    fn kinds_and_pids_select_but_losses_always_pass() {
        let filter = Filter { kinds: [EventKind::ThreadCreate].into(), pids: [5].into() };
        assert!(filter.matches(&event(5, Detail::ThreadCreate { creator_tid: 5 })));
        assert!(!filter.matches(&event(6, Detail::ThreadCreate { creator_tid: 6 })));
        assert!(!filter.matches(&event(5, Detail::ThreadExit { exit_code: Some(0), signal: None })));
        assert!(filter.matches(&event(0, Detail::Loss { lost: 1, stage: LossStage::Kernel })));
        assert!(Filter::default().matches(&event(9, Detail::ThreadCreate { creator_tid: 9 })));
    }
}
