//! Confined lookups: every path is resolved by `openat2` beneath the root fd.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use rvisor_protocol::{Loc, MAX_PATH};

/// `RESOLVE_NO_MAGICLINKS`.
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
/// `RESOLVE_BENEATH`.
pub const RESOLVE_BENEATH: u64 = 0x08;
/// `RESOLVE_IN_ROOT`.
pub const RESOLVE_IN_ROOT: u64 = 0x10;
/// Resolve flags a guest may add to ours.
pub const GUEST_RESOLVE: u64 = 0x01 | 0x02 | 0x04 | 0x08 | 0x10 | 0x20;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// openat2 with `how`, returning an owned fd.
pub fn openat2(
    dir: RawFd,
    path: &CStr,
    flags: u64,
    mode: u64,
    resolve: u64,
) -> Result<OwnedFd, Errno> {
    let how = OpenHow {
        flags: flags | libc::O_CLOEXEC as u64,
        mode,
        resolve,
    };
    loop {
        // SAFETY: openat2 reads a NUL-terminated path and an open_how of the size given.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir,
                path.as_ptr(),
                std::ptr::addr_of!(how),
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd >= 0 {
            // SAFETY: the kernel returned a new fd that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
        }
        match Errno::last() {
            // The tree changed under a lookup (rename race): the kernel asks us to retry.
            Errno::EAGAIN => continue,
            e => return Err(e),
        }
    }
}

/// A NUL-terminated path assembled in a reusable buffer.
#[derive(Debug, Default)]
pub struct PathBuf {
    buf: Vec<u8>,
}

impl PathBuf {
    /// `base/path` (or `path` if absolute), NUL-terminated. Nothing is normalised: `..` and
    /// symlinks are the kernel's to resolve, inside the root.
    pub fn join(&mut self, at: &Loc<'_>) -> Result<&CStr, Errno> {
        self.buf.clear();
        if at.path.is_empty() {
            return Err(Errno::ENOENT);
        }
        if at.path[0] != b'/' {
            self.buf.extend_from_slice(at.base);
            self.buf.push(b'/');
        }
        self.buf.extend_from_slice(at.path);
        if self.buf.len() >= MAX_PATH {
            return Err(Errno::ENAMETOOLONG);
        }
        self.buf.push(0);
        CStr::from_bytes_with_nul(&self.buf).map_err(|_| Errno::EINVAL)
    }

    /// Splits `base/path` into the parent directory and what its final component is. A name
    /// keeps its trailing slashes: the kernel, given `name/`, then insists on a directory exactly
    /// as it would for the guest (ENOTDIR, EISDIR, or ENOENT when creating).
    pub fn split(&mut self, at: &Loc<'_>) -> Result<(Vec<u8>, Last), Errno> {
        let full = self.join(at)?.to_bytes().to_vec();
        let Some(end) = full.iter().rposition(|&b| b != b'/') else {
            return Ok((b"/".to_vec(), Last::Root));
        };
        // The final component starts after the last slash before `end`.
        let (dir, start) = match full[..=end].iter().rposition(|&b| b == b'/') {
            Some(0) => (&b"/"[..], 1),
            Some(i) => (&full[..i], i + 1),
            None => (&b"/"[..], 0),
        };
        let name = &full[start..];
        let last = match &full[start..=end] {
            b"." => Last::Dot,
            b".." => Last::DotDot,
            _ => Last::Name(cstring(name)?),
        };
        Ok((dir.to_vec(), last))
    }
}

/// The final component of a path, as the kernel's `last_type` sorts it: calls that need a name
/// there fail on the others, each call with its own errno.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Last {
    /// A name (trailing slashes kept).
    Name(std::ffi::CString),
    /// `.`
    Dot,
    /// `..`
    DotDot,
    /// The root itself.
    Root,
}

impl Last {
    /// The name, or the errno the call gives for `.`, `..` and the root.
    pub fn name(self, dot: Errno, dotdot: Errno, root: Errno) -> Result<std::ffi::CString, Errno> {
        match self {
            Last::Name(n) => Ok(n),
            Last::Dot => Err(dot),
            Last::DotDot => Err(dotdot),
            Last::Root => Err(root),
        }
    }

    /// The name, or `errno` for every other kind (creation calls say EEXIST for all three).
    pub fn name_or(self, errno: Errno) -> Result<std::ffi::CString, Errno> {
        self.name(errno, errno, errno)
    }
}

/// A C string from bytes without a NUL.
pub fn cstring(bytes: &[u8]) -> Result<std::ffi::CString, Errno> {
    std::ffi::CString::new(bytes).map_err(|_| Errno::EINVAL)
}

/// The root fd with confined-lookup helpers.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
}

impl Root {
    /// Wraps the sandbox root directory.
    pub fn new(fd: OwnedFd) -> Self {
        Root { fd }
    }

    /// The raw root fd.
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Opens `at` with `flags`, confined to the root. The guest's own resolve flags add to ours;
    /// RESOLVE_BENEATH and RESOLVE_IN_ROOT are relative to the guest's directory, which is first
    /// opened inside the root.
    pub fn open(
        &self,
        scratch: &mut PathBuf,
        at: &Loc<'_>,
        flags: u64,
        mode: u64,
        guest: u64,
    ) -> Result<OwnedFd, Errno> {
        let ours = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
        if guest & (RESOLVE_BENEATH | RESOLVE_IN_ROOT) != 0 {
            let base = cstring(at.base)?;
            let dir = openat2(
                self.raw(),
                &base,
                (libc::O_PATH | libc::O_DIRECTORY) as u64,
                0,
                ours,
            )?;
            let path = cstring(at.path)?;
            return openat2(
                dir.as_raw_fd(),
                &path,
                flags,
                mode,
                guest | RESOLVE_NO_MAGICLINKS,
            );
        }
        let full = scratch.join(at)?;
        openat2(
            self.raw(),
            full,
            flags,
            mode,
            ours | (guest & GUEST_RESOLVE),
        )
    }

    /// An O_PATH handle on `at`; `nofollow` keeps a final symlink itself.
    pub fn lookup(
        &self,
        scratch: &mut PathBuf,
        at: &Loc<'_>,
        nofollow: bool,
    ) -> Result<OwnedFd, Errno> {
        let mut flags = libc::O_PATH as u64;
        if nofollow {
            flags |= libc::O_NOFOLLOW as u64;
        }
        self.open(scratch, at, flags, 0, 0)
    }

    /// The parent directory of `at` (O_PATH; the root itself for the root) and its final
    /// component. The directory is opened first, so a missing or non-directory parent fails
    /// before the final component is judged, in the kernel's order.
    pub fn parent(&self, scratch: &mut PathBuf, at: &Loc<'_>) -> Result<(OwnedFd, Last), Errno> {
        let (dir, last) = scratch.split(at)?;
        let dir = cstring(&dir)?;
        let fd = openat2(
            self.raw(),
            &dir,
            (libc::O_PATH | libc::O_DIRECTORY) as u64,
            0,
            RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        )?;
        Ok((fd, last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc<'a>(base: &'a [u8], path: &'a [u8]) -> Loc<'a> {
        Loc { base, path }
    }

    #[test]
    fn join_and_split() {
        let mut p = PathBuf::default();
        assert_eq!(
            p.join(&loc(b"/usr", b"lib")).unwrap().to_bytes(),
            b"/usr/lib"
        );
        assert_eq!(p.join(&loc(b"/usr", b"/etc")).unwrap().to_bytes(), b"/etc");
        assert_eq!(p.join(&loc(b"/", b"")), Err(Errno::ENOENT));
        let name = |n: &std::ffi::CStr| Last::Name(n.to_owned());
        assert_eq!(
            p.split(&loc(b"/", b"/a/b/")).unwrap(),
            (b"/a".to_vec(), name(c"b/"))
        );
        assert_eq!(
            p.split(&loc(b"/", b"/x")).unwrap(),
            (b"/".to_vec(), name(c"x"))
        );
        assert_eq!(
            p.split(&loc(b"/d", b"y")).unwrap(),
            (b"/d".to_vec(), name(c"y"))
        );
        assert_eq!(
            p.split(&loc(b"/", b"//")).unwrap(),
            (b"/".to_vec(), Last::Root)
        );
        assert_eq!(
            p.split(&loc(b"/", b"/a/..")).unwrap(),
            (b"/a".to_vec(), Last::DotDot)
        );
        assert_eq!(
            p.split(&loc(b"/t", b"./")).unwrap(),
            (b"/t".to_vec(), Last::Dot)
        );
        let long = vec![b'a'; MAX_PATH];
        assert_eq!(p.join(&loc(b"/", &long)), Err(Errno::ENAMETOOLONG));
    }
}
