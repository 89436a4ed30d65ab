//! Process ids, process creation and namespace control, exec.

use nix::errno::Errno;

use super::{Action, Arg, Cond, Ctx, Def};
use crate::platform::Reply;

/// Every `CLONE_NEW*` bit (and `CLONE_NEWTIME`, whose bit is shared with CSIGNAL's range in
/// `unshare` only). A guest may not create namespaces: they are namespace control.
pub const NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWTIME) as u64;

/// `struct clone_args` up to and including `flags` (its first field).
const CLONE_ARGS_SIZE_VER0: u64 = 64;

pub(super) const DEFS: &[Def] = &[
    Def {
        name: "getpid",
        action: Action::Emulated(getpid),
        args: &[],
    },
    Def {
        name: "gettid",
        action: Action::Emulated(gettid),
        args: &[],
    },
    Def {
        name: "getppid",
        action: Action::Emulated(getppid),
        args: &[],
    },
    Def {
        name: "clone",
        action: Action::Guarded {
            allow_when: &[Cond::MaskedEq {
                arg: 0,
                mask: NAMESPACE_FLAGS,
                value: 0,
            }],
            handler: deny_namespaces,
        },
        args: &[Arg::Hex, Arg::Ptr, Arg::Ptr, Arg::Ptr, Arg::Hex],
    },
    Def {
        name: "unshare",
        action: Action::Guarded {
            allow_when: &[Cond::MaskedEq {
                arg: 0,
                mask: NAMESPACE_FLAGS,
                value: 0,
            }],
            handler: deny_namespaces,
        },
        args: &[Arg::Hex],
    },
    Def {
        name: "clone3",
        action: Action::Emulated(clone3),
        args: &[Arg::Ptr, Arg::Int],
    },
    Def {
        name: "prctl",
        action: Action::Guarded {
            allow_when: &[Cond::Ne {
                arg: 0,
                value: libc::PR_SET_PDEATHSIG as u64,
            }],
            handler: set_pdeathsig,
        },
        args: &[Arg::Int, Arg::Hex, Arg::Hex, Arg::Hex, Arg::Hex],
    },
];

fn getpid(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    Ok(Reply::Value(i64::from(
        ctx.sandbox.tasks.ids(ctx.trap.tid)?.ns_tgid,
    )))
}

fn gettid(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    Ok(Reply::Value(i64::from(
        ctx.sandbox.tasks.ids(ctx.trap.tid)?.ns_tid,
    )))
}

fn getppid(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    Ok(Reply::Value(i64::from(
        ctx.sandbox.tasks.ids(ctx.trap.tid)?.ns_ppid,
    )))
}

/// Reached only when the namespace bits are set (the filter lets the rest through).
fn deny_namespaces(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    ctx.refuse(Errno::EPERM)
}

/// clone3 keeps its flags in memory, out of the filter's reach: read them and let the call go on
/// when they create no namespace. A racing thread that sets namespace bits after the check gains
/// nothing: the filter is inherited and mount, setns and pivot_root stay denied in there too.
fn clone3(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    if ctx.arg(1) < CLONE_ARGS_SIZE_VER0 {
        return Err(Errno::EINVAL);
    }
    let flags: u64 = ctx.guest.read_value(ctx.arg(0))?;
    if flags & NAMESPACE_FLAGS != 0 {
        return ctx.refuse(Errno::EPERM);
    }
    Ok(Reply::Continue)
}

/// The sandbox's init holds a parent-death signal that ties it to the sentry: the guest must not
/// clear it. Everyone else's request runs natively.
fn set_pdeathsig(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    if ctx.sandbox.tasks.ids(ctx.trap.tid)?.ns_tgid == 1 {
        return Ok(Reply::Value(0));
    }
    Ok(Reply::Continue)
}
