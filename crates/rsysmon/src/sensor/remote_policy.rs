//! Which remote threads are expected: debuggers cause them too.
//!
//! A debugger that runs code in its target (gdb's `call`) creates a thread
//! in it from outside, through ptrace: by this definition, a remote thread. They are reported unless
//! the user allow-lists the creator's executable.

use std::collections::HashSet;

/// Executables whose remote threads are not reported.
#[derive(Debug, Clone, Default)]
pub struct RemoteThreadPolicy {
    allowed_creators: HashSet<String>,
}

impl RemoteThreadPolicy {
    pub fn new(allowed_creators: impl IntoIterator<Item = String>) -> Self {
        Self { allowed_creators: allowed_creators.into_iter().collect() }
    }

    /// Whether a remote thread made by a process running `creator_exe` is
    /// expected. An unknown creator is never allowed.
    pub fn allows(&self, creator_exe: Option<&str>) -> bool {
        creator_exe.is_some_and(|exe| self.allowed_creators.contains(exe))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_known_creators_are_allowed() {
        let policy = RemoteThreadPolicy::new(["/usr/bin/gdb".to_string()]);
        assert!(policy.allows(Some("/usr/bin/gdb")));
        assert!(!policy.allows(Some("/tmp/gdb")));
        assert!(!policy.allows(None));
        assert!(!RemoteThreadPolicy::default().allows(Some("/usr/bin/gdb")));
    }
}
