//! The host an event comes from: what makes it unique across a fleet.
//!
//! Read once at start. With `seq`, (host id, boot id) names every event
//! uniquely: the machine id tells hosts apart, the boot id tells runs of
//! the same host apart (and so tells a `seq` that restarted).

use std::fs;
use std::sync::{Arc, OnceLock};

use serde::Serialize;

/// Identity of the host, as ECS names it (`host.name`, `host.id`,
/// `host.boot.id`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Host {
    /// The kernel's host name (uname nodename).
    pub name: String,
    /// `/etc/machine-id`: 32 hex digits, fixed at installation. Empty when
    /// the file is missing (a minimal container image).
    pub id: String,
    /// The kernel's random id of this boot
    /// (`/proc/sys/kernel/random/boot_id`), dashes removed.
    pub boot_id: String,
}

impl Host {
    /// This host, read from the running system. Files that cannot be read
    /// give empty fields: an event is still better than none.
    pub fn from_system() -> Self {
        let read = |path: &str| fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_default();
        let mut name = read("/proc/sys/kernel/hostname");
        if name.is_empty() {
            name = etc_hostname();
        }
        let mut id = read("/etc/machine-id");
        if id.is_empty() {
            id = read("/var/lib/dbus/machine-id");
        }
        Host { name, id, boot_id: read("/proc/sys/kernel/random/boot_id").replace('-', "") }
    }

    /// The placeholder of events made outside a pipeline (tests, tools):
    /// all fields empty, one shared allocation.
    pub fn unknown() -> Arc<Host> {
        static UNKNOWN: OnceLock<Arc<Host>> = OnceLock::new();
        UNKNOWN.get_or_init(|| Arc::new(Host::default())).clone()
    }
}

fn etc_hostname() -> String {
    fs::read_to_string("/etc/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_host_has_a_boot_id_and_its_machine_id() {
        let host = Host::from_system();
        assert_eq!(host.boot_id.len(), 32, "{host:?}");
        assert!(host.boot_id.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(!host.name.is_empty());
        if let Ok(id) = fs::read_to_string("/etc/machine-id") {
            assert_eq!(host.id, id.trim());
        }
    }
}
