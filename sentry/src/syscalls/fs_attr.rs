//! Attributes: mode, owner, times, size, extended attributes.

use nix::errno::Errno;
use rvisor_protocol::{Loc, Request};

use super::fs_path::{ask, locate, locate_object_path, reopened_fd, value, view_fd_target, Target};
use super::view_attr::{self, Change};
use super::{Action, Arg, Ctx, Def};
use crate::guest::{Guest, MAX_STRING};
use crate::platform::Reply;

pub(super) const DEFS: &[Def] = &[
    Def {
        name: "chmod",
        action: Action::Emulated(chmod),
        args: &[Arg::Str, Arg::Hex],
    },
    Def {
        name: "fchmodat",
        action: Action::Emulated(fchmodat),
        args: &[Arg::Int, Arg::Str, Arg::Hex],
    },
    Def {
        name: "fchmodat2",
        action: Action::Emulated(fchmodat2),
        args: &[Arg::Int, Arg::Str, Arg::Hex, Arg::Hex],
    },
    Def {
        name: "chown",
        action: Action::Emulated(chown),
        args: &[Arg::Str, Arg::Int, Arg::Int],
    },
    Def {
        name: "lchown",
        action: Action::Emulated(lchown),
        args: &[Arg::Str, Arg::Int, Arg::Int],
    },
    Def {
        name: "fchownat",
        action: Action::Emulated(fchownat),
        args: &[Arg::Int, Arg::Str, Arg::Int, Arg::Int, Arg::Hex],
    },
    Def {
        name: "utime",
        action: Action::Emulated(utime),
        args: &[Arg::Str, Arg::Ptr],
    },
    Def {
        name: "utimes",
        action: Action::Emulated(utimes),
        args: &[Arg::Str, Arg::Ptr],
    },
    Def {
        name: "futimesat",
        action: Action::Emulated(futimesat),
        args: &[Arg::Int, Arg::Str, Arg::Ptr],
    },
    Def {
        name: "utimensat",
        action: Action::Emulated(utimensat),
        args: &[Arg::Int, Arg::Str, Arg::Ptr, Arg::Hex],
    },
    Def {
        name: "truncate",
        action: Action::Emulated(truncate),
        args: &[Arg::Str, Arg::Int],
    },
    Def {
        name: "setxattr",
        action: Action::Emulated(setxattr),
        args: &[Arg::Str, Arg::Str, Arg::Ptr, Arg::Int, Arg::Hex],
    },
    Def {
        name: "lsetxattr",
        action: Action::Emulated(lsetxattr),
        args: &[Arg::Str, Arg::Str, Arg::Ptr, Arg::Int, Arg::Hex],
    },
    Def {
        name: "removexattr",
        action: Action::Emulated(removexattr),
        args: &[Arg::Str, Arg::Str],
    },
    Def {
        name: "lremovexattr",
        action: Action::Emulated(lremovexattr),
        args: &[Arg::Str, Arg::Str],
    },
    // The fd-and-path xattr calls of 6.13 and the file attribute calls of 6.17: not yet
    // serviced; ENOSYS sends libraries back to the classic calls.
    Def {
        name: "getxattrat",
        action: Action::Denied(Errno::ENOSYS),
        args: &[Arg::Int, Arg::Str, Arg::Hex, Arg::Str],
    },
    Def {
        name: "setxattrat",
        action: Action::Denied(Errno::ENOSYS),
        args: &[Arg::Int, Arg::Str, Arg::Hex, Arg::Str],
    },
    Def {
        name: "listxattrat",
        action: Action::Denied(Errno::ENOSYS),
        args: &[Arg::Int, Arg::Str, Arg::Hex],
    },
    Def {
        name: "removexattrat",
        action: Action::Denied(Errno::ENOSYS),
        args: &[Arg::Int, Arg::Str, Arg::Hex, Arg::Str],
    },
    Def {
        name: "file_getattr",
        action: Action::Denied(Errno::ENOSYS),
        args: &[Arg::Int, Arg::Str],
    },
    Def {
        name: "file_setattr",
        action: Action::Denied(Errno::ENOSYS),
        args: &[Arg::Int, Arg::Str],
    },
];

const CWD: i32 = libc::AT_FDCWD;
const NOFOLLOW: u32 = libc::AT_SYMLINK_NOFOLLOW as u32;
const XATTR_NAME_MAX: usize = 255;
const XATTR_SIZE_MAX: u64 = 65536;

/// Runs `op` on the gofer for paths in the tree; lets the kernel do the rest.
fn on_path(
    ctx: &mut Ctx<'_>,
    dirfd: i32,
    addr: u64,
    flags: u32,
    op: impl FnOnce(&Ctx<'_>, Loc<'_>) -> Result<Reply, Errno>,
) -> Result<Reply, Errno> {
    match locate(ctx, dirfd, addr, flags)? {
        Target::Gofer(at) => op(ctx, at),
        Target::Native | Target::Fd(_) => Ok(Reply::Continue),
    }
}

/// Makes `change` on the object a path names: through the gofer for a path in the tree, or an
/// fd (AT_EMPTY_PATH, or exactly its own `/proc/self/fd/N` link) the guest's kernel made in its
/// read-only view (by the fd's path, never following what a symlink there points to); by the
/// sentry itself for the rest, on a handle it resolves from the path as read here, so nothing
/// the kernel would read again after the check decides what changes (`view_attr.rs`).
fn on_object(
    ctx: &mut Ctx<'_>,
    dirfd: i32,
    addr: u64,
    flags: u32,
    change: Change<'_>,
) -> Result<Reply, Errno> {
    let path = ctx.guest.read_cstr(ctx.arena, addr, MAX_STRING)?;
    // `/dev/stdout` and the like name the caller's own fd, as its proc link does.
    let target = match reopened_fd(ctx, dirfd, path)? {
        Some(fd) if flags & NOFOLLOW == 0 => Target::Fd(fd),
        _ => locate_object_path(ctx, dirfd, path, flags)?,
    };
    match target {
        Target::Gofer(at) => done(ctx, &change.request(at, flags & NOFOLLOW)),
        Target::Fd(fd) => match view_fd_target(ctx, fd, true)? {
            Some(at) => done(ctx, &change.request(at, NOFOLLOW)),
            None => view_attr::at_fd(ctx, fd, change, true),
        },
        Target::Native => view_attr::at_path(ctx, dirfd, path, flags & NOFOLLOW != 0, change),
    }
}

fn done(ctx: &Ctx<'_>, req: &Request<'_>) -> Result<Reply, Errno> {
    value(ask(ctx, req)?).map(Reply::Value)
}

fn chmod_at(
    ctx: &mut Ctx<'_>,
    dirfd: i32,
    addr: u64,
    mode: u32,
    flags: u32,
) -> Result<Reply, Errno> {
    on_object(ctx, dirfd, addr, flags, Change::Mode(mode & 0o7777))
}
fn chmod(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    chmod_at(ctx, CWD, ctx.arg(0), ctx.arg(1) as u32, 0)
}
fn fchmodat(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    chmod_at(ctx, ctx.arg(0) as i32, ctx.arg(1), ctx.arg(2) as u32, 0)
}
fn fchmodat2(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    if ctx.arg(3) as u32 & !(NOFOLLOW | libc::AT_EMPTY_PATH as u32) != 0 {
        return Err(Errno::EINVAL);
    }
    chmod_at(
        ctx,
        ctx.arg(0) as i32,
        ctx.arg(1),
        ctx.arg(2) as u32,
        ctx.arg(3) as u32,
    )
}

fn chown_at(
    ctx: &mut Ctx<'_>,
    dirfd: i32,
    addr: u64,
    uid: u32,
    gid: u32,
    flags: u32,
) -> Result<Reply, Errno> {
    if flags & !(NOFOLLOW | libc::AT_EMPTY_PATH as u32) != 0 {
        return Err(Errno::EINVAL);
    }
    on_object(ctx, dirfd, addr, flags, Change::Owner { uid, gid })
}
fn chown(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    chown_at(
        ctx,
        CWD,
        ctx.arg(0),
        ctx.arg(1) as u32,
        ctx.arg(2) as u32,
        0,
    )
}
fn lchown(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    chown_at(
        ctx,
        CWD,
        ctx.arg(0),
        ctx.arg(1) as u32,
        ctx.arg(2) as u32,
        NOFOLLOW,
    )
}
fn fchownat(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    chown_at(
        ctx,
        ctx.arg(0) as i32,
        ctx.arg(1),
        ctx.arg(2) as u32,
        ctx.arg(3) as u32,
        ctx.arg(4) as u32,
    )
}

const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;

fn times_at(
    ctx: &mut Ctx<'_>,
    dirfd: i32,
    addr: u64,
    times: [i64; 4],
    flags: u32,
) -> Result<Reply, Errno> {
    on_object(ctx, dirfd, addr, flags, Change::Times(times))
}

fn utimensat(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    // A NULL path is futimens: it acts on the fd, natively, unless the guest's kernel made the
    // fd in its read-only view (then the gofer makes the change by the fd's path).
    if ctx.arg(1) == 0 {
        return futimens(ctx);
    }
    let Some(times) = times_arg(ctx)? else {
        // As the kernel: nothing to change is success before the path or the flags are looked at.
        return Ok(Reply::Value(0));
    };
    let flags = ctx.arg(3) as u32;
    if flags & !(NOFOLLOW | libc::AT_EMPTY_PATH as u32) != 0 {
        return Err(Errno::EINVAL);
    }
    times_at(ctx, ctx.arg(0) as i32, ctx.arg(1), times, flags)
}

/// utimensat's `times` (argument 2; NULL is now for both), or None when both are UTIME_OMIT.
fn times_arg(ctx: &Ctx<'_>) -> Result<Option<[i64; 4]>, Errno> {
    let times = if ctx.arg(2) == 0 {
        [0, UTIME_NOW, 0, UTIME_NOW]
    } else {
        let mut t = [0i64; 4];
        for (i, slot) in t.iter_mut().enumerate() {
            // (Any value is a valid tv_sec: only an unreadable struct is EFAULT.)
            *slot = ctx
                .guest
                .read_value::<u64>(Guest::offset(ctx.arg(2), 8 * i as u64)?)
                .map_err(|_| Errno::EFAULT)? as i64;
        }
        t
    };
    Ok((times[1] != UTIME_OMIT || times[3] != UTIME_OMIT).then_some(times))
}

/// utimensat(fd, NULL, times, flags): on the fd, as `fchmod` (`fd_meta.rs`): by the gofer for an
/// fd of the guest's view, by the sentry on a copy of it otherwise.
fn futimens(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let fd = ctx.arg(0) as i32;
    // The kernel's order: the times (nothing to change is success), the flags (none with a NULL
    // path), the nanoseconds, then the fd (AT_FDCWD names no file: the NULL path faults).
    let Some(times) = times_arg(ctx)? else {
        return Ok(Reply::Value(0));
    };
    let nsec_ok = |n: i64| n == UTIME_NOW || n == UTIME_OMIT || (0..1_000_000_000).contains(&n);
    if ctx.arg(3) != 0 || !nsec_ok(times[1]) || !nsec_ok(times[3]) {
        return Err(Errno::EINVAL);
    }
    fd_times(ctx, fd, times)
}

/// `times` on the caller's `fd` (a NULL path): by the gofer for an fd of the guest's view, by
/// the sentry on a copy of it otherwise.
fn fd_times(ctx: &mut Ctx<'_>, fd: i32, times: [i64; 4]) -> Result<Reply, Errno> {
    if fd == libc::AT_FDCWD {
        return Err(Errno::EFAULT);
    }
    match view_fd_target(ctx, fd, false)? {
        Some(at) => done(ctx, &Change::Times(times).request(at, NOFOLLOW)),
        None => view_attr::at_fd(ctx, fd, Change::Times(times), false),
    }
}

/// Two `struct timeval`s (or NULL: now) as timespecs.
fn timevals(ctx: &Ctx<'_>, addr: u64) -> Result<[i64; 4], Errno> {
    if addr == 0 {
        return Ok([0, UTIME_NOW, 0, UTIME_NOW]);
    }
    let mut t = [0i64; 4];
    for (i, slot) in t.iter_mut().enumerate() {
        *slot = ctx
            .guest
            .read_value::<u64>(Guest::offset(addr, 8 * i as u64)?)? as i64;
    }
    if t[1] < 0 || t[1] >= 1_000_000 || t[3] < 0 || t[3] >= 1_000_000 {
        return Err(Errno::EINVAL);
    }
    Ok([t[0], t[1] * 1000, t[2], t[3] * 1000])
}

fn utimes(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let times = timevals(ctx, ctx.arg(1))?;
    times_at(ctx, CWD, ctx.arg(0), times, 0)
}
fn futimesat(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let times = timevals(ctx, ctx.arg(2))?;
    // A NULL path names the fd itself, as utimensat's.
    if ctx.arg(1) == 0 {
        return fd_times(ctx, ctx.arg(0) as i32, times);
    }
    times_at(ctx, ctx.arg(0) as i32, ctx.arg(1), times, 0)
}
fn utime(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let times = if ctx.arg(1) == 0 {
        [0, UTIME_NOW, 0, UTIME_NOW]
    } else {
        let a: u64 = ctx.guest.read_value(ctx.arg(1))?;
        let m: u64 = ctx.guest.read_value(Guest::offset(ctx.arg(1), 8)?)?;
        [a as i64, 0, m as i64, 0]
    };
    times_at(ctx, CWD, ctx.arg(0), times, 0)
}

fn truncate(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let length = ctx.arg(1) as i64;
    if length < 0 {
        return Err(Errno::EINVAL);
    }
    let limit = fsize_limit(ctx.trap.tid);
    let result = on_path(ctx, CWD, ctx.arg(0), 0, |ctx, at| {
        done(ctx, &Request::Truncate { at, length, limit })
    });
    // Growing past RLIMIT_FSIZE: EFBIG, and SIGXFSZ as the call returns (the gofer made the
    // call under the caller's limit, so the kernel's checks came in the kernel's order).
    if result == Err(Errno::EFBIG) && length as u64 > limit {
        ctx.raise = Some(libc::SIGXFSZ);
    }
    result
}

/// The soft RLIMIT_FSIZE of the process of thread `tid` (none if it cannot be read).
fn fsize_limit(tid: i32) -> u64 {
    let mut lim = libc::rlimit64 {
        rlim_cur: libc::RLIM64_INFINITY,
        rlim_max: libc::RLIM64_INFINITY,
    };
    // SAFETY: prlimit64 only reads `tid`'s limit into `lim`, which we own.
    if unsafe { libc::prlimit64(tid, libc::RLIMIT_FSIZE, std::ptr::null(), &mut lim) } != 0 {
        return u64::MAX;
    }
    lim.rlim_cur
}

pub(super) fn xattr_name<'a>(ctx: &Ctx<'a>, addr: u64) -> Result<&'a [u8], Errno> {
    let name = ctx
        .guest
        .read_cstr(ctx.arena, addr, XATTR_NAME_MAX + 1)
        .map_err(|e| {
            if e == Errno::ENAMETOOLONG {
                Errno::ERANGE
            } else {
                e
            }
        })?;
    if name.is_empty() {
        return Err(Errno::ERANGE);
    }
    Ok(name)
}

fn set_xattr(ctx: &mut Ctx<'_>, flags: u32) -> Result<Reply, Errno> {
    let (name, value, xflags) = xattr_value(ctx, ctx.arg(1), ctx.arg(2), ctx.arg(3), ctx.arg(4))?;
    let change = Change::SetXattr {
        name,
        value,
        xflags,
    };
    on_object(ctx, CWD, ctx.arg(0), flags, change)
}

/// The name, value and flags of a setxattr call, checked as the kernel does.
pub(super) fn xattr_value<'a>(
    ctx: &Ctx<'a>,
    name: u64,
    value: u64,
    size: u64,
    xflags: u64,
) -> Result<(&'a [u8], &'a [u8], u32), Errno> {
    // As the kernel: flags other than XATTR_CREATE and XATTR_REPLACE fail before the name, the
    // value or the path are looked at.
    let xflags = xflags as u32;
    if xflags & !(libc::XATTR_CREATE | libc::XATTR_REPLACE) as u32 != 0 {
        return Err(Errno::EINVAL);
    }
    let name = xattr_name(ctx, name)?;
    if size > XATTR_SIZE_MAX {
        return Err(Errno::E2BIG);
    }
    let value_buf = ctx.arena.alloc_slice_fill_copy(size as usize, 0u8);
    ctx.guest.read_exact(value, value_buf)?;
    Ok((name, value_buf, xflags))
}

fn setxattr(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    set_xattr(ctx, 0)
}
fn lsetxattr(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    set_xattr(ctx, NOFOLLOW)
}

fn remove_xattr(ctx: &mut Ctx<'_>, flags: u32) -> Result<Reply, Errno> {
    let name = xattr_name(ctx, ctx.arg(1))?;
    on_object(ctx, CWD, ctx.arg(0), flags, Change::RemoveXattr { name })
}
fn removexattr(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    remove_xattr(ctx, 0)
}
fn lremovexattr(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    remove_xattr(ctx, NOFOLLOW)
}
