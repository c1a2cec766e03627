//! One rule: which executables must not run, parsed and checked from what a
//! user typed.
//!
//! Four forms, each with a text form that `list` shows and `remove` takes:
//!
//! | typed                  | rule   | matches                                        |
//! |------------------------|--------|------------------------------------------------|
//! | `/opt/x/evil`          | file   | that file, by path and by identity (dev, inode) |
//! | `/opt/x/`              | dir    | every file below that directory                |
//! | `--glob '/tmp/*.bin'`  | glob   | real paths matching the pattern (`glob:` text)  |
//! | `--sha256 HEX`         | sha256 | any file with that content, wherever it is and whatever its name (`sha256:` text) |
//!
//! Paths are resolved when the rule is added (symlinks followed, `.` and
//! duplicate slashes dropped), because the blocker sees the real path of the
//! file being executed, never the name the caller used.

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobBuilder};
use rsysmon_fs::FileId;

/// Text prefix of a glob rule, so `remove` can tell a pattern from a path.
pub const GLOB_PREFIX: &str = "glob:";
/// Text prefix of a hash rule.
pub const SHA256_PREFIX: &str = "sha256:";

/// Executables that must not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecRule {
    /// One file. `identity` is recorded when the rule is added (absent when
    /// the file did not exist yet); it keeps matching under any other name.
    File { path: String, identity: Option<FileId> },
    /// Everything below a directory; `prefix` ends with `/`.
    Dir { prefix: String },
    /// Real paths matching a glob: `*` and `?` stay within one path
    /// component, `**` crosses them, `[ab]` and `{a,b}` as in a shell.
    Glob { glob: Glob },
    /// Any file whose SHA-256 is `hex` (64 lower-case hex digits): copies
    /// and renamed files stay blocked.
    Sha256 { hex: String },
}

/// Why a rule was refused. Nothing is changed when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("empty rule: give an absolute path, a directory ending in /, or a glob")]
    Empty,
    #[error("rule {0:?} is not valid UTF-8: rename the file or block its directory")]
    NotUtf8(String),
    #[error("rule {0:?} contains a newline or another control character, which no rule may hold")]
    ControlCharacter(String),
    #[error("rule {0:?} is relative: give an absolute path starting with /")]
    Relative(String),
    #[error("rule {0:?} names a directory: add a trailing / to block everything below it")]
    IsADirectory(String),
    #[error("rule {0:?} ends with / but is not a directory: drop the / to block a single file")]
    NotADirectory(String),
    #[error("rule {0:?} does not exist and contains '..': give the path without '..'")]
    ParentComponent(String),
    #[error("cannot look at {path}: {source}")]
    Inaccessible { path: String, source: io::Error },
    #[error("rule {0:?} would block every executable on the system; refused")]
    BlocksEverything(String),
    #[error("rule {rule:?} would block {protected}, which must keep running; refused")]
    BlocksProtected { rule: String, protected: String },
    #[error("invalid glob {pattern:?}: {source}")]
    InvalidGlob { pattern: String, source: globset::Error },
    #[error("{0:?} is not a SHA-256: give 64 hex digits, as sha256sum prints them")]
    BadSha256(String),
    #[error("rule {0} is already in the rule set")]
    Duplicate(String),
    #[error("rule {0} would make {max} rules, the most a rule set holds; remove one first", max = crate::MAX_RULES + 1)]
    TooMany(String),
    #[error("no rule {0:?}; `rsysmon block list` shows the rules as they must be given")]
    NotFound(String),
}

/// Executables no rule may block: the daemon's own and its ELF
/// interpreter, so it can always be restarted and run its helpers. The
/// blocker also asks the kernel never to report their execs at all (see
/// [`crate::Blocker::start_with`]). A parameter so tests can choose.
#[derive(Debug, Clone, Default)]
pub struct Protected {
    files: Vec<(String, Option<FileId>)>,
}

impl Protected {
    /// Protects nothing (tests of other checks).
    pub fn none() -> Self {
        Self::default()
    }

    /// Protects the executable of the running process and the dynamic
    /// loader it was started with (blocking either would stop the daemon
    /// from starting again).
    pub fn this_process() -> io::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut protected = Self::none().with(&exe);
        if let Some(loader) = own_interpreter() {
            protected = protected.with(&loader);
        }
        Ok(protected)
    }

    /// Also protect `path` (resolved now; its identity too when it exists).
    pub fn with(mut self, path: &Path) -> Self {
        let real = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let identity = fs::metadata(&real).ok().map(|m| FileId::of(&m));
        self.files.push((real.to_string_lossy().into_owned(), identity));
        self
    }

    /// The protected files' real paths.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.iter().map(|(path, _)| path.as_str())
    }

    fn check(&self, rule: &ExecRule) -> Result<(), RuleError> {
        for (path, identity) in &self.files {
            let same_content = || {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                matches!(rule, ExecRule::Sha256 { hex } if rsysmon_hash::hash_path(Path::new(path), deadline).as_ref() == Ok(hex))
            };
            if rule.matches(path, *identity) || same_content() {
                return Err(RuleError::BlocksProtected { rule: rule.to_string(), protected: path.clone() });
            }
        }
        Ok(())
    }
}

impl ExecRule {
    /// A rule from its text form: `glob:PATTERN` is a glob, anything else a
    /// path (a directory when it ends with `/`). What `remove` takes and
    /// what the rule file holds.
    pub fn parse(text: &OsStr, protected: &Protected) -> Result<Self, RuleError> {
        if let Some(hex) = text.to_str().and_then(|t| t.strip_prefix(SHA256_PREFIX)) {
            return Self::sha256(hex, protected);
        }
        match text.to_str().and_then(|t| t.strip_prefix(GLOB_PREFIX)) {
            Some(pattern) => Self::glob(OsStr::new(pattern), protected),
            None => Self::path(text, protected),
        }
    }

    /// A hash rule: 64 hex digits, either case.
    pub fn sha256(hex: &str, protected: &Protected) -> Result<Self, RuleError> {
        let hex = hex.trim();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RuleError::BadSha256(hex.chars().filter(|c| !c.is_control()).take(80).collect()));
        }
        let rule = ExecRule::Sha256 { hex: hex.to_ascii_lowercase() };
        protected.check(&rule)?;
        Ok(rule)
    }

    /// A file rule, or a directory rule when `input` ends with `/`.
    pub fn path(input: &OsStr, protected: &Protected) -> Result<Self, RuleError> {
        let text = checked_text(input)?;
        let rule = if text.ends_with('/') { dir_rule(text)? } else { file_rule(text)? };
        protected.check(&rule)?;
        Ok(rule)
    }

    /// A glob rule; the pattern must be absolute.
    pub fn glob(input: &OsStr, protected: &Protected) -> Result<Self, RuleError> {
        let pattern = checked_text(input)?;
        let glob = compile_glob(pattern)?;
        let rule = ExecRule::Glob { glob };
        if rule.matches("/", None) {
            return Err(RuleError::BlocksEverything(rule.to_string()));
        }
        protected.check(&rule)?;
        Ok(rule)
    }

    /// Whether this rule alone blocks the file at real path `path` with
    /// `identity`; a hash rule matches by content, never by name.
    /// [`crate::RuleSet::matches`] is the fast way for many.
    pub fn matches(&self, path: &str, identity: Option<FileId>) -> bool {
        match self {
            ExecRule::File { path: p, identity: id } => p == path || (id.is_some() && *id == identity),
            ExecRule::Dir { prefix } => path.starts_with(prefix.as_str()),
            ExecRule::Glob { glob } => glob.compile_matcher().is_match(path),
            ExecRule::Sha256 { .. } => false,
        }
    }
}

impl ExecRule {
    /// The directory whose whole tree the kernel refuses for this rule
    /// when a file is reached without execve (`ld.so FILE`, dlopen, mmap),
    /// `/`-terminated: a directory rule's own, and for a glob the literal
    /// directories before its first wildcard (`/opt/x/` for
    /// `/opt/x/**/*.so`). None for a file rule, and for a glob with no
    /// literal directory (`/*/x`, `/**/x`), whose prefix would be `/`.
    pub fn tree(&self) -> Option<String> {
        match self {
            ExecRule::File { .. } | ExecRule::Sha256 { .. } => None,
            ExecRule::Dir { prefix } => Some(prefix.clone()),
            ExecRule::Glob { glob } => {
                let pattern = glob.glob();
                let wild = pattern.find(['*', '?', '[', '{', '\\']).unwrap_or(pattern.len());
                let end = pattern[..wild].rfind('/')?;
                (end > 0).then(|| pattern[..=end].to_string())
            }
        }
    }
}

impl fmt::Display for ExecRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecRule::File { path, .. } => f.write_str(path),
            ExecRule::Dir { prefix } => f.write_str(prefix),
            ExecRule::Glob { glob } => write!(f, "{GLOB_PREFIX}{}", glob.glob()),
            ExecRule::Sha256 { hex } => write!(f, "{SHA256_PREFIX}{hex}"),
        }
    }
}

/// The ELF interpreter this process was started with: the file mapped at
/// the base address the kernel passed in the auxiliary vector (AT_BASE; 0
/// for a static executable).
fn own_interpreter() -> Option<PathBuf> {
    // SAFETY: getauxval only reads the auxiliary vector; it has no
    // preconditions and returns 0 for an absent entry.
    let base = unsafe { libc::getauxval(libc::AT_BASE) };
    if base == 0 {
        return None;
    }
    let maps = fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|line| {
        let start = u64::from_str_radix(line.split('-').next()?, 16).ok()?;
        // address perms offset dev inode path
        let path = line.splitn(6, ' ').nth(5)?.trim_start();
        (start == base && path.starts_with('/')).then(|| PathBuf::from(path))
    })
}

/// The input as text, refusing what no rule may be: empty, non-UTF-8,
/// control characters (a newline would forge lines in the rule list and the
/// event log), relative.
fn checked_text(input: &OsStr) -> Result<&str, RuleError> {
    let text = input.to_str().ok_or_else(|| RuleError::NotUtf8(input.to_string_lossy().into_owned()))?;
    if text.trim().is_empty() {
        return Err(RuleError::Empty);
    }
    if text.chars().any(char::is_control) {
        return Err(RuleError::ControlCharacter(text.to_string()));
    }
    if !text.starts_with('/') {
        return Err(RuleError::Relative(text.to_string()));
    }
    Ok(text)
}

pub(crate) fn compile_glob(pattern: &str) -> Result<Glob, RuleError> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|source| RuleError::InvalidGlob { pattern: pattern.to_string(), source })
}

fn file_rule(text: &str) -> Result<ExecRule, RuleError> {
    match fs::metadata(text) {
        Ok(meta) if meta.is_dir() => Err(RuleError::IsADirectory(text.to_string())),
        Ok(meta) => {
            let real = fs::canonicalize(text).map_err(|source| inaccessible(text, source))?;
            Ok(ExecRule::File { path: utf8(real, text)?, identity: Some(FileId::of(&meta)) })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(ExecRule::File { path: lexical(text)?, identity: None }),
        Err(source) => Err(inaccessible(text, source)),
    }
}

fn dir_rule(text: &str) -> Result<ExecRule, RuleError> {
    let prefix = match fs::metadata(text) {
        Ok(meta) if !meta.is_dir() => return Err(RuleError::NotADirectory(text.to_string())),
        Ok(_) => utf8(fs::canonicalize(text).map_err(|source| inaccessible(text, source))?, text)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => lexical(text)?,
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return Err(RuleError::NotADirectory(text.to_string())),
        Err(source) => return Err(inaccessible(text, source)),
    };
    if prefix == "/" {
        return Err(RuleError::BlocksEverything(text.to_string()));
    }
    Ok(ExecRule::Dir { prefix: format!("{}/", prefix.trim_end_matches('/')) })
}

/// A path that does not exist yet, without `.` and duplicate slashes. `..`
/// cannot be resolved without the directories it climbs, so it is refused.
fn lexical(text: &str) -> Result<String, RuleError> {
    let path = Path::new(text);
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(RuleError::ParentComponent(text.to_string()));
    }
    let clean: PathBuf = path.components().collect();
    utf8(clean, text)
}

fn utf8(path: PathBuf, text: &str) -> Result<String, RuleError> {
    path.into_os_string().into_string().map_err(|_| RuleError::NotUtf8(text.to_string()))
}

fn inaccessible(text: &str, source: io::Error) -> RuleError {
    RuleError::Inaccessible { path: text.to_string(), source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    fn path(s: &str) -> Result<ExecRule, RuleError> {
        ExecRule::path(OsStr::new(s), &Protected::none())
    }

    #[test]
    fn file_rule_records_real_path_and_identity() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("evil");
        fs::write(&file, b"x").unwrap();
        std::os::unix::fs::symlink(&file, dir.path().join("alias")).unwrap();
        let real = fs::canonicalize(&file).unwrap().to_string_lossy().into_owned();
        let identity = FileId::of(&fs::metadata(&file).unwrap());

        let via_link = path(&format!("{}//./alias", dir.path().display())).unwrap();
        assert_eq!(via_link, ExecRule::File { path: real.clone(), identity: Some(identity) });
        assert_eq!(via_link.to_string(), real);
        assert!(via_link.matches("/elsewhere/hardlink", Some(identity)));
        assert!(!via_link.matches("/elsewhere/other", Some(FileId { dev: identity.dev, ino: identity.ino + 1 })));
    }

    #[test]
    fn missing_file_is_a_path_only_rule() {
        assert_eq!(
            path("/nonexistent//rsysmon/./x").unwrap(),
            ExecRule::File { path: "/nonexistent/rsysmon/x".into(), identity: None }
        );
        assert!(matches!(path("/nonexistent/../x"), Err(RuleError::ParentComponent(_))));
    }

    #[test]
    fn dir_rule_ends_with_a_slash_and_matches_below() {
        let dir = tempfile::tempdir().unwrap();
        let real = fs::canonicalize(dir.path()).unwrap();
        let rule = path(&format!("{}/", dir.path().display())).unwrap();
        assert_eq!(rule, ExecRule::Dir { prefix: format!("{}/", real.display()) });
        assert!(rule.matches(&format!("{}/a/b", real.display()), None));
        assert!(!rule.matches(&format!("{}-sibling/a", real.display()), None));
        assert_eq!(path("/nonexistent/rsysmon-dir/").unwrap().to_string(), "/nonexistent/rsysmon-dir/");
    }

    #[test]
    fn bad_rules_are_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, b"x").unwrap();
        let cases: Vec<(&OsStr, &str)> = vec![
            (OsStr::new(""), "empty rule"),
            (OsStr::new("  "), "empty rule"),
            (OsStr::new("bin/evil"), "is relative"),
            (OsStr::new("./evil"), "is relative"),
            (OsStr::new("/tmp/evil\nx"), "newline"),
            (OsStr::from_bytes(b"/tmp/\xff"), "not valid UTF-8"),
            (OsStr::new("/"), "every executable"),
            (OsStr::new("//"), "every executable"),
            (OsStr::new("/tmp/../"), "every executable"),
        ];
        for (input, expected) in cases {
            let err = ExecRule::path(input, &Protected::none()).unwrap_err().to_string();
            assert!(err.contains(expected), "{input:?}: {err}");
        }
        let err = path(&dir.path().display().to_string()).unwrap_err().to_string();
        assert!(err.contains("add a trailing /"), "{err}");
        let err = path(&format!("{}/", file.display())).unwrap_err().to_string();
        assert!(err.contains("not a directory"), "{err}");
    }

    #[test]
    fn rules_that_would_block_a_protected_executable_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let daemon = dir.path().join("rsysmon");
        fs::write(&daemon, b"x").unwrap();
        let hardlink = dir.path().join("other-name");
        fs::hard_link(&daemon, &hardlink).unwrap();
        let protected = Protected::none().with(&daemon);
        let refused =
            [daemon.display().to_string(), hardlink.display().to_string(), format!("{}/", dir.path().display())];
        for input in refused {
            let err = ExecRule::path(OsStr::new(&input), &protected).unwrap_err();
            assert!(matches!(err, RuleError::BlocksProtected { .. }), "{input}: {err}");
        }
        let real_dir = fs::canonicalize(dir.path()).unwrap();
        let err = ExecRule::glob(OsStr::new(&format!("{}/rsys*", real_dir.display())), &protected).unwrap_err();
        assert!(err.to_string().contains("must keep running"), "{err}");
        assert!(ExecRule::glob(OsStr::new(&format!("{}/other*", real_dir.display())), &protected).is_ok());
    }

    #[test]
    fn this_process_protects_its_executable_and_dynamic_loader() {
        let protected = Protected::this_process().unwrap();
        let paths: Vec<&str> = protected.paths().collect();
        let exe = fs::canonicalize(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(paths[0], exe.to_str().unwrap());
        assert_eq!(paths.len(), 2, "test binaries are dynamically linked: {paths:?}");
        assert!(paths[1].contains("ld-linux") || paths[1].contains("ld-"), "{paths:?}");
        let err = ExecRule::path(OsStr::new(paths[1]), &protected).unwrap_err();
        assert!(matches!(err, RuleError::BlocksProtected { .. }), "{err}");
    }

    #[test]
    fn the_kernel_tree_of_a_rule_is_its_literal_directory() {
        let tree = |text: &str| ExecRule::parse(OsStr::new(text), &Protected::none()).unwrap().tree();
        assert_eq!(tree("/nonexistent/d/").as_deref(), Some("/nonexistent/d/"));
        assert_eq!(tree("/nonexistent/f"), None);
        assert_eq!(tree("glob:/nonexistent/x/*.bin").as_deref(), Some("/nonexistent/x/"));
        assert_eq!(tree("glob:/nonexistent/x/**/y/*.so").as_deref(), Some("/nonexistent/x/"));
        assert_eq!(tree("glob:/nonexistent/x/ev?l").as_deref(), Some("/nonexistent/x/"));
        assert_eq!(tree("glob:/nonexistent/x/{a,b}/c").as_deref(), Some("/nonexistent/x/"));
        assert_eq!(tree("glob:/nonexistent/x/y").as_deref(), Some("/nonexistent/x/"));
        assert_eq!(tree("glob:/*/evil"), None);
        assert_eq!(tree("glob:/**/evil"), None);
    }

    #[test]
    fn globs_stay_within_components_unless_double_star() {
        let rule = ExecRule::glob(OsStr::new("/tmp/*.bin"), &Protected::none()).unwrap();
        assert_eq!(rule.to_string(), "glob:/tmp/*.bin");
        assert!(rule.matches("/tmp/x.bin", None));
        assert!(!rule.matches("/tmp/a/x.bin", None));
        let deep = ExecRule::parse(OsStr::new("glob:/tmp/**/x"), &Protected::none()).unwrap();
        assert!(deep.matches("/tmp/a/b/x", None));
        for bad in ["glob:", "glob:tmp/*", "glob:/tmp/[", "glob:/**", "glob:/*"] {
            assert!(ExecRule::parse(OsStr::new(bad), &Protected::none()).is_err(), "{bad}");
        }
    }
}
