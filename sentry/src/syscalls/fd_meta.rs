//! Changes through open fds (fchmod, fchown, and xattrs, which hold ACLs; fstatfs, which reports
//! the mount's flags). The kernel makes them, on the caller's own fd, as it would natively. They
//! are trapped to empty the fd cache first (a cached lookup must not outlive a directory's search
//! permission: reopening a cached handle checks the object, not the directories above it), and
//! because an fd the guest's kernel opened in the guest's read-only view (a directory opened
//! natively, a FIFO) would answer EROFS (and ST_RDONLY): those go to the gofer by the fd's path,
//! acting as the caller, as the same call by path would.

use nix::errno::Errno;
use rvisor_protocol::Request;

use super::fs_path::{ask, bytes, value, view_fd_target};
use super::{Action, Arg, Ctx, Def};
use crate::platform::Reply;

pub(super) const DEFS: &[Def] = &[
    Def {
        name: "fchmod",
        action: Action::Emulated(fchmod),
        args: &[Arg::Int, Arg::Hex],
    },
    Def {
        name: "fchown",
        action: Action::Emulated(fchown),
        args: &[Arg::Int, Arg::Int, Arg::Int],
    },
    Def {
        name: "fsetxattr",
        action: Action::Emulated(fsetxattr),
        args: &[Arg::Int, Arg::Str, Arg::Ptr, Arg::Int, Arg::Hex],
    },
    Def {
        name: "fremovexattr",
        action: Action::Emulated(fremovexattr),
        args: &[Arg::Int, Arg::Str],
    },
    Def {
        name: "fstatfs",
        action: Action::Emulated(fstatfs),
        args: &[Arg::Int, Arg::Ptr],
    },
];

/// The calls above, which continue on their registers alone.
pub const CHANGES_PERMISSIONS: &[&str] =
    &["fchmod", "fchown", "fsetxattr", "fremovexattr", "fstatfs"];

const NOFOLLOW: u32 = libc::AT_SYMLINK_NOFOLLOW as u32;

fn forget_lookups(ctx: &Ctx<'_>) {
    if let Some(gofer) = ctx.sandbox.gofer.as_ref() {
        gofer.cache.lock().clear();
    }
}

/// Runs `op` on the gofer for an fd of the guest's view; lets the kernel act on the rest.
fn through_fd(
    ctx: &mut Ctx<'_>,
    op: impl FnOnce(&Ctx<'_>, rvisor_protocol::Loc<'_>) -> Result<Reply, Errno>,
) -> Result<Reply, Errno> {
    forget_lookups(ctx);
    match view_fd_target(ctx, ctx.arg(0) as i32, false) {
        Ok(Some(at)) => op(ctx, at),
        // Bad fds and everything else: the kernel's answer.
        Ok(None) | Err(_) => Ok(Reply::Continue),
    }
}

fn done(ctx: &Ctx<'_>, req: &Request<'_>) -> Result<Reply, Errno> {
    value(ask(ctx, req)?).map(Reply::Value)
}

fn fchmod(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let mode = ctx.arg(1) as u32 & 0o7777;
    through_fd(ctx, |ctx, at| {
        done(
            ctx,
            &Request::Chmod {
                at,
                mode,
                flags: NOFOLLOW,
            },
        )
    })
}

fn fchown(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let (uid, gid) = (ctx.arg(1) as u32, ctx.arg(2) as u32);
    through_fd(ctx, |ctx, at| {
        done(
            ctx,
            &Request::Chown {
                at,
                uid,
                gid,
                flags: NOFOLLOW,
            },
        )
    })
}

fn fsetxattr(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    through_fd(ctx, |ctx, at| {
        super::fs_attr::set_xattr_at(ctx, at, ctx.arg(1), ctx.arg(2), ctx.arg(3), ctx.arg(4))
    })
}

fn fremovexattr(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    through_fd(ctx, |ctx, at| {
        super::fs_attr::remove_xattr_at(ctx, at, ctx.arg(1))
    })
}

fn fstatfs(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    // No cached lookup to forget (nothing changes), and O_PATH handles are the kernel's too.
    match view_fd_target(ctx, ctx.arg(0) as i32, true) {
        Ok(Some(at)) => {
            let raw = bytes(ask(ctx, &Request::Statfs { at })?)?;
            ctx.guest.write(ctx.arg(1), raw)?;
            Ok(Reply::Value(0))
        }
        Ok(None) | Err(_) => Ok(Reply::Continue),
    }
}
