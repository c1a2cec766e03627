//! Who gets a connection: a bound on clients overall and per user, so that
//! no local user can exhaust the daemon's threads or descriptors.
//!
//! Non-root peers count against `max_clients` and `max_clients_per_uid`.
//! Root is exempt from both (it could stop the daemon anyway) but, like
//! everyone, never gets past the descriptor budget, which keeps the
//! blocker's reserve free (`limits.rs`).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

/// The bounds in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_clients: usize,
    pub max_clients_per_uid: usize,
    /// Clients of anyone, root included, that the descriptors allow.
    pub fd_budget: usize,
}

/// Why a connection was turned away: one line for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Full { max: usize },
    UserFull { uid: u32, max: usize },
    NoDescriptors { budget: usize },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Full { max } => {
                write!(f, "too many clients: the daemon serves at most {max} at once (socket.max_clients); try again later")
            }
            Refusal::UserFull { uid, max } => write!(
                f,
                "too many clients for uid {uid}: at most {max} connections per user (socket.max_clients_per_uid)"
            ),
            Refusal::NoDescriptors { budget } => write!(
                f,
                "too many clients: {budget} connections use every descriptor the daemon may give to clients; try again later"
            ),
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    non_root: usize,
    per_uid: HashMap<u32, usize>,
}

/// The live connections, by user.
#[derive(Debug)]
pub struct Admission {
    limits: Limits,
    counts: Mutex<Counts>,
}

/// A connection's place; giving it back (drop) frees it.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    uid: u32,
}

impl Admission {
    pub fn new(limits: Limits) -> Arc<Admission> {
        Arc::new(Admission { limits, counts: Mutex::new(Counts::default()) })
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for a connection from `uid`, or why there is none.
    pub fn admit(self: &Arc<Self>, uid: u32) -> Result<Ticket, Refusal> {
        let mut counts = self.counts();
        if counts.total >= self.limits.fd_budget {
            return Err(Refusal::NoDescriptors { budget: self.limits.fd_budget });
        }
        if uid != 0 {
            if counts.non_root >= self.limits.max_clients {
                return Err(Refusal::Full { max: self.limits.max_clients });
            }
            let mine = counts.per_uid.entry(uid).or_default();
            if *mine >= self.limits.max_clients_per_uid {
                return Err(Refusal::UserFull { uid, max: self.limits.max_clients_per_uid });
            }
            *mine += 1;
            counts.non_root += 1;
        }
        counts.total += 1;
        Ok(Ticket { admission: Arc::clone(self), uid })
    }

    /// Connections served now.
    pub fn clients(&self) -> usize {
        self.counts().total
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut counts = self.admission.counts();
        counts.total -= 1;
        if self.uid != 0 {
            counts.non_root -= 1;
            if let Some(mine) = counts.per_uid.get_mut(&self.uid) {
                *mine -= 1;
                if *mine == 0 {
                    counts.per_uid.remove(&self.uid);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_bounded_alone_and_together_root_only_by_descriptors() {
        let admission = Admission::new(Limits { max_clients: 3, max_clients_per_uid: 2, fd_budget: 6 });
        let a1 = admission.admit(1000).unwrap();
        let _a2 = admission.admit(1000).unwrap();
        assert_eq!(admission.admit(1000).unwrap_err(), Refusal::UserFull { uid: 1000, max: 2 });
        let _b1 = admission.admit(1001).unwrap();
        assert_eq!(admission.admit(1002).unwrap_err(), Refusal::Full { max: 3 });
        let roots: Vec<Ticket> = (0..3).map(|_| admission.admit(0).unwrap()).collect();
        assert_eq!(admission.admit(0).unwrap_err(), Refusal::NoDescriptors { budget: 6 });
        assert_eq!(admission.clients(), 6);
        drop(roots);
        drop(a1);
        assert_eq!(admission.clients(), 2);
        let _a3 = admission.admit(1000).unwrap();
        assert_eq!(admission.admit(1002).unwrap_err(), Refusal::Full { max: 3 });
    }

    #[test]
    fn refusals_are_one_line_and_name_the_setting() {
        for refusal in [Refusal::Full { max: 1 }, Refusal::UserFull { uid: 7, max: 2 }] {
            let line = refusal.to_string();
            assert!(!line.contains('\n') && line.contains("socket.max_clients"), "{line}");
        }
    }
}
