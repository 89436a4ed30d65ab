//! The uid/gid family, serviced from the sandbox's own credentials.
//!
//! The guest's host identity never changes; what it sees and sets is the sandbox identity, kept
//! per process by the sentry with Linux's rules (an euid of 0 stands for CAP_SETUID/CAP_SETGID).

use nix::errno::Errno;

use super::{Action, Arg, Ctx, Def};
use crate::guest::Guest;
use crate::platform::Reply;
use crate::task::Creds;

/// Linux's NGROUPS_MAX.
const NGROUPS_MAX: usize = 65536;
/// `(uid_t)-1`: "leave unchanged".
const KEEP: u32 = u32::MAX;

pub(super) const DEFS: &[Def] = &[
    Def {
        name: "getuid",
        action: Action::Emulated(getuid),
        args: &[],
    },
    Def {
        name: "geteuid",
        action: Action::Emulated(geteuid),
        args: &[],
    },
    Def {
        name: "getgid",
        action: Action::Emulated(getgid),
        args: &[],
    },
    Def {
        name: "getegid",
        action: Action::Emulated(getegid),
        args: &[],
    },
    Def {
        name: "getresuid",
        action: Action::Emulated(getresuid),
        args: &[Arg::Ptr, Arg::Ptr, Arg::Ptr],
    },
    Def {
        name: "getresgid",
        action: Action::Emulated(getresgid),
        args: &[Arg::Ptr, Arg::Ptr, Arg::Ptr],
    },
    Def {
        name: "getgroups",
        action: Action::Emulated(getgroups),
        args: &[Arg::Int, Arg::Ptr],
    },
    Def {
        name: "setgroups",
        action: Action::Emulated(setgroups),
        args: &[Arg::Int, Arg::Ptr],
    },
    Def {
        name: "setuid",
        action: Action::Emulated(setuid),
        args: &[Arg::Int],
    },
    Def {
        name: "setgid",
        action: Action::Emulated(setgid),
        args: &[Arg::Int],
    },
    Def {
        name: "setreuid",
        action: Action::Emulated(setreuid),
        args: &[Arg::Int, Arg::Int],
    },
    Def {
        name: "setregid",
        action: Action::Emulated(setregid),
        args: &[Arg::Int, Arg::Int],
    },
    Def {
        name: "setresuid",
        action: Action::Emulated(setresuid),
        args: &[Arg::Int, Arg::Int, Arg::Int],
    },
    Def {
        name: "setresgid",
        action: Action::Emulated(setresgid),
        args: &[Arg::Int, Arg::Int, Arg::Int],
    },
    Def {
        name: "setfsuid",
        action: Action::Emulated(setfsuid),
        args: &[Arg::Int],
    },
    Def {
        name: "setfsgid",
        action: Action::Emulated(setfsgid),
        args: &[Arg::Int],
    },
];

fn creds(ctx: &Ctx<'_>) -> Result<Creds, Errno> {
    ctx.sandbox.tasks.creds(ctx.trap.tid)
}

fn value(v: u32) -> Result<Reply, Errno> {
    Ok(Reply::Value(i64::from(v)))
}

fn getuid(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    value(creds(ctx)?.uid.real)
}
fn geteuid(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    value(creds(ctx)?.uid.effective)
}
fn getgid(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    value(creds(ctx)?.gid.real)
}
fn getegid(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    value(creds(ctx)?.gid.effective)
}

fn write_res(ctx: &Ctx<'_>, ids: &Ids) -> Result<Reply, Errno> {
    for (i, v) in [ids.real, ids.effective, ids.saved].iter().enumerate() {
        ctx.guest.write_value(ctx.arg(i), v)?;
    }
    Ok(Reply::Value(0))
}

fn getresuid(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let c = creds(ctx)?;
    write_res(ctx, &c.uid)
}
fn getresgid(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let c = creds(ctx)?;
    write_res(ctx, &c.gid)
}

fn getgroups(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let c = creds(ctx)?;
    let groups = c.groups();
    let size = ctx.arg(0) as i32;
    if size < 0 {
        return Err(Errno::EINVAL);
    }
    if size == 0 {
        return Ok(Reply::Value(groups.len() as i64));
    }
    if (size as usize) < groups.len() {
        return Err(Errno::EINVAL);
    }
    for (i, g) in groups.iter().enumerate() {
        ctx.guest
            .write_value(Guest::offset(ctx.arg(1), 4 * i as u64)?, g)?;
    }
    Ok(Reply::Value(groups.len() as i64))
}

fn setgroups(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let n = ctx.arg(0) as i32;
    if n < 0 || n as usize > NGROUPS_MAX {
        return Err(Errno::EINVAL);
    }
    let list = ctx.arena.alloc_slice_fill_copy(n as usize, 0u32);
    for (i, slot) in list.iter_mut().enumerate() {
        *slot = ctx
            .guest
            .read_value(Guest::offset(ctx.arg(1), 4 * i as u64)?)?;
    }
    ctx.sandbox
        .tasks
        .update_creds(ctx.trap.tid, |c| c.set_groups(list))?;
    Ok(Reply::Value(0))
}

fn id_arg(ctx: &Ctx<'_>, i: usize) -> u32 {
    ctx.arg(i) as u32
}

fn setuid(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let u = id_arg(ctx, 0);
    ctx.sandbox.tasks.update_creds(ctx.trap.tid, |c| {
        let privileged = c.privileged();
        c.uid.set_id(u, privileged)
    })?;
    Ok(Reply::Value(0))
}
fn setgid(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let g = id_arg(ctx, 0);
    ctx.sandbox.tasks.update_creds(ctx.trap.tid, |c| {
        let privileged = c.privileged();
        c.gid.set_id(g, privileged)
    })?;
    Ok(Reply::Value(0))
}
fn setreuid(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let (r, e) = (id_arg(ctx, 0), id_arg(ctx, 1));
    ctx.sandbox.tasks.update_creds(ctx.trap.tid, |c| {
        let privileged = c.privileged();
        c.uid.set_re(r, e, privileged)
    })?;
    Ok(Reply::Value(0))
}
fn setregid(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let (r, e) = (id_arg(ctx, 0), id_arg(ctx, 1));
    ctx.sandbox.tasks.update_creds(ctx.trap.tid, |c| {
        let privileged = c.privileged();
        c.gid.set_re(r, e, privileged)
    })?;
    Ok(Reply::Value(0))
}
fn setresuid(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let (r, e, s) = (id_arg(ctx, 0), id_arg(ctx, 1), id_arg(ctx, 2));
    ctx.sandbox.tasks.update_creds(ctx.trap.tid, |c| {
        let privileged = c.privileged();
        c.uid.set_res(r, e, s, privileged)
    })?;
    Ok(Reply::Value(0))
}
fn setresgid(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let (r, e, s) = (id_arg(ctx, 0), id_arg(ctx, 1), id_arg(ctx, 2));
    ctx.sandbox.tasks.update_creds(ctx.trap.tid, |c| {
        let privileged = c.privileged();
        c.gid.set_res(r, e, s, privileged)
    })?;
    Ok(Reply::Value(0))
}
fn setfsuid(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let f = id_arg(ctx, 0);
    let old = ctx.sandbox.tasks.update_creds(ctx.trap.tid, |c| {
        let privileged = c.privileged();
        Ok(c.uid.set_fs(f, privileged))
    })?;
    value(old)
}
fn setfsgid(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let f = id_arg(ctx, 0);
    let old = ctx.sandbox.tasks.update_creds(ctx.trap.tid, |c| {
        let privileged = c.privileged();
        Ok(c.gid.set_fs(f, privileged))
    })?;
    value(old)
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
    /// All four set to `id`.
    pub const fn all(id: u32) -> Self {
        Ids {
            real: id,
            effective: id,
            saved: id,
            fs: id,
        }
    }

    fn is_current(&self, id: u32) -> bool {
        id == self.real || id == self.effective || id == self.saved
    }

    /// setuid(2)/setgid(2).
    pub fn set_id(&mut self, id: u32, privileged: bool) -> Result<(), Errno> {
        if id == KEEP {
            return Err(Errno::EINVAL);
        }
        if privileged {
            *self = Ids::all(id);
        } else if id == self.real || id == self.saved {
            self.effective = id;
            self.fs = id;
        } else {
            return Err(Errno::EPERM);
        }
        Ok(())
    }

    /// setreuid(2)/setregid(2).
    pub fn set_re(&mut self, r: u32, e: u32, privileged: bool) -> Result<(), Errno> {
        let old = *self;
        if !privileged {
            if r != KEEP && r != old.real && r != old.effective {
                return Err(Errno::EPERM);
            }
            if e != KEEP && !old.is_current(e) {
                return Err(Errno::EPERM);
            }
        }
        if r != KEEP {
            self.real = r;
        }
        if e != KEEP {
            self.effective = e;
        }
        if r != KEEP || (e != KEEP && e != old.real) {
            self.saved = self.effective;
        }
        self.fs = self.effective;
        Ok(())
    }

    /// setresuid(2)/setresgid(2).
    pub fn set_res(&mut self, r: u32, e: u32, s: u32, privileged: bool) -> Result<(), Errno> {
        if !privileged && [r, e, s].iter().any(|&v| v != KEEP && !self.is_current(v)) {
            return Err(Errno::EPERM);
        }
        if r != KEEP {
            self.real = r;
        }
        if e != KEEP {
            self.effective = e;
        }
        if s != KEEP {
            self.saved = s;
        }
        self.fs = self.effective;
        Ok(())
    }

    /// setfsuid(2)/setfsgid(2): returns the previous fs id whether or not it changed.
    pub fn set_fs(&mut self, f: u32, privileged: bool) -> u32 {
        let old = self.fs;
        if f != KEEP && (privileged || self.is_current(f) || f == self.fs) {
            self.fs = f;
        }
        old
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_setuid_drops_everything() {
        let mut ids = Ids::all(0);
        ids.set_id(1000, true).unwrap();
        assert_eq!(ids, Ids::all(1000));
        // Once dropped, an unprivileged process cannot get root back.
        assert_eq!(ids.set_id(0, false), Err(Errno::EPERM));
    }

    #[test]
    fn unprivileged_can_swap_among_current_ids() {
        let mut ids = Ids {
            real: 1000,
            effective: 0,
            saved: 0,
            fs: 0,
        };
        ids.set_res(KEEP, 1000, KEEP, false).unwrap();
        assert_eq!((ids.effective, ids.saved, ids.fs), (1000, 0, 1000));
        ids.set_res(KEEP, 0, KEEP, false).unwrap();
        assert_eq!(ids.effective, 0);
        assert_eq!(ids.set_res(5, KEEP, KEEP, false), Err(Errno::EPERM));
    }

    #[test]
    fn setreuid_updates_saved_as_linux_does() {
        let mut ids = Ids::all(1000);
        ids.set_re(KEEP, 1000, false).unwrap();
        assert_eq!(ids.saved, 1000);
        let mut ids = Ids {
            real: 0,
            effective: 0,
            saved: 0,
            fs: 0,
        };
        ids.set_re(1000, 2000, true).unwrap();
        assert_eq!(
            ids,
            Ids {
                real: 1000,
                effective: 2000,
                saved: 2000,
                fs: 2000
            }
        );
        assert_eq!(ids.set_re(3000, KEEP, false), Err(Errno::EPERM));
    }

    #[test]
    fn setfsuid_returns_old_value_and_refuses_silently() {
        let mut ids = Ids::all(1000);
        assert_eq!(ids.set_fs(0, false), 1000);
        assert_eq!(ids.fs, 1000);
        assert_eq!(ids.set_fs(0, true), 1000);
        assert_eq!(ids.fs, 0);
    }

    #[test]
    fn minus_one_is_rejected_by_setuid() {
        assert_eq!(Ids::all(0).set_id(KEEP, true), Err(Errno::EINVAL));
    }
}
