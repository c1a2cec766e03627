//! The rule file's append log: one line per change, so a change costs the
//! same at 10,000 rules as at 10.
//!
//! Beside `rules.json` lies `rules.json.log`, one JSON object a line:
//!
//! ```json
//! {"add":{"file":"/opt/x/evil","dev":2049,"ino":131}}
//! {"remove":"/opt/bad/"}
//! ```
//!
//! A change is acknowledged only once its line is written and fdatasync'ed.
//! A crash mid-write leaves a last line without its newline: it was never
//! acknowledged, so it is ignored when loading and cut off before the next
//! append. Any other line that does not parse makes the file corrupt (an
//! error naming it, never fewer rules). When the log holds half as many
//! lines as the rule set has rules (and at least [`MIN_LOG_LINES`]), the
//! whole set is written as a new `rules.json` and the log emptied: that
//! O(n) write comes once per n/2 changes, so amortized every change still
//! costs O(1).
//!
//! Replaying is idempotent: adding a rule that is there and removing one
//! that is not change nothing. So a crash between writing a new
//! `rules.json` and emptying the log, which replays changes the file
//! already holds, loads the same rules.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::rule::ExecRule;
use crate::rule_set::RuleSet;
use crate::store::{self, from_stored, to_stored, StoreError, StoredRule};

/// The log is folded into the rule file once it has this many lines, or
/// half as many as there are rules, whichever is more.
pub const MIN_LOG_LINES: usize = 1024;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Change {
    Add(StoredRule),
    Remove(String),
}

/// Where the log of the rule file `path` is.
pub fn log_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".log");
    PathBuf::from(name)
}

/// `rules` (the rule file's) with the changes of its log applied, in order.
pub(crate) fn replay(path: &Path, rules: Vec<ExecRule>) -> Result<RuleSet, StoreError> {
    let log = log_path(path);
    let corrupt = |reason: String| StoreError::Corrupt { path: log.clone(), reason };
    let text = match fs::read(&log) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(source) => return Err(StoreError::Read { path: log.clone(), source }),
    };
    // Slots with tombstones, so a remove costs O(1) here too.
    let mut slots: Vec<Option<ExecRule>> = Vec::with_capacity(rules.len());
    let mut by_text: HashMap<String, usize> = HashMap::with_capacity(rules.len());
    for rule in rules {
        by_text.insert(rule.to_string(), slots.len());
        slots.push(Some(rule));
    }
    for (number, line) in complete_lines(&text).enumerate() {
        let at = |e: String| corrupt(format!("line {}: {e}", number + 1));
        match serde_json::from_slice::<Change>(line).map_err(|e| at(e.to_string()))? {
            Change::Add(stored) => {
                let rule = from_stored(stored).map_err(|e| at(e.to_string()))?;
                if let std::collections::hash_map::Entry::Vacant(slot) = by_text.entry(rule.to_string()) {
                    slot.insert(slots.len());
                    slots.push(Some(rule));
                }
            }
            Change::Remove(text) => {
                if let Some(index) = by_text.remove(&text) {
                    slots[index] = None;
                }
            }
        }
    }
    RuleSet::from_rules(slots.into_iter().flatten()).map_err(|e| corrupt(e.to_string()))
}

/// The lines that end with a newline; a last one without is a torn write.
fn complete_lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let end = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    text[..end].split(|&b| b == b'\n').filter(|line| !line.is_empty())
}

/// Empty the log of `path` (its changes are in the rule file now).
pub(crate) fn clear(path: &Path) -> Result<(), StoreError> {
    let log = log_path(path);
    match OpenOptions::new().write(true).open(&log) {
        Ok(file) => file.set_len(0).and_then(|()| file.sync_all()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
    .map_err(|source| StoreError::Write { path: log, source })
}

/// The rule file and its log, open for changes.
pub struct RuleStore {
    path: PathBuf,
    log: File,
    lines: usize,
}

impl RuleStore {
    /// Open the log of the rule file `path` for appending, after [`store::load`]
    /// has read it. A torn last line is cut off first.
    pub fn open(path: &Path) -> Result<RuleStore, StoreError> {
        let log_path = log_path(path);
        let failed = |source: io::Error| StoreError::Write { path: log_path.clone(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(failed)?;
        }
        let text = match fs::read(&log_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(StoreError::Read { path: log_path, source }),
        };
        let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let log = OpenOptions::new().create(true).append(true).open(&log_path).map_err(failed)?;
        if whole < text.len() {
            log.set_len(whole as u64).and_then(|()| log.sync_all()).map_err(failed)?;
        }
        Ok(RuleStore { path: path.to_path_buf(), log, lines: complete_lines(&text).count() })
    }

    /// Record that `rule` was added; `rules` is the whole set with it.
    pub fn added(&mut self, rule: &ExecRule, rules: &RuleSet) -> Result<(), StoreError> {
        self.append(&Change::Add(to_stored(rule)), rules)
    }

    /// Record that the rule with text `text` was removed; `rules` is the
    /// whole set without it.
    pub fn removed(&mut self, text: &str, rules: &RuleSet) -> Result<(), StoreError> {
        self.append(&Change::Remove(text.to_string()), rules)
    }

    fn append(&mut self, change: &Change, rules: &RuleSet) -> Result<(), StoreError> {
        if self.lines >= MIN_LOG_LINES.max(rules.len() / 2) {
            store::save(&self.path, rules)?;
            self.lines = 0;
            return Ok(());
        }
        let mut line = serde_json::to_vec(change).expect("changes are strings and numbers, which always serialize");
        line.push(b'\n');
        let log_path = log_path(&self.path);
        // One write of the whole line: a crash leaves it whole or torn at
        // the end, never interleaved.
        self.log
            .write_all(&line)
            .and_then(|()| self.log.sync_data())
            .map_err(|source| StoreError::Write { path: log_path, source })?;
        self.lines += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::Protected;
    use std::ffi::OsStr;

    fn rule(text: &str) -> ExecRule {
        ExecRule::parse(OsStr::new(text), &Protected::none()).unwrap()
    }

    fn texts(set: &RuleSet) -> Vec<String> {
        set.list().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn changes_survive_in_the_log_and_a_torn_last_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.json");
        let mut set = RuleSet::new();
        let mut store = RuleStore::open(&path).unwrap();
        for text in ["/nonexistent/a", "/nonexistent/b/", "glob:/nonexistent/*.c"] {
            set.add(rule(text)).unwrap();
            store.added(&rule(text), &set).unwrap();
        }
        set.remove(OsStr::new("/nonexistent/a")).unwrap();
        store.removed("/nonexistent/a", &set).unwrap();
        assert!(!path.exists(), "no whole file written for a few changes");
        assert_eq!(texts(&store::load(&path).unwrap()), texts(&set));

        // A crash in the middle of the next append.
        let log = log_path(&path);
        let mut bytes = fs::read(&log).unwrap();
        bytes.extend_from_slice(br#"{"add":{"file":"/nonexi"#);
        fs::write(&log, &bytes).unwrap();
        assert_eq!(texts(&store::load(&path).unwrap()), texts(&set));
        let mut store = RuleStore::open(&path).unwrap();
        set.add(rule("/nonexistent/c")).unwrap();
        store.added(&rule("/nonexistent/c"), &set).unwrap();
        assert_eq!(texts(&store::load(&path).unwrap()), texts(&set));

        // A bad line that is not the last is corruption, named as such.
        fs::write(&log, b"{\"remove\":\"/x\"}\nnot json\n{\"remove\":\"/y\"}\n").unwrap();
        let err = store::load(&path).unwrap_err();
        assert!(err.to_string().contains("rules.json.log") && err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn the_log_is_folded_into_the_file_and_replaying_it_twice_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.json");
        let mut set = RuleSet::new();
        let mut store = RuleStore::open(&path).unwrap();
        for i in 0..MIN_LOG_LINES + 10 {
            let r = rule(&format!("/nonexistent/f{i}"));
            set.add(r.clone()).unwrap();
            store.added(&r, &set).unwrap();
        }
        assert!(path.exists(), "folded once the log was long");
        assert!(fs::read_to_string(log_path(&path)).unwrap().lines().count() < 20);
        assert_eq!(texts(&store::load(&path).unwrap()), texts(&set));

        // A crash between writing the file and emptying the log.
        let log = fs::read(log_path(&path)).unwrap();
        store::save(&path, &set).unwrap();
        fs::write(log_path(&path), &log).unwrap();
        assert_eq!(texts(&store::load(&path).unwrap()), texts(&set));
    }
}
