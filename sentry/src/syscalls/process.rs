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

/// What `clone` may not do natively: create namespaces, or (`CLONE_UNTRACED`) start a child the
/// ptrace platform's tracer would not be attached to.
const CLONE_TRAPPED_FLAGS: u64 = NAMESPACE_FLAGS | libc::CLONE_UNTRACED as u64;

pub(super) const DEFS: &[Def] = &[
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
                mask: CLONE_TRAPPED_FLAGS,
                value: 0,
            }],
            handler: clone,
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
        args: &[Arg::Ptr, Arg::Hex],
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

fn getppid(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    Ok(Reply::Value(i64::from(
        ctx.sandbox.tasks.ids(ctx.trap.tid)?.ns_ppid,
    )))
}

/// Reached only for namespace bits or CLONE_UNTRACED (the filter lets the rest through).
/// Both are refused (EPERM); the decision reads the flags register only. The ptrace platform
/// strips CLONE_UNTRACED before any handler runs. On seccomp-notify a container's init is
/// traced by the sentry's exit watch (PTRACE_O_TRACECLONE): an untraced thread that execs would
/// become an init the sentry no longer holds.
fn clone(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    if ctx.arg(0) & CLONE_TRAPPED_FLAGS != 0 {
        return ctx.refuse(Errno::EPERM);
    }
    Ok(Reply::Continue)
}

/// unshare: reached only with namespace bits set.
fn deny_namespaces(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    ctx.refuse(Errno::EPERM)
}

/// clone3 keeps its flags in guest memory, where a sibling thread can change them after any
/// check, so it is never continued: it fails with ENOSYS (as Docker's default profile makes it),
/// and glibc, musl and Go fall back to clone, whose flags are a register the filter checks.
/// Not logged as a denial: every thread creation tries it first.
fn clone3(_ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    Err(Errno::ENOSYS)
}

/// The sandbox's init holds a parent-death signal that ties it to the sentry: the guest must not
/// clear it. Everyone else's request runs natively.
fn set_pdeathsig(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    if ctx.sandbox.tasks.ids(ctx.trap.tid)?.ns_tgid == 1 {
        return Ok(Reply::Value(0));
    }
    Ok(Reply::Continue)
}
