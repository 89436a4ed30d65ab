//! Mount points inside the sandbox tree, found as the guest would find them. The gofer builds
//! the tree before it pivots into it, so a plain path walk would follow a symlink the root holds
//! (a hostile image's `/data -> /etc`) out to the host; every lookup here is `openat2` with
//! `RESOLVE_IN_ROOT` from the tree, and a missing component is made in the directory that was
//! resolved, so `..` and symlinks stay inside the tree.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;

use gofer::{RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS};

const RESOLVE_NO_SYMLINKS: u64 = 0x04;

/// What a missing mount point is made as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Make {
    /// A directory (and its missing parents).
    Dir,
    /// An empty file (its missing parents as directories).
    File,
}

/// An `O_PATH` handle on `path`, looked up from `dir` as `resolve` says (gofer's openat2).
fn openat2(dir: RawFd, path: &Path, resolve: u64) -> Result<OwnedFd, Errno> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    gofer::openat2(dir, &c, libc::O_PATH as u64, 0, resolve)
}

/// An `O_PATH` fd on `dest` (absolute, as the guest names it) inside the tree whose root is
/// `root`, resolved as the guest would resolve it. With `make`, what is missing is created
/// (directories 0755, a file 0644, owned by the caller); without, a missing path is ENOENT.
pub fn find(root: &OwnedFd, dest: &Path, make: Option<Make>) -> Result<OwnedFd, Errno> {
    let mut parts = Vec::new();
    for c in dest.components() {
        match c {
            Component::Normal(name) => parts.push(name),
            Component::RootDir | Component::CurDir => {}
            // Refused when the spec is read; never made here.
            Component::ParentDir | Component::Prefix(_) => return Err(Errno::EINVAL),
        }
    }
    let mut at = root.try_clone().map_err(|_| Errno::EMFILE)?;
    let mut prefix = PathBuf::new();
    for (i, name) in parts.iter().enumerate() {
        prefix.push(name);
        match openat2(
            root.as_raw_fd(),
            &prefix,
            RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        ) {
            Ok(fd) => at = fd,
            Err(Errno::ENOENT) if make.is_some() => {
                let c = CString::new(name.as_bytes()).map_err(|_| Errno::EINVAL)?;
                if i + 1 < parts.len() || make == Some(Make::Dir) {
                    // SAFETY: mkdirat with a directory fd we own and a NUL-terminated name.
                    if unsafe { libc::mkdirat(at.as_raw_fd(), c.as_ptr(), 0o755) } < 0 {
                        return Err(Errno::last());
                    }
                } else {
                    // SAFETY: as above; the new file's fd is closed at once.
                    let fd = unsafe {
                        libc::openat(
                            at.as_raw_fd(),
                            c.as_ptr(),
                            libc::O_CREAT
                                | libc::O_EXCL
                                | libc::O_WRONLY
                                | libc::O_NOFOLLOW
                                | libc::O_CLOEXEC,
                            0o644,
                        )
                    };
                    if fd < 0 {
                        return Err(Errno::last());
                    }
                    // SAFETY: the kernel just returned this fd; nothing else owns it.
                    drop(unsafe { OwnedFd::from_raw_fd(fd) });
                }
                // What was just made, not a symlink swapped in since.
                at = openat2(
                    at.as_raw_fd(),
                    Path::new(name),
                    RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
                )?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(p: &Path) -> OwnedFd {
        openat2(libc::AT_FDCWD, p, 0).unwrap()
    }

    #[test]
    fn links_resolve_inside_the_root_and_what_is_missing_is_made_there() {
        let base = std::env::temp_dir().join(format!("rvisor-mount-point-{}", std::process::id()));
        let (root, outside) = (base.join("root"), base.join("outside"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../..", root.join("up")).unwrap();
        let top = hold(&root);
        let inside = root.join(outside.strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inside).unwrap();
        find(&top, Path::new("/abs/a/b"), Some(Make::Dir)).unwrap();
        find(&top, Path::new("/up/c/f"), Some(Make::File)).unwrap();
        assert!(inside.join("a/b").is_dir());
        assert!(root.join("c/f").is_file());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        assert_eq!(
            find(&top, Path::new("/missing"), None).unwrap_err(),
            Errno::ENOENT
        );
        assert_eq!(
            find(&top, Path::new("/a/../b"), Some(Make::Dir)).unwrap_err(),
            Errno::EINVAL
        );
        // A dangling link is not replaced.
        std::os::unix::fs::symlink("/nowhere", root.join("dangling")).unwrap();
        assert_eq!(
            find(&top, Path::new("/dangling"), Some(Make::Dir)).unwrap_err(),
            Errno::EEXIST
        );
        std::fs::remove_dir_all(base).unwrap();
    }
}
