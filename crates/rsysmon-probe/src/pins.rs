//! Kernel enforcement that outlives the process: the BPF LSM links and the
//! rule maps they read, pinned under bpffs (`/sys/fs/bpf/rsysmon`).
//!
//! A pinned link stays attached, and a pinned map stays filled, while no
//! process holds them: the refusals go on while the daemon is dead or
//! restarting (fail closed). A daemon that starts finds the maps there and
//! loads its probes onto them (the rules it then enforces are reconciled
//! with its rule file by its caller), attaches its own links and pins them
//! over the old ones, which detach. [`unload`] removes every pin.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::kernel_fs;

/// Where the daemon pins, unless configured otherwise.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/rsysmon";

/// The maps pinned (and adopted), by their name in the object.
pub const PINNED_MAPS: [&str; 3] = ["blocked_files", "blocked_trees", "blocked_tree_count"];

/// The prefix of a pinned link's file name; the rest is the program's name.
const LINK_PREFIX: &str = "link_";

/// Where the pinned map `map` lives in `dir`.
pub fn map_path(dir: &Path, map: &str) -> PathBuf {
    dir.join(map)
}

/// Where the link of program `program` is pinned in `dir`.
pub fn link_path(dir: &Path, program: &str) -> PathBuf {
    dir.join(format!("{LINK_PREFIX}{program}"))
}

/// Whether `dir` holds pinned maps of an earlier run to adopt.
pub fn has_pinned_maps(dir: &Path) -> bool {
    PINNED_MAPS.iter().all(|m| map_path(dir, m).exists())
}

/// What a map must be for a pinned one to be reused in its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapShape {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
}

impl std::fmt::Display for MapShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "type {}, key {} B, value {} B, {} entries, flags {:#x}",
            self.map_type, self.key_size, self.value_size, self.max_entries, self.flags
        )
    }
}

/// The shape of the map pinned at `path`, if one is.
fn pinned_shape(path: &Path) -> Option<MapShape> {
    let map = libbpf_rs::MapHandle::from_pinned_path(path).ok()?;
    let info = libbpf_rs::MapInfo::new(std::os::fd::AsFd::as_fd(&map)).ok()?.info;
    Some(MapShape {
        map_type: info.type_,
        key_size: info.key_size,
        value_size: info.value_size,
        max_entries: info.max_entries,
        flags: info.map_flags,
    })
}

/// Remove the pin of map `name` in `dir` if it cannot be reused as
/// `wanted` (left by another version of the probes, with another size or
/// layout): libbpf would refuse to load onto it, and the old pinned links
/// would go on enforcing the old rules with no way for this daemon to
/// change them. The old links keep their own map until new links are
/// pinned over them, so enforcement has no gap. Returns what differed.
pub fn drop_if_stale(dir: &Path, name: &str, wanted: MapShape) -> io::Result<Option<String>> {
    let path = map_path(dir, name);
    let Some(found) = pinned_shape(&path) else { return Ok(None) };
    if found == wanted {
        return Ok(None);
    }
    fs::remove_file(&path).map_err(|e| io::Error::new(e.kind(), format!("remove {}: {e}", path.display())))?;
    Ok(Some(format!("{name}: pinned {found}, wanted {wanted}")))
}

/// Make `dir` ready for pins: bpffs mounted at `/sys/fs/bpf` if `dir` is
/// below it and it is missing (a fresh machine), `dir` created mode 0700,
/// owned by root, on bpffs.
pub fn prepare(dir: &Path) -> io::Result<()> {
    if dir.components().any(|c| c.as_os_str().to_string_lossy().contains('.')) {
        // bpffs refuses such names with EPERM, which would not say why.
        return Err(io::Error::other(format!("{}: bpffs names cannot contain '.'", dir.display())));
    }
    if dir.starts_with(kernel_fs::BPFFS) {
        kernel_fs::ensure_bpffs()?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io::Error::new(e.kind(), format!("create {}: {e}", dir.display()))),
    }
    let meta = fs::symlink_metadata(dir)?;
    if !meta.is_dir() || meta.uid() != 0 {
        return Err(io::Error::other(format!("{} is not a directory owned by root", dir.display())));
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    if !kernel_fs::is_bpffs(dir) {
        return Err(io::Error::other(format!(
            "{} is not on bpffs (mount -t bpf bpf {})",
            dir.display(),
            kernel_fs::BPFFS
        )));
    }
    Ok(())
}

/// Remove every pin in `dir` (links first, so enforcement stops before
/// the maps go), then `dir` itself. Returns the names removed; a missing
/// `dir` removes nothing. Programs still held open by a running process
/// stay attached until it ends.
pub fn unload(dir: &Path) -> io::Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io::Error::new(e.kind(), format!("read {}: {e}", dir.display()))),
    };
    let mut names: Vec<String> =
        entries.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned())).collect::<io::Result<_>>()?;
    names.sort_by_key(|n| (!n.starts_with(LINK_PREFIX), n.clone()));
    for name in &names {
        fs::remove_file(dir.join(name))
            .map_err(|e| io::Error::new(e.kind(), format!("remove {}/{name}: {e}", dir.display())))?;
    }
    fs::remove_dir(dir).map_err(|e| io::Error::new(e.kind(), format!("remove {}: {e}", dir.display())))?;
    Ok(names)
}
