//! Machine identity and statistics: uname, host/domain name, sysinfo.
//!
//! The host and domain names live in the guest's UTS namespace, where the guest's kernel serves
//! them too (`/proc/sys/kernel/hostname`, and polls of it). When the sentry could join that
//! namespace (as root) its handlers read and set them there, so both views agree and a
//! `sethostname` wakes pollers; otherwise (rootless) the sentry keeps its own copy.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

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

/// `NS_GET_USERNS`: the user namespace that owns a namespace.
const NS_GET_USERNS: libc::c_ulong = 0xb701;

/// Set once the sentry's threads are in the guest's UTS namespace.
static KERNEL_UTS: AtomicBool = AtomicBool::new(false);

/// Moves the calling thread, and every thread it starts from now on, into the UTS namespace of
/// the guest process `init` (host pid). Call before starting any thread that serves calls, and
/// before the sentry's own filter (which denies setns). Fails without privilege over the
/// guest's user namespace (rootless): the sentry then keeps the names itself.
pub fn join_guest_uts(init: i32) -> Result<(), Errno> {
    let open = |what: &str| {
        std::fs::File::open(format!("{}{init}/ns/{what}", crate::procfs::prefix()))
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))
    };
    let ns = open("uts")?;
    // Only a namespace the guest's own user namespace owns: there its root could set the names
    // natively. A UTS namespace joined from elsewhere (an OCI spec may name the host's) is left
    // alone: our privilege must not reach it.
    // SAFETY: NS_GET_USERNS takes no argument and returns a new fd (or -1).
    let owner = unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_USERNS) };
    if owner < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this fd; nothing else owns it.
    let owner = unsafe { OwnedFd::from_raw_fd(owner) };
    let id = |f: BorrowedFd<'_>| nix::sys::stat::fstat(f.as_raw_fd()).map(|s| (s.st_dev, s.st_ino));
    if id(owner.as_fd())? != id(open("user")?.as_fd())? {
        return Err(Errno::EPERM);
    }
    // SAFETY: setns with an fd we own; it changes only this thread's UTS namespace.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWUTS) } != 0 {
        return Err(Errno::last());
    }
    KERNEL_UTS.store(true, Ordering::Relaxed);
    Ok(())
}

pub(super) fn kernel_uts() -> bool {
    KERNEL_UTS.load(Ordering::Relaxed)
}

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
    if kernel_uts() {
        // SAFETY: utsname is plain data; all-zero is valid and uname fills it.
        let mut k: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: uname writes into `k`, which we own.
        if unsafe { libc::uname(&mut k) } == 0 {
            out.nodename = k.nodename;
            out.domainname = k.domainname;
        }
    }
    ctx.guest.write_value(ctx.arg(0), &out)?;
    Ok(Reply::Value(0))
}

/// Reads the new name for sethostname/setdomainname, with Linux's checks in Linux's order.
fn read_name<'a>(ctx: &Ctx<'a>) -> Result<&'a [u8], Errno> {
    if !ctx.creds()?.has_cap(crate::task::cap::SYS_ADMIN) {
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
    if kernel_uts() {
        // SAFETY: sethostname reads `name.len()` bytes of `name`.
        if unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) } != 0 {
            return Err(Errno::last());
        }
    }
    ctx.sandbox.uts.lock().set_hostname(name);
    Ok(Reply::Value(0))
}

fn setdomainname(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let name = read_name(ctx)?;
    if kernel_uts() {
        // SAFETY: setdomainname reads `name.len()` bytes of `name`.
        if unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) } != 0 {
            return Err(Errno::last());
        }
    }
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
            raise: None,
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
        let sandbox = Sandbox::new(&SandboxConfig::default());
        let me = nix::unistd::gettid().as_raw();
        sandbox
            .tasks
            .assume_creds(me, crate::task::Creds::new(1000, 1000))
            .unwrap();
        let p = FakePlatform::new(b"x".to_vec());
        assert_eq!(
            call(&sandbox, &p, sethostname, [BASE, 1, 0, 0, 0, 0]),
            Err(Errno::EPERM)
        );
        assert_eq!(sandbox.uts.lock().hostname(), b"rvisor");
    }
}
