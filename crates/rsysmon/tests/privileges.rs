//! Without the needed capabilities: one clear line, non-zero exit.

mod support;

use std::process::Command;

#[test]
fn unprivileged_run_says_what_is_missing_in_one_line() {
    require_root!();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"])
        .args([support::RSYSMON, "run"])
        .output()
        .expect("setpriv (util-linux) runs the binary as nobody");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("rsysmon: missing CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN: run as root"), "{stderr}");
    assert!(out.stdout.is_empty());
}
