//! Changes to the tree. Each names its target by (parent directory fd, final name), with the
//! parent resolved inside the root.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use rvisor_protocol::Loc;

use crate::meta::{lookup, xattr_target, XattrArgs};
use crate::resolve::{cstring, Last};
use crate::server::{check, Gofer, Outcome};

const SYS_SETXATTRAT: libc::c_long = 463;
const SYS_REMOVEXATTRAT: libc::c_long = 466;
const SYS_FCHMODAT2: libc::c_long = 452;

fn done(rc: impl crate::server::SysRet) -> Result<Outcome, Errno> {
    check(rc).map(|_| Outcome::Value(0))
}

/// mkdir.
pub fn mkdir(g: &mut Gofer, at: &Loc<'_>, mode: u32) -> Result<Outcome, Errno> {
    let (dir, last) = g.root.parent(&mut g.scratch, at)?;
    let name = last.name_or(Errno::EEXIST)?;
    // SAFETY: mkdirat with our dir fd and a NUL-terminated name.
    done(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) })
}

/// mknod: FIFOs, regular files and sockets only; devices are refused as for an unprivileged
/// process.
pub fn mknod(g: &mut Gofer, at: &Loc<'_>, mode: u32, dev: u64) -> Result<Outcome, Errno> {
    let kind = mode & libc::S_IFMT;
    if !matches!(kind, 0 | libc::S_IFREG | libc::S_IFIFO | libc::S_IFSOCK) || dev != 0 {
        return Err(Errno::EPERM);
    }
    let (dir, last) = g.root.parent(&mut g.scratch, at)?;
    let name = last.name_or(Errno::EEXIST)?;
    // SAFETY: mknodat with our dir fd and a NUL-terminated name; no device number.
    done(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, 0) })
}

/// unlink, or rmdir with AT_REMOVEDIR.
pub fn unlink(g: &mut Gofer, at: &Loc<'_>, flags: u32) -> Result<Outcome, Errno> {
    let (dir, last) = g.root.parent(&mut g.scratch, at)?;
    // Linux's errnos for a final `.`, `..` or `/`: rmdir tells them apart, unlink does not.
    let name = if flags & libc::AT_REMOVEDIR as u32 != 0 {
        last.name(Errno::EINVAL, Errno::ENOTEMPTY, Errno::EBUSY)?
    } else {
        last.name_or(Errno::EISDIR)?
    };
    // SAFETY: unlinkat with our dir fd and a NUL-terminated name.
    done(unsafe {
        libc::unlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags as i32 & libc::AT_REMOVEDIR,
        )
    })
}

/// renameat2 (NOREPLACE, EXCHANGE, WHITEOUT as the guest asks).
pub fn rename(g: &mut Gofer, from: &Loc<'_>, to: &Loc<'_>, flags: u32) -> Result<Outcome, Errno> {
    let (d1, l1) = g.root.parent(&mut g.scratch, from)?;
    let (d2, l2) = g.root.parent(&mut g.scratch, to)?;
    let (n1, n2) = match (l1, l2) {
        (Last::Name(n1), Last::Name(n2)) => (n1, n2),
        // As the kernel: parents on two mounts first, then a source that is no name, then a
        // destination that is none (EEXIST when the caller asked not to replace).
        _ if mount_id(&d1)? != mount_id(&d2)? => return Err(Errno::EXDEV),
        (Last::Name(_), _) if flags & libc::RENAME_NOREPLACE != 0 => return Err(Errno::EEXIST),
        _ => return Err(Errno::EBUSY),
    };
    // SAFETY: renameat2 with our dir fds and NUL-terminated names.
    done(unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            d1.as_raw_fd(),
            n1.as_ptr(),
            d2.as_raw_fd(),
            n2.as_ptr(),
            flags,
        )
    })
}

/// The id of the mount `fd` is on.
fn mount_id(fd: &OwnedFd) -> Result<u64, Errno> {
    // SAFETY: statx is plain data; the kernel fills it.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: statx on our fd with an empty path writes into `stx`, which we own.
    check(unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_MNT_ID,
            &mut stx,
        )
    })?;
    Ok(stx.stx_mnt_id)
}

/// linkat. The source is `fd` with AT_EMPTY_PATH (an O_TMPFILE, say), or resolved in the root
/// (following a final symlink only with AT_SYMLINK_FOLLOW). The kernel refuses links across
/// mounts, so an fd from outside the root cannot be linked in.
pub fn link(
    g: &mut Gofer,
    from: &Loc<'_>,
    to: &Loc<'_>,
    flags: u32,
    fd: Option<OwnedFd>,
) -> Result<Outcome, Errno> {
    let source = if flags & libc::AT_EMPTY_PATH as u32 != 0 {
        let fd = fd.ok_or(Errno::EBADF)?;
        // With a path, the sentry found the caller entitled to link the fd's file whoever
        // opened it: our own handle on that path (opened with our credentials, which the
        // kernel accepts) stands in for the fd when it is the same file.
        if from.path.is_empty() {
            fd
        } else {
            match g.root.lookup(&mut g.scratch, from, true) {
                Ok(own) if same_file(&own, &fd) => own,
                _ => fd,
            }
        }
    } else {
        let follow = flags & libc::AT_SYMLINK_FOLLOW as u32 != 0;
        g.root.lookup(&mut g.scratch, from, !follow)?
    };
    let (dir, last) = g.root.parent(&mut g.scratch, to)?;
    let name = last.name_or(Errno::EEXIST)?;
    // SAFETY: linkat from our fd (empty path) to our dir fd and a NUL-terminated name.
    done(unsafe {
        libc::linkat(
            source.as_raw_fd(),
            c"".as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    })
}

/// Whether two handles name the same inode.
fn same_file(a: &OwnedFd, b: &OwnedFd) -> bool {
    match (
        nix::sys::stat::fstat(a.as_raw_fd()),
        nix::sys::stat::fstat(b.as_raw_fd()),
    ) {
        (Ok(x), Ok(y)) => x.st_dev == y.st_dev && x.st_ino == y.st_ino,
        _ => false,
    }
}

/// symlink.
pub fn symlink(g: &mut Gofer, target: &[u8], at: &Loc<'_>) -> Result<Outcome, Errno> {
    let target = cstring(target)?;
    let (dir, last) = g.root.parent(&mut g.scratch, at)?;
    let name = last.name_or(Errno::EEXIST)?;
    // SAFETY: symlinkat with NUL-terminated strings and our dir fd.
    done(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) })
}

/// fchmodat2.
pub fn chmod(g: &mut Gofer, at: &Loc<'_>, mode: u32, flags: u32) -> Result<Outcome, Errno> {
    let fd = lookup(g, at, flags)?;
    g.refuse_outside(&fd)?;
    // SAFETY: fchmodat2 on our fd with an empty path.
    done(unsafe {
        libc::syscall(
            SYS_FCHMODAT2,
            fd.as_raw_fd(),
            c"".as_ptr(),
            mode,
            libc::AT_EMPTY_PATH,
        )
    })
}

/// fchownat, with the guest's ids translated (an id the guest's namespace cannot name is
/// EINVAL, as natively).
pub fn chown(
    g: &mut Gofer,
    at: &Loc<'_>,
    uid: u32,
    gid: u32,
    flags: u32,
) -> Result<Outcome, Errno> {
    let uid = if uid == u32::MAX {
        u32::MAX
    } else {
        g.ids.uid_out(uid).ok_or(Errno::EINVAL)?
    };
    let gid = if gid == u32::MAX {
        u32::MAX
    } else {
        g.ids.gid_out(gid).ok_or(Errno::EINVAL)?
    };
    let fd = lookup(g, at, flags)?;
    g.refuse_outside(&fd)?;
    // SAFETY: fchownat on our fd with an empty path.
    done(unsafe { libc::fchownat(fd.as_raw_fd(), c"".as_ptr(), uid, gid, libc::AT_EMPTY_PATH) })
}

/// utimensat.
pub fn utimens(
    g: &mut Gofer,
    at: &Loc<'_>,
    times: &[i64; 4],
    flags: u32,
) -> Result<Outcome, Errno> {
    let fd = lookup(g, at, flags)?;
    g.refuse_outside(&fd)?;
    let ts = rvisor_protocol::timespecs(times);
    // SAFETY: utimensat reads two timespecs from `ts`; our fd and an empty path.
    done(unsafe {
        libc::utimensat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            ts.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    })
}

/// truncate(2) itself, from inside the parent directory, as a process whose RLIMIT_FSIZE is
/// `limit`: the kernel makes every check in its own order (write permission, EISDIR, EFBIG past
/// the limit) and, unlike an open for writing and ftruncate, reports only IN_MODIFY to inotify.
/// The final name (a symlink followed) resolves from the parent; the gofer's root is the tree,
/// so an absolute target or `..` stays in it, as for `bind`.
pub fn truncate(g: &mut Gofer, at: &Loc<'_>, length: i64, limit: u64) -> Result<Outcome, Errno> {
    let (dir, last) = g.root.parent(&mut g.scratch, at)?;
    let name = match last {
        Last::Name(n) => n,
        Last::DotDot => std::ffi::CString::from(c".."),
        Last::Dot | Last::Root => std::ffi::CString::from(c"."),
    };
    let unlimited = libc::rlimit64 {
        rlim_cur: libc::RLIM64_INFINITY,
        rlim_max: libc::RLIM64_INFINITY,
    };
    let mut ours = unlimited;
    // SAFETY: prlimit64 on ourselves reads nothing and writes our current limit into `ours`.
    check(unsafe { libc::prlimit64(0, libc::RLIMIT_FSIZE, std::ptr::null(), &mut ours) })?;
    let theirs = libc::rlimit64 {
        rlim_cur: limit.min(ours.rlim_max),
        rlim_max: ours.rlim_max,
    };
    // SAFETY: as above, setting only the soft limit (never above our hard one). A SIGXFSZ the
    // kernel sends us for it is ignored (the sentry raises the guest's own).
    check(unsafe { libc::prlimit64(0, libc::RLIMIT_FSIZE, &theirs, std::ptr::null_mut()) })?;
    nix::unistd::fchdir(dir.as_raw_fd())?;
    // SAFETY: truncate with a NUL-terminated name relative to the directory we are in.
    let rc = unsafe { libc::truncate(name.as_ptr(), length) };
    let err = Errno::last();
    let _ = nix::unistd::chdir("/");
    // SAFETY: restores the soft limit read above.
    unsafe { libc::prlimit64(0, libc::RLIMIT_FSIZE, &ours, std::ptr::null_mut()) };
    if rc < 0 {
        return Err(err);
    }
    Ok(Outcome::Value(0))
}

/// setxattr.
pub fn setxattr(
    g: &mut Gofer,
    at: &Loc<'_>,
    name: &[u8],
    value: &[u8],
    xflags: u32,
    flags: u32,
) -> Result<Outcome, Errno> {
    refuse_outside_at(g, at, flags)?;
    let (dir, last, at_flags) = xattr_target(g, at, flags)?;
    let name = cstring(name)?;
    let args = XattrArgs {
        value: value.as_ptr() as u64,
        size: value.len() as u32,
        flags: xflags,
    };
    // SAFETY: setxattrat reads `size` bytes from `value` and the name; our fd, empty path.
    done(unsafe {
        libc::syscall(
            SYS_SETXATTRAT,
            dir.as_raw_fd(),
            last.as_ptr(),
            at_flags,
            name.as_ptr(),
            std::ptr::addr_of!(args),
            std::mem::size_of::<XattrArgs>(),
        )
    })
}

/// EPERM if `at` names an object handed in from outside (looked up only when there are any: the
/// xattr calls themselves act from the parent).
fn refuse_outside_at(g: &mut Gofer, at: &Loc<'_>, flags: u32) -> Result<(), Errno> {
    if g.outside.is_empty() {
        return Ok(());
    }
    let object = lookup(g, at, flags)?;
    g.refuse_outside(&object)
}

/// removexattr: from the parent, like the other xattr calls (the kernel's xattr calls refuse
/// the O_PATH handle a lookup gives, which made every removexattr fail with EBADF).
pub fn removexattr(g: &mut Gofer, at: &Loc<'_>, name: &[u8], flags: u32) -> Result<Outcome, Errno> {
    refuse_outside_at(g, at, flags)?;
    let (dir, last, at_flags) = xattr_target(g, at, flags)?;
    let name = cstring(name)?;
    // SAFETY: removexattrat with our dir fd and NUL-terminated final name and attribute name.
    done(unsafe {
        libc::syscall(
            SYS_REMOVEXATTRAT,
            dir.as_raw_fd(),
            last.as_ptr(),
            at_flags,
            name.as_ptr(),
        )
    })
}

/// bind(2) of the guest's Unix socket (sent along) to `at`, with the guest's umask: from the
/// guest's base directory (resolved in the root), with the guest's own path, so that the socket's
/// address is the one the guest gave (`getsockname`, a datagram's sender). The gofer's root is the
/// tree, so the kernel's walk of that path stays in it.
pub fn bind(
    g: &mut Gofer,
    at: &Loc<'_>,
    umask: u32,
    sock: Option<OwnedFd>,
) -> Result<Outcome, Errno> {
    let sock = sock.ok_or(Errno::EBADF)?;
    let path = at.path;
    // SAFETY: sockaddr_un is plain data; zero is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path.len() >= addr.sun_path.len() {
        return Err(Errno::ENAMETOOLONG);
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, &src) in addr.sun_path.iter_mut().zip(path) {
        *dst = src as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + path.len() + 1) as libc::socklen_t;
    let base = crate::resolve::openat2(
        g.root.raw(),
        &crate::resolve::cstring(at.base)?,
        (libc::O_PATH | libc::O_DIRECTORY) as u64,
        0,
        crate::resolve::RESOLVE_IN_ROOT | crate::resolve::RESOLVE_NO_MAGICLINKS,
    )?;
    nix::unistd::fchdir(base.as_raw_fd())?;
    // SAFETY: umask only changes this process's creation mask; restored below.
    let old = unsafe { libc::umask(umask & 0o777) };
    // SAFETY: bind reads `len` bytes of `addr`, which we own; the socket is the guest's.
    let rc = unsafe { libc::bind(sock.as_raw_fd(), std::ptr::addr_of!(addr).cast(), len) };
    let err = Errno::last();
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    if rc == 0 {
        crate::socket::record_bound(g, path);
    }
    let _ = nix::unistd::chdir("/");
    if rc < 0 {
        return Err(err);
    }
    Ok(Outcome::Value(0))
}
