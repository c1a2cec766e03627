//! SHA-256 of the programs and images processes run, computed in user
//! space, off the event path, once per file version.
//!
//! The event thread asks [`Hasher::lookup`]: one `stat` and a cache
//! lookup. A file version already hashed answers at once; a new one is
//! opened there (so the file that ran is the file hashed, even a memfd or
//! a deleted file reached through `/proc/PID/exe`) and handed to a
//! low-priority worker thread, and the event says `pending`. The worker's
//! answer comes back as a [`HashDone`] for the caller to publish as an
//! `image-hash` event. Files are cached by (device, inode, size, mtime,
//! ctime): a file is hashed again only when it changes.

mod file;
mod hasher;

pub use file::{hash_file, hash_file_unless, hash_path, FileVersion};
pub use hasher::{HashDone, HashFor, HashLimits, Hasher, HasherStats};

use sha2::{Digest, Sha256};

/// Lower-case hex of SHA-256 over `parts`, each length-prefixed so that
/// ("ab", "c") and ("a", "bc") differ; only the first `bytes` bytes of the
/// digest are kept (at most 32).
pub fn sha256_hex_of_parts(parts: &[&[u8]], bytes: usize) -> String {
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    hex(&h.finalize()[..bytes.min(32)])
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_delimited_and_truncation_keeps_the_prefix() {
        let a = sha256_hex_of_parts(&[b"ab", b"c"], 32);
        assert_ne!(a, sha256_hex_of_parts(&[b"a", b"bc"], 32));
        assert_eq!(a.len(), 64);
        assert_eq!(sha256_hex_of_parts(&[b"ab", b"c"], 16), a[..32]);
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
    }
}
