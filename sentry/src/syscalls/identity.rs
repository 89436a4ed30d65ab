//! Calls that change a thread's credentials: the kernel makes the change (its rules for ids,
//! groups and capabilities, per thread), and the sentry forgets what it knew, reading the new
//! credentials from the status file on the thread's next call that needs them. Continuing rests
//! on nothing but the call number: the sentry decides nothing here, the kernel does.
//!
//! The getters are native.

use nix::errno::Errno;

use super::{Action, Arg, Ctx, Def};
use crate::platform::Reply;

/// A credential change: the kernel does it; the thread's credentials are read again after.
const fn changes(name: &'static str, args: &'static [Arg]) -> Def {
    Def {
        name,
        action: Action::Emulated(forget_then_continue),
        args,
    }
}

pub(super) const DEFS: &[Def] = &[
    changes("setuid", &[Arg::Int]),
    changes("setgid", &[Arg::Int]),
    changes("setreuid", &[Arg::Int, Arg::Int]),
    changes("setregid", &[Arg::Int, Arg::Int]),
    changes("setresuid", &[Arg::Int, Arg::Int, Arg::Int]),
    changes("setresgid", &[Arg::Int, Arg::Int, Arg::Int]),
    changes("setfsuid", &[Arg::Int]),
    changes("setfsgid", &[Arg::Int]),
    changes("setgroups", &[Arg::Int, Arg::Ptr]),
    changes("capset", &[Arg::Ptr, Arg::Ptr]),
];

/// The calls above, which continue on their number alone.
pub const CHANGES_CREDS: &[&str] = &[
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setfsuid",
    "setfsgid",
    "setgroups",
    "capset",
];

fn forget_then_continue(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    ctx.sandbox.tasks.forget_creds(ctx.trap.tid);
    Ok(Reply::Continue)
}

/// Real, effective, saved and filesystem ids of one kind (uid or gid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    /// Real id.
    pub real: u32,
    /// Effective id.
    pub effective: u32,
    /// Saved set-id.
    pub saved: u32,
    /// Filesystem id.
    pub fs: u32,
}

impl Ids {
    /// All four set to `id` (for `Creds::new`, in tests).
    #[cfg(test)]
    pub(crate) const fn all(id: u32) -> Self {
        Ids {
            real: id,
            effective: id,
            saved: id,
            fs: id,
        }
    }
}
