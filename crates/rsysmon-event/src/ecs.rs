//! Elastic Common Schema documents: one JSON object per event, with ECS's
//! nested field names (`process.entity_id`, `host.boot.id`, `dll.path`, …).
//!
//! Only fields that ECS defines are written under ECS names, each with the
//! type ECS gives it (ids that ECS calls `keyword` are strings). What ECS
//! has no name for goes under `rsysmon.*`, ECS's place for custom fields.
//! A test holds every field against ECS's published field list
//! (rsysmon-testkit/ecs/).

use serde_json::{Map, Value};

use crate::event::{rfc3339_string, Detail, Event, FileHash};
use crate::kind::EventKind;
use crate::text::to_text_line;

/// The ECS version the documents follow.
pub const ECS_VERSION: &str = "9.4.0";

/// The event as one ECS document on one line, without the newline.
pub fn to_ecs_line(event: &Event) -> String {
    serde_json::to_string(&to_ecs(event)).expect("a JSON value always serializes")
}

/// The event as an ECS document.
pub fn to_ecs(event: &Event) -> Value {
    let mut doc = Doc::default();
    let kind = event.kind();
    doc.set("@timestamp", rfc3339_string(&event.time));
    doc.set("ecs.version", ECS_VERSION);
    doc.set("message", to_text_line(event).split_once(": ").map(|(_, m)| m.to_string()).unwrap_or_default());
    doc.set("event.kind", event_kind(kind));
    if let Some(category) = category(kind) {
        doc.set("event.category", category.0.to_vec());
        doc.set("event.type", category.1.to_vec());
    }
    doc.set("event.action", kind.name());
    doc.set("event.sequence", event.seq);
    doc.set("event.module", "rsysmon");
    doc.set("event.dataset", "rsysmon.events");

    let host = &event.host;
    doc.set_str("host.name", &host.name);
    doc.set_str("host.hostname", &host.name);
    doc.set_str("host.id", &host.id);
    doc.set_str("host.boot.id", &host.boot_id);

    if !matches!(event.detail, Detail::Loss { .. }) {
        doc.set("process.pid", event.pid);
        doc.set("process.thread.id", event.tid);
        doc.set("process.name", event.comm.as_str());
    }
    let p = &event.process;
    doc.opt("process.entity_id", p.entity_id.as_deref());
    doc.opt("process.parent.entity_id", p.parent_entity_id.as_deref());
    doc.opt("process.start", p.start.as_ref().map(rfc3339_string));
    doc.opt("process.vpid", p.ns_pid);
    doc.opt("rsysmon.process.ns_tid", p.ns_tid);
    doc.opt("rsysmon.process.pid_ns", p.pid_ns);
    doc.opt("rsysmon.process.mnt_ns", p.mnt_ns);
    doc.opt("rsysmon.process.cgroup_id", p.cgroup_id);
    doc.opt("container.id", p.container_id.as_deref());

    match &event.detail {
        Detail::ProcessCreate { ppid, parent_comm, creator_tid, uid, gid, user, group, exe } => {
            doc.set("process.parent.pid", *ppid);
            doc.set("process.parent.name", parent_comm.as_str());
            doc.set("rsysmon.creator_tid", *creator_tid);
            doc.set("process.executable", exe.as_str());
            doc.set("user.id", uid.to_string());
            doc.set("group.id", gid.to_string());
            doc.opt("user.name", user.as_deref());
            doc.opt("group.name", group.as_deref());
        }
        Detail::ProcessExec {
            exe,
            argv,
            argv_truncated,
            cwd,
            old_exe,
            old_tid,
            ns_view,
            parent_exe,
            parent_argv,
            hash,
        } => {
            doc.set("process.executable", exe.as_str());
            doc.set("process.args", argv.clone());
            doc.set("process.args_count", argv.len());
            doc.set("process.working_directory", cwd.as_str());
            doc.set("rsysmon.argv_truncated", *argv_truncated);
            doc.opt("rsysmon.old_exe", old_exe.as_deref());
            doc.set("rsysmon.old_tid", *old_tid);
            doc.set("rsysmon.ns_view", *ns_view);
            doc.opt("process.parent.executable", parent_exe.as_deref());
            doc.opt("process.parent.args", parent_argv.clone());
            doc.hash("process.hash.sha256", hash);
        }
        Detail::ProcessExit { exit_code, signal, core_dumped, lifetime_ns } => {
            doc.opt("process.exit_code", *exit_code);
            doc.set("process.end", rfc3339_string(&event.time));
            doc.opt("rsysmon.signal", *signal);
            doc.set("rsysmon.core_dumped", *core_dumped);
            doc.set("rsysmon.lifetime_ns", *lifetime_ns);
        }
        Detail::ThreadCreate { creator_tid } => doc.set("rsysmon.creator_tid", *creator_tid),
        Detail::ThreadExit { exit_code, signal } => {
            doc.opt("rsysmon.thread_exit_code", *exit_code);
            doc.opt("rsysmon.signal", *signal);
        }
        Detail::ProcessTamper { creator_pid, creator_tid, creator_comm, method, count } => {
            doc.set("rsysmon.count", *count);
            doc.set("rsysmon.creator.pid", *creator_pid);
            doc.set("rsysmon.creator.tid", *creator_tid);
            doc.set("rsysmon.creator.name", creator_comm.as_str());
            doc.set("rsysmon.method", method.as_str());
        }
        Detail::RemoteThread { target_creator_tid, creator_pid, creator_tid, creator_comm, method, tamper_time } => {
            doc.set("rsysmon.target_creator_tid", *target_creator_tid);
            doc.set("rsysmon.creator.pid", *creator_pid);
            doc.set("rsysmon.creator.tid", *creator_tid);
            doc.set("rsysmon.creator.name", creator_comm.as_str());
            doc.set("rsysmon.method", method.as_str());
            doc.set("rsysmon.tamper_time", rfc3339_string(tamper_time));
        }
        Detail::ExecBlocked { path, rule } => {
            doc.set("event.outcome", "failure");
            doc.set("file.path", path.as_str());
            doc.set("rule.name", rule.as_str());
        }
        Detail::ImageLoad { base, size, path, ns_path, dev, inode, via, blocked, hash } => {
            doc.set("dll.path", path.as_str());
            doc.set("dll.name", file_name(path));
            doc.hash("dll.hash.sha256", hash);
            doc.set("file.inode", inode.to_string());
            doc.set("rsysmon.image.base", *base);
            doc.set("rsysmon.image.size", *size);
            doc.set("rsysmon.image.dev", *dev);
            doc.opt("rsysmon.image.ns_path", ns_path.as_deref());
            doc.set("rsysmon.image.via", serde_json::to_value(via).unwrap_or(Value::Null));
            doc.set("rsysmon.image.blocked", *blocked);
        }
        Detail::ImageHash { for_seq, path, dev, inode, hash } => {
            doc.set("file.path", path.as_str());
            doc.set("file.inode", inode.to_string());
            doc.hash("file.hash.sha256", hash);
            doc.set("rsysmon.for_seq", *for_seq);
            doc.set("rsysmon.image.dev", *dev);
        }
        Detail::Loss { lost, stage } => {
            doc.set("rsysmon.lost", *lost);
            doc.set("rsysmon.loss_stage", stage.name());
        }
    }
    doc.into_value()
}

/// ECS `event.kind`.
fn event_kind(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Loss => "pipeline_error",
        EventKind::ImageHash => "enrichment",
        _ => "event",
    }
}

/// ECS `event.category` and `event.type`, from their allowed values.
fn category(kind: EventKind) -> Option<(&'static [&'static str], &'static [&'static str])> {
    Some(match kind {
        EventKind::ProcessCreate | EventKind::ProcessExec | EventKind::ThreadCreate => (&["process"], &["start"]),
        EventKind::ProcessExit | EventKind::ThreadExit => (&["process"], &["end"]),
        EventKind::ProcessTamper => (&["process", "intrusion_detection"], &["change"]),
        EventKind::RemoteThread => (&["process", "intrusion_detection"], &["start"]),
        EventKind::ExecBlocked => (&["process", "intrusion_detection"], &["denied"]),
        EventKind::ImageLoad => (&["library"], &["start"]),
        EventKind::ImageHash => (&["file"], &["info"]),
        EventKind::Loss => return None,
    })
}

fn file_name(path: &str) -> &str {
    path.strip_suffix(" (deleted)").unwrap_or(path).rsplit('/').next().unwrap_or(path)
}

/// A document built from dotted names into nested objects.
#[derive(Default)]
struct Doc(Map<String, Value>);

impl Doc {
    fn set(&mut self, name: &str, value: impl Into<Value>) {
        let mut parts = name.split('.').peekable();
        let mut map = &mut self.0;
        // `@timestamp` and every other name: all but the last part are objects.
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                map.insert(part.to_string(), value.into());
                return;
            }
            let entry = map.entry(part.to_string()).or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            map = entry.as_object_mut().expect("just made an object");
        }
    }

    fn set_str(&mut self, name: &str, value: &str) {
        if !value.is_empty() {
            self.set(name, value);
        }
    }

    fn opt<T: Into<Value>>(&mut self, name: &str, value: Option<T>) {
        if let Some(value) = value {
            self.set(name, value);
        }
    }

    fn hash(&mut self, name: &str, hash: &FileHash) {
        self.opt(name, hash.sha256.as_deref());
        self.set("rsysmon.hash_status", serde_json::to_value(hash.hash_status).unwrap_or(Value::Null));
    }

    fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_names_nest() {
        let mut doc = Doc::default();
        doc.set("host.boot.id", "b");
        doc.set("host.name", "n");
        doc.set("@timestamp", "t");
        assert_eq!(doc.into_value(), json!({"@timestamp": "t", "host": {"boot": {"id": "b"}, "name": "n"}}));
    }

    #[test]
    fn names_of_deleted_files() {
        assert_eq!(file_name("/usr/lib/libc.so.6"), "libc.so.6");
        assert_eq!(file_name("/tmp/x (deleted)"), "x");
        assert_eq!(file_name("memfd:payload"), "memfd:payload");
    }
}
