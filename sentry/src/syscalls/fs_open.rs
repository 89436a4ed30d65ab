//! open, openat, openat2, creat: the gofer opens, the sentry installs the fd in the guest.

use nix::errno::Errno;
use rvisor_protocol::Request;

use super::fs_misc::same_directory;
use super::fs_path::{
    ask, cached_open, fd_dir, guest_fd, locate_path, locate_path_for_kernel, reopened_fd, umask,
    Target,
};
use super::pseudo;
use super::{Action, Arg, Cond, Ctx, Def};
use crate::gofer_client::Answer;
use crate::guest::MAX_STRING;
use crate::platform::Reply;

pub(super) const DEFS: &[Def] = &[
    // An open for reading that creates and truncates nothing (a regular file, a directory, a
    // FIFO) runs natively: the guest's kernel resolves it in the guest's own view of the tree
    // and checks the guest's own credentials. What it returns is an fd of that read-only view,
    // on the same inode the gofer would open; changes made through it (fchmod, fchown,
    // fsetxattr, futimens, fstatfs's flags) are redirected to the gofer by path (`fd_meta.rs`),
    // and so is reopening it for writing through its proc link (`reopen`). O_PATH
    // opens trap (their start is checked below).
    Def {
        name: "open",
        action: Action::Guarded {
            allow_when: &[Cond::Confined {
                confined: &for_reading(1),
                otherwise: &directory_for_reading(1),
            }],
            handler: open,
        },
        args: &[Arg::Str, Arg::Hex, Arg::Hex],
    },
    Def {
        name: "openat",
        action: Action::Guarded {
            allow_when: &[Cond::Confined {
                confined: &for_reading(2),
                otherwise: &directory_for_reading(2),
            }],
            handler: openat,
        },
        args: &[Arg::Int, Arg::Str, Arg::Hex, Arg::Hex],
    },
    Def {
        name: "openat2",
        action: Action::Emulated(openat2),
        args: &[Arg::Int, Arg::Str, Arg::Ptr, Arg::Int],
    },
    Def {
        name: "creat",
        action: Action::Emulated(creat),
        args: &[Arg::Str, Arg::Hex],
    },
];

/// The open flags in argument `arg` ask for reading only (O_ACCMODE 0; 3, "no access", needs
/// write permission), creating and truncating nothing (O_TMPFILE is excluded by its own bit),
/// and no O_PATH handle.
const fn for_reading(arg: u8) -> Cond {
    Cond::MaskedEq {
        arg,
        mask: (libc::O_ACCMODE | libc::O_CREAT | libc::O_TRUNC | libc::O_PATH) as u64
            | O_TMPFILE_BIT,
        value: libc::O_RDONLY as u64,
    }
}

/// The open flags in argument `arg` ask for a directory, read-only, creating and truncating
/// nothing (O_TMPFILE, which includes O_DIRECTORY's bit, is excluded by its own bit), and no
/// O_PATH handle: where the guest is not held to its root by Landlock, only directories open
/// natively (a directory fd from outside is disarmed at start; a magic link to a file is not).
const fn directory_for_reading(arg: u8) -> Cond {
    Cond::MaskedEq {
        arg,
        mask: (libc::O_ACCMODE | libc::O_CREAT | libc::O_TRUNC | libc::O_DIRECTORY | libc::O_PATH)
            as u64
            | O_TMPFILE_BIT,
        value: libc::O_DIRECTORY as u64,
    }
}

/// `struct open_how`.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

// SAFETY: three u64s in repr(C): no padding, any bit pattern.
unsafe impl crate::guest::Pod for OpenHow {}

fn open_at(
    ctx: &mut Ctx<'_>,
    dirfd: i32,
    addr: u64,
    flags: u32,
    mode: u32,
    resolve: u64,
) -> Result<Reply, Errno> {
    let path = ctx.guest.read_cstr(ctx.arena, addr, MAX_STRING)?;
    let opath = flags & libc::O_PATH as u32 != 0;
    if !opath {
        if let Some(fd) = reopened_fd(ctx, dirfd, path)? {
            match reopen(ctx, fd, flags)? {
                Reopen::Native => {}
                Reopen::InTree(at) => return open_in_tree(ctx, at, flags, mode, resolve),
                Reopen::Refused => return ctx.refuse(Errno::EACCES),
            }
        }
    }
    let at = match locate_path(ctx, dirfd, path, 0)? {
        // O_PATH handles cannot be injected (ADDFD refuses them) and grant no access: the guest's
        // kernel makes them in its read-only view, where reopening one for writing fails. The
        // kernel resolves the path again from the caller's real directory: that must be the one
        // the lookup started from (a directory fd handed in from outside the root is not), and
        // no fd link may lead it elsewhere; reopening a handle made outside through
        // `/proc/self/fd/N` would read the outside file.
        Target::Gofer(at) if opath => {
            locate_path_for_kernel(ctx, dirfd, path, 0, false)?;
            if at.path.first() != Some(&b'/')
                && dirfd != libc::AT_FDCWD
                && !same_directory(ctx, dirfd, at.base)?
            {
                return ctx.refuse(Errno::EACCES);
            }
            return Ok(Reply::Continue);
        }
        Target::Gofer(at) => at,
        // The caller's own comm and mem, which the read-only /proc would refuse to write.
        Target::Native if !opath && flags & libc::O_ACCMODE as u32 != libc::O_RDONLY as u32 => {
            return Ok(pseudo::open_own(ctx, dirfd, path, flags)?.unwrap_or(Reply::Continue));
        }
        Target::Native | Target::Fd(_) => return Ok(Reply::Continue),
    };
    open_in_tree(ctx, at, flags, mode, resolve)
}

/// What a reopen of the caller's own fd through `/proc/<pid>/fd/N` may do.
enum Reopen<'a> {
    /// Within the access the descriptor grants (or an O_PATH handle's): the kernel reopens it.
    Native,
    /// Wider, of an object in the tree: the gofer opens it by its path, as the caller.
    InTree(rvisor_protocol::Loc<'a>),
    /// Wider, of anything else (a file handed in from outside is the descriptor the caller
    /// gave, not the inode: a read-only stdin must not become writable).
    Refused,
}

/// Whether opening with `want` asks for more than a descriptor with status flags `have` grants.
fn widens(have: i32, want: u32) -> bool {
    let acc = |f: i32| f & libc::O_ACCMODE;
    let reads = |a: i32| a == libc::O_RDONLY || a == libc::O_RDWR;
    let writes = |a: i32| a == libc::O_WRONLY || a == libc::O_RDWR;
    let want_acc = acc(want as i32);
    (writes(want_acc) && !writes(acc(have)))
        || (reads(want_acc) && !reads(acc(have)))
        || (want & libc::O_TRUNC as u32 != 0 && !writes(acc(have)))
        || (have & libc::O_APPEND != 0 && writes(want_acc) && want & libc::O_APPEND as u32 == 0)
}

fn reopen<'a>(ctx: &Ctx<'a>, fd: i32, flags: u32) -> Result<Reopen<'a>, Errno> {
    let copy = guest_fd(ctx, fd)?;
    let have = nix::fcntl::fcntl(
        std::os::fd::AsRawFd::as_raw_fd(&copy),
        nix::fcntl::FcntlArg::F_GETFL,
    )?;
    if have & libc::O_PATH != 0 || !widens(have, flags) {
        return Ok(Reopen::Native);
    }
    let Ok(link) = fd_dir(ctx, fd) else {
        return Ok(Reopen::Refused);
    };
    Ok(match locate_path(ctx, libc::AT_FDCWD, link, 0)? {
        Target::Gofer(at) if same_directory(ctx, fd, link)? => Reopen::InTree(at),
        _ => Reopen::Refused,
    })
}

/// An open the gofer (or the fd cache) serves.
fn open_in_tree(
    ctx: &mut Ctx<'_>,
    at: rvisor_protocol::Loc<'_>,
    flags: u32,
    mode: u32,
    resolve: u64,
) -> Result<Reply, Errno> {
    let creates = flags & libc::O_CREAT as u32 != 0
        || flags & libc::O_TMPFILE as u32 == libc::O_TMPFILE as u32;
    let mode = if creates {
        mode & !umask(ctx) & 0o7777
    } else {
        0
    };
    let cloexec = flags & libc::O_CLOEXEC as u32 != 0;
    // (O_TMPFILE's value includes O_DIRECTORY's bit: `creates` tests for all of it.)
    if resolve == 0 && !creates {
        if let Some(fd) = cached_open(ctx, &at, flags)? {
            return ctx.give_fd(fd, cloexec);
        }
    }
    match ask(
        ctx,
        &Request::Open {
            at,
            flags,
            mode,
            resolve,
        },
    )? {
        Answer::Fd(fd) => ctx.give_fd(fd, cloexec),
        // A FIFO: the guest's kernel opens it (and may block), in the guest's read-only view.
        Answer::Native => Ok(Reply::Continue),
        _ => Err(Errno::EIO),
    }
}

fn open(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let (path, flags, mode) = (ctx.arg(0), ctx.arg(1) as u32, ctx.arg(2) as u32);
    open_at(ctx, libc::AT_FDCWD, path, flags, mode, 0)
}

fn openat(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let (dirfd, path, flags, mode) = (
        ctx.arg(0) as i32,
        ctx.arg(1),
        ctx.arg(2) as u32,
        ctx.arg(3) as u32,
    );
    open_at(ctx, dirfd, path, flags, mode, 0)
}

fn openat2(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let (dirfd, path, how_addr, size) = (ctx.arg(0) as i32, ctx.arg(1), ctx.arg(2), ctx.arg(3));
    if size < std::mem::size_of::<OpenHow>() as u64 {
        return Err(Errno::EINVAL);
    }
    // As the kernel: a `how` larger than a page is refused (and any extension must be zero,
    // which the kernel checks again when the gofer opens).
    if size > 4096 {
        return Err(Errno::E2BIG);
    }
    let how: OpenHow = ctx.guest.read_value(how_addr)?;
    check_how(&how)?;
    open_at(
        ctx,
        dirfd,
        path,
        how.flags as u32,
        how.mode as u32,
        how.resolve,
    )
}

/// The flags openat2 knows (the kernel's `VALID_OPEN_FLAGS`): unlike open's, its unknown bits
/// are errors.
const VALID_OPEN_FLAGS: u64 = (libc::O_ACCMODE
    | libc::O_CREAT
    | libc::O_EXCL
    | libc::O_NOCTTY
    | libc::O_TRUNC
    | libc::O_APPEND
    | libc::O_NONBLOCK
    | libc::O_SYNC
    | libc::O_DSYNC
    | libc::O_ASYNC
    | libc::O_DIRECT
    | libc::O_LARGEFILE
    | libc::O_DIRECTORY
    | libc::O_NOFOLLOW
    | libc::O_NOATIME
    | libc::O_CLOEXEC
    | libc::O_PATH
    | libc::O_TMPFILE) as u64;
/// `RESOLVE_NO_XDEV` .. `RESOLVE_CACHED`.
const VALID_RESOLVE_FLAGS: u64 = 0x3f;
const RESOLVE_BENEATH: u64 = 0x08;
const RESOLVE_IN_ROOT: u64 = 0x10;
/// `__O_TMPFILE`, the bit of O_TMPFILE that is not O_DIRECTORY.
const O_TMPFILE_BIT: u64 = (libc::O_TMPFILE & !libc::O_DIRECTORY) as u64;

/// openat2's checks of `how` (the kernel's `build_open_flags`), in its order: unknown open
/// or resolve flags, both scoping flags, then a mode only where a file is created (and only
/// permission bits there).
fn check_how(how: &OpenHow) -> Result<(), Errno> {
    let creates = how.flags & (libc::O_CREAT as u64 | O_TMPFILE_BIT) != 0;
    if how.flags > u64::from(u32::MAX)
        || how.flags & !VALID_OPEN_FLAGS != 0
        || how.resolve & !VALID_RESOLVE_FLAGS != 0
        || how.resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT) == RESOLVE_BENEATH | RESOLVE_IN_ROOT
        || (creates && how.mode & !0o7777 != 0)
        || (!creates && how.mode != 0)
    {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

fn creat(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let (path, mode) = (ctx.arg(0), ctx.arg(1) as u32);
    let flags = (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u32;
    open_at(ctx, libc::AT_FDCWD, path, flags, mode, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openat2_refuses_what_the_kernel_refuses() {
        let how = |flags: i32, mode, resolve| OpenHow {
            flags: flags as u64,
            mode,
            resolve,
        };
        assert_eq!(check_how(&how(libc::O_RDONLY, 0, 0)), Ok(()));
        assert_eq!(check_how(&how(libc::O_CREAT, 0o644, 0x08)), Ok(()));
        assert_eq!(
            check_how(&how(libc::O_TMPFILE | libc::O_RDWR, 0o600, 0)),
            Ok(())
        );
        assert_eq!(check_how(&how(0, 0, 0x80)), Err(Errno::EINVAL));
        assert_eq!(check_how(&how(0, 0, 0x18)), Err(Errno::EINVAL));
        assert_eq!(check_how(&how(0, 0o644, 0)), Err(Errno::EINVAL));
        assert_eq!(
            check_how(&how(libc::O_CREAT, 0o10644, 0)),
            Err(Errno::EINVAL)
        );
        assert_eq!(check_how(&how(1 << 30, 0, 0)), Err(Errno::EINVAL));
    }
}
