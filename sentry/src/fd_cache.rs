//! Lookups the gofer has already done: O_PATH handles (and known-missing paths) keyed by the
//! guest path, so a repeated open needs no round trip. A hit is reopened through
//! `/proc/self/fd/N`: a fresh open file description with the guest's flags, permission-checked
//! against the caller's identity (the sentry's worker threads carry the guest's fs ids). Only
//! regular files and directories are kept (reopening a FIFO could block). Every mutation that
//! passes the gofer empties the cache; the tree changes no other way (the guest's own view of it
//! is read-only).

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

/// Entries kept before the cache starts over.
const CAPACITY: usize = 4096;

/// What is known about a path.
#[derive(Debug)]
pub enum Cached {
    /// It resolves to this object (O_PATH handle).
    Found(OwnedFd),
    /// It does not exist.
    Missing,
}

/// The cache proper.
#[derive(Debug, Default)]
pub struct FdCache {
    map: HashMap<Box<[u8]>, Cached>,
}

impl FdCache {
    /// The entry for a joined guest path.
    pub fn get(&self, key: &[u8]) -> Option<&Cached> {
        self.map.get(key)
    }

    /// Records what a lookup found (a handle [`cacheable`] accepted) or that it found nothing.
    pub fn insert(&mut self, key: &[u8], value: Cached) {
        if self.map.len() >= CAPACITY {
            self.map.clear();
        }
        self.map.insert(key.into(), value);
    }

    /// Forgets everything (the tree changed).
    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Whether a handle may be cached: regular files and directories only (reopening a FIFO could
/// block, and a symlink handle cannot be reopened as its target).
pub fn cacheable(handle: &OwnedFd) -> bool {
    let kind = nix::sys::stat::fstat(handle.as_raw_fd()).map(|st| st.st_mode & libc::S_IFMT);
    matches!(kind, Ok(libc::S_IFREG | libc::S_IFDIR))
}

/// Opens what `handle` refers to afresh with `flags` (creation flags dropped: the object exists).
pub fn reopen(handle: &OwnedFd, flags: u32) -> Result<OwnedFd, Errno> {
    use std::io::Write as _;
    let mut path = [0u8; 40];
    let len = {
        let mut w = &mut path[..39];
        let _ = write!(
            w,
            "{}self/fd/{}",
            crate::procfs::prefix(),
            handle.as_raw_fd()
        );
        39 - w.len()
    };
    path[len] = 0;
    // The handle is the final object (never a symlink: only files and directories are cached), so
    // O_NOFOLLOW would only refuse the magic link itself.
    let flags = (flags as i32
        & !(libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY | libc::O_NOFOLLOW))
        | libc::O_CLOEXEC;
    // SAFETY: `path` is NUL-terminated (written above, the array zero-filled).
    let fd = unsafe { libc::open(path.as_ptr().cast(), flags) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopen_gives_a_fresh_description() {
        let dir = std::env::temp_dir().join(format!("fdcache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f");
        std::fs::write(&file, "abcdef").unwrap();
        let handle: OwnedFd = nix::fcntl::open(
            &file,
            nix::fcntl::OFlag::O_PATH,
            nix::sys::stat::Mode::empty(),
        )
        .map(unsafe_fd)
        .unwrap();
        let a = reopen(&handle, libc::O_RDONLY as u32).unwrap();
        let b = reopen(&handle, libc::O_RDONLY as u32).unwrap();
        let mut buf = [0u8; 3];
        nix::unistd::read(a.as_raw_fd(), &mut buf).unwrap();
        let mut other = [0u8; 3];
        nix::unistd::read(b.as_raw_fd(), &mut other).unwrap();
        assert_eq!(&other, b"abc", "a dup would share the offset");
        assert!(cacheable(&handle));
        let mut cache = FdCache::default();
        cache.insert(b"/f", Cached::Found(handle));
        cache.insert(b"/nope", Cached::Missing);
        assert!(matches!(cache.get(b"/f"), Some(Cached::Found(_))));
        assert!(matches!(cache.get(b"/nope"), Some(Cached::Missing)));
        cache.clear();
        assert!(cache.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn unsafe_fd(fd: std::os::fd::RawFd) -> OwnedFd {
        // SAFETY: open just returned this fd; nothing else owns it.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }
}
