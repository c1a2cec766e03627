//! Spawn workload with and without the blocker: what every exec on the box
//! pays for being judged.
//!
//! `cargo bench -p rsysmon-blocker --bench spawn` (as root). Runs N
//! fork+exec+wait of /bin/true with no blocker (baseline), with a blocker
//! holding 1 rule, and with one holding 10,000 rules (8,000 files, 1,000
//! directories, 1,000 globs, none matching, so every decision runs the
//! whole lookup), in short alternating rounds so that load from elsewhere
//! on the machine hits all three alike. Reports the median round of each,
//! the monitored/baseline ratio, and the blocker's own decision time (event
//! read to answer written): the median over rounds of each round's p50 and
//! p99. An allowed file is remembered by the kernel (see allow_cache.rs), so
//! in those runs only the first exec of a round is judged; a last run with
//! 1 rule flushes that memory before every spawn, so that every exec is
//! judged: its decision times are those of a first exec, and its ratio
//! includes the flush. Environment: SPAWNS (per round, default 300), ROUNDS
//! (default 30).

use std::ffi::OsStr;
use std::time::Duration;

use rsysmon_blocker::{shared, Blocker, BlockerStats, ExecRule, Protected, RuleSet};
use rsysmon_testkit::bench::{median, spawn_round};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn rule(text: String) -> ExecRule {
    ExecRule::parse(OsStr::new(&text), &Protected::none()).unwrap()
}

fn rules(count: usize) -> RuleSet {
    RuleSet::from_rules((0..count).map(|i| match i % 10 {
        0 => rule(format!("/nonexistent/rsysmon-bench/dir{i}/")),
        1 => rule(format!("glob:/nonexistent/rsysmon-bench/g{i}/*.bin")),
        _ => rule(format!("/nonexistent/rsysmon-bench/file{i}")),
    }))
    .unwrap()
}

fn main() {
    // `cargo bench` passes --bench; a plain `cargo test --benches` passes
    // nothing and must not spend minutes here.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let spawns = env_or("SPAWNS", 300);
    let rounds = env_or("ROUNDS", 30);
    let sets =
        [("1 rule", rules(1), false), ("10,000 rules", rules(10_000), false), ("1 rule, uncached", rules(1), true)];
    let mut baseline = Vec::new();
    let mut monitored: Vec<Vec<Duration>> = vec![Vec::new(); sets.len()];
    let mut stats: Vec<Vec<BlockerStats>> = vec![Vec::new(); sets.len()];
    spawn_round(spawns, &|| ()); // warm the page cache
    for _ in 0..rounds {
        baseline.push(spawn_round(spawns, &|| ()));
        for (i, (_, set, uncached)) in sets.iter().enumerate() {
            let blocker = Blocker::start(shared(set.clone()), |_| {}).expect("start the blocker (root?)");
            let cache = blocker.allow_cache();
            let flush = || cache.rules_changed();
            monitored[i].push(spawn_round(spawns, if *uncached { &flush } else { &|| () }));
            stats[i].push(blocker.stats());
            blocker.stop().unwrap();
        }
    }
    let base = median(baseline);
    println!("spawn workload: {spawns} × fork+exec+wait /bin/true, median of {rounds} rounds");
    println!("  baseline          {:>8.1} µs/spawn", base.as_secs_f64() * 1e6 / spawns as f64);
    for (i, (name, _, _)) in sets.iter().enumerate() {
        let m = median(monitored[i].clone());
        let p50 = median(stats[i].iter().map(|s| s.p50_us).collect());
        let p99 = median(stats[i].iter().map(|s| s.p99_us).collect());
        let decisions: usize = stats[i].iter().map(|s| s.window).sum();
        println!(
            "  {name:<16}  {:>8.1} µs/spawn  ratio {:.3}×  decision p50 {p50:.1} µs  p99 {p99:.1} µs  ({decisions} decisions)",
            m.as_secs_f64() * 1e6 / spawns as f64,
            m.as_secs_f64() / base.as_secs_f64(),
        );
    }
}
