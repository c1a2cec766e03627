//! The rotating JSON-lines file: on by default for the daemon, at
//! `/var/log/rsysmon/events.jsonl`.
//!
//! Each batch is written with one write(2) per 64 KiB; when the next line
//! would take the file past its size limit, it is rotated first
//! (`events.jsonl` → `events.jsonl.1` → … → `.KEEP`, the oldest removed,
//! each optionally gzipped). Durability follows `fsync`: `never` leaves it
//! to the kernel, `rotate` (the default) syncs a file when it is rotated
//! away and at stop, `batch` syncs after every batch.

mod open;
mod rotate;

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use rsysmon_event::{Event, SinkName};
use serde::Deserialize;

use crate::{LineFormat, Partial, Sink};

/// When the file sink calls fsync(2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fsync {
    /// Never: the kernel writes back within about 30 s; a power loss may
    /// lose that much, a daemon crash loses nothing written.
    Never,
    /// When a file is rotated away and when the daemon stops.
    #[default]
    Rotate,
    /// After every batch (at most one per poll of the probes): the
    /// strongest, and the slowest.
    Batch,
}

/// Where and how the file sink writes.
#[derive(Debug, Clone)]
pub struct FileSettings {
    pub path: PathBuf,
    /// Rotate before the file would grow past this many bytes.
    pub max_bytes: u64,
    /// Rotated files kept beside the live one.
    pub keep: usize,
    /// gzip rotated files (`events.jsonl.1.gz`).
    pub compress: bool,
    pub fsync: Fsync,
    pub format: LineFormat,
}

/// The file sink.
pub struct FileSink {
    settings: FileSettings,
    file: File,
    size: u64,
    buf: Vec<u8>,
}

/// Bytes gathered before one write(2).
const WRITE_CHUNK: usize = 64 * 1024;

impl FileSink {
    /// Open (or create) the file, refusing a directory or file that
    /// another user could swap for a symlink (see [`open`]).
    pub fn open(settings: FileSettings) -> std::io::Result<FileSink> {
        let (file, size) = open::open_log(&settings.path)?;
        Ok(FileSink { settings, file, size, buf: Vec::with_capacity(WRITE_CHUNK * 2) })
    }

    fn flush_buf(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.file.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.flush_buf()?;
        if self.settings.fsync != Fsync::Never {
            self.file.sync_all()?;
        }
        rotate::shift(&self.settings.path, self.settings.keep, self.settings.compress)?;
        let (file, size) = open::open_log(&self.settings.path)?;
        self.file = file;
        self.size = size;
        Ok(())
    }
}

impl Sink for FileSink {
    fn name(&self) -> SinkName {
        SinkName::File
    }

    fn send(&mut self, events: &[&Event]) -> Result<(), Partial> {
        // Events up to `written` are in the file; those in `buf` are not yet.
        let mut written = 0;
        for (i, event) in events.iter().enumerate() {
            let line = self.settings.format.line(event);
            let len = line.len() as u64 + 1;
            if self.size > 0 && self.size + len > self.settings.max_bytes {
                if let Err(e) = self.rotate() {
                    self.buf.clear();
                    return Err(Partial::new(written, format!("rotating {}: {e}", self.path())));
                }
                written = i;
            }
            self.buf.extend_from_slice(line.as_bytes());
            self.buf.push(b'\n');
            self.size += len;
            if self.buf.len() >= WRITE_CHUNK {
                self.flush_buf().map_err(|e| self.failed(written, e))?;
                written = i + 1;
            }
        }
        self.flush_buf().map_err(|e| self.failed(written, e))?;
        if self.settings.fsync == Fsync::Batch {
            self.file.sync_data().map_err(|e| self.failed(events.len(), e))?;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), Partial> {
        self.flush_buf().map_err(|e| self.failed(0, e))?;
        if self.settings.fsync != Fsync::Never {
            self.file.sync_all().map_err(|e| self.failed(0, e))?;
        }
        Ok(())
    }
}

impl FileSink {
    fn path(&self) -> String {
        self.settings.path.display().to_string()
    }

    /// A failed write: what was buffered is dropped from the buffer and
    /// retried whole (a short write may leave part of a line, which a
    /// reader of JSON lines skips as one bad line). The size is re-read.
    fn failed(&mut self, written: usize, e: std::io::Error) -> Partial {
        self.buf.clear();
        self.size = self.file.metadata().map(|m| m.len()).unwrap_or(self.size);
        Partial::new(written, format!("writing {}: {e}", self.path()))
    }
}

#[cfg(test)]
mod tests;
