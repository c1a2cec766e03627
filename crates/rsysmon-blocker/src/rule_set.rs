//! All rules, indexed so one decision costs a few hash lookups whatever the
//! number of rules.
//!
//! The indexes are persistent maps (`imbl`): a copy shares everything with
//! its original, so publishing a set with one more rule (copy, add, swap)
//! costs the same at 10 rules as at 10,000; with std maps the copy alone
//! was O(n), about 10 ms at 10,000 rules.
//!
//! A decision runs while a process waits in execve, so `matches` looks up
//! the file's identity and path in hash maps, then each ancestor directory
//! of the path (as many lookups as the path has components), and only then
//! runs the glob set, which is compiled once into one matcher.

use std::ffi::OsStr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use globset::{GlobSet, GlobSetBuilder};
use imbl::{HashMap, Vector};
use rsysmon_fs::FileId;

use crate::rule::{ExecRule, Protected, RuleError};

/// The most rules a set holds. The kernel's lists of blocked files and
/// directories have exactly this many entries, so every rule a set accepts
/// fits in them.
pub const MAX_RULES: usize = 16384;

/// The rules the blocker enforces. Replace the whole set
/// (`rules.store(Arc::new(new_set))`), then call
/// [`Blocker::allow_cache`](crate::Blocker::allow_cache)`().rules_changed()` so the kernel forgets the
/// files it was told to let through; the next exec is judged by the new set.
/// Readers never wait for a writer, so a slow update cannot stall an exec.
pub type SharedRules = Arc<ArcSwap<RuleSet>>;

/// Rules ready to share with a [`Blocker`](crate::Blocker).
pub fn shared(rules: RuleSet) -> SharedRules {
    Arc::new(ArcSwap::from_pointee(rules))
}

/// The rules in force, in the order they were added.
///
/// Rules are removed by their text form (as [`RuleSet::list`] shows them
/// and [`ExecRule`]'s `Display` writes them), never by position: a position
/// shifts when another client removes a rule first; the text does not.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vector<ExecRule>,
    /// Text form → index in `rules`.
    by_text: HashMap<String, usize>,
    files: HashMap<String, usize>,
    identities: HashMap<FileId, usize>,
    dirs: HashMap<String, usize>,
    /// SHA-256 (lower-case hex) → index in `rules`.
    hashes: HashMap<String, usize>,
    globs: Arc<GlobSet>,
    /// Index in `rules` of each glob in `globs`, in the same order.
    glob_rules: Vector<usize>,
}

impl RuleSet {
    /// An empty set: nothing blocked.
    pub fn new() -> Self {
        Self::default()
    }

    /// A set of `rules`, indexed once (how a rule file is loaded).
    pub fn from_rules(rules: impl IntoIterator<Item = ExecRule>) -> Result<Self, RuleError> {
        let mut set = RuleSet::new();
        for rule in rules {
            set.insert(rule)?;
        }
        set.rebuild_globs();
        Ok(set)
    }

    /// Add a rule. A rule already present (same text) is refused.
    pub fn add(&mut self, rule: ExecRule) -> Result<(), RuleError> {
        let is_glob = matches!(rule, ExecRule::Glob { .. });
        self.insert(rule)?;
        if is_glob {
            self.rebuild_globs();
        }
        Ok(())
    }

    /// Remove the rule whose text form is `text`, after resolving `text` as
    /// [`ExecRule::parse`] does (so `/bin/x` removes the rule shown as
    /// `/usr/bin/x` on a merged-/usr system). Returns the removed rule.
    pub fn remove(&mut self, text: &OsStr) -> Result<ExecRule, RuleError> {
        let given = text.to_string_lossy().into_owned();
        let index = self
            .by_text
            .get(given.as_str())
            .copied()
            .or_else(|| {
                let parsed = ExecRule::parse(text, &Protected::none()).ok()?;
                self.by_text.get(&parsed.to_string()).copied()
            })
            .ok_or(RuleError::NotFound(given))?;
        let removed = self.rules.remove(index);
        *self = RuleSet::from_rules(std::mem::take(&mut self.rules))
            .expect("rules that were in a set have distinct texts and fit");
        Ok(removed)
    }

    /// Every rule, in the order added.
    pub fn list(&self) -> &Vector<ExecRule> {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first rule that blocks the file at real path `path` with
    /// `identity` (None when the file could not be stat'ed): identity first,
    /// then path, then directories (innermost first), then globs.
    pub fn matches(&self, path: &str, identity: Option<FileId>) -> Option<&ExecRule> {
        let index = identity
            .and_then(|id| self.identities.get(&id))
            .or_else(|| self.files.get(path))
            .or_else(|| self.dir_match(path))
            .copied()
            .or_else(|| self.glob_match(path))?;
        Some(&self.rules[index])
    }

    /// Whether a directory or glob rule is in the set: then a file whose
    /// path cannot be read (longer than PATH_MAX) may be below one, and is
    /// refused.
    pub fn has_trees(&self) -> bool {
        !self.dirs.is_empty() || !self.glob_rules.is_empty()
    }

    /// The hash rule for a file with this SHA-256 (lower-case hex).
    pub fn matches_sha256(&self, sha256: &str) -> Option<&ExecRule> {
        self.hashes.get(sha256).map(|&i| &self.rules[i])
    }

    /// Whether any rule is a hash rule: only then must an exec's file be
    /// hashed to decide.
    pub fn has_hash_rules(&self) -> bool {
        !self.hashes.is_empty()
    }

    /// The identities of every file rule that has one: what an image-load
    /// probe must also refuse (the dynamic loader run directly opens a
    /// file without exec intent, so fanotify never sees it).
    pub fn file_identities(&self) -> impl Iterator<Item = FileId> + '_ {
        self.identities.keys().copied()
    }

    fn insert(&mut self, rule: ExecRule) -> Result<(), RuleError> {
        let text = rule.to_string();
        if self.by_text.contains_key(&text) {
            return Err(RuleError::Duplicate(text));
        }
        if self.rules.len() >= MAX_RULES {
            return Err(RuleError::TooMany(text));
        }
        let index = self.rules.len();
        match &rule {
            ExecRule::File { path, identity } => {
                self.files.insert(path.clone(), index);
                if let Some(id) = identity {
                    self.identities.entry(*id).or_insert(index);
                }
            }
            ExecRule::Dir { prefix } => {
                self.dirs.insert(prefix.clone(), index);
            }
            ExecRule::Glob { .. } => self.glob_rules.push_back(index),
            ExecRule::Sha256 { hex } => {
                self.hashes.insert(hex.clone(), index);
            }
        }
        self.by_text.insert(text, index);
        self.rules.push_back(rule);
        Ok(())
    }

    fn rebuild_globs(&mut self) {
        let mut builder = GlobSetBuilder::new();
        for &index in &self.glob_rules {
            if let ExecRule::Glob { glob } = &self.rules[index] {
                builder.add(glob.clone());
            }
        }
        self.globs = Arc::new(builder.build().expect("globs were each compiled when their rule was made"));
    }

    /// Each ancestor of `path`, innermost first, as a `/`-terminated prefix.
    fn dir_match(&self, path: &str) -> Option<&usize> {
        if self.dirs.is_empty() {
            return None;
        }
        path.rmatch_indices('/').find_map(|(i, _)| self.dirs.get(&path[..=i]))
    }

    fn glob_match(&self, path: &str) -> Option<usize> {
        if self.glob_rules.is_empty() {
            return None;
        }
        let first = self.globs.matches(path).into_iter().min()?;
        Some(self.glob_rules[first])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> ExecRule {
        ExecRule::parse(OsStr::new(text), &Protected::none()).unwrap()
    }

    fn file(path: &str, dev: u64, ino: u64) -> ExecRule {
        ExecRule::File { path: path.into(), identity: Some(FileId { dev, ino }) }
    }

    fn matched(set: &RuleSet, path: &str, identity: Option<(u64, u64)>) -> Option<String> {
        set.matches(path, identity.map(|(dev, ino)| FileId { dev, ino })).map(ToString::to_string)
    }

    #[test]
    fn hash_rules_match_by_content_only_and_refuse_bad_hex() {
        let hex = "0f".repeat(32);
        let set = RuleSet::from_rules([rule(&format!("sha256:{}", hex.to_uppercase()))]).unwrap();
        assert!(set.has_hash_rules());
        assert_eq!(set.list()[0].to_string(), format!("sha256:{hex}"));
        assert_eq!(set.matches_sha256(&hex).map(ToString::to_string), Some(format!("sha256:{hex}")));
        assert_eq!(set.matches_sha256(&"00".repeat(32)), None);
        assert_eq!(matched(&set, "/anything", Some((1, 2))), None);
        assert!(!RuleSet::new().has_hash_rules());
        for bad in ["sha256:", "sha256:abc", &format!("sha256:{}zz", "0".repeat(62))] {
            let err = ExecRule::parse(OsStr::new(bad), &Protected::none()).unwrap_err();
            assert!(err.to_string().contains("64 hex digits"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_hash_rule_of_a_protected_file_is_refused() {
        let me = std::env::current_exe().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let hex = rsysmon_hash::hash_path(&me, deadline).unwrap();
        let protected = Protected::none().with(&me);
        let err = ExecRule::sha256(&hex, &protected).unwrap_err();
        assert!(err.to_string().contains("must keep running"), "{err}");
    }

    #[test]
    fn each_kind_of_rule_matches_what_it_should_and_nothing_else() {
        let set = RuleSet::from_rules([
            file("/nonexistent/a/evil", 1, 100),
            rule("/nonexistent/bad/"),
            rule("glob:/nonexistent/g/*.bin"),
        ])
        .unwrap();
        assert_eq!(matched(&set, "/nonexistent/a/evil", None).as_deref(), Some("/nonexistent/a/evil"));
        assert_eq!(matched(&set, "/somewhere/hardlink", Some((1, 100))).as_deref(), Some("/nonexistent/a/evil"));
        assert_eq!(matched(&set, "/nonexistent/bad/x/y", Some((1, 5))).as_deref(), Some("/nonexistent/bad/"));
        assert_eq!(matched(&set, "/nonexistent/g/x.bin", None).as_deref(), Some("glob:/nonexistent/g/*.bin"));
        for free in ["/nonexistent/a/evil2", "/nonexistent/bad", "/nonexistent/badx/y", "/nonexistent/g/x/y.bin"] {
            assert_eq!(matched(&set, free, Some((1, 101))), None, "{free}");
        }
    }

    #[test]
    fn identity_beats_path_and_innermost_dir_wins() {
        let set = RuleSet::from_rules([rule("/nonexistent/d/"), rule("/nonexistent/d/e/"), file("/x", 2, 7)]).unwrap();
        assert_eq!(matched(&set, "/nonexistent/d/e/f", Some((2, 7))).as_deref(), Some("/x"));
        assert_eq!(matched(&set, "/nonexistent/d/e/f", None).as_deref(), Some("/nonexistent/d/e/"));
        assert_eq!(matched(&set, "/nonexistent/d/f", None).as_deref(), Some("/nonexistent/d/"));
    }

    #[test]
    fn add_refuses_duplicates_and_remove_takes_the_text_form() {
        let mut set = RuleSet::new();
        set.add(rule("/nonexistent/one")).unwrap();
        set.add(rule("glob:/nonexistent/*.sh")).unwrap();
        set.add(file("/nonexistent/two", 3, 9)).unwrap();
        assert!(matches!(set.add(rule("/nonexistent//one")), Err(RuleError::Duplicate(_))));
        assert_eq!(set.len(), 3);

        assert!(matches!(set.remove(OsStr::new("/nonexistent/three")), Err(RuleError::NotFound(_))));
        assert_eq!(set.remove(OsStr::new("/nonexistent/./one")).unwrap().to_string(), "/nonexistent/one");
        assert_eq!(set.matches("/nonexistent/one", None), None);
        assert_eq!(matched(&set, "/nonexistent/x.sh", None).as_deref(), Some("glob:/nonexistent/*.sh"));
        set.remove(OsStr::new("glob:/nonexistent/*.sh")).unwrap();
        assert_eq!(set.matches("/nonexistent/x.sh", None), None);
        assert_eq!(matched(&set, "/y", Some((3, 9))).as_deref(), Some("/nonexistent/two"));
        assert_eq!(set.file_identities().collect::<Vec<_>>(), [FileId { dev: 3, ino: 9 }]);
        set.remove(OsStr::new("/nonexistent/two")).unwrap();
        assert!(set.is_empty());
        assert_eq!(set.matches("/y", Some(FileId { dev: 3, ino: 9 })), None);
    }

    #[test]
    fn a_rule_past_the_maximum_is_refused_and_changes_nothing() {
        let mut set =
            RuleSet::from_rules((0..MAX_RULES as u64).map(|i| file(&format!("/nonexistent/f{i}"), 9, i))).unwrap();
        let err = set.add(rule("/nonexistent/one-more")).unwrap_err();
        assert!(matches!(err, RuleError::TooMany(_)), "{err}");
        assert!(err.to_string().contains("remove one first"), "{err}");
        assert_eq!(set.len(), MAX_RULES);
        assert_eq!(set.matches("/nonexistent/one-more", None), None);
        set.remove(OsStr::new("/nonexistent/f0")).unwrap();
        set.add(rule("/nonexistent/one-more")).unwrap();
    }

    #[test]
    fn ten_thousand_rules_still_decide_exactly() {
        let mut rules = Vec::new();
        for i in 0..10_000u64 {
            rules.push(match i % 10 {
                0 => rule(&format!("/nonexistent/dir{i}/")),
                1 => rule(&format!("glob:/nonexistent/glob{i}/*")),
                _ => file(&format!("/nonexistent/file{i}"), 9, i),
            });
        }
        let set = RuleSet::from_rules(rules).unwrap();
        assert_eq!(set.len(), 10_000);
        assert_eq!(set.file_identities().count(), 8_000);
        assert_eq!(matched(&set, "/nonexistent/file9999", None).as_deref(), Some("/nonexistent/file9999"));
        assert_eq!(matched(&set, "/other", Some((9, 5002))).as_deref(), Some("/nonexistent/file5002"));
        assert_eq!(matched(&set, "/nonexistent/dir5000/x", None).as_deref(), Some("/nonexistent/dir5000/"));
        assert_eq!(matched(&set, "/nonexistent/glob9991/x", None).as_deref(), Some("glob:/nonexistent/glob9991/*"));
        assert_eq!(matched(&set, "/usr/bin/true", Some((9, 10_000))), None);
        assert_eq!(matched(&set, "/nonexistent/dir5001/x", None), None);
    }
}
