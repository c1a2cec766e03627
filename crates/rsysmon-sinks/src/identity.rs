//! What names this daemon run in a fleet: host, boot and run. With an
//! event's `seq` they make the event unique across every host and restart.

use std::time::{SystemTime, UNIX_EPOCH};

/// The identity of one run of the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunIdentity {
    /// The host name (`uname -n`).
    pub host: String,
    /// The kernel's boot id, from /proc/sys/kernel/random/boot_id.
    pub boot_id: String,
    /// When this run started, in nanoseconds since the epoch: `seq` starts
    /// again at 1 on every daemon start, so it tells runs apart.
    pub run: u128,
}

impl RunIdentity {
    /// This host, this boot, a run starting now.
    pub fn current() -> RunIdentity {
        let host = nix_hostname().unwrap_or_else(|| "localhost".to_string());
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".to_string());
        let run = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        RunIdentity { host, boot_id, run }
    }

    /// The host name as one NATS subject token: no dots, spaces or
    /// wildcards.
    pub fn host_token(&self) -> String {
        subject_token(&self.host)
    }
}

/// `text` with every character NATS gives a meaning in subjects replaced.
pub fn subject_token(text: &str) -> String {
    let token: String =
        text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    if token.is_empty() {
        "_".to_string()
    } else {
        token
    }
}

fn nix_hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned()).filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_tokens_have_no_separators_or_wildcards() {
        assert_eq!(subject_token("web-1.example.com"), "web-1_example_com");
        assert_eq!(subject_token("a*b>c d"), "a_b_c_d");
        assert_eq!(subject_token(""), "_");
    }

    #[test]
    fn the_current_identity_names_this_boot() {
        let id = RunIdentity::current();
        assert_eq!(id.boot_id.len(), 36, "{id:?}");
        assert!(!id.host.is_empty());
    }
}
