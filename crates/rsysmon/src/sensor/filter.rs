//! Filter rules (`[[filter.rules]]`): which events are reported at all.
//!
//! They run in the sensor, in user space, after an event is decoded and
//! enriched and before it gets its sequence number: a dropped event takes
//! no seq (so it leaves no gap that would read as a loss), is counted per
//! kind as `filtered`, and reaches no client, history or sink. The kernel
//! still hands every record over: the probes do not filter.
//!
//! Per kind, as in Sysmon: with any `include` rule for a kind, only events
//! matching one of them are kept; then an event matching any `exclude` rule
//! is dropped. A kind without rules is kept whole. A rule without a
//! condition matches every event of its kind. `loss`, `image-hash` and
//! `exec-blocked` events are never filtered.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rsysmon_event::{Event, EventKind};
use serde::Deserialize;

/// The `[filter]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilterConfig {
    pub rules: Vec<FilterRule>,
}

/// One `[[filter.rules]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterRule {
    pub action: Action,
    /// An event kind (`image-load`), or `*` for every filterable kind.
    pub kind: String,
    /// The condition; none: every event of the kind.
    pub field: Option<Field>,
    pub op: Option<Op>,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Include,
    Exclude,
}

/// What a condition looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// The process's executable (the event's own for process-create and
    /// process-exec, else the one the process table knows).
    Exe,
    /// The file the event names: image-load's path, process-exec's exe.
    Path,
    /// The command line, arguments joined by single spaces.
    Argv,
    Comm,
    /// The user id (process-create only: other events do not carry it).
    Uid,
    ParentExe,
    ContainerId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    Is,
    BeginsWith,
    EndsWith,
    Contains,
    /// `*` and `?` stay within one `/`-separated part; `**` crosses them.
    Glob,
}

/// Kinds the rules may name.
pub fn filterable(kind: EventKind) -> bool {
    !matches!(kind, EventKind::Loss | EventKind::ImageHash | EventKind::ExecBlocked)
}

/// The compiled rules.
#[derive(Debug, Default)]
pub struct EventFilter {
    by_kind: HashMap<EventKind, KindRules>,
    rules: usize,
}

#[derive(Debug, Default)]
struct KindRules {
    include: Vec<Condition>,
    exclude: Vec<Condition>,
}

/// `None` matches every event.
type Condition = Option<(Field, Test)>;

#[derive(Debug, Clone)]
enum Test {
    Is(String),
    BeginsWith(String),
    EndsWith(String),
    Contains(String),
    Glob(globset::GlobMatcher),
}

/// The rules in force, swapped whole on a reload.
pub type SharedFilter = Arc<ArcSwap<EventFilter>>;

/// A rule that cannot be used: its index (0-based) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRule {
    pub index: usize,
    pub why: String,
}

impl EventFilter {
    /// Compile `config`; the error names the rule.
    pub fn new(config: &FilterConfig) -> Result<EventFilter, BadRule> {
        let mut filter = EventFilter { rules: config.rules.len(), ..EventFilter::default() };
        for (index, rule) in config.rules.iter().enumerate() {
            let bad = |why: String| BadRule { index, why };
            let kinds: Vec<EventKind> = if rule.kind == "*" {
                EventKind::ALL.into_iter().filter(|&k| filterable(k)).collect()
            } else {
                let kind: EventKind = rule.kind.parse().map_err(|e| bad(format!("kind: {e}")))?;
                if !filterable(kind) {
                    return Err(bad(format!("kind: {kind} events are never filtered")));
                }
                vec![kind]
            };
            let condition = match (rule.field, rule.op, &rule.value) {
                (None, None, None) => None,
                (Some(field), Some(op), Some(value)) => Some((field, test(field, op, value).map_err(bad)?)),
                _ => return Err(bad("field, op and value go together (or none of them, for every event)".into())),
            };
            for kind in kinds {
                let rules = filter.by_kind.entry(kind).or_default();
                let list = match rule.action {
                    Action::Include => &mut rules.include,
                    Action::Exclude => &mut rules.exclude,
                };
                list.push(condition.as_ref().map(|(f, t)| (*f, t.clone())));
            }
        }
        Ok(filter)
    }

    /// How many rules the configuration held.
    pub fn rules(&self) -> usize {
        self.rules
    }

    /// Whether `event` is reported; `value` gives a field's value, if the
    /// event has it.
    pub fn keeps<'a>(&self, event: &Event, value: &dyn Fn(Field) -> Option<Cow<'a, str>>) -> bool {
        let Some(rules) = self.by_kind.get(&event.kind()) else { return true };
        let matches = |c: &Condition| match c {
            None => true,
            Some((field, test)) => value(*field).is_some_and(|v| test.matches(v.as_ref())),
        };
        (rules.include.is_empty() || rules.include.iter().any(matches)) && !rules.exclude.iter().any(matches)
    }
}

impl Test {
    fn matches(&self, v: &str) -> bool {
        match self {
            Test::Is(s) => v == s,
            Test::BeginsWith(s) => v.starts_with(s.as_str()),
            Test::EndsWith(s) => v.ends_with(s.as_str()),
            Test::Contains(s) => v.contains(s.as_str()),
            Test::Glob(g) => g.is_match(v),
        }
    }
}

fn test(field: Field, op: Op, value: &str) -> Result<Test, String> {
    if field == Field::Uid && value.parse::<u32>().is_err() {
        return Err(format!("value: a uid is a number, not {value:?}"));
    }
    Ok(match op {
        Op::Is => Test::Is(value.into()),
        Op::BeginsWith => Test::BeginsWith(value.into()),
        Op::EndsWith => Test::EndsWith(value.into()),
        Op::Contains => Test::Contains(value.into()),
        Op::Glob => Test::Glob(
            globset::GlobBuilder::new(value)
                .literal_separator(true)
                .build()
                .map_err(|e| format!("value: bad glob {value:?}: {e}"))?
                .compile_matcher(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsysmon_event::Detail;

    fn config(text: &str) -> FilterConfig {
        toml::from_str(text).unwrap()
    }

    fn image(path: &str) -> Event {
        let detail = Detail::ImageLoad {
            base: 0,
            size: 0,
            path: path.into(),
            ns_path: None,
            dev: 0,
            inode: 0,
            via: rsysmon_event::ImageVia::Mmap,
            blocked: false,
            hash: rsysmon_event::FileHash::without(rsysmon_event::HashStatus::Disabled),
        };
        Event::new(1, Default::default(), 1, 1, "cat".into(), detail)
    }

    fn keeps(filter: &EventFilter, event: &Event) -> bool {
        let path = match &event.detail {
            Detail::ImageLoad { path, .. } => path.clone(),
            _ => String::new(),
        };
        filter.keeps(event, &|f| match f {
            Field::Path => Some(Cow::Owned(path.clone())),
            Field::Comm => Some(Cow::Borrowed(event.comm.as_str())),
            _ => None,
        })
    }

    #[test]
    fn include_then_exclude_per_kind() {
        let f = EventFilter::new(&config(
            r#"
[[rules]]
action = "include"
kind = "image-load"
field = "path"
op = "begins-with"
value = "/usr/lib/"
[[rules]]
action = "exclude"
kind = "image-load"
field = "path"
op = "glob"
value = "/usr/lib/*/libc.so.*"
"#,
        ))
        .unwrap();
        assert!(keeps(&f, &image("/usr/lib/x86_64-linux-gnu/libm.so.6")));
        assert!(!keeps(&f, &image("/usr/lib/x86_64-linux-gnu/libc.so.6")));
        assert!(!keeps(&f, &image("/opt/lib.so")));
        // The glob's * stays within one part of the path.
        assert!(keeps(&f, &image("/usr/lib/a/b/libc.so.6")));
        // Other kinds are untouched.
        let exit = Event::new(1, Default::default(), 1, 1, "x".into(), Detail::ThreadCreate { creator_tid: 1 });
        assert!(keeps(&f, &exit));
    }

    #[test]
    fn every_operator_and_a_missing_field() {
        let rule = |op: &str, value: &str| {
            let text = format!(
                "[[rules]]\naction = \"exclude\"\nkind = \"*\"\nfield = \"comm\"\nop = \"{op}\"\nvalue = \"{value}\"\n"
            );
            EventFilter::new(&config(&text)).unwrap()
        };
        let e = image("/x");
        assert!(!keeps(&rule("is", "cat"), &e) && keeps(&rule("is", "ca"), &e));
        assert!(!keeps(&rule("begins-with", "ca"), &e) && keeps(&rule("begins-with", "at"), &e));
        assert!(!keeps(&rule("ends-with", "at"), &e) && keeps(&rule("ends-with", "ca"), &e));
        assert!(!keeps(&rule("contains", "a"), &e) && keeps(&rule("contains", "dog"), &e));
        assert!(!keeps(&rule("glob", "c?t"), &e) && keeps(&rule("glob", "d*"), &e));
        let uid = "[[rules]]\naction = \"exclude\"\nkind = \"*\"\nfield = \"uid\"\nop = \"is\"\nvalue = \"0\"\n";
        assert!(keeps(&EventFilter::new(&config(uid)).unwrap(), &e), "an absent field never matches");
    }

    #[test]
    fn bad_rules_name_their_index() {
        let bad = |text: &str| EventFilter::new(&config(text)).unwrap_err();
        let loss = bad("[[rules]]\naction = \"exclude\"\nkind = \"loss\"\n");
        assert_eq!(loss.index, 0);
        assert!(loss.why.contains("never filtered"), "{loss:?}");
        let half = bad("[[rules]]\naction = \"exclude\"\nkind = \"*\"\n[[rules]]\naction = \"exclude\"\nkind = \"*\"\nfield = \"exe\"\n");
        assert_eq!(half.index, 1);
        assert!(bad("[[rules]]\naction = \"exclude\"\nkind = \"nope\"\n").why.starts_with("kind:"));
        let uid =
            bad("[[rules]]\naction = \"include\"\nkind = \"*\"\nfield = \"uid\"\nop = \"is\"\nvalue = \"root\"\n");
        assert!(uid.why.contains("uid is a number"));
        let glob =
            bad("[[rules]]\naction = \"include\"\nkind = \"*\"\nfield = \"exe\"\nop = \"glob\"\nvalue = \"[\"\n");
        assert!(glob.why.contains("bad glob"));
    }
}
