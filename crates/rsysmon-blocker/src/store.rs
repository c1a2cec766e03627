//! The rule file: rules survive a restart, and a crash while saving never
//! leaves a broken file.
//!
//! Saving writes a new file next to the old one, fsyncs it, renames it over
//! the old one and fsyncs the directory. rename(2) replaces the name
//! atomically, so at every moment the path holds either the old rules or
//! the new ones, complete; the directory fsync makes the rename itself
//! survive a power cut. A temporary left behind by a crash has another name
//! and is never read.
//!
//! Changes in between are appended to a log beside it (`rules.json.log`,
//! see [`crate::rule_log`]): adding a rule writes one line, not the whole
//! set. [`load`] reads the file, then replays the log; [`save`] writes a
//! whole new file, then empties the log.
//!
//! Format (JSON, versioned):
//!
//! ```json
//! {"version":1,"rules":[
//!   {"file":"/opt/x/evil","dev":2049,"ino":131},
//!   {"dir":"/opt/bad/"},
//!   {"glob":"/tmp/*.bin"},
//!   {"sha256":"c79bf442…"}]}
//! ```

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::rule::{compile_glob, ExecRule, RuleError};
use crate::rule_log;
use crate::rule_set::RuleSet;
use rsysmon_fs::FileId;

/// Where the daemon keeps its rules.
pub const DEFAULT_RULE_FILE: &str = "/var/lib/rsysmon/rules.json";

const FORMAT_VERSION: u32 = 1;

/// Why the rule file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read the rule file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("the rule file {path} is corrupt ({reason}); it was left as it is: fix or remove it, then start again")]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot write the rule file {path}: {source}; the previous rules are unchanged")]
    Write { path: PathBuf, source: io::Error },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    version: u32,
    rules: Vec<StoredRule>,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub(crate) enum StoredRule {
    File {
        file: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dev: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ino: Option<u64>,
    },
    Dir {
        dir: String,
    },
    Glob {
        glob: String,
    },
    Sha256 {
        sha256: String,
    },
}

/// The rules in `path`, then the changes in its log; an empty set when
/// neither exists (first start). A file that exists but cannot be parsed is
/// an error naming it, never an empty set: silently dropping rules would
/// unblock everything.
pub fn load(path: &Path) -> Result<RuleSet, StoreError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return rule_log::replay(path, Vec::new()),
        Err(source) => return Err(StoreError::Read { path: path.into(), source }),
    };
    let corrupt = |reason: String| StoreError::Corrupt { path: path.into(), reason };
    let file: RuleFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if file.version != FORMAT_VERSION {
        return Err(corrupt(format!("format version {} is not {FORMAT_VERSION}", file.version)));
    }
    let rules = file
        .rules
        .into_iter()
        .map(|stored| from_stored(stored).map_err(|e| corrupt(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    rule_log::replay(path, rules)
}

/// Replace the rules in `path` with `rules`, atomically (see the module
/// documentation), and empty its log, whose changes `rules` holds. The
/// directory is created if missing.
pub fn save(path: &Path, rules: &RuleSet) -> Result<(), StoreError> {
    let failed = |source: io::Error| StoreError::Write { path: path.into(), source };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(failed)?;
    let file = RuleFile { version: FORMAT_VERSION, rules: rules.list().iter().map(to_stored).collect() };
    let mut json = serde_json::to_vec_pretty(&file).expect("rules are strings and numbers, which always serialize");
    json.push(b'\n');

    let mut temp = tempfile::Builder::new().prefix(".rules-").suffix(".tmp").tempfile_in(dir).map_err(failed)?;
    temp.write_all(&json).map_err(failed)?;
    temp.as_file().sync_all().map_err(failed)?;
    temp.persist(path).map_err(|e| failed(e.error))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(failed)?;
    // A crash before this leaves a log whose changes the new file already
    // holds; replaying them again changes nothing (see rule_log::replay).
    rule_log::clear(path)
}

pub(crate) fn to_stored(rule: &ExecRule) -> StoredRule {
    match rule {
        ExecRule::File { path, identity } => {
            StoredRule::File { file: path.clone(), dev: identity.map(|id| id.dev), ino: identity.map(|id| id.ino) }
        }
        ExecRule::Dir { prefix } => StoredRule::Dir { dir: prefix.clone() },
        ExecRule::Glob { glob } => StoredRule::Glob { glob: glob.glob().to_string() },
        ExecRule::Sha256 { hex } => StoredRule::Sha256 { sha256: hex.clone() },
    }
}

/// A stored rule as it was recorded: the identity from when the rule was
/// added is kept (the file may be gone and a hardlink to it remain), and
/// nothing is resolved again. The checks every rule passes still apply.
pub(crate) fn from_stored(stored: StoredRule) -> Result<ExecRule, RuleError> {
    let absolute = |text: String| {
        if text.is_empty() {
            Err(RuleError::Empty)
        } else if text.chars().any(char::is_control) {
            Err(RuleError::ControlCharacter(text))
        } else if !text.starts_with('/') {
            Err(RuleError::Relative(text))
        } else {
            Ok(text)
        }
    };
    Ok(match stored {
        StoredRule::File { file, dev, ino } => {
            let identity = match (dev, ino) {
                (Some(dev), Some(ino)) => Some(FileId { dev, ino }),
                _ => None,
            };
            ExecRule::File { path: absolute(file)?, identity }
        }
        StoredRule::Dir { dir } => {
            let prefix = absolute(dir)?;
            if prefix.trim_end_matches('/').is_empty() {
                return Err(RuleError::BlocksEverything(prefix));
            }
            ExecRule::Dir { prefix: format!("{}/", prefix.trim_end_matches('/')) }
        }
        StoredRule::Glob { glob } => ExecRule::Glob { glob: compile_glob(&absolute(glob)?)? },
        StoredRule::Sha256 { sha256 } => ExecRule::sha256(&sha256, &crate::rule::Protected::none())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::Protected;
    use std::ffi::OsStr;

    fn sample() -> RuleSet {
        let p = Protected::none();
        RuleSet::from_rules([
            ExecRule::File { path: "/nonexistent/evil".into(), identity: Some(FileId { dev: 2049, ino: 131 }) },
            ExecRule::path(OsStr::new("/nonexistent/gone"), &p).unwrap(),
            ExecRule::path(OsStr::new("/nonexistent/bad/"), &p).unwrap(),
            ExecRule::glob(OsStr::new("/nonexistent/*.bin"), &p).unwrap(),
            ExecRule::sha256(&"AB".repeat(32), &p).unwrap(),
        ])
        .unwrap()
    }

    fn texts(set: &RuleSet) -> Vec<String> {
        set.list().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn rules_round_trip_with_identities() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/rules.json");
        save(&path, &sample()).unwrap();
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.list(), sample().list());
        assert_eq!(
            loaded.matches("/elsewhere", Some(FileId { dev: 2049, ino: 131 })).unwrap().to_string(),
            "/nonexistent/evil"
        );
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no temporary left behind");
    }

    #[test]
    fn missing_file_is_an_empty_set() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(&dir.path().join("rules.json")).unwrap().is_empty());
    }

    #[test]
    fn corrupt_file_is_an_error_naming_it_and_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.json");
        save(&path, &sample()).unwrap();
        let full = fs::read(&path).unwrap();
        let cases: Vec<Vec<u8>> = vec![
            full[..full.len() / 2].to_vec(),
            Vec::new(),
            br#"{"version":2,"rules":[]}"#.to_vec(),
            br#"{"version":1,"rules":[{"file":"relative"}]}"#.to_vec(),
            br#"{"version":1,"rules":[{"dir":"/"}]}"#.to_vec(),
            br#"{"version":1,"rules":[{"glob":"/["}]}"#.to_vec(),
            br#"{"version":1,"rules":[{"file":"/a"},{"file":"/a"}]}"#.to_vec(),
            br#"{"version":1,"rules":[{"flie":"/a"}]}"#.to_vec(),
        ];
        for bytes in cases {
            fs::write(&path, &bytes).unwrap();
            let err = load(&path).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
            assert!(err.to_string().contains(&path.display().to_string()), "{err}");
            assert_eq!(fs::read(&path).unwrap(), bytes, "a corrupt file is never rewritten by load");
        }
    }

    #[test]
    fn a_crash_before_the_rename_leaves_the_old_rules() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.json");
        save(&path, &sample()).unwrap();
        // What a crash mid-save leaves: a half-written temporary beside the
        // rule file, never renamed.
        let full = fs::read(&path).unwrap();
        fs::write(dir.path().join(".rules-crashed.tmp"), &full[..10]).unwrap();
        assert_eq!(texts(&load(&path).unwrap()), texts(&sample()));

        let mut fewer = sample();
        fewer.remove(OsStr::new("/nonexistent/bad/")).unwrap();
        save(&path, &fewer).unwrap();
        assert_eq!(texts(&load(&path).unwrap()), texts(&fewer));
    }
}
