//! Who a process is beyond its pid: its `entity_id`, its user's and
//! group's names, and whether its paths are the host's.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;

use nix::unistd::{Gid, Group, Uid, User};
use rsysmon_event::Host;

/// Entity ids and names, cached.
#[derive(Debug)]
pub struct Identity {
    machine_id: String,
    boot_id: String,
    own_mnt_ns: u64,
    users: HashMap<u32, Option<String>>,
    groups: HashMap<u32, Option<String>>,
    /// Entity ids made, by (pid, start): a process's every event needs its
    /// id and its parent's, and a SHA-256 each time would be the sensor's
    /// largest cost per event.
    entity_ids: HashMap<(u32, u64), String>,
}

/// Entity ids remembered; forgotten all at once beyond this.
const MAX_ENTITY_IDS: usize = 65_536;

/// Names remembered; forgotten all at once beyond this.
const MAX_NAMES: usize = 4096;

impl Identity {
    pub fn new(host: &Host) -> Self {
        let own_mnt_ns = std::fs::metadata("/proc/self/ns/mnt").map(|m| m.ino()).unwrap_or(0);
        Identity {
            machine_id: host.id.clone(),
            boot_id: host.boot_id.clone(),
            own_mnt_ns,
            users: HashMap::new(),
            groups: HashMap::new(),
            entity_ids: HashMap::new(),
        }
    }

    /// The `entity_id` of the process `pid` that started at `start_ns`
    /// (CLOCK_BOOTTIME): stable for its life, and unique across pid reuse
    /// (the start time differs), reboots (the boot id) and hosts (the
    /// machine id).
    pub fn entity_id(&mut self, pid: u32, start_ns: u64) -> String {
        if let Some(id) = self.entity_ids.get(&(pid, start_ns)) {
            return id.clone();
        }
        let id = rsysmon_hash::sha256_hex_of_parts(
            &[self.machine_id.as_bytes(), self.boot_id.as_bytes(), &pid.to_le_bytes(), &start_ns.to_le_bytes()],
            16,
        );
        if self.entity_ids.len() >= MAX_ENTITY_IDS {
            self.entity_ids.clear();
        }
        self.entity_ids.insert((pid, start_ns), id.clone());
        id
    }

    /// Whether `mnt_ns` is another mount namespace than the daemon's: the
    /// probe's paths are then as that namespace shows them.
    pub fn other_mount_ns(&self, mnt_ns: u32) -> bool {
        mnt_ns != 0 && self.own_mnt_ns != 0 && u64::from(mnt_ns) != self.own_mnt_ns
    }

    /// The name of `uid`, from the user database (NSS), cached.
    pub fn user(&mut self, uid: u32) -> Option<String> {
        cached(&mut self.users, uid, || User::from_uid(Uid::from_raw(uid)).ok().flatten().map(|u| u.name))
    }

    /// The name of `gid`, cached.
    pub fn group(&mut self, gid: u32) -> Option<String> {
        cached(&mut self.groups, gid, || Group::from_gid(Gid::from_raw(gid)).ok().flatten().map(|g| g.name))
    }
}

fn cached(
    cache: &mut HashMap<u32, Option<String>>,
    id: u32,
    look_up: impl FnOnce() -> Option<String>,
) -> Option<String> {
    if let Some(name) = cache.get(&id) {
        return name.clone();
    }
    if cache.len() >= MAX_NAMES {
        cache.clear();
    }
    let name = look_up();
    cache.insert(id, name.clone());
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_ids_differ_by_pid_start_and_host() {
        let host = Host { name: "a".into(), id: "m1".into(), boot_id: "b1".into() };
        let mut id = Identity::new(&host);
        let e = id.entity_id(100, 5);
        assert_eq!(e.len(), 32);
        assert_eq!(e, id.entity_id(100, 5));
        assert_ne!(e, id.entity_id(100, 6));
        assert_ne!(e, id.entity_id(101, 5));
        let mut other = Identity::new(&Host { id: "m2".into(), ..host.clone() });
        assert_ne!(e, other.entity_id(100, 5));
        let mut reboot = Identity::new(&Host { boot_id: "b2".into(), ..host });
        assert_ne!(e, reboot.entity_id(100, 5));
    }

    #[test]
    fn root_is_named_and_unknown_ids_are_none() {
        let mut id = Identity::new(&Host::default());
        assert_eq!(id.user(0).as_deref(), Some("root"));
        assert_eq!(id.group(0).as_deref(), Some("root"));
        assert_eq!(id.user(3_999_999_999), None);
        assert!(!id.other_mount_ns(0));
    }
}
