//! Changes through open fds (fchmod, fchown, and xattrs, which hold ACLs; fstatfs, which reports
//! the mount's flags). They are trapped to empty the fd cache first (a cached lookup must not
//! outlive a directory's search permission: reopening a cached handle checks the object, not the
//! directories above it). An fd the guest's kernel opened in the guest's read-only view (a
//! directory opened natively, a FIFO) would answer EROFS (and ST_RDONLY): those go to the gofer
//! by the fd's path, acting as the caller, as the same call by path would. The sentry makes the
//! other changes itself, on a copy of the fd (`view_attr.rs`): continued, the kernel would act on
//! whatever a sibling thread had put at that fd number by then, and an object handed in from
//! outside (a file the caller redirected output to) must not take the guest's changes.

use nix::errno::Errno;
use rvisor_protocol::{Loc, Request};

use super::fs_attr::{xattr_name, xattr_value};
use super::fs_path::{ask, bytes, value, view_fd_target};
use super::view_attr::{self, Change};
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

const NOFOLLOW: u32 = libc::AT_SYMLINK_NOFOLLOW as u32;

fn forget_lookups(ctx: &Ctx<'_>) {
    if let Some(gofer) = ctx.sandbox.gofer.as_ref() {
        gofer.cache.lock().clear();
    }
}

/// The guest's fd (argument 0) as an fd of the guest's view (its path in the tree), or None for
/// another (a bad fd is EBADF, before anything else is looked at, as the kernel).
fn fd_view<'a>(ctx: &Ctx<'a>) -> Result<Option<Loc<'a>>, Errno> {
    view_fd_target(ctx, ctx.arg(0) as i32, false)
}

/// Makes `change` on the guest's fd (argument 0), whose `view` [`fd_view`] gave: by the gofer
/// for an fd of the guest's view, by the sentry on a copy of it otherwise (an O_PATH handle:
/// EBADF, as the kernel).
fn through_fd(
    ctx: &mut Ctx<'_>,
    view: Option<Loc<'_>>,
    change: Change<'_>,
) -> Result<Reply, Errno> {
    match view {
        Some(at) => value(ask(ctx, &change.request(at, NOFOLLOW))?).map(Reply::Value),
        None => view_attr::at_fd(ctx, ctx.arg(0) as i32, change, false),
    }
}

fn fchmod(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    forget_lookups(ctx);
    let view = fd_view(ctx)?;
    through_fd(ctx, view, Change::Mode(ctx.arg(1) as u32 & 0o7777))
}

fn fchown(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    forget_lookups(ctx);
    let view = fd_view(ctx)?;
    let (uid, gid) = (ctx.arg(1) as u32, ctx.arg(2) as u32);
    through_fd(ctx, view, Change::Owner { uid, gid })
}

fn fsetxattr(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    forget_lookups(ctx);
    let view = fd_view(ctx)?;
    let (name, value, xflags) = xattr_value(ctx, ctx.arg(1), ctx.arg(2), ctx.arg(3), ctx.arg(4))?;
    let change = Change::SetXattr {
        name,
        value,
        xflags,
    };
    through_fd(ctx, view, change)
}

fn fremovexattr(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    forget_lookups(ctx);
    let view = fd_view(ctx)?;
    let name = xattr_name(ctx, ctx.arg(1))?;
    through_fd(ctx, view, Change::RemoveXattr { name })
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
