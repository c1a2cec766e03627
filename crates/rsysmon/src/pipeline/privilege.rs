//! Checking, before anything is loaded, that we may load BPF probes.

use std::fs;

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Fail with one line naming what is missing, unless the effective
/// capabilities include CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN (root has
/// them all).
pub fn require_bpf_capabilities() -> anyhow::Result<()> {
    let status = fs::read_to_string("/proc/self/status")?;
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    let missing = missing_capabilities(effective);
    if missing.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "missing {}: run as root (sudo rsysmon …) or grant CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN",
        missing.join(", ")
    )
}

fn missing_capabilities(effective: u64) -> Vec<&'static str> {
    [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON"), (CAP_SYS_ADMIN, "CAP_SYS_ADMIN")]
        .into_iter()
        .filter(|(bit, _)| effective & (1 << bit) == 0)
        .map(|(_, name)| name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_each_missing_capability() {
        assert_eq!(missing_capabilities(u64::MAX), Vec::<&str>::new());
        assert_eq!(missing_capabilities(0), ["CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN"]);
        assert_eq!(missing_capabilities(1 << CAP_SYS_ADMIN), ["CAP_BPF", "CAP_PERFMON"]);
    }
}
