//! The one-line text form: `HH:MM:SS.mmm: what happened`, local time.
//!
//! Names, paths and arguments come from whoever started the process, so
//! control characters are escaped: a file named "x\n12:00:00.000: …" must
//! not forge a second line.

use std::fmt::Write;

use chrono::{Local, Timelike};

use crate::event::{Detail, Event};

/// The event as one line of text, without the newline.
pub fn to_text_line(event: &Event) -> String {
    let local = event.time.with_timezone(&Local);
    let millis = local.nanosecond() % 1_000_000_000 / 1_000_000;
    let mut out = format!("{:02}:{:02}:{:02}.{millis:03}: ", local.hour(), local.minute(), local.second());
    let (pid, tid) = (event.pid, event.tid);
    let comm = clean(&event.comm);
    // Writing to a String cannot fail.
    let _ = match &event.detail {
        Detail::ProcessCreate { ppid, parent_comm, .. } => {
            write!(out, "Process {pid} ({comm}) created by process {ppid} ({})", clean(parent_comm))
        }
        Detail::ProcessExec { exe, argv, argv_truncated, .. } => {
            let _ = write!(out, "Process {pid} ({comm}) exec {}", clean(exe));
            for arg in argv.iter().skip(1) {
                out.push(' ');
                out.push_str(&quote(arg));
            }
            if *argv_truncated {
                out.push_str(" …");
            }
            Ok(())
        }
        Detail::ProcessExit { exit_code, signal, core_dumped, .. } => {
            let _ = write!(out, "Process {pid} ({comm}) ");
            ended(&mut out, *exit_code, *signal);
            if *core_dumped {
                out.push_str(" (core dumped)");
            }
            Ok(())
        }
        Detail::ThreadCreate { .. } => write!(out, "Thread {tid} created in process {pid} ({comm})"),
        Detail::ThreadExit { exit_code, signal } => {
            let _ = write!(out, "Thread {tid} exited from process {pid} ({comm}) ");
            match (exit_code, signal) {
                (_, Some(sig)) => write!(out, "killed by signal {sig}"),
                (code, None) => write!(out, "with code {}", code.unwrap_or(0)),
            }
        }
        Detail::ProcessTamper { creator_pid, creator_tid, creator_comm, method, count } => {
            let _ = write!(
                out,
                "Process {creator_pid} ({}) thread {creator_tid} tampered with process {pid} ({comm}) thread {tid} via {method}",
                clean(creator_comm)
            );
            if *count > 1 {
                let _ = write!(out, " ({count} times)");
            }
            Ok(())
        }
        Detail::RemoteThread { creator_pid, creator_tid, creator_comm, method, .. } => write!(
            out,
            "Remote thread {tid} created in process {pid} ({comm}) by process {creator_pid} ({}) thread {creator_tid} via {method}",
            clean(creator_comm)
        ),
        Detail::ExecBlocked { path, rule } => {
            write!(out, "Blocked exec of {} by process {pid} ({comm}): rule {}", clean(path), clean(rule))
        }
        Detail::ImageLoad { base, path, ns_path, blocked, .. } => {
            let _ = write!(out, "Image loaded into process {pid} ({comm}) at address 0x{base:X} ({}", clean(path));
            if let Some(ns_path) = ns_path {
                let _ = write!(out, "; {} in its mount namespace", clean(ns_path));
            }
            out.push(')');
            // Base 0: the kernel refused the mapping (BPF LSM), nothing was
            // mapped and the caller got EPERM.
            if *blocked && *base == 0 {
                out.push_str(": blocked, refused with EPERM");
            } else if *blocked {
                out.push_str(": blocked, process killed");
            }
            Ok(())
        }
        Detail::ImageHash { for_seq, path, hash, .. } => {
            let _ = write!(out, "Hash of {} for event {for_seq}: ", clean(path));
            match &hash.sha256 {
                Some(sha256) => write!(out, "sha256 {sha256}"),
                None => write!(out, "none ({})", hash.hash_status.name()),
            }
        }
        Detail::Loss { lost, stage } => write!(out, "Lost {lost} events ({} stage)", stage.name()),
    };
    out
}

fn ended(out: &mut String, exit_code: Option<i32>, signal: Option<i32>) {
    let _ = match (exit_code, signal) {
        (_, Some(sig)) => write!(out, "killed by signal {sig}"),
        (code, None) => write!(out, "exited with code {}", code.unwrap_or(0)),
    };
}

/// Escape control characters and backslashes.
fn clean(s: &str) -> String {
    if !s.chars().any(|c| c.is_control() || c == '\\') {
        return s.to_string();
    }
    s.chars().flat_map(char::escape_default).collect()
}

/// An argument as a shell would need it: quoted if empty or if it has
/// spaces or quotes, escaped if it has control characters.
fn quote(arg: &str) -> String {
    let arg = clean(arg);
    if arg.is_empty() || arg.chars().any(|c| c.is_whitespace() || c == '\'' || c == '"') {
        format!("'{}'", arg.replace('\'', r"'\''"))
    } else {
        arg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn event(detail: Detail) -> Event {
        Event::new(1, chrono::Utc.timestamp_opt(1_700_000_000, 660_000_000).unwrap(), 4242, 4243, "ls".into(), detail)
    }

    fn body(line: &str) -> &str {
        line.split_once(": ").unwrap().1
    }

    #[test]
    fn book_format_lines() {
        let e = event(Detail::ProcessCreate {
            ppid: 4200,
            parent_comm: "bash".into(),
            creator_tid: 4200,
            uid: 0,
            gid: 0,
            user: Some("root".into()),
            group: Some("root".into()),
            exe: "/usr/bin/bash".into(),
        });
        let line = to_text_line(&e);
        assert_eq!(line.len(), "18:59:37.660: ".len() + body(&line).len());
        assert!(line[..12].ends_with(".660"), "{line}");
        let local = e.time.with_timezone(&Local).format("%H:%M:%S%.3f: ").to_string();
        assert!(line.starts_with(&local), "{line} vs {local}");
        assert_eq!(body(&line), "Process 4242 (ls) created by process 4200 (bash)");

        let e = event(Detail::ProcessExec {
            exe: "/usr/bin/ls".into(),
            argv: vec!["ls".into(), "-la".into(), "my dir".into()],
            argv_truncated: false,
            cwd: "/".into(),
            old_exe: None,
            old_tid: 4242,
            ns_view: false,
            parent_exe: None,
            parent_argv: None,
            hash: Default::default(),
        });
        assert_eq!(body(&to_text_line(&e)), "Process 4242 (ls) exec /usr/bin/ls -la 'my dir'");

        let e = event(Detail::ProcessExit { exit_code: Some(0), signal: None, core_dumped: false, lifetime_ns: 1 });
        assert_eq!(body(&to_text_line(&e)), "Process 4242 (ls) exited with code 0");
        let e = event(Detail::ProcessExit { exit_code: None, signal: Some(9), core_dumped: false, lifetime_ns: 1 });
        assert_eq!(body(&to_text_line(&e)), "Process 4242 (ls) killed by signal 9");

        let e = event(Detail::ThreadCreate { creator_tid: 4242 });
        assert_eq!(body(&to_text_line(&e)), "Thread 4243 created in process 4242 (ls)");
        let e = event(Detail::ThreadExit { exit_code: Some(0), signal: None });
        assert_eq!(body(&to_text_line(&e)), "Thread 4243 exited from process 4242 (ls) with code 0");
    }

    #[test]
    fn remote_thread_and_tamper_lines() {
        let mut e = event(Detail::RemoteThread {
            target_creator_tid: 4242,
            creator_pid: 4300,
            creator_tid: 4301,
            creator_comm: "injector".into(),
            method: "ptrace-setregs".into(),
            tamper_time: Default::default(),
        });
        e.tid = 4250;
        e.comm = "target".into();
        assert_eq!(
            body(&to_text_line(&e)),
            "Remote thread 4250 created in process 4242 (target) by process 4300 (injector) thread 4301 via ptrace-setregs"
        );
        e.detail = Detail::ProcessTamper {
            creator_pid: 4300,
            creator_tid: 4301,
            creator_comm: "injector".into(),
            method: "process-vm-writev".into(),
            count: 1,
        };
        e.tid = 4242;
        assert_eq!(
            body(&to_text_line(&e)),
            "Process 4300 (injector) thread 4301 tampered with process 4242 (target) thread 4242 via process-vm-writev"
        );
        if let Detail::ProcessTamper { count, .. } = &mut e.detail {
            *count = 280;
        }
        assert_eq!(
            body(&to_text_line(&e)),
            "Process 4300 (injector) thread 4301 tampered with process 4242 (target) thread 4242 via process-vm-writev (280 times)"
        );
    }

    #[test]
    fn image_load_line_names_process_base_and_path() {
        let image = |ns_path: Option<&str>, blocked| {
            event(Detail::ImageLoad {
                base: 0x7F3A_1C20_0000,
                size: 0x1e_2000,
                path: "/usr/lib/x86_64-linux-gnu/libc.so.6".into(),
                ns_path: ns_path.map(Into::into),
                dev: 2049,
                inode: 7,
                via: crate::ImageVia::Mmap,
                blocked,
                hash: Default::default(),
            })
        };
        assert_eq!(
            body(&to_text_line(&image(None, false))),
            "Image loaded into process 4242 (ls) at address 0x7F3A1C200000 (/usr/lib/x86_64-linux-gnu/libc.so.6)"
        );
        assert_eq!(
            body(&to_text_line(&image(Some("/lib/libc.so.6"), true))),
            "Image loaded into process 4242 (ls) at address 0x7F3A1C200000 (/usr/lib/x86_64-linux-gnu/libc.so.6; \
             /lib/libc.so.6 in its mount namespace): blocked, process killed"
        );
        let mut refused = image(None, true);
        if let Detail::ImageLoad { base, size, .. } = &mut refused.detail {
            (*base, *size) = (0, 0);
        }
        assert_eq!(
            body(&to_text_line(&refused)),
            "Image loaded into process 4242 (ls) at address 0x0 (/usr/lib/x86_64-linux-gnu/libc.so.6): blocked, \
             refused with EPERM"
        );
    }

    #[test]
    fn image_hash_line_gives_digest_or_reason() {
        let mut e = event(Detail::ImageHash {
            for_seq: 9,
            path: "/bin/true".into(),
            dev: 1,
            inode: 2,
            hash: crate::FileHash::done("ab".repeat(32)),
        });
        assert_eq!(body(&to_text_line(&e)), format!("Hash of /bin/true for event 9: sha256 {}", "ab".repeat(32)));
        e.detail = Detail::ImageHash {
            for_seq: 9,
            path: "/bin/true".into(),
            dev: 1,
            inode: 2,
            hash: crate::FileHash::without(crate::HashStatus::TooLarge),
        };
        assert_eq!(body(&to_text_line(&e)), "Hash of /bin/true for event 9: none (too-large)");
    }

    #[test]
    fn exec_blocked_line() {
        let mut e = event(Detail::ExecBlocked { path: "/tmp/evil".into(), rule: "/tmp/evil".into() });
        e.comm = "bash".into();
        assert_eq!(body(&to_text_line(&e)), "Blocked exec of /tmp/evil by process 4242 (bash): rule /tmp/evil");
    }

    #[test]
    fn control_characters_cannot_forge_lines() {
        let mut e = event(Detail::ThreadCreate { creator_tid: 1 });
        e.comm = "x\n00:00:00.000: fake".into();
        let line = to_text_line(&e);
        assert!(!line.contains('\n'));
        assert!(line.contains(r"x\n00:00"));
    }
}
