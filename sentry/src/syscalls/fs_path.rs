//! Where a guest path points: the one place path syscalls read a path from the guest.
//!
//! The path is read once. Its base directory comes from the kernel (`/proc/<tid>/cwd` or
//! `/proc/<tid>/fd/<n>`, whose link text is the guest-absolute path). Paths that land, lexically,
//! in the kernel's pseudo filesystems (`/proc`, `/sys`, `/dev`) continue natively: the guest's
//! own read-only mount namespace confines them. Everything else goes to the gofer.

use bumpalo::collections::Vec as ArenaVec;
use nix::errno::Errno;
use rvisor_protocol::Loc;

use super::Ctx;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;

use crate::fd_cache::{cacheable, reopen, Cached};
use crate::file_identity;
use crate::gofer_client::Answer;
use crate::guest::MAX_STRING;

/// Directories the guest init mounts kernel filesystems on.
const PSEUDO: [&[u8]; 3] = [b"proc", b"sys", b"dev"];

/// Where a path syscall acts.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// Let the guest's kernel resolve it.
    Native,
    /// The guest fd itself (an empty path with AT_EMPTY_PATH).
    Fd(i32),
    /// A path in the sandbox tree, for the gofer.
    Gofer(Loc<'a>),
}

/// Reads a `/proc/<tid>/...` link into the arena.
pub(super) fn proc_link<'a>(
    ctx: &Ctx<'a>,
    what: std::fmt::Arguments<'_>,
) -> Result<&'a [u8], Errno> {
    file_identity::to_read_proc()?;
    let name =
        bumpalo::format!(in ctx.arena, "{}{}/{}\0", crate::procfs::prefix(), ctx.trap.tid, what);
    let buf = ctx.arena.alloc_slice_fill_copy(MAX_STRING, 0u8);
    // SAFETY: `name` is NUL-terminated; readlink writes at most buf.len() bytes into `buf`.
    let n = unsafe { libc::readlink(name.as_ptr().cast(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(Errno::last());
    }
    Ok(&buf[..n as usize])
}

/// A proc magic link a path walks through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// `<pid>/fd/<n>`.
    Fd(i32),
    /// `<pid>/cwd`.
    Cwd,
    /// `<pid>/root`.
    Root,
    /// `exe`, `map_files/*`: files, never directories.
    File,
}

/// Where the lexical walk of `base` + `path` ends up.
#[derive(Debug)]
enum Route<'a> {
    /// In the sandbox tree.
    Tree,
    /// In a kernel pseudo filesystem.
    Pseudo,
    /// Through a proc magic link, with components after it: the kernel would resolve `rest` from
    /// the link's target, which may be anywhere the process has a handle to.
    Through {
        link: Link,
        own: bool,
        rest: &'a [u8],
    },
    /// Exactly at a proc magic link (nothing after it): a pseudo path for most calls, but chdir
    /// and exec follow the link.
    AtLink { link: Link, own: bool },
}

/// Whether `pid` (a proc directory name) is the calling thread's process or the thread itself.
fn is_own(ctx: &Ctx<'_>, pid: &[u8], thread: Option<&[u8]>) -> bool {
    let ids = ctx.sandbox.tasks.ids(ctx.trap.tid).ok();
    let num = |b: &[u8]| {
        std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse::<i32>().ok())
    };
    let own_process = pid == b"self"
        || pid == b"thread-self"
        || (num(pid).is_some() && num(pid) == ids.map(|i| i.ns_tgid));
    match thread {
        None => own_process,
        Some(t) => own_process && num(t).is_some() && num(t) == ids.map(|i| i.ns_tid),
    }
}

/// The magic link the walk stands on, if any: `[proc, P, fd, N]`, `[proc, P, cwd]`, `[proc, P,
/// root]`, `[proc, P, exe]`, `[proc, P, map_files, X]`, and the same under `task/T`; `[dev, fd,
/// N]` and `[dev, stdin]` (`stdout`, `stderr`) as the caller's own fd links.
fn magic_link(ctx: &Ctx<'_>, parts: &[&[u8]]) -> Option<(Link, bool)> {
    // The guest's `/dev/fd` and `/dev/std*` are its init's links to `/proc/self/fd`: the kernel
    // follows them there, so the walk does too.
    match parts {
        [b"dev", b"fd", n] => {
            return Some((Link::Fd(std::str::from_utf8(n).ok()?.parse().ok()?), true))
        }
        [b"dev", b"stdin"] => return Some((Link::Fd(0), true)),
        [b"dev", b"stdout"] => return Some((Link::Fd(1), true)),
        [b"dev", b"stderr"] => return Some((Link::Fd(2), true)),
        _ => {}
    }
    if parts.first() != Some(&&b"proc"[..]) || parts.len() < 3 {
        return None;
    }
    let (own, at) = if parts.len() >= 5 && parts[2] == b"task" {
        (is_own(ctx, parts[1], Some(parts[3])), 4)
    } else {
        (is_own(ctx, parts[1], None), 2)
    };
    let link = match (&parts[at..], parts.len() - at) {
        ([b"fd", n], 2) => Link::Fd(std::str::from_utf8(n).ok()?.parse().ok()?),
        ([b"cwd"], 1) => Link::Cwd,
        ([b"root"], 1) => Link::Root,
        ([b"exe"], 1) | ([b"map_files", _], 2) => Link::File,
        _ => return None,
    };
    Some((link, own))
}

/// Walks `base` + `path` lexically, except that nothing after a proc magic link is collapsed.
fn route<'a>(ctx: &Ctx<'a>, base: &[u8], path: &'a [u8]) -> Route<'a> {
    let mut parts: ArenaVec<'_, &[u8]> = ArenaVec::new_in(ctx.arena);
    let step = |parts: &mut ArenaVec<'_, &[u8]>, part: &[u8]| -> Option<(Link, bool)> {
        if part.is_empty() {
            return None;
        }
        magic_link(ctx, parts)
    };
    if path.first() != Some(&b'/') {
        for part in base.split(|&b| b == b'/') {
            // The base is a directory the kernel already resolved: no link to walk through.
            match part {
                b"" | b"." => {}
                b".." => {
                    parts.pop();
                }
                p => parts.push(p),
            }
        }
    }
    let mut offset = 0;
    for part in path.split(|&b| b == b'/') {
        let start = offset;
        offset += part.len() + 1;
        if let Some((link, own)) = step(&mut parts, part) {
            return Route::Through {
                link,
                own,
                rest: &path[start..],
            };
        }
        match part {
            b"" | b"." | b".." => {}
            p => parts.push(p),
        }
    }
    if let Some((link, own)) = magic_link(ctx, &parts) {
        Route::AtLink { link, own }
    } else if parts.first().is_some_and(|first| PSEUDO.contains(first)) {
        Route::Pseudo
    } else {
        Route::Tree
    }
}

/// Reads the path at `addr` and decides where it acts, relative to `dirfd`.
pub fn locate<'a>(ctx: &Ctx<'a>, dirfd: i32, addr: u64, flags: u32) -> Result<Target<'a>, Errno> {
    let path = ctx.guest.read_cstr(ctx.arena, addr, MAX_STRING)?;
    locate_path(ctx, dirfd, path, flags)
}

/// `locate_path` for calls that change the object a path names (chmod, chown, utimensat): a path
/// that is exactly the caller's own `/proc/<pid>/fd/N`, followed, names the fd's object as
/// AT_EMPTY_PATH would (glibc's fchmodat(AT_SYMLINK_NOFOLLOW) goes through one, on an O_PATH
/// handle the guest's kernel made in its read-only view, where the kernel would say EROFS).
pub fn locate_object_path<'a>(
    ctx: &Ctx<'a>,
    dirfd: i32,
    path: &'a [u8],
    flags: u32,
) -> Result<Target<'a>, Errno> {
    if !path.is_empty() && flags & libc::AT_SYMLINK_NOFOLLOW as u32 == 0 {
        let base = base_of(ctx, dirfd, path)?;
        if let Route::AtLink {
            link: Link::Fd(n),
            own: true,
        } = route(ctx, base, path)
        {
            return Ok(Target::Fd(n));
        }
    }
    locate_path(ctx, dirfd, path, flags)
}

/// `locate` for calls the kernel re-resolves after the check (exec, chdir): a path through an
/// fd link or another process's cwd link is refused, since the kernel would follow the link where
/// the gofer did not; so is one ending at such a link, unless `final_link` (exec runs what the
/// guest already holds, and /proc/self/exe).
pub fn locate_for_kernel<'a>(
    ctx: &Ctx<'a>,
    dirfd: i32,
    addr: u64,
    flags: u32,
    final_link: bool,
) -> Result<Target<'a>, Errno> {
    let path = ctx.guest.read_cstr(ctx.arena, addr, MAX_STRING)?;
    locate_path_for_kernel(ctx, dirfd, path, flags, final_link)
}

/// [`locate_for_kernel`] for a path already read from the guest.
pub fn locate_path_for_kernel<'a>(
    ctx: &Ctx<'a>,
    dirfd: i32,
    path: &'a [u8],
    flags: u32,
    final_link: bool,
) -> Result<Target<'a>, Errno> {
    if path.is_empty() {
        return locate_path(ctx, dirfd, path, flags);
    }
    let base = base_of(ctx, dirfd, path)?;
    if path.first() != Some(&b'/') && base.ends_with(DELETED) {
        if let Some(t) = from_deleted(ctx, dirfd, path)? {
            return Ok(t);
        }
    }
    let route = route(ctx, base, path);
    native_base_in_view(ctx, dirfd, base, path, &route)?;
    // Every guest root is the sandbox root (chroot is denied) and the caller's own cwd is one
    // chdir or fchdir vetted: only fd links and other processes' links can lead elsewhere.
    let risky = |link: Link, own: bool| link != Link::Root && (!own || matches!(link, Link::Fd(_)));
    match route {
        Route::Through { link, own, .. } if risky(link, own) => return Err(Errno::EACCES),
        Route::AtLink { link, own } if !final_link && risky(link, own) => {
            return Err(Errno::EACCES)
        }
        _ => {}
    }
    target(ctx, base, path, route)
}

/// For a path through the caller's own `/proc/<pid>/fd/N` link: `N` and what follows it.
pub fn own_fd_link<'a>(ctx: &Ctx<'a>, path: &'a [u8]) -> Result<Option<(i32, &'a [u8])>, Errno> {
    if path.is_empty() {
        return Ok(None);
    }
    let base = base_of(ctx, libc::AT_FDCWD, path)?;
    Ok(match route(ctx, base, path) {
        Route::AtLink {
            link: Link::Fd(n),
            own: true,
        } => Some((n, &b""[..])),
        Route::Through {
            link: Link::Fd(n),
            own: true,
            rest,
        } => Some((n, rest)),
        _ => None,
    })
}

/// The caller's own fd that opening `path` from `dirfd` reopens: a path ending at its own
/// `/proc/<pid>/fd/N` link (`task/<tid>` included), or the guest's `/dev` links to them
/// (`/dev/fd/N`, `/dev/stdin`, `/dev/stdout`, `/dev/stderr`), spelled without `..`.
pub fn reopened_fd(ctx: &Ctx<'_>, dirfd: i32, path: &[u8]) -> Result<Option<i32>, Errno> {
    if path.is_empty() {
        return Ok(None);
    }
    let base = base_of(ctx, dirfd, path)?;
    let path = ctx.arena.alloc_slice_copy(path);
    match route(ctx, base, path) {
        Route::AtLink {
            link: Link::Fd(n),
            own: true,
        } => return Ok(Some(n)),
        Route::Pseudo => {}
        _ => return Ok(None),
    }
    let walk = if path.first() == Some(&b'/') {
        &[][..]
    } else {
        base
    };
    let mut parts: ArenaVec<'_, &[u8]> = ArenaVec::new_in(ctx.arena);
    for part in walk.split(|&b| b == b'/').chain(path.split(|&b| b == b'/')) {
        match part {
            b"" | b"." => {}
            b".." => return Ok(None),
            p => parts.push(p),
        }
    }
    Ok(match parts[..] {
        [b"dev", b"fd", n] => std::str::from_utf8(n).ok().and_then(|n| n.parse().ok()),
        [b"dev", b"stdin"] => Some(0),
        [b"dev", b"stdout"] => Some(1),
        [b"dev", b"stderr"] => Some(2),
        _ => None,
    })
}

/// `locate` for a path already read from the guest.
pub fn locate_path<'a>(
    ctx: &Ctx<'a>,
    dirfd: i32,
    path: &'a [u8],
    flags: u32,
) -> Result<Target<'a>, Errno> {
    if path.is_empty() {
        return if flags & libc::AT_EMPTY_PATH as u32 != 0 {
            Ok(Target::Fd(dirfd))
        } else {
            Err(Errno::ENOENT)
        };
    }
    let base = base_of(ctx, dirfd, path)?;
    if path.first() != Some(&b'/') && base.ends_with(DELETED) {
        if let Some(t) = from_deleted(ctx, dirfd, path)? {
            return Ok(t);
        }
    }
    let route = route(ctx, base, path);
    native_base_in_view(ctx, dirfd, base, path, &route)?;
    target(ctx, base, path, route)
}

/// A relative path the guest's kernel resolves itself starts from the caller's real directory
/// (its cwd, or `dirfd`), not from the path we read for it: that directory must be the guest's
/// own at `base`. A directory received from outside whose host path reads `/dev/shm/d` or
/// `/proc/1` would otherwise pass for the guest's and lead the kernel beneath it (an O_PATH
/// handle on a host file was got that way, then had its mode changed). EACCES, as for such a
/// directory anywhere else.
fn native_base_in_view(
    ctx: &Ctx<'_>,
    dirfd: i32,
    base: &[u8],
    path: &[u8],
    route: &Route<'_>,
) -> Result<(), Errno> {
    if path.first() == Some(&b'/') || !matches!(route, Route::Pseudo | Route::AtLink { .. }) {
        return Ok(());
    }
    if !is_view_dir(ctx, &base_dir(ctx, dirfd)?, base) {
        return Err(Errno::EACCES);
    }
    Ok(())
}

/// Whether our handle `dir` on a directory is the guest's own directory at the guest-absolute
/// `path` (the same inode its view finds there), rather than one from outside that has the
/// same path on the host.
pub(super) fn is_view_dir(ctx: &Ctx<'_>, dir: &OwnedFd, path: &[u8]) -> bool {
    let Ok(rel) = std::ffi::CString::new(path.strip_prefix(b"/").unwrap_or(path)) else {
        return false;
    };
    let rel = if rel.is_empty() { c".".into() } else { rel };
    let Ok(view) = open_in_guest_root(ctx, &rel, libc::O_PATH | libc::O_DIRECTORY) else {
        return false;
    };
    let id = |fd: &OwnedFd| {
        nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(fd))
            .map(|st| (st.st_dev, st.st_ino))
            .ok()
    };
    id(dir).is_some() && id(dir) == id(&view)
}

/// Opens `rel` (relative to the guest's root; `..` stays in it, and no magic link is followed)
/// with `flags` (plus O_CLOEXEC) in the caller's own view: its mount namespace, its procfs.
pub(super) fn open_in_guest_root(
    ctx: &Ctx<'_>,
    rel: &std::ffi::CStr,
    flags: i32,
) -> Result<OwnedFd, Errno> {
    file_identity::to_read_proc()?;
    let root = bumpalo::format!(in ctx.arena, "{}{}/root\0", crate::procfs::prefix(), ctx.trap.tid);
    let root = open_dir_at(libc::AT_FDCWD, root.as_bytes())?;
    walk_in_root(&root, rel, flags)
}

/// openat2 of `rel` from `root` as its root (RESOLVE_IN_ROOT: `..` stays in it) without
/// following magic links, with `flags` plus O_CLOEXEC.
pub(super) fn walk_in_root(
    root: &OwnedFd,
    rel: &std::ffi::CStr,
    flags: i32,
) -> Result<OwnedFd, Errno> {
    let how = [
        (flags | libc::O_CLOEXEC) as u64,
        0,
        // RESOLVE_NO_MAGICLINKS | RESOLVE_IN_ROOT.
        0x02 | 0x10,
    ];
    // SAFETY: openat2 reads a NUL-terminated path and an open_how (three u64s) of that size.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            std::os::fd::AsRawFd::as_raw_fd(root),
            rel.as_ptr(),
            how.as_ptr(),
            std::mem::size_of_val(&how),
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this fd; nothing else owns it.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) })
}

/// What the kernel appends to the path of an unlinked file.
pub(super) const DELETED: &[u8] = b" (deleted)";

/// Our copy of the directory the caller's relative paths from `dirfd` start in.
fn base_dir(ctx: &Ctx<'_>, dirfd: i32) -> Result<OwnedFd, Errno> {
    if dirfd != libc::AT_FDCWD {
        return guest_fd(ctx, dirfd);
    }
    file_identity::to_read_proc()?;
    let cwd = bumpalo::format!(in ctx.arena, "{}{}/cwd\0", crate::procfs::prefix(), ctx.trap.tid);
    open_dir_at(libc::AT_FDCWD, cwd.as_bytes())
}

/// An O_PATH handle on the directory `name` (NUL-terminated) from `dir`.
fn open_dir_at(dir: i32, name: &[u8]) -> Result<OwnedFd, Errno> {
    debug_assert_eq!(name.last(), Some(&0));
    // SAFETY: openat with a NUL-terminated name; returns a new fd or -1.
    let fd = unsafe {
        libc::openat(
            dir,
            name.as_ptr().cast(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this fd; nothing else owns it.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// `..` of our directory handle `dir`.
pub(super) fn parent_of(dir: &OwnedFd) -> Result<OwnedFd, Errno> {
    open_dir_at(std::os::fd::AsRawFd::as_raw_fd(dir), b"..\0")
}

/// The path of our own fd `fd`, as the guest names it.
pub(super) fn own_fd_path<'a>(ctx: &Ctx<'a>, fd: &OwnedFd) -> Option<&'a [u8]> {
    let link = bumpalo::format!(in ctx.arena, "{}self/fd/{}\0",
        crate::procfs::prefix(), std::os::fd::AsRawFd::as_raw_fd(fd));
    let buf = ctx.arena.alloc_slice_fill_copy(MAX_STRING, 0u8);
    // SAFETY: `link` is NUL-terminated; readlink writes at most buf.len() bytes into `buf`.
    let n = unsafe { libc::readlink(link.as_ptr().cast(), buf.as_mut_ptr().cast(), buf.len()) };
    (n >= 0).then(|| &buf[..n as usize])
}

/// Whether our live directory handle `dir`, whose path is `path`, is what the gofer finds at
/// that path (so a directory from outside the tree does not pass for one inside it).
pub(super) fn is_tree_dir(ctx: &Ctx<'_>, dir: &OwnedFd, path: &[u8]) -> Result<bool, Errno> {
    if path.first() != Some(&b'/') {
        return Ok(false);
    }
    let found = super::fs_stat::statx_of(ctx, Loc { base: b"/", path }, 0);
    let real = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(dir))?;
    Ok(found.is_ok_and(|x| {
        real.st_ino == x.stx_ino && real.st_dev == libc::makedev(x.stx_dev_major, x.stx_dev_minor)
    }))
}

/// Walks up from the deleted directory `dir` to its first live ancestor and checks that one is
/// in the tree (`..` is how any lookup leaves a deleted directory).
pub(super) fn live_ancestor_in_tree(ctx: &Ctx<'_>, mut dir: OwnedFd) -> Result<bool, Errno> {
    for _ in 0..64 {
        dir = parent_of(&dir)?;
        let Some(path) = own_fd_path(ctx, &dir) else {
            return Ok(false);
        };
        if !path.ends_with(DELETED) {
            return is_tree_dir(ctx, &dir, path);
        }
    }
    Ok(false)
}

/// A relative path from a deleted directory (the caller's cwd or `dirfd`), which has no path
/// the gofer could resolve. A deleted directory is empty: a name in it is ENOENT, `.` is itself
/// and `..` its parent. Leading `..`s are walked here up to the first live directory, whose
/// path the rest is then resolved from; a path that never leaves the deleted directories
/// (`.`, `..` into another deleted one) is the kernel's to resolve in the guest's view, once the
/// directory is known to lie in the tree. `None`: the directory is live after all (a name that
/// merely ends in " (deleted)").
fn from_deleted<'a>(
    ctx: &Ctx<'a>,
    dirfd: i32,
    path: &'a [u8],
) -> Result<Option<Target<'a>>, Errno> {
    let mut dir = base_dir(ctx, dirfd)?;
    if nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&dir))?.st_nlink != 0 {
        return Ok(None);
    }
    let mut offset = 0;
    for part in path.split(|&b| b == b'/') {
        offset += part.len() + 1;
        match part {
            b"" | b"." => {}
            b".." => {
                dir = parent_of(&dir)?;
                let here = own_fd_path(ctx, &dir).ok_or(Errno::ENOENT)?;
                if here.ends_with(DELETED) {
                    continue;
                }
                if !is_tree_dir(ctx, &dir, here)? {
                    return Err(Errno::EACCES);
                }
                let rest = path.get(offset..).filter(|r| !r.is_empty());
                let rest = rest.unwrap_or(b".");
                return target(ctx, here, rest, route(ctx, here, rest)).map(Some);
            }
            _ => return Err(Errno::ENOENT),
        }
    }
    if live_ancestor_in_tree(ctx, dir)? {
        Ok(Some(Target::Native))
    } else {
        Err(Errno::EACCES)
    }
}

/// The guest path of what the caller's `fd` names, when the guest's kernel made it in its
/// read-only view: an O_PATH handle (when `o_path` allows one), or a descriptor on a read-only
/// mount (a directory the guest opened natively, a FIFO). A change through it would fail there
/// with EROFS, so the change goes to the gofer by that path (acting as the caller, so nothing
/// the caller may not do). None for other fds (the gofer's: the kernel acts on them, as it would
/// natively), for O_PATH handles when not `o_path` (the kernel refuses them), for pseudo files
/// and for deleted objects.
pub fn view_fd_target<'a>(ctx: &Ctx<'a>, fd: i32, o_path: bool) -> Result<Option<Loc<'a>>, Errno> {
    // The caller's own fdinfo and fd link, read as the sentry itself: this worker may still
    // carry the identity of another thread it served, which may not read this one's, and the
    // caller's own identity may not either once it changed its ids (not dumpable: its /proc
    // entries are root's). What is read is the caller's own fd, which it may read itself.
    file_identity::take_back()?;
    let info =
        bumpalo::format!(in ctx.arena, "{}{}/fdinfo/{}", crate::procfs::prefix(), ctx.trap.tid, fd);
    let Ok(text) = std::fs::read_to_string(info.as_str()) else {
        return Err(Errno::EBADF);
    };
    let flags = text
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        .ok_or(Errno::EBADF)?;
    if flags & libc::O_PATH as u32 != 0 {
        if !o_path {
            return Ok(None);
        }
    } else {
        let copy = guest_fd(ctx, fd)?;
        let on_view = nix::sys::statvfs::fstatvfs(&copy)
            .is_ok_and(|st| st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
        if !on_view {
            return Ok(None);
        }
    }
    let path = proc_link(ctx, format_args!("fd/{fd}")).map_err(|_| Errno::EBADF)?;
    if path.first() != Some(&b'/') || path.ends_with(b" (deleted)") {
        return Ok(None);
    }
    let Target::Gofer(at) = target(ctx, b"/", path, route(ctx, b"/", path))? else {
        return Ok(None);
    };
    // Only if the tree has this very object at that path: an O_PATH handle on a file handed in
    // from outside has a host path that the tree may hold a copy of (a change there would land
    // on the copy, not on what the guest named).
    let copy = guest_fd(ctx, fd)?;
    let real = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&copy))?;
    let found = super::fs_stat::statx_of(ctx, at, libc::AT_SYMLINK_NOFOLLOW as u32);
    let same = found.is_ok_and(|x| {
        real.st_ino == x.stx_ino && real.st_dev == libc::makedev(x.stx_dev_major, x.stx_dev_minor)
    });
    Ok(same.then_some(at))
}

/// The guest-absolute directory a non-empty `path` is relative to: `/`, the cwd, or `dirfd`'s.
pub(super) fn base_of<'a>(ctx: &Ctx<'a>, dirfd: i32, path: &[u8]) -> Result<&'a [u8], Errno> {
    if path.first() == Some(&b'/') {
        return Ok(b"/");
    }
    if dirfd == libc::AT_FDCWD {
        return proc_link(ctx, format_args!("cwd"));
    }
    fd_dir(ctx, dirfd)
}

/// The guest path of the directory the caller's `fd` is open on.
pub(super) fn fd_dir<'a>(ctx: &Ctx<'a>, fd: i32) -> Result<&'a [u8], Errno> {
    if fd < 0 {
        return Err(Errno::EBADF);
    }
    let link = proc_link(ctx, format_args!("fd/{fd}")).map_err(|_| Errno::EBADF)?;
    // A pipe, socket or anonymous inode is no directory.
    if link.first() != Some(&b'/') {
        return Err(Errno::ENOTDIR);
    }
    Ok(link)
}

/// Where a routed path acts.
fn target<'a>(
    ctx: &Ctx<'a>,
    base: &'a [u8],
    path: &'a [u8],
    route: Route<'a>,
) -> Result<Target<'a>, Errno> {
    match route {
        Route::Tree => Ok(Target::Gofer(Loc { base, path })),
        Route::Pseudo | Route::AtLink { .. } => Ok(Target::Native),
        // The sandbox root is every guest process's root (chroot is denied).
        Route::Through {
            link: Link::Root,
            rest,
            ..
        } => Ok(Target::Gofer(Loc {
            base: b"/",
            path: rest,
        })),
        Route::Through {
            link: Link::File, ..
        } => Err(Errno::ENOTDIR),
        // Another process's fds and cwd could be anywhere: refuse rather than follow.
        Route::Through { own: false, .. } => Err(Errno::EACCES),
        Route::Through {
            link: Link::Cwd,
            rest,
            ..
        } => Ok(Target::Gofer(Loc {
            base: proc_link(ctx, format_args!("cwd"))?,
            path: rest,
        })),
        Route::Through {
            link: Link::Fd(n),
            rest,
            ..
        } => Ok(Target::Gofer(Loc {
            base: fd_dir(ctx, n)?,
            path: rest,
        })),
    }
}

/// The caller's umask, for calls that create.
pub fn umask(ctx: &Ctx<'_>) -> u32 {
    let _ = file_identity::to_read_proc();
    let status =
        bumpalo::format!(in ctx.arena, "{}{}/status", crate::procfs::prefix(), ctx.trap.tid);
    std::fs::read_to_string(status.as_str())
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

/// Sends a request to the gofer, acting as the calling thread's file identity.
pub fn ask<'a>(ctx: &Ctx<'a>, req: &rvisor_protocol::Request<'_>) -> Result<Answer<'a>, Errno> {
    ask_with_fd(ctx, req, None)
}

/// As `ask`, with an fd beside the request.
pub fn ask_with_fd<'a>(
    ctx: &Ctx<'a>,
    req: &rvisor_protocol::Request<'_>,
    fd: Option<std::os::fd::BorrowedFd<'_>>,
) -> Result<Answer<'a>, Errno> {
    ask_as(ctx, req, fd, false)
}

/// As `ask_with_fd`; `real`: as the thread's real ids (access(2) without AT_EACCESS).
pub fn ask_as<'a>(
    ctx: &Ctx<'a>,
    req: &rvisor_protocol::Request<'_>,
    fd: Option<std::os::fd::BorrowedFd<'_>>,
    real: bool,
) -> Result<Answer<'a>, Errno> {
    let gofer = ctx.sandbox.gofer.as_ref().ok_or(Errno::ENOSYS)?;
    let creds = ctx.creds()?;
    let who = file_identity::for_gofer(ctx.arena, &creds, real)?;
    gofer.call(ctx.arena, who, req, fd)
}

/// The answer's value, for requests that answer with one.
pub fn value(a: Answer<'_>) -> Result<i64, Errno> {
    match a {
        Answer::Value(v) => Ok(v),
        _ => Err(Errno::EIO),
    }
}

/// The answer's bytes.
pub fn bytes<'a>(a: Answer<'a>) -> Result<&'a [u8], Errno> {
    match a {
        Answer::Bytes(b) => Ok(b),
        _ => Err(Errno::EIO),
    }
}

/// A copy of the guest's fd `fd` (pidfd_getfd): EBADF unless it is open, ESRCH once the thread
/// is gone.
pub fn guest_fd(ctx: &Ctx<'_>, fd: i32) -> Result<std::os::fd::OwnedFd, Errno> {
    crate::pidfd::take_fd(ctx.trap.tid, fd, true).map_err(|e| match e {
        Errno::ESRCH => e,
        _ => Errno::EBADF,
    })
}

/// The joined guest path (the gofer joins the same way), as a cache key.
/// First byte of the cache keys of no-follow lookups.
const NOFOLLOW_MARK: u8 = 1;

pub fn cache_key<'a>(ctx: &Ctx<'a>, at: &Loc<'_>) -> &'a [u8] {
    if at.path.first() == Some(&b'/') {
        return ctx.arena.alloc_slice_copy(at.path);
    }
    let key = ctx
        .arena
        .alloc_slice_fill_copy(at.base.len() + 1 + at.path.len(), b'/');
    key[..at.base.len()].copy_from_slice(at.base);
    key[at.base.len() + 1..].copy_from_slice(at.path);
    key
}

/// A cache key: the identity's stamp, then (no-follow lookups, kept apart) a byte no path starts
/// with, then the guest-absolute path.
pub fn stamped_key<'a>(
    arena: &'a bumpalo::Bump,
    stamp: u64,
    nofollow: bool,
    path: &[u8],
) -> &'a [u8] {
    let mark = usize::from(nofollow);
    let key = arena.alloc_slice_fill_copy(8 + mark + path.len(), NOFOLLOW_MARK);
    key[..8].copy_from_slice(&stamp.to_le_bytes());
    key[8 + mark..].copy_from_slice(path);
    key
}

/// Runs `op` on the cached handle for `at` (following symlinks), learning it with one walk if
/// unknown. `Ok(None)`: the cache cannot serve it (off, or not a regular file or directory).
/// `Ok(Some(Err(ENOENT)))`: known missing.
pub fn with_cached<R>(
    ctx: &Ctx<'_>,
    at: &Loc<'_>,
    nofollow: bool,
    op: impl FnOnce(&OwnedFd) -> Result<R, Errno>,
) -> Result<Option<Result<R, Errno>>, Errno> {
    let Some(gofer) = ctx.sandbox.gofer.as_ref().filter(|g| g.cache_enabled) else {
        return Ok(None);
    };
    // What this worker finds and opens, it finds and opens as the caller; a lookup is only
    // ever served again to the same identity (a path one identity may search, another may not).
    let creds = ctx.creds()?;
    file_identity::take_on(&creds)?;
    let path = cache_key(ctx, at);
    let key = stamped_key(ctx.arena, creds.stamp, nofollow, path);
    // The worker's own check may be stricter than the guest's (an unprivileged sentry has no
    // capabilities): a denial goes to the gofer, whose answer stands.
    let op = |handle: &OwnedFd| match op(handle) {
        Err(Errno::EACCES | Errno::EPERM) => None,
        r => Some(r),
    };
    {
        let cache = gofer.cache.lock();
        match cache.get(key) {
            Some(Cached::Found(handle)) => {
                gofer.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(op(handle));
            }
            Some(Cached::Missing) => {
                gofer.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(Some(Err(Errno::ENOENT)));
            }
            None => {}
        }
    }
    gofer.stats.cache_misses.fetch_add(1, Ordering::Relaxed);
    let Answer::Walked(results, mut fds) = ask(
        ctx,
        &rvisor_protocol::Request::Walk {
            paths: vec![path],
            nofollow,
        },
    )?
    else {
        return Err(Errno::EIO);
    };
    match results.first().copied() {
        Some(0) => {
            let handle = fds.pop().ok_or(Errno::EIO)?;
            if !cacheable(&handle) {
                return Ok(None);
            }
            let result = op(&handle);
            gofer.cache.lock().insert(key, Cached::Found(handle));
            Ok(result)
        }
        Some(e) if e == libc::ENOENT => {
            gofer.cache.lock().insert(key, Cached::Missing);
            Ok(Some(Err(Errno::ENOENT)))
        }
        Some(e) => Ok(Some(Err(Errno::from_raw(e)))),
        None => Err(Errno::EIO),
    }
}

/// Opens `at` through the cache: a fresh description of a cached object, ENOENT for a known
/// missing path, or one walk to learn it. `Ok(None)`: not something the cache serves (ask the
/// gofer to open it).
pub fn cached_open(ctx: &Ctx<'_>, at: &Loc<'_>, flags: u32) -> Result<Option<OwnedFd>, Errno> {
    let nofollow = flags & libc::O_NOFOLLOW as u32 != 0;
    match with_cached(ctx, at, nofollow, |handle| reopen(handle, flags))? {
        Some(r) => r.map(Some),
        None => Ok(None),
    }
}

/// faccessat2 on a cached handle, as the worker's (the guest's) file identity.
pub fn local_access(handle: &std::os::fd::OwnedFd, mode: u32) -> Result<i64, Errno> {
    // SAFETY: faccessat2 with our handle and an empty path reads nothing else.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_faccessat2,
            std::os::fd::AsRawFd::as_raw_fd(handle),
            c"".as_ptr(),
            mode,
            libc::AT_EMPTY_PATH | libc::AT_EACCESS,
        )
    };
    if rc < 0 {
        return Err(Errno::last());
    }
    Ok(0)
}
