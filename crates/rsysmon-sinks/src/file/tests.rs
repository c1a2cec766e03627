use std::os::unix::fs::PermissionsExt;

use rsysmon_event::{Detail, Event};

use super::rotate::rotated;
use super::*;

fn event(seq: u64) -> Event {
    Event::new(seq, Default::default(), 1, 1, "x".into(), Detail::ThreadCreate { creator_tid: 1 })
}

fn settings(dir: &std::path::Path, max_bytes: u64, keep: usize, compress: bool) -> FileSettings {
    FileSettings {
        path: dir.join("events.jsonl"),
        max_bytes,
        keep,
        compress,
        fsync: Fsync::Rotate,
        format: LineFormat::Json,
    }
}

fn seqs(text: &str) -> Vec<u64> {
    text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"].as_u64().unwrap()).collect()
}

#[test]
fn rotates_at_the_size_limit_and_keeps_n_files() {
    let dir = tempfile::tempdir().unwrap();
    let line_len = LineFormat::Json.line(&event(100)).len() as u64 + 1;
    // Ten lines of seq 100..=999 per file.
    let mut sink = FileSink::open(settings(dir.path(), line_len * 10, 3, false)).unwrap();
    let events: Vec<Event> = (100..150).map(event).collect();
    sink.send(&events.iter().collect::<Vec<_>>()).unwrap();
    sink.close().unwrap();
    let live = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    assert_eq!(seqs(&live), (140..150).collect::<Vec<_>>());
    for (n, first) in [(1, 130), (2, 120), (3, 110)] {
        let text = std::fs::read_to_string(rotated(&dir.path().join("events.jsonl"), n, false)).unwrap();
        assert_eq!(seqs(&text), (first..first + 10).collect::<Vec<_>>(), "file {n}");
    }
    assert!(!rotated(&dir.path().join("events.jsonl"), 4, false).exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
}

#[test]
fn rotated_files_can_be_gzipped() {
    let dir = tempfile::tempdir().unwrap();
    let line_len = LineFormat::Json.line(&event(100)).len() as u64 + 1;
    let mut sink = FileSink::open(settings(dir.path(), line_len * 10, 2, true)).unwrap();
    let events: Vec<Event> = (100..125).map(event).collect();
    sink.send(&events.iter().collect::<Vec<_>>()).unwrap();
    let gz = std::fs::File::open(rotated(&dir.path().join("events.jsonl"), 1, true)).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(gz), &mut text).unwrap();
    assert_eq!(seqs(&text), (110..120).collect::<Vec<_>>());
    assert!(rotated(&dir.path().join("events.jsonl"), 2, true).exists());
    assert!(!rotated(&dir.path().join("events.jsonl"), 1, false).exists());
}

#[test]
fn appends_to_an_existing_file_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    for range in [1..4, 4..6] {
        let mut sink = FileSink::open(settings(dir.path(), 1 << 20, 2, false)).unwrap();
        let events: Vec<Event> = range.map(event).collect();
        sink.send(&events.iter().collect::<Vec<_>>()).unwrap();
    }
    let live = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    assert_eq!(seqs(&live), [1, 2, 3, 4, 5]);
}

#[test]
fn a_symlinked_file_or_an_open_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    std::fs::write(&target, "").unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join("events.jsonl")).unwrap();
    let err = FileSink::open(settings(dir.path(), 1 << 20, 2, false)).err().unwrap().to_string();
    assert!(err.contains("symlink"), "{err}");

    let open_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(open_dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let err = FileSink::open(settings(open_dir.path(), 1 << 20, 2, false)).err().unwrap().to_string();
    assert!(err.contains("writable by group or others"), "{err}");

    let link_dir = dir.path().join("linked");
    std::os::unix::fs::symlink(open_dir.path(), &link_dir).unwrap();
    let err = FileSink::open(settings(&link_dir, 1 << 20, 2, false)).err().unwrap().to_string();
    assert!(err.contains("not a directory"), "{err}");
}

#[test]
fn a_missing_directory_is_created_private() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("log/rsysmon");
    FileSink::open(settings(&nested, 1 << 20, 2, false)).unwrap();
    let mode = std::fs::metadata(&nested).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & 0o027, 0, "{mode:o}");
    let mode = std::fs::metadata(nested.join("events.jsonl")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
}
