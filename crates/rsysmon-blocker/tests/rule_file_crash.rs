//! A process killed with SIGKILL while saving rules never leaves a broken
//! rule file: whatever instant the kill lands, the file loads and holds one
//! complete generation of rules.
//!
//! The writer is this same test binary, started again with an environment
//! variable that makes the test save rules in a loop until killed.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rsysmon_blocker::{store, ExecRule, Protected, RuleSet};

const WRITER: &str = "RSYSMON_TEST_RULE_WRITER";
const TEST_NAME: &str = "rules_survive_kill_9_during_save";

/// Rules of generation `generation`: every rule names it, and their number
/// varies, so a file mixing two generations or cut short is caught.
fn generation(generation: u64) -> RuleSet {
    let count = 500 + (generation % 4) * 500;
    RuleSet::from_rules((0..count).map(|i| {
        ExecRule::parse(OsStr::new(&format!("/nonexistent/gen{generation}/count{count}/file{i}")), &Protected::none())
            .unwrap()
    }))
    .unwrap()
}

/// The generation a loaded set holds, checking that it is whole.
fn whole_generation(set: &RuleSet) -> u64 {
    let first = set.list()[0].to_string();
    let mut parts = first.split('/').skip(2);
    let generation: u64 = parts.next().unwrap().strip_prefix("gen").unwrap().parse().unwrap();
    let texts: Vec<String> = set.list().iter().map(ToString::to_string).collect();
    let expected: Vec<String> = generation_texts(generation);
    assert_eq!(texts, expected, "the rule file holds a partial generation");
    generation
}

fn generation_texts(g: u64) -> Vec<String> {
    generation(g).list().iter().map(ToString::to_string).collect()
}

fn write_forever(path: &Path) -> ! {
    println!("writing");
    for g in 1.. {
        store::save(path, &generation(g)).unwrap();
    }
    unreachable!()
}

#[test]
fn rules_survive_kill_9_during_save() {
    if let Some(path) = std::env::var_os(WRITER) {
        write_forever(Path::new(&path));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.json");
    store::save(&path, &generation(0)).unwrap();

    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let mut writer = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env(WRITER, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(writer.stdout.take().unwrap()).lines();
        assert!(lines.any(|l| l.unwrap().contains("writing")), "the writer did not start");
        // Let it get some way into its saves: a few milliseconds, different
        // each round.
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
        std::thread::sleep(Duration::from_micros(500 + u64::from(nanos % 20_000)));
        writer.kill().unwrap();
        writer.wait().unwrap();

        let loaded = store::load(&path).unwrap_or_else(|e| panic!("after SIGKILL: {e}"));
        seen.insert(whole_generation(&loaded));
    }
    assert!(seen.iter().any(|&g| g > 0), "no save ever completed before a kill: {seen:?}");
}
