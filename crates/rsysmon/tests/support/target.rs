//! A process to inject into: `tests/programs/inject_target.c`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use super::{die_with_test, program};

/// The injection target, with what it printed.
pub struct Target {
    child: Child,
    pub pid: u32,
    /// Hex address of `injected_entry`.
    pub entry: String,
    /// Hex address of `trigger`.
    pub trigger: String,
    /// Hex address of a stack slot from which a bare clone()d thread
    /// returns into a function that reports it.
    pub landing: String,
    lines: Receiver<String>,
}

impl Target {
    pub fn start() -> Target {
        let mut cmd = Command::new(program("inject_target"));
        cmd.arg("60").stdout(Stdio::piped());
        let mut child = die_with_test(&mut cmd).spawn().unwrap();
        let (tx, lines) = channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let first = lines.recv_timeout(Duration::from_secs(10)).expect("the target reports itself");
        let words: Vec<&str> = first.split(' ').collect();
        assert_eq!((words[0], words[2], words[4], words[6]), ("pid", "entry", "trigger", "landing"), "{first}");
        let pid = words[1].parse().unwrap();
        assert_eq!(pid, child.id());
        Target {
            pid,
            entry: words[3].trim_start_matches("0x").into(),
            trigger: words[5].trim_start_matches("0x").into(),
            landing: words[7].trim_start_matches("0x").into(),
            lines,
            child,
        }
    }

    /// The tid of the next thread the target reports starting.
    pub fn remote_tid(&self) -> u32 {
        let line = self.lines.recv_timeout(Duration::from_secs(30)).expect("the target starts a thread");
        line.strip_prefix("remote tid ").unwrap_or_else(|| panic!("unexpected: {line}")).parse().unwrap()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
