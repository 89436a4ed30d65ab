//! Machine identity and statistics: uname, host/domain name, sysinfo.

use nix::errno::Errno;

use super::{Action, Arg, Ctx, Def};
use crate::guest::SysInfo;
use crate::platform::Reply;

/// The kernel's `__NEW_UTS_LEN`.
pub const UTS_LEN: usize = 64;

pub(super) const DEFS: &[Def] = &[
    Def {
        name: "uname",
        action: Action::Emulated(uname),
        args: &[Arg::Ptr],
    },
    Def {
        name: "sethostname",
        action: Action::Emulated(sethostname),
        args: &[Arg::StrLen(1), Arg::Int],
    },
    Def {
        name: "setdomainname",
        action: Action::Emulated(setdomainname),
        args: &[Arg::StrLen(1), Arg::Int],
    },
    Def {
        name: "sysinfo",
        action: Action::Emulated(sysinfo),
        args: &[Arg::Ptr],
    },
];

fn fill(field: &mut [libc::c_char; 65], value: &[u8]) {
    for (dst, &src) in field.iter_mut().zip(value.iter().take(UTS_LEN)) {
        *dst = src as libc::c_char;
    }
}

fn uname(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let uts = ctx.sandbox.uts.lock();
    // SAFETY: utsname is six char arrays; all-zero is a valid (empty) value.
    let mut out: libc::utsname = unsafe { std::mem::zeroed() };
    fill(&mut out.sysname, b"Linux");
    fill(&mut out.nodename, uts.hostname());
    fill(&mut out.release, uts.release());
    fill(&mut out.version, uts.version());
    fill(&mut out.machine, b"x86_64");
    fill(&mut out.domainname, uts.domainname());
    drop(uts);
    ctx.guest.write_value(ctx.arg(0), &out)?;
    Ok(Reply::Value(0))
}

/// Reads the new name for sethostname/setdomainname, with Linux's checks in Linux's order.
fn read_name<'a>(ctx: &Ctx<'a>) -> Result<&'a [u8], Errno> {
    if !ctx
        .sandbox
        .tasks
        .creds(ctx.trap.tid)?
        .has_cap(crate::task::cap::SYS_ADMIN)
    {
        return Err(Errno::EPERM);
    }
    let len = ctx.arg(1) as usize;
    if len > UTS_LEN {
        return Err(Errno::EINVAL);
    }
    let buf = ctx.arena.alloc_slice_fill_copy(len, 0u8);
    ctx.guest.read_exact(ctx.arg(0), buf)?;
    Ok(buf)
}

fn sethostname(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let name = read_name(ctx)?;
    ctx.sandbox.uts.lock().set_hostname(name);
    Ok(Reply::Value(0))
}

fn setdomainname(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let name = read_name(ctx)?;
    ctx.sandbox.uts.lock().set_domainname(name);
    Ok(Reply::Value(0))
}

/// Host memory and load figures, with the sandbox's own uptime and process count.
fn sysinfo(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let mut info = SysInfo::default();
    // SAFETY: SysInfo has the kernel's layout and size (asserted where it is defined), and is
    // valid for any bytes the kernel writes.
    if unsafe { libc::sysinfo(std::ptr::addr_of_mut!(info).cast()) } != 0 {
        return Err(Errno::last());
    }
    info.uptime = ctx.sandbox.uptime_secs() as i64;
    info.procs = ctx.sandbox.tasks.process_count().min(usize::from(u16::MAX)) as u16;
    ctx.guest.write_value(ctx.arg(0), &info)?;
    Ok(Reply::Value(0))
}

#[cfg(test)]
mod tests {
    use bumpalo::Bump;

    use super::*;
    use crate::guest::Guest;
    use crate::platform::fake::{FakePlatform, BASE};
    use crate::platform::Trap;
    use crate::sandbox::{Sandbox, SandboxConfig};

    fn call(
        sandbox: &Sandbox,
        p: &FakePlatform,
        handler: super::super::Handler,
        args: [u64; 6],
    ) -> Result<Reply, Errno> {
        let trap = Trap {
            tid: nix::unistd::gettid().as_raw(),
            args,
            ..Trap::default()
        };
        let arena = Bump::new();
        let read = std::cell::Cell::new(false);
        let mut ctx = Ctx {
            trap: &trap,
            guest: Guest::new(p, &trap, &read),
            arena: &arena,
            sandbox,
            refused: false,
            injected: None,
        };
        handler(&mut ctx)
    }

    #[test]
    fn sethostname_then_uname_reports_it() {
        let sandbox = Sandbox::new(&SandboxConfig {
            release: "9.9-test".into(),
            ..SandboxConfig::default()
        });
        let mut mem = b"inner".to_vec();
        mem.resize(8 + 6 * 65, 0);
        let p = FakePlatform::new(mem);
        assert_eq!(
            call(&sandbox, &p, sethostname, [BASE, 5, 0, 0, 0, 0]),
            Ok(Reply::Value(0))
        );
        assert_eq!(
            call(&sandbox, &p, sethostname, [BASE, 65, 0, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            call(&sandbox, &p, uname, [BASE + 8, 0, 0, 0, 0, 0]),
            Ok(Reply::Value(0))
        );
        let mem = p.memory.lock();
        let field = |i: usize| {
            let f = &mem[8 + 65 * i..8 + 65 * (i + 1)];
            String::from_utf8_lossy(&f[..f.iter().position(|&b| b == 0).unwrap()]).into_owned()
        };
        assert_eq!(
            (field(0), field(1), field(2)),
            ("Linux".into(), "inner".into(), "9.9-test".into())
        );
    }

    #[test]
    fn unprivileged_sandbox_user_cannot_set_the_host_name() {
        let sandbox = Sandbox::new(&SandboxConfig {
            uid: 1000,
            ..SandboxConfig::default()
        });
        let p = FakePlatform::new(b"x".to_vec());
        assert_eq!(
            call(&sandbox, &p, sethostname, [BASE, 1, 0, 0, 0, 0]),
            Err(Errno::EPERM)
        );
        assert_eq!(sandbox.uts.lock().hostname(), b"rvisor");
    }
}
