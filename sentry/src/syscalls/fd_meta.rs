//! Permission changes on open fds (fchmod, fchown, and xattrs, which hold ACLs): the kernel makes
//! them, on the caller's own fd, as it would natively. They are trapped only to empty the fd
//! cache first: a cached lookup must not outlive a directory's search permission (reopening a
//! cached handle checks the object, not the directories above it).

use nix::errno::Errno;

use super::{Action, Arg, Ctx, Def};
use crate::platform::Reply;

pub(super) const DEFS: &[Def] = &[
    Def {
        name: "fchmod",
        action: Action::Emulated(forget_lookups),
        args: &[Arg::Int, Arg::Hex],
    },
    Def {
        name: "fchown",
        action: Action::Emulated(forget_lookups),
        args: &[Arg::Int, Arg::Int, Arg::Int],
    },
    Def {
        name: "fsetxattr",
        action: Action::Emulated(forget_lookups),
        args: &[Arg::Int, Arg::Str, Arg::Ptr, Arg::Int, Arg::Hex],
    },
    Def {
        name: "fremovexattr",
        action: Action::Emulated(forget_lookups),
        args: &[Arg::Int, Arg::Str],
    },
];

/// The calls above, which continue on their number alone.
pub const CHANGES_PERMISSIONS: &[&str] = &["fchmod", "fchown", "fsetxattr", "fremovexattr"];

fn forget_lookups(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    if let Some(gofer) = ctx.sandbox.gofer.as_ref() {
        gofer.cache.lock().clear();
    }
    Ok(Reply::Continue)
}
