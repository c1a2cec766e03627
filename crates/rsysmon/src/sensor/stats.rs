//! Counters of what went through the pipeline and what was lost where.

use std::collections::BTreeMap;
use std::fmt;

use rsysmon_event::{EventKind, LossStage};

/// Events per kind and losses per stage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    kinds: BTreeMap<EventKind, u64>,
    losses: BTreeMap<LossStage, u64>,
    allowed_remote_threads: u64,
    /// Events the filter rules dropped, per kind.
    filtered: BTreeMap<EventKind, u64>,
    /// Why the newest bad record failed decoding: a probe and a decoder
    /// that disagree show as a reason, not only as a count.
    last_decode_error: Option<String>,
    /// Execs and mappings the BPF LSM hooks refused since the probes loaded
    /// (counted in the kernel; 0 without the hooks).
    kernel_refusals: u64,
}

impl Stats {
    pub fn count_kind(&mut self, kind: EventKind) {
        *self.kinds.entry(kind).or_default() += 1;
    }

    pub fn count_loss(&mut self, stage: LossStage, n: u64) {
        *self.losses.entry(stage).or_default() += n;
    }

    /// An event the filter rules dropped (not a loss: it got no seq).
    pub fn count_filtered(&mut self, kind: EventKind) {
        *self.filtered.entry(kind).or_default() += 1;
    }

    /// Every kind the filter rules dropped events of, by name.
    pub fn filtered_by_name(&self) -> BTreeMap<String, u64> {
        self.filtered.iter().map(|(k, n)| (k.name().to_string(), *n)).collect()
    }

    /// A remote thread whose creator is allow-listed was not reported.
    pub fn count_allowed_remote_thread(&mut self) {
        self.allowed_remote_threads += 1;
    }

    /// A record failed decoding for `reason` (it is counted as a loss too).
    pub fn decode_failed(&mut self, reason: String) {
        self.last_decode_error = Some(reason);
    }

    /// Why the newest bad record failed decoding, if one did.
    pub fn last_decode_error(&self) -> Option<&str> {
        self.last_decode_error.as_deref()
    }

    /// The kernel's count of refusals by the BPF LSM hooks, as read now.
    pub fn set_kernel_refusals(&mut self, total: u64) {
        self.kernel_refusals = total;
    }

    pub fn kernel_refusals(&self) -> u64 {
        self.kernel_refusals
    }

    pub fn lost(&self, stage: LossStage) -> u64 {
        self.losses.get(&stage).copied().unwrap_or(0)
    }

    pub fn events(&self, kind: EventKind) -> u64 {
        self.kinds.get(&kind).copied().unwrap_or(0)
    }

    /// Every kind by name, zeros included.
    pub fn events_by_name(&self) -> BTreeMap<String, u64> {
        let mut map: BTreeMap<String, u64> =
            EventKind::ALL.iter().map(|&k| (k.name().to_string(), self.events(k))).collect();
        map.insert("remote-thread-allowed".into(), self.allowed_remote_threads);
        map
    }

    /// Every stage by name, zeros included (the daemon fills in the
    /// queues' and sinks' own counts).
    pub fn losses_by_name(&self) -> BTreeMap<String, u64> {
        LossStage::ALL.iter().map(|&s| (s.name().to_string(), self.lost(s))).collect()
    }
}

/// `events: process-create=3 … ; lost: kernel=0 decode=0 queue=0`
impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "events:")?;
        for kind in EventKind::ALL.into_iter().filter(|&k| k != EventKind::Loss) {
            write!(f, " {kind}={}", self.events(kind))?;
        }
        write!(f, "; lost:")?;
        for stage in LossStage::ALL.into_iter().filter(|s| !matches!(s, LossStage::Client | LossStage::Sink(_))) {
            write!(f, " {}={}", stage.name(), self.lost(stage))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lists_every_kind_and_stage() {
        let mut s = Stats::default();
        s.count_kind(EventKind::ThreadCreate);
        s.count_loss(LossStage::Queue, 4);
        let line = s.to_string();
        assert!(line.starts_with("events: process-create=0 "), "{line}");
        assert!(line.contains("thread-create=1"));
        assert!(line.ends_with("lost: kernel=0 decode=0 queue=4"), "{line}");
    }
}
