//! Who may do what on the control socket, from the peer's credentials.
//!
//! The kernel vouches for the peer with SO_PEERCRED (pid, uid, gid at
//! connect time). Root may do anything; members of the configured read group
//! may read events and status; nobody else may do anything.

use std::fs;
use std::os::unix::net::UnixStream;

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use nix::unistd::{Gid, Group};

/// What a peer may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    None,
    Reader,
    Admin,
}

/// The peer of a connection, as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

impl Peer {
    pub fn of(stream: &UnixStream) -> std::io::Result<Peer> {
        let cred = getsockopt(stream, PeerCredentials).map_err(std::io::Error::from)?;
        Ok(Peer { pid: cred.pid(), uid: cred.uid(), gid: cred.gid() })
    }
}

/// The access policy.
#[derive(Debug, Clone)]
pub struct Access {
    read_gid: Option<u32>,
}

impl Access {
    /// `read_group` names the group whose members may read; it must exist.
    pub fn new(read_group: Option<&str>) -> anyhow::Result<Access> {
        let read_gid = match read_group {
            None => None,
            Some(name) => Some(
                Group::from_name(name)?
                    .ok_or_else(|| anyhow::anyhow!("socket.read_group: no group named {name:?} on this system"))?
                    .gid
                    .as_raw(),
            ),
        };
        Ok(Access { read_gid })
    }

    /// The gid that may read, if any (for the socket file's group).
    pub fn read_gid(&self) -> Option<Gid> {
        self.read_gid.map(Gid::from_raw)
    }

    pub fn role(&self, peer: &Peer) -> Role {
        if peer.uid == 0 {
            return Role::Admin;
        }
        match self.read_gid {
            Some(gid) if peer.gid == gid || supplementary_groups(peer.pid).contains(&gid) => Role::Reader,
            _ => Role::None,
        }
    }
}

/// The peer process's supplementary groups, from /proc/PID/status. Empty if
/// the process is gone (it then has no access through them either).
fn supplementary_groups(pid: i32) -> Vec<u32> {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else { return Vec::new() };
    parse_groups(&status)
}

fn parse_groups(status: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| g.split_whitespace().filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_admin_group_members_read_others_nothing() {
        let access = Access { read_gid: Some(4242) };
        let me = std::process::id() as i32;
        assert_eq!(access.role(&Peer { pid: me, uid: 0, gid: 0 }), Role::Admin);
        assert_eq!(access.role(&Peer { pid: me, uid: 1000, gid: 4242 }), Role::Reader);
        assert_eq!(access.role(&Peer { pid: -1, uid: 1000, gid: 1000 }), Role::None);
        let closed = Access { read_gid: None };
        assert_eq!(closed.role(&Peer { pid: me, uid: 1000, gid: 4242 }), Role::None);
    }

    #[test]
    fn supplementary_groups_are_read_from_status() {
        assert_eq!(parse_groups("Name:\tx\nGroups:\t4 24 27 \nNgid:\t0\n"), [4, 24, 27]);
        assert_eq!(parse_groups("Groups:\t\n"), Vec::<u32>::new());
    }
}
