//! Shifting rotated files: `events.jsonl.1` is always the newest.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter};
use std::path::{Path, PathBuf};

/// The name of rotated file `n` of `path`, gzipped or not.
pub fn rotated(path: &Path, n: usize, gz: bool) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}{}", if gz { ".gz" } else { "" }));
    PathBuf::from(name)
}

/// Move `path` to `path.1` (gzipped if `compress`), shifting the older ones
/// up and removing what is beyond `keep`. With `keep` 0 the file is removed.
pub fn shift(path: &Path, keep: usize, compress: bool) -> io::Result<()> {
    for gz in [false, true] {
        remove_if_present(&rotated(path, keep.max(1), gz))?;
        if keep == 0 {
            continue;
        }
        for n in (1..keep).rev() {
            rename_if_present(&rotated(path, n, gz), &rotated(path, n + 1, gz))?;
        }
    }
    if keep == 0 {
        return remove_if_present(path);
    }
    let first = rotated(path, 1, false);
    fs::rename(path, &first)?;
    if compress {
        gzip(&first, &rotated(path, 1, true))?;
    }
    Ok(())
}

/// Compress `from` into `to` through a temporary, then remove `from`.
fn gzip(from: &Path, to: &Path) -> io::Result<()> {
    let mut tmp = to.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let out = fs::OpenOptions::new().write(true).create_new(true).open(&tmp).or_else(|_| {
            fs::remove_file(&tmp)?;
            fs::OpenOptions::new().write(true).create_new(true).open(&tmp)
        })?;
        let mut encoder = flate2::write::GzEncoder::new(BufWriter::new(out), flate2::Compression::fast());
        io::copy(&mut BufReader::new(File::open(from)?), &mut encoder)?;
        let out = encoder.finish()?.into_inner().map_err(|e| e.into_error())?;
        out.sync_all()?;
        drop(out);
    }
    fs::rename(&tmp, to)?;
    fs::remove_file(from)
}

fn rename_if_present(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
