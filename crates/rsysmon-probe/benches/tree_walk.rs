//! What the kernel's walk for blocked trees costs an exec.
//!
//! `cargo bench -p rsysmon-probe --bench tree_walk` (as root). Loads the
//! probes once, then runs N fork+exec+wait of /bin/true in alternating
//! rounds: with no tree blocked (the probe returns after one lookup of the
//! count) and with 10,000 blocked trees, none of them an ancestor of
//! /bin/true, its loader or libc, so every image of every exec (program,
//! interpreter, each library mmap) walks all the way to the root. Reports
//! the median round of each and their ratio, and, from the kernel's BPF
//! statistics (`kernel.bpf_stats_enabled`, switched on for the run and
//! restored after; read from the programs), the mean time of one run of the
//! image probes that judge an exec's images (`on_exec_images`) and a file
//! mapping's (`on_mmap_exit`) under each condition: on a busy machine the
//! spawn times drift, the probes' own times do not. Environment: SPAWNS
//! (per round, default 300), ROUNDS (default 20).

use std::time::Duration;

use rsysmon_probe::{FileId, ProbeConfig, Probes, TreeKind};
use rsysmon_testkit::bench::{median, spawn_round};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// (run time ns, runs) of each of the probes' programs named in `names`.
fn prog_stats(probes: &Probes, names: &[&str]) -> Vec<(u64, u64)> {
    let all = probes.run_stats();
    names
        .iter()
        .map(|name| all.iter().find(|(n, ..)| n == name).map_or((0, 0), |&(_, time, runs)| (time, runs)))
        .collect()
}

const STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";
const PROGS: [&str; 2] = ["on_exec_images", "on_mmap_exit"];

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let spawns = env_or("SPAWNS", 300);
    let rounds = env_or("ROUNDS", 20);
    let probes = Probes::load(&ProbeConfig::default()).expect("load the probes (root?)");
    let trees = probes.blocked_trees().unwrap();
    // Identities no directory has: device 0:1 is never a mounted file system.
    let fake: Vec<FileId> = (0..10_000).map(|i| FileId { dev: libc::makedev(0, 1), ino: 1_000_000 + i }).collect();
    for id in &fake {
        trees.block(*id, TreeKind::Dir).unwrap();
    }
    let stats_before = std::fs::read_to_string(STATS).unwrap_or_default();
    std::fs::write(STATS, "1").expect("enable BPF statistics");
    spawn_round(spawns, &|| ()); // warm the page cache
    let (mut without, mut with) = (Vec::new(), Vec::new());
    let mut cost = [[(0u64, 0u64); 2]; 2];
    let mut measure = |condition: usize, count: usize, times: &mut Vec<Duration>| {
        trees.set_count(count).unwrap();
        let before = prog_stats(&probes, &PROGS);
        times.push(spawn_round(spawns, &|| ()));
        for (i, (after, before)) in prog_stats(&probes, &PROGS).iter().zip(before).enumerate() {
            cost[condition][i].0 += after.0 - before.0;
            cost[condition][i].1 += after.1 - before.1;
        }
    };
    for _ in 0..rounds {
        measure(0, 0, &mut without);
        measure(1, fake.len(), &mut with);
    }
    let _ = std::fs::write(STATS, stats_before.trim());
    let (a, b) = (median(without), median(with));
    let per = |d: Duration| d.as_secs_f64() * 1e6 / spawns as f64;
    println!("spawn workload with the probes loaded: {spawns} × fork+exec+wait /bin/true, median of {rounds} rounds");
    println!("  no tree blocked        {:>8.1} µs/spawn", per(a));
    println!("  10,000 trees blocked   {:>8.1} µs/spawn  ratio {:.3}×", per(b), b.as_secs_f64() / a.as_secs_f64());
    for (i, name) in PROGS.iter().enumerate() {
        let mean = |c: usize| cost[c][i].0 as f64 / cost[c][i].1.max(1) as f64;
        println!(
            "  {name:<16} {:>7.0} ns/run without trees, {:>7.0} ns/run with ({} runs)",
            mean(0),
            mean(1),
            cost[1][i].1
        );
    }
}
