//! Questions about files: the stat family, access, readlink, statfs.

use nix::errno::Errno;
use rvisor_protocol::{Loc, Request};

use super::fs_path::{ask, ask_as, bytes, local_access, locate, value, with_cached, Target};
use super::{Action, Arg, Cond, Ctx, Def};
use crate::file_identity;
use crate::platform::Reply;

pub(super) const DEFS: &[Def] = &[
    Def {
        name: "stat",
        action: Action::Emulated(stat),
        args: &[Arg::Str, Arg::Ptr],
    },
    Def {
        name: "lstat",
        action: Action::Emulated(lstat),
        args: &[Arg::Str, Arg::Ptr],
    },
    Def {
        name: "newfstatat",
        // glibc's fstat is newfstatat(fd, "", AT_EMPTY_PATH): with that flag the call runs
        // natively. A path it names is then resolved in the guest's own read-only view of the
        // same tree, which confines it, and only metadata is read.
        action: Action::Guarded {
            allow_when: &[Cond::MaskedEq {
                arg: 3,
                mask: EMPTY,
                value: EMPTY,
            }],
            handler: newfstatat,
        },
        args: &[Arg::Int, Arg::Str, Arg::Ptr, Arg::Hex],
    },
    Def {
        name: "statx",
        action: Action::Guarded {
            allow_when: &[Cond::MaskedEq {
                arg: 2,
                mask: EMPTY,
                value: EMPTY,
            }],
            handler: statx,
        },
        args: &[Arg::Int, Arg::Str, Arg::Hex, Arg::Hex, Arg::Ptr],
    },
    Def {
        name: "access",
        action: Action::Emulated(access),
        args: &[Arg::Str, Arg::Int],
    },
    Def {
        name: "faccessat",
        action: Action::Emulated(faccessat),
        args: &[Arg::Int, Arg::Str, Arg::Int],
    },
    Def {
        name: "faccessat2",
        action: Action::Emulated(faccessat2),
        args: &[Arg::Int, Arg::Str, Arg::Int, Arg::Hex],
    },
    Def {
        name: "readlink",
        action: Action::Emulated(readlink),
        args: &[Arg::Str, Arg::Ptr, Arg::Int],
    },
    Def {
        name: "readlinkat",
        action: Action::Emulated(readlinkat),
        args: &[Arg::Int, Arg::Str, Arg::Ptr, Arg::Int],
    },
    Def {
        name: "statfs",
        action: Action::Emulated(statfs),
        args: &[Arg::Str, Arg::Ptr],
    },
];

const NOFOLLOW: u32 = libc::AT_SYMLINK_NOFOLLOW as u32;
const EMPTY: u64 = libc::AT_EMPTY_PATH as u64;

/// The statx of `at`, from a cached handle or the gofer, owners in guest terms.
pub(super) fn statx_of<'a>(ctx: &Ctx<'a>, at: Loc<'_>, flags: u32) -> Result<libc::statx, Errno> {
    if let Some(x) = with_cached(ctx, &at, flags & NOFOLLOW != 0, local_statx)? {
        return x.map(|x| ctx.sandbox.ids.to_guest_statx(x));
    }
    let raw = bytes(ask(
        ctx,
        &Request::Stat {
            at,
            flags: flags & NOFOLLOW,
        },
    )?)?;
    if raw.len() != std::mem::size_of::<libc::statx>() {
        return Err(Errno::EIO);
    }
    // SAFETY: the gofer sent exactly a kernel struct statx; read_unaligned copies it out.
    Ok(unsafe { std::ptr::read_unaligned(raw.as_ptr().cast()) })
}

/// The kernel's `new_encode_dev`, as `struct stat` carries device numbers.
fn encode_dev(major: u32, minor: u32) -> u64 {
    u64::from((minor & 0xff) | (major << 8) | ((minor & !0xff) << 12))
}

/// `struct stat` (x86_64, 144 bytes) from a statx.
fn to_stat(x: &libc::statx) -> [u8; 144] {
    let mut out = [0u8; 144];
    let mut put = |off: usize, v: &[u8]| out[off..off + v.len()].copy_from_slice(v);
    put(
        0,
        &encode_dev(x.stx_dev_major, x.stx_dev_minor).to_le_bytes(),
    );
    put(8, &x.stx_ino.to_le_bytes());
    put(16, &u64::from(x.stx_nlink).to_le_bytes());
    put(24, &u32::from(x.stx_mode).to_le_bytes());
    put(28, &x.stx_uid.to_le_bytes());
    put(32, &x.stx_gid.to_le_bytes());
    put(
        40,
        &encode_dev(x.stx_rdev_major, x.stx_rdev_minor).to_le_bytes(),
    );
    put(48, &x.stx_size.to_le_bytes());
    put(56, &i64::from(x.stx_blksize).to_le_bytes());
    put(64, &x.stx_blocks.to_le_bytes());
    for (i, t) in [x.stx_atime, x.stx_mtime, x.stx_ctime].iter().enumerate() {
        put(72 + 16 * i, &t.tv_sec.to_le_bytes());
        put(80 + 16 * i, &i64::from(t.tv_nsec).to_le_bytes());
    }
    out
}

fn stat_into(ctx: &mut Ctx<'_>, target: Target<'_>, flags: u32, buf: u64) -> Result<Reply, Errno> {
    match target {
        Target::Native | Target::Fd(_) => Ok(Reply::Continue),
        Target::Gofer(at) => {
            let x = statx_of(ctx, at, flags)?;
            ctx.guest.write(buf, &to_stat(&x))?;
            Ok(Reply::Value(0))
        }
    }
}

fn stat(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let t = locate(ctx, libc::AT_FDCWD, ctx.arg(0), 0)?;
    stat_into(ctx, t, 0, ctx.arg(1))
}

fn lstat(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let t = locate(ctx, libc::AT_FDCWD, ctx.arg(0), 0)?;
    stat_into(ctx, t, NOFOLLOW, ctx.arg(1))
}

/// The AT_ flags the stat calls take (the kernel's `vfs_statx`).
const STAT_FLAGS: u32 = (libc::AT_SYMLINK_NOFOLLOW
    | libc::AT_NO_AUTOMOUNT
    | libc::AT_EMPTY_PATH
    | libc::AT_STATX_SYNC_TYPE) as u32;
/// `STATX__RESERVED`: a mask bit no kernel will ever define.
const STATX_RESERVED: u32 = 0x8000_0000;

/// The kernel's checks of statx's flags and mask, made before the path is looked at.
fn check_statx_args(flags: u32, mask: u32) -> Result<(), Errno> {
    let sync = libc::AT_STATX_SYNC_TYPE as u32;
    if mask & STATX_RESERVED != 0 || flags & sync == sync || flags & !STAT_FLAGS != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// glibc's fstat is newfstatat(fd, "", AT_EMPTY_PATH): that one stays native.
fn newfstatat(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let flags = ctx.arg(3) as u32;
    if flags & !STAT_FLAGS != 0 {
        return Err(Errno::EINVAL);
    }
    let t = locate(ctx, ctx.arg(0) as i32, ctx.arg(1), flags)?;
    stat_into(ctx, t, flags, ctx.arg(2))
}

fn statx(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let flags = ctx.arg(2) as u32;
    check_statx_args(flags, ctx.arg(3) as u32)?;
    match locate(ctx, ctx.arg(0) as i32, ctx.arg(1), flags)? {
        Target::Native | Target::Fd(_) => Ok(Reply::Continue),
        Target::Gofer(at) => {
            let x = statx_of(ctx, at, flags)?;
            // SAFETY: statx is a kernel struct with explicit padding fields; viewing it as bytes
            // reads only initialised memory (it came from the gofer's bytes).
            let raw = unsafe {
                std::slice::from_raw_parts(
                    (&x as *const libc::statx).cast::<u8>(),
                    std::mem::size_of::<libc::statx>(),
                )
            };
            ctx.guest.write(ctx.arg(4), raw)?;
            Ok(Reply::Value(0))
        }
    }
}

fn access_at(
    ctx: &mut Ctx<'_>,
    dirfd: i32,
    addr: u64,
    mode: u32,
    flags: u32,
) -> Result<Reply, Errno> {
    if mode & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    match locate(ctx, dirfd, addr, flags)? {
        Target::Native | Target::Fd(_) => Ok(Reply::Continue),
        Target::Gofer(at) => {
            // Without AT_EACCESS the check is as the real ids (and capabilities only for a
            // real root): the cache checks as the file identity, so it serves only when the two
            // agree.
            let real = flags & libc::AT_EACCESS as u32 == 0
                && file_identity::real_differs(&ctx.sandbox.tasks.creds(ctx.trap.tid)?);
            if !real {
                if let Some(r) =
                    with_cached(ctx, &at, flags & NOFOLLOW != 0, |h| local_access(h, mode))?
                {
                    return r.map(Reply::Value);
                }
            }
            value(ask_as(
                ctx,
                &Request::Access { at, mode, flags },
                None,
                real,
            )?)
            .map(Reply::Value)
        }
    }
}

fn access(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    access_at(ctx, libc::AT_FDCWD, ctx.arg(0), ctx.arg(1) as u32, 0)
}

fn faccessat(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    access_at(ctx, ctx.arg(0) as i32, ctx.arg(1), ctx.arg(2) as u32, 0)
}

fn faccessat2(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    access_at(
        ctx,
        ctx.arg(0) as i32,
        ctx.arg(1),
        ctx.arg(2) as u32,
        ctx.arg(3) as u32,
    )
}

fn readlink_at(
    ctx: &mut Ctx<'_>,
    dirfd: i32,
    addr: u64,
    buf: u64,
    size: i64,
) -> Result<Reply, Errno> {
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    match locate(ctx, dirfd, addr, 0)? {
        Target::Native | Target::Fd(_) => Ok(Reply::Continue),
        Target::Gofer(at) => {
            let target = bytes(ask(ctx, &Request::Readlink { at })?)?;
            let n = target.len().min(size as usize);
            ctx.guest.write(buf, &target[..n])?;
            Ok(Reply::Value(n as i64))
        }
    }
}

fn readlink(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    readlink_at(
        ctx,
        libc::AT_FDCWD,
        ctx.arg(0),
        ctx.arg(1),
        ctx.arg(2) as i64,
    )
}

fn readlinkat(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    readlink_at(
        ctx,
        ctx.arg(0) as i32,
        ctx.arg(1),
        ctx.arg(2),
        ctx.arg(3) as i64,
    )
}

fn statfs(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    match locate(ctx, libc::AT_FDCWD, ctx.arg(0), 0)? {
        Target::Native | Target::Fd(_) => Ok(Reply::Continue),
        Target::Gofer(at) => {
            let raw = bytes(ask(ctx, &Request::Statfs { at })?)?;
            ctx.guest.write(ctx.arg(1), raw)?;
            Ok(Reply::Value(0))
        }
    }
}

/// statx of a cached handle (owners still in host terms).
fn local_statx(handle: &std::os::fd::OwnedFd) -> Result<libc::statx, Errno> {
    use std::os::fd::AsRawFd;
    // SAFETY: statx is plain data; the kernel fills it.
    let mut x: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: statx on our handle with an empty path writes into `x`, which we own.
    let rc = unsafe {
        libc::statx(
            handle.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_STATX_SYNC_AS_STAT,
            0x0fff,
            &mut x,
        )
    };
    if rc < 0 {
        return Err(Errno::last());
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statx_refuses_what_the_kernel_refuses() {
        let basic = libc::STATX_BASIC_STATS;
        assert_eq!(check_statx_args(0, basic), Ok(()));
        assert_eq!(check_statx_args(NOFOLLOW, basic), Ok(()));
        assert_eq!(check_statx_args(0, STATX_RESERVED), Err(Errno::EINVAL));
        let both = (libc::AT_STATX_FORCE_SYNC | libc::AT_STATX_DONT_SYNC) as u32;
        assert_eq!(check_statx_args(both, basic), Err(Errno::EINVAL));
        assert_eq!(check_statx_args(0x1000_0000, basic), Err(Errno::EINVAL));
    }
}
