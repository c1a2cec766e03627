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
use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Container ids by cgroup id, looked up once per cgroup.
#[derive(Debug, Default)]
pub struct Containers {
    by_cgroup: HashMap<u64, Option<String>>,
    /// The cgroup v2 root, opened once: cgroup ids are file handles on it.
    root: Option<Option<OwnedFd>>,
}

/// Cgroups remembered; forgotten all at once beyond this (cgroups come
/// and go with containers and services).
const MAX_CGROUPS: usize = 16_384;

impl Containers {
    /// The container of the process `pid`, whose cgroup is `cgroup_id`.
    /// The first event of a cgroup finds the cgroup's path from its id
    /// (the cgroup is still there when the process is gone), or else from
    /// `/proc/PID/cgroup`.
    pub fn of(&mut self, cgroup_id: u64, pid: u32) -> Option<String> {
        if cgroup_id == 0 {
            return None;
        }
        if let Some(known) = self.by_cgroup.get(&cgroup_id) {
            return known.clone();
        }
        let path = match self.path_of(cgroup_id) {
            Some(path) => path,
            None => {
                let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
                text.lines().find_map(|l| l.strip_prefix("0::"))?.to_string()
            }
        };
        let id = container_id(&path);
        if self.by_cgroup.len() >= MAX_CGROUPS {
            self.by_cgroup.clear();
        }
        self.by_cgroup.insert(cgroup_id, id.clone());
        id
    }
}

impl Containers {
    /// The path of cgroup `cgroup_id`: a cgroup v2 id is the kernfs node id,
    /// which open_by_handle_at accepts as a file handle (FILEID_KERNFS) on
    /// the cgroup2 mount; the opened directory's /proc/self/fd link is its
    /// path.
    fn path_of(&mut self, cgroup_id: u64) -> Option<String> {
        let root = self.root.get_or_insert_with(open_cgroup2_root).as_ref()?;
        #[repr(C)]
        struct KernfsHandle {
            handle_bytes: u32,
            handle_type: i32,
            id: u64,
        }
        const FILEID_KERNFS: i32 = 0xfe;
        let mut handle = KernfsHandle { handle_bytes: 8, handle_type: FILEID_KERNFS, id: cgroup_id };
        // SAFETY: open_by_handle_at reads a file_handle header followed by
        // `handle_bytes` bytes, which KernfsHandle lays out (repr(C)); the
        // descriptor it returns is owned by nobody else.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_open_by_handle_at,
                root.as_raw_fd(),
                &mut handle as *mut KernfsHandle,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: fd was just returned by the kernel and is ours alone.
        let dir = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let link = fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd())).ok()?;
        Some(link.to_string_lossy().into_owned())
    }
}

fn open_cgroup2_root() -> Option<OwnedFd> {
    let text = fs::read_to_string(rsysmon_fs::mountinfo::SELF_MOUNTINFO).ok()?;
    let mounts = rsysmon_fs::mountinfo::parse_mountinfo(&text);
    let mount = mounts.iter().find(|m| m.fs_type == "cgroup2")?;
    let path = CString::new(mount.mount_point.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: a NUL-terminated path; the descriptor returned is ours alone.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    // SAFETY: as above.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
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
    fn a_cgroup_id_gives_its_path() {
        let mut c = Containers::default();
        let Some(root) = open_cgroup2_root() else { return };
        let root_path = fs::read_link(format!("/proc/self/fd/{}", root.as_raw_fd())).unwrap();
        let id = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&root_path).unwrap());
        // Root only: open_by_handle_at needs CAP_DAC_READ_SEARCH.
        if let Some(path) = c.path_of(id) {
            assert_eq!(path, root_path.to_string_lossy());
        }
    }

    #[test]
    fn our_own_cgroup_is_read_and_remembered() {
        let mut c = Containers::default();
        let own = fs::read_to_string("/proc/self/cgroup").unwrap();
        let expected = own.lines().find_map(|l| l.strip_prefix("0::")).and_then(container_id);
        assert_eq!(c.of(u64::MAX - 1, std::process::id()), expected);
        assert_eq!(c.by_cgroup.get(&(u64::MAX - 1)), Some(&expected));
        assert_eq!(c.of(0, std::process::id()), None);
    }
}
