//! What the monitor can do, and which probes each ability needs.
//!
//! Every program in the BPF object belongs to exactly one capability, and a
//! capability attaches whole or not at all: a monitor that reports some
//! image loads and misses others would mislead. Process and thread events
//! are required; any other capability the kernel cannot run is switched
//! off, and said so, never silently missing.

use std::fmt;
use std::str::FromStr;

/// One thing the monitor can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// Process and thread create, exec and exit.
    Process,
    /// Images mapped into processes: at exec, by mmap and mprotect.
    ImageLoad,
    /// Takeovers (ptrace, process_vm_writev, /proc/PID/mem) and the remote
    /// threads they cause.
    Injection,
    /// Refusing configured executables: BPF LSM hooks where the kernel
    /// allows them (see [`crate::bpf_lsm`]); else fanotify for execve, and
    /// the image-load probes' kill for files reached without it.
    Blocking,
}

impl Capability {
    pub const ALL: [Capability; 4] =
        [Capability::Process, Capability::ImageLoad, Capability::Injection, Capability::Blocking];

    /// The name users write (`--require image-load,blocking`).
    pub fn name(self) -> &'static str {
        match self {
            Capability::Process => "process",
            Capability::ImageLoad => "image-load",
            Capability::Injection => "injection",
            Capability::Blocking => "blocking",
        }
    }

    /// Whether the monitor refuses to start without it.
    pub fn always_required(self) -> bool {
        self == Capability::Process
    }

    /// The BPF programs (by function name) of this capability. A program in
    /// the object that is in no list is a load error: it would attach with
    /// no capability to answer for it.
    pub fn programs(self) -> &'static [&'static str] {
        match self {
            // on_exit and on_exit_live are variants: the plan loads one.
            Capability::Process => &["on_fork", "on_exec", "on_exit", "on_exit_live"],
            // on_mmap_exit, on_vma_store, on_ma_write and fexit_vm_mmap are
            // variants: the plan loads one; fexit_mprotect replaces the
            // mprotect exit tracepoints where fexit_vm_mmap loads.
            Capability::ImageLoad => &[
                "on_mmap_exit",
                "on_vma_store",
                "on_ma_write",
                "on_mprotect_exit",
                "on_pkey_mprotect_exit",
                "on_exec_images",
                "fexit_vm_mmap",
                "fexit_mprotect",
            ],
            // Two mechanisms: the plan loads the fexit programs or the
            // syscall exit tracepoints (crate::takeover_hooks).
            Capability::Injection => &crate::takeover_hooks::PROGRAMS,
            // Loaded only where BPF LSM works (`Plan::lsm`); elsewhere its
            // kernel half is the image-load programs' kill.
            Capability::Blocking => &["lsm_bprm_check", "lsm_mmap_file", "lsm_file_mprotect"],
        }
    }

    /// The capability a program belongs to.
    pub fn of_program(program: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.programs().contains(&program))
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Not a capability name.
#[derive(Debug, thiserror::Error)]
#[error("unknown capability {0:?}: expected one of process, image-load, injection, blocking")]
pub struct UnknownCapability(pub String);

impl FromStr for Capability {
    type Err = UnknownCapability;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Capability::ALL.into_iter().find(|c| c.name() == s.trim()).ok_or_else(|| UnknownCapability(s.to_string()))
    }
}

/// Whether a capability runs, and how, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapabilityState {
    /// Running, with the mechanism it uses.
    On(String),
    /// Not running, and why.
    Off(String),
}

impl CapabilityState {
    pub fn is_on(&self) -> bool {
        matches!(self, CapabilityState::On(_))
    }
}

/// Every capability's state, in [`Capability::ALL`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities(Vec<(Capability, CapabilityState)>);

impl Capabilities {
    pub fn new(states: impl IntoIterator<Item = (Capability, CapabilityState)>) -> Capabilities {
        let mut states: Vec<_> = states.into_iter().collect();
        states.sort_by_key(|(c, _)| *c);
        states.dedup_by_key(|(c, _)| *c);
        Capabilities(states)
    }

    pub fn get(&self, capability: Capability) -> Option<&CapabilityState> {
        self.0.iter().find(|(c, _)| *c == capability).map(|(_, s)| s)
    }

    pub fn is_on(&self, capability: Capability) -> bool {
        self.get(capability).is_some_and(CapabilityState::is_on)
    }

    /// Set (or add) one capability's state.
    pub fn set(&mut self, capability: Capability, state: CapabilityState) {
        match self.0.iter_mut().find(|(c, _)| *c == capability) {
            Some((_, s)) => *s = state,
            None => {
                self.0.push((capability, state));
                self.0.sort_by_key(|(c, _)| *c);
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (Capability, &CapabilityState)> {
        self.0.iter().map(|(c, s)| (*c, s))
    }

    /// The capabilities that are off, with why.
    pub fn off(&self) -> impl Iterator<Item = (Capability, &str)> {
        self.0.iter().filter_map(|(c, s)| match s {
            CapabilityState::Off(why) => Some((*c, why.as_str())),
            CapabilityState::On(_) => None,
        })
    }

    /// The first of `required` that is off, with why.
    pub fn first_missing<'a>(&'a self, required: &[Capability]) -> Option<(Capability, &'a str)> {
        self.off().find(|(c, _)| required.contains(c) || c.always_required())
    }
}

/// `process on (…), image-load on (…), injection off (…)`: the one-line
/// form of the startup line, `status` and the exit summary.
impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (capability, state)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match state {
                CapabilityState::On(how) => write!(f, "{capability} on ({how})")?,
                CapabilityState::Off(why) => write!(f, "{capability} off ({why})")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for c in Capability::ALL {
            assert_eq!(c.name().parse::<Capability>().unwrap(), c);
        }
        let err = "image_load".parse::<Capability>().unwrap_err().to_string();
        assert!(err.contains("unknown capability \"image_load\""), "{err}");
    }

    #[test]
    fn every_program_belongs_to_one_capability() {
        let mut all: Vec<&str> = Capability::ALL.iter().flat_map(|c| c.programs().iter().copied()).collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "a program is in two capabilities");
        assert_eq!(Capability::of_program("on_exit_live"), Some(Capability::Process));
        assert_eq!(Capability::of_program("on_mmap_exit"), Some(Capability::ImageLoad));
        assert_eq!(Capability::of_program("nope"), None);
    }

    #[test]
    fn the_line_shows_each_capability_and_what_is_missing() {
        let mut caps = Capabilities::new([
            (Capability::Injection, CapabilityState::Off("no tracefs".into())),
            (Capability::Process, CapabilityState::On("BTF tracepoints".into())),
        ]);
        caps.set(Capability::ImageLoad, CapabilityState::On("mmap".into()));
        assert_eq!(caps.to_string(), "process on (BTF tracepoints), image-load on (mmap), injection off (no tracefs)");
        assert_eq!(caps.first_missing(&[]), None);
        assert_eq!(caps.first_missing(&[Capability::Injection]), Some((Capability::Injection, "no tracefs")));
        caps.set(Capability::Process, CapabilityState::Off("old kernel".into()));
        assert_eq!(caps.first_missing(&[]), Some((Capability::Process, "old kernel")));
    }
}
