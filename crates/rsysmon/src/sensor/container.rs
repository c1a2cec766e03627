//! Which container a process runs in, from its cgroup v2 path.
//!
//! Container engines put each container in a cgroup named after its id
//! (64 hex digits): docker (`docker-ID.scope` under systemd,
//! `/docker/ID` under cgroupfs), containerd (`cri-containerd-ID.scope`,
//! `/kubepods/…/pod…/ID`), CRI-O (`crio-ID.scope`), podman
//! (`libpod-ID.scope`, whose payload may sit in a `container` child).
//! podman's monitor runs in `libpod-conmon-ID.scope`: it is not the
//! container, and is not reported as one.

use std::collections::HashMap;
use std::fs;

/// Container ids by cgroup id, read from /proc once per cgroup.
#[derive(Debug, Default)]
pub struct Containers {
    by_cgroup: HashMap<u64, Option<String>>,
}

/// Cgroups remembered; forgotten all at once beyond this (cgroups come
/// and go with containers and services).
const MAX_CGROUPS: usize = 16_384;

impl Containers {
    /// The container of the process `pid`, whose cgroup is `cgroup_id`.
    /// The first event of a cgroup reads `/proc/PID/cgroup`; a process
    /// already gone by then leaves that cgroup unknown until the next one.
    pub fn of(&mut self, cgroup_id: u64, pid: u32) -> Option<String> {
        if cgroup_id == 0 {
            return None;
        }
        if let Some(known) = self.by_cgroup.get(&cgroup_id) {
            return known.clone();
        }
        let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
        let id = container_id(path);
        if self.by_cgroup.len() >= MAX_CGROUPS {
            self.by_cgroup.clear();
        }
        self.by_cgroup.insert(cgroup_id, id.clone());
        id
    }
}

/// The container id in a cgroup path, if it names one.
pub fn container_id(cgroup_path: &str) -> Option<String> {
    for part in cgroup_path.rsplit('/') {
        let name = part.strip_suffix(".scope").unwrap_or(part);
        if name.starts_with("libpod-conmon-") {
            return None;
        }
        let id = ["docker-", "cri-containerd-", "crio-", "libpod-", "containerd-"]
            .iter()
            .find_map(|p| name.strip_prefix(p))
            .unwrap_or(name);
        if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some(id.to_ascii_lowercase());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4e6a0c9b1d2e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9d0e1f2a3b";

    #[test]
    fn every_engine_layout_gives_the_id() {
        let paths = [
            format!("/system.slice/docker-{ID}.scope"),
            format!("/docker/{ID}"),
            format!("/kubepods/besteffort/pod0f1e2d3c-aaaa-bbbb-cccc-1234567890ab/{ID}"),
            format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f1e2d3c_aaaa.slice/cri-containerd-{ID}.scope"
            ),
            format!("/kubepods.slice/kubepods-pod1.slice/crio-{ID}.scope"),
            format!("/machine.slice/libpod-{ID}.scope"),
            format!("/machine.slice/libpod-{ID}.scope/container"),
            format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"),
        ];
        for path in &paths {
            assert_eq!(container_id(path).as_deref(), Some(ID), "{path}");
        }
    }

    #[test]
    fn hosts_services_and_monitors_are_no_container() {
        for path in [
            "/",
            "/system.slice/sshd.service",
            "/user.slice/user-0.slice/session-3.scope",
            &format!("/machine.slice/libpod-conmon-{ID}.scope"),
            "/docker/not-an-id",
        ] {
            assert_eq!(container_id(path), None, "{path}");
        }
    }

    #[test]
    fn our_own_cgroup_is_read_and_remembered() {
        let mut c = Containers::default();
        let own = fs::read_to_string("/proc/self/cgroup").unwrap();
        let expected = own.lines().find_map(|l| l.strip_prefix("0::")).and_then(container_id);
        assert_eq!(c.of(77, std::process::id()), expected);
        assert_eq!(c.by_cgroup.get(&77), Some(&expected));
        assert_eq!(c.of(0, std::process::id()), None);
    }
}
