//! JSON lines: one object per event, snake_case keys, documented in
//! docs/events.md. `v` is the schema version; it changes only when a field
//! changes meaning or goes away.

use crate::event::Event;

/// Version of the JSON event schema.
///
/// 2: `host`, the process context (`entity_id`, `parent_entity_id`,
/// `start`, `ns_pid`, `ns_tid`, `pid_ns`, `mnt_ns`, `cgroup_id`,
/// `container_id`), user and group names, hashes, `image-hash` events.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(serde::Serialize)]
struct Versioned<'a> {
    v: u32,
    #[serde(flatten)]
    event: &'a Event,
}

/// The event as one line of JSON, without the newline.
pub fn to_json_line(event: &Event) -> String {
    // Room for a typical event up front, so the line is not regrown as it
    // is written.
    let mut line = Vec::with_capacity(512);
    serde_json::to_writer(&mut line, &Versioned { v: SCHEMA_VERSION, event })
        .expect("events hold only strings and numbers, which always serialize");
    String::from_utf8(line).expect("serde_json writes UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Detail, LossStage};
    use chrono::TimeZone;

    fn event(seq: u64, nanos: u32, tid: u32, comm: &str, detail: Detail) -> Event {
        let time = chrono::Utc.timestamp_opt(1_700_000_000, nanos).unwrap();
        Event::new(seq, time, 10, tid, comm.into(), detail)
    }

    #[test]
    fn json_line_has_common_fields_kind_and_nanosecond_utc_time() {
        let event = event(7, 5, 11, "a\nb", Detail::Loss { lost: 3, stage: LossStage::Kernel });
        let line = to_json_line(&event);
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["v"], 2);
        assert_eq!(v["seq"], 7);
        assert_eq!(v["time"], "2023-11-14T22:13:20.000000005Z");
        assert_eq!(v["kind"], "loss");
        assert_eq!(v["comm"], "a\nb");
        assert_eq!(v["lost"], 3);
        assert_eq!(v["stage"], "kernel");
    }

    #[test]
    fn sink_loss_stages_are_named_sink_colon_name() {
        let event = event(9, 0, 0, "", Detail::Loss { lost: 2, stage: LossStage::Sink(crate::SinkName::Nats) });
        let v: serde_json::Value = serde_json::from_str(&to_json_line(&event)).unwrap();
        assert_eq!(v["stage"], "sink:nats");
        let names: Vec<&str> = LossStage::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(names, ["kernel", "decode", "queue", "client", "sink:file", "sink:syslog", "sink:nats"]);
    }

    #[test]
    fn exec_blocked_has_path_and_rule() {
        let event = event(8, 0, 10, "sh", Detail::ExecBlocked { path: "/tmp/x/evil".into(), rule: "/tmp/x/".into() });
        let v: serde_json::Value = serde_json::from_str(&to_json_line(&event)).unwrap();
        assert_eq!(v["kind"], "exec-blocked");
        assert_eq!(v["path"], "/tmp/x/evil");
        assert_eq!(v["rule"], "/tmp/x/");
    }

    #[test]
    fn image_load_fields_are_integers_and_null_ns_path() {
        let event = event(
            1,
            0,
            11,
            "python3",
            Detail::ImageLoad {
                base: 0x7f3a_1c20_0000,
                size: 4096,
                path: "/usr/lib/libc.so.6".into(),
                ns_path: None,
                dev: 2049,
                inode: 7,
                via: crate::ImageVia::Interpreter,
                blocked: false,
                hash: crate::FileHash::without(crate::HashStatus::Pending),
            },
        );
        let v: serde_json::Value = serde_json::from_str(&to_json_line(&event)).unwrap();
        assert_eq!(v["kind"], "image-load");
        assert_eq!(v["base"], 0x7f3a_1c20_0000u64);
        assert_eq!(v["size"], 4096);
        assert_eq!(v["path"], "/usr/lib/libc.so.6");
        assert_eq!(v["ns_path"], serde_json::Value::Null);
        assert_eq!((v["dev"].as_u64(), v["inode"].as_u64()), (Some(2049), Some(7)));
        assert_eq!(v["via"], "interpreter");
        assert_eq!(v["blocked"], false);
        assert_eq!(v["hash_status"], "pending");
        assert!(v.get("sha256").is_none());
    }

    #[test]
    fn host_and_process_context_are_named_and_unknowns_left_out() {
        let mut e = event(1, 0, 11, "sh", Detail::ThreadCreate { creator_tid: 10 });
        e.host = std::sync::Arc::new(crate::Host { name: "web1".into(), id: "m".repeat(32), boot_id: "b".repeat(32) });
        e.process.entity_id = Some("e".repeat(32));
        e.process.ns_pid = Some(1);
        let v: serde_json::Value = serde_json::from_str(&to_json_line(&e)).unwrap();
        assert_eq!(v["host"], serde_json::json!({"name": "web1", "id": "m".repeat(32), "boot_id": "b".repeat(32)}));
        assert_eq!(v["entity_id"], "e".repeat(32));
        assert_eq!(v["ns_pid"], 1);
        for absent in ["parent_entity_id", "ns_tid", "pid_ns", "mnt_ns", "cgroup_id", "container_id", "start"] {
            assert!(v.get(absent).is_none(), "{absent} in {v}");
        }
    }
}
