//! Questions about files: access and statfs. The stat family, readlink and the xattr getters run
//! natively (see `native.rs`): the guest's kernel answers them in the guest's view of the tree.

use nix::errno::Errno;
use rvisor_protocol::{Loc, Request};

use super::fs_path::{ask, ask_as, bytes, local_access, locate, value, with_cached, Target};
use super::{Action, Arg, Cond, Ctx, Def};
use crate::file_identity;
use crate::platform::Reply;

pub(super) const DEFS: &[Def] = &[
    // access(2) and faccessat: without W_OK they run natively. The guest's kernel checks the
    // guest's own credentials against the object, in the guest's view of the same tree, which is
    // Linux's exact answer; only a write check differs there (the view is read-only: EROFS), so
    // that one is trapped and answered for the tree.
    Def {
        name: "access",
        action: Action::Guarded {
            allow_when: &[NO_WRITE_CHECK_ARG1],
            handler: access,
        },
        args: &[Arg::Str, Arg::Int],
    },
    Def {
        name: "faccessat",
        action: Action::Guarded {
            allow_when: &[NO_WRITE_CHECK_ARG2],
            handler: faccessat,
        },
        args: &[Arg::Int, Arg::Str, Arg::Int],
    },
    Def {
        name: "faccessat2",
        action: Action::Guarded {
            allow_when: &[NO_WRITE_CHECK_ARG2],
            handler: faccessat2,
        },
        args: &[Arg::Int, Arg::Str, Arg::Int, Arg::Hex],
    },
    Def {
        name: "statfs",
        action: Action::Emulated(statfs),
        args: &[Arg::Str, Arg::Ptr],
    },
];

/// `W_OK`.
const W_OK: u64 = 2;
/// The access mode (argument 1) asks no write check.
const NO_WRITE_CHECK_ARG1: Cond = Cond::MaskedEq {
    arg: 1,
    mask: W_OK,
    value: 0,
};
/// The access mode (argument 2) asks no write check.
const NO_WRITE_CHECK_ARG2: Cond = Cond::MaskedEq {
    arg: 2,
    mask: W_OK,
    value: 0,
};

const NOFOLLOW: u32 = libc::AT_SYMLINK_NOFOLLOW as u32;

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
            let real =
                flags & libc::AT_EACCESS as u32 == 0 && file_identity::real_differs(&ctx.creds()?);
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
