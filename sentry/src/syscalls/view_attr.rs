//! Attribute changes (mode, owner, times, extended attributes) on what the guest's own kernel
//! would resolve: a path in its `/dev`, `/proc` or `/sys`, or an fd it holds.
//!
//! Such a call is never continued. The kernel would read the path again after the check, and a
//! second thread may by then have rewritten it into `/proc/self/fd/N/x`, beneath a host
//! directory the guest received over a socket: Landlock has no right for metadata, so the
//! change would land on the host. Instead the sentry resolves the path it read, once, in the
//! guest's root and never through a magic link, and makes the change on that handle as the
//! caller (its file ids and capabilities): the kernel's permission checks are the caller's.
//!
//! An object handed in from outside (the caller's stdio and `--preserve-fds`: a file it
//! redirected output to, its `/dev/null`) takes no attribute change at all: the guest may read or
//! write it as its fd allows, but a guest root that could `chmod` it would make a file it had
//! just written a setuid-root program on the host.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

use bumpalo::collections::Vec as ArenaVec;
use nix::errno::Errno;
use rvisor_protocol::{Loc, Request};

use super::fs_path::{base_of, guest_fd, open_in_guest_root, walk_in_root};
use super::pseudo::respell_own;
use super::Ctx;
use crate::file_identity;
use crate::platform::Reply;
use crate::procfs::prefix;

/// One attribute change, as a path call asks for it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Change<'a> {
    Mode(u32),
    Owner {
        uid: u32,
        gid: u32,
    },
    Times([i64; 4]),
    SetXattr {
        name: &'a [u8],
        value: &'a [u8],
        xflags: u32,
    },
    RemoveXattr {
        name: &'a [u8],
    },
}

impl<'a> Change<'a> {
    /// The same change, for the gofer, on the tree's object at `at`.
    pub(super) fn request(self, at: Loc<'a>, flags: u32) -> Request<'a> {
        match self {
            Change::Mode(mode) => Request::Chmod { at, mode, flags },
            Change::Owner { uid, gid } => Request::Chown {
                at,
                uid,
                gid,
                flags,
            },
            Change::Times(times) => Request::Utimens { at, times, flags },
            Change::SetXattr {
                name,
                value,
                xflags,
            } => Request::SetXattr {
                at,
                name,
                value,
                xflags,
                flags,
            },
            Change::RemoveXattr { name } => Request::RemoveXattr { at, name, flags },
        }
    }
}

/// `change` on the caller's fd `fd`: an fd call's (an O_PATH handle is EBADF there), or a path
/// call's naming the fd itself (AT_EMPTY_PATH, or exactly its own `/proc/self/fd/N`), which
/// takes an O_PATH handle too (`opath_ok`).
pub(super) fn at_fd(
    ctx: &mut Ctx<'_>,
    fd: i32,
    change: Change<'_>,
    opath_ok: bool,
) -> Result<Reply, Errno> {
    let handle = guest_fd(ctx, fd)?;
    if !opath_ok {
        let flags = nix::fcntl::fcntl(handle.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL)?;
        if flags & libc::O_PATH != 0 {
            return Err(Errno::EBADF);
        }
    }
    let creds = ctx.creds()?;
    file_identity::take_on(&creds)?;
    apply(ctx, &handle, change, false)
}

/// `change` on `path` from `dirfd`, a path the route put in the guest's own view (read once, by
/// the caller of this function).
pub(super) fn at_path(
    ctx: &mut Ctx<'_>,
    dirfd: i32,
    path: &[u8],
    nofollow: bool,
    change: Change<'_>,
) -> Result<Reply, Errno> {
    let rel = in_root(ctx, dirfd, path)?;
    // The walk is the caller's: search permission on every directory is checked as its (the
    // root handle itself is opened as the sentry, which may read any guest thread's /proc).
    let creds = ctx.creds()?;
    let flags = libc::O_PATH | if nofollow { libc::O_NOFOLLOW } else { 0 };
    // A trailing `/` (or `/.`) names a directory only: ENOTDIR otherwise, as the kernel's walk.
    let dir_only = path.ends_with(b"/") || path.ends_with(b"/.") || path == b".";
    let flags = flags | if dir_only { libc::O_DIRECTORY } else { 0 };
    let handle = open_as(ctx, &creds, &rel, flags)?;
    apply(ctx, &handle, change, nofollow)
}

/// [`open_in_guest_root`] with the walk made as `creds`.
fn open_as(
    ctx: &Ctx<'_>,
    creds: &crate::task::Creds,
    rel: &std::ffi::CStr,
    flags: i32,
) -> Result<OwnedFd, Errno> {
    file_identity::to_read_proc()?;
    let root = open_in_guest_root(ctx, c".", libc::O_PATH | libc::O_DIRECTORY)?;
    file_identity::take_on(creds)?;
    walk_in_root(&root, rel, flags)
}

/// `base` + `path` relative to the guest's root, NUL-terminated. `..` is left to the walk
/// (after a symlink it is not lexical), which the root bounds; `/proc/self` and
/// `/proc/thread-self` are spelled as the caller's ids (`pseudo::respell_own`).
fn in_root(ctx: &Ctx<'_>, dirfd: i32, path: &[u8]) -> Result<CString, Errno> {
    let base = base_of(ctx, dirfd, path)?;
    let walk = if path.first() == Some(&b'/') {
        &[][..]
    } else {
        base
    };
    let mut parts: ArenaVec<'_, &[u8]> = ArenaVec::new_in(ctx.arena);
    parts.extend(
        walk.split(|&b| b == b'/')
            .chain(path.split(|&b| b == b'/'))
            .filter(|p| !p.is_empty() && *p != b"."),
    );
    if parts.len() >= 2 && parts[0] == b"proc" && matches!(parts[1], b"self" | b"thread-self") {
        let ids = ctx.sandbox.tasks.ids(ctx.trap.tid)?;
        let pid = ctx.arena.alloc_str(&ids.ns_tgid.to_string()).as_bytes();
        let tid = ctx.arena.alloc_str(&ids.ns_tid.to_string()).as_bytes();
        respell_own(&mut parts, pid, tid, true);
    }
    let mut joined = parts.join(&b'/');
    if joined.is_empty() {
        joined.push(b'.');
    }
    CString::new(joined).map_err(|_| Errno::EINVAL)
}

/// Makes `change` on the object `handle` names (a symlink itself when `nofollow` found one).
/// Calls that have no fd form for an O_PATH handle go through its `/proc/self/fd` link, which
/// lands on that object and follows nothing further.
fn apply(
    ctx: &mut Ctx<'_>,
    handle: &OwnedFd,
    change: Change<'_>,
    nofollow: bool,
) -> Result<Reply, Errno> {
    let st = nix::sys::stat::fstat(handle.as_raw_fd())?;
    // (Through a read-only mount, the guest's bind of a host device, the kernel's EROFS stands.)
    let read_only = || {
        nix::sys::statvfs::fstatvfs(handle)
            .is_ok_and(|v| v.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
    };
    if ctx.sandbox.is_from_outside(st.st_dev, st.st_ino) && !read_only() {
        return ctx.refuse(Errno::EPERM);
    }
    let link = CString::new(format!("{}self/fd/{}", prefix(), handle.as_raw_fd()))
        .map_err(|_| Errno::EINVAL)?;
    let link = link.as_ptr();
    let rc = match change {
        Change::Mode(mode) => {
            let is_link = nofollow && st.st_mode & libc::S_IFMT == libc::S_IFLNK;
            // As fchmodat2(AT_SYMLINK_NOFOLLOW): a symlink's mode cannot change.
            if is_link {
                return Err(Errno::EOPNOTSUPP);
            }
            // SAFETY: chmod reads the NUL-terminated `link` only.
            unsafe { libc::chmod(link, mode) }
        }
        Change::Owner { uid, gid } => {
            let uid = host_id(uid, |u| ctx.sandbox.ids.uid_to_host(u))?;
            let gid = host_id(gid, |g| ctx.sandbox.ids.gid_to_host(g))?;
            // SAFETY: fchownat on our own handle with an empty, NUL-terminated path.
            unsafe {
                libc::fchownat(
                    handle.as_raw_fd(),
                    c"".as_ptr(),
                    uid,
                    gid,
                    libc::AT_EMPTY_PATH,
                )
            }
        }
        Change::Times(times) => {
            let ts = rvisor_protocol::timespecs(&times);
            // SAFETY: utimensat reads the NUL-terminated `link` and two timespecs we own.
            unsafe { libc::utimensat(libc::AT_FDCWD, link, ts.as_ptr(), 0) }
        }
        Change::SetXattr {
            name,
            value,
            xflags,
        } => {
            if privileged_xattr(name) {
                return Err(Errno::EPERM);
            }
            let name = CString::new(name).map_err(|_| Errno::EINVAL)?;
            // SAFETY: setxattr reads the NUL-terminated `link` and `name`, and `value.len()`
            // bytes of `value`, all ours.
            unsafe {
                libc::setxattr(
                    link,
                    name.as_ptr(),
                    value.as_ptr().cast(),
                    value.len(),
                    xflags as i32,
                )
            }
        }
        Change::RemoveXattr { name } => {
            if privileged_xattr(name) {
                return Err(Errno::EPERM);
            }
            let name = CString::new(name).map_err(|_| Errno::EINVAL)?;
            // SAFETY: removexattr reads the NUL-terminated `link` and `name` only.
            unsafe { libc::removexattr(link, name.as_ptr()) }
        }
    };
    if rc < 0 {
        return Err(Errno::last());
    }
    Ok(Reply::Value(0))
}

/// `trusted.*` and `security.*` names: the sentry acts from the host's user namespace, where a
/// `trusted.*` xattr is the host's and a `security.capability` is a file capability valid on
/// the host (the guest's kernel would write one scoped to the guest's namespace, and refuse
/// `trusted.*`): refused, as natively for `trusted.*`.
fn privileged_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.") || name.starts_with(b"security.")
}

/// A guest id as the host knows it; -1 (leave it) stays -1, an id the guest's namespace does
/// not map is EINVAL, as the kernel answers.
fn host_id(id: u32, map: impl Fn(u32) -> Option<u32>) -> Result<u32, Errno> {
    if id == u32::MAX {
        return Ok(id);
    }
    map(id).ok_or(Errno::EINVAL)
}
