//! What hashing costs: the event thread's `lookup` (cold: stat + open +
//! queue; warm: stat + cache hit) and the worker's throughput over the
//! shared libraries of this machine, each a new file version.
//!
//! `cargo run --release -p rsysmon-hash --example hash_cost [DIR]`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rsysmon_fs::FileId;
use rsysmon_hash::{HashFor, HashLimits, Hasher};

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "/usr/lib/x86_64-linux-gnu".into());
    let mut files: Vec<(PathBuf, FileId, u64)> = std::fs::read_dir(&dir)
        .expect("read the directory")
        .flatten()
        .filter_map(|e| {
            let md = std::fs::metadata(e.path()).ok()?;
            md.is_file().then(|| (e.path(), FileId::of(&md), md.len()))
        })
        .collect();
    files.sort();
    files.dedup_by_key(|f| f.1);
    let bytes: u64 = files.iter().map(|f| f.2).sum();
    // Page cache warm: this measures hashing, not the disk.
    for (path, ..) in &files {
        let _ = std::fs::read(path);
    }
    let limits = HashLimits { queue: files.len() + 1, cache_entries: files.len() * 2, ..HashLimits::default() };
    let hasher = Hasher::start(limits).expect("start the hasher");
    let event = |seq: u64, path: &PathBuf| HashFor { seq, pid: 1, comm: "x".into(), path: path.display().to_string() };

    let cpu0 = thread_cpu();
    let t0 = Instant::now();
    for (seq, (path, id, _)) in files.iter().enumerate() {
        hasher.lookup(path, *id, event(seq as u64, path));
    }
    let cold_lookup = t0.elapsed();
    let cold_cpu = thread_cpu() - cpu0;
    let mut done = 0;
    while done < files.len() {
        done += hasher.finished().count();
        std::thread::sleep(Duration::from_millis(1));
        assert!(t0.elapsed() < Duration::from_secs(600), "hashing did not finish");
    }
    let wall = t0.elapsed();
    let stats = hasher.stats();

    let cpu1 = thread_cpu();
    let t1 = Instant::now();
    let rounds = 20;
    for round in 0..rounds {
        for (seq, (path, id, _)) in files.iter().enumerate() {
            hasher.lookup(path, *id, event((round * files.len() + seq) as u64, path));
        }
    }
    let warm = t1.elapsed();
    let warm_cpu = thread_cpu() - cpu1;
    let n = files.len() as f64;
    let hashing_s = stats.hashing_us as f64 / 1e6;
    println!("files: {} ({:.1} MiB) in {dir}", files.len(), bytes as f64 / 1048576.0);
    println!(
        "event thread, new file version (stat + open + queue): {:.1} us wall, {:.1} us CPU per file",
        cold_lookup.as_secs_f64() * 1e6 / n,
        cold_cpu.as_secs_f64() * 1e6 / n
    );
    println!(
        "event thread, cached version (stat + lookup): {:.2} us wall, {:.2} us CPU per lookup",
        warm.as_secs_f64() * 1e6 / (n * rounds as f64),
        warm_cpu.as_secs_f64() * 1e6 / (n * rounds as f64)
    );
    println!(
        "worker: {} hashed, {} failed, {:.0} MiB/s, {:.0} files/s, {:.0} us per file (mean size {:.0} KiB); all done in {:.2} s",
        stats.files_hashed,
        stats.failed,
        stats.bytes_hashed as f64 / 1048576.0 / hashing_s,
        stats.files_hashed as f64 / hashing_s,
        hashing_s * 1e6 / stats.files_hashed.max(1) as f64,
        bytes as f64 / 1024.0 / n,
        wall.as_secs_f64()
    );
}

/// CPU time of this thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
