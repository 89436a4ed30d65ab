//! setsockopt: native, except SO_RCVBUFFORCE and SO_SNDBUFFORCE. The kernel grants those to
//! CAP_NET_ADMIN in the initial user namespace, which no guest process has, so the sandbox's
//! root got EPERM. The sentry of a root-run sandbox grants them to a caller whose credentials
//! hold CAP_NET_ADMIN, as SO_RCVBUF and SO_SNDBUF: the size is clamped to the host's
//! rmem_max/wmem_max (as gVisor does), so no host privilege is lent to the guest.

use std::os::fd::AsRawFd;

use nix::errno::Errno;

use super::fs_path::guest_fd;
use super::{Action, Arg, Cond, Ctx, Def};
use crate::platform::Reply;
use crate::task::cap;

pub(super) const DEFS: &[Def] = &[Def {
    name: "setsockopt",
    action: Action::Guarded {
        allow_when: &[
            Cond::Ne {
                arg: 2,
                value: libc::SO_RCVBUFFORCE as u64,
            },
            Cond::Ne {
                arg: 2,
                value: libc::SO_SNDBUFFORCE as u64,
            },
        ],
        handler: setsockopt,
    },
    args: &[Arg::Int, Arg::Int, Arg::Int, Arg::Ptr, Arg::Int],
}];

/// Trapped for option numbers 32 and 33 at any level: other levels' (IP_MULTICAST_IF, say)
/// continue as they are.
fn setsockopt(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    if ctx.arg(1) as i32 != libc::SOL_SOCKET {
        return Ok(Reply::Continue);
    }
    let sock = guest_fd(ctx, ctx.arg(0) as i32)?;
    let st = nix::sys::stat::fstat(sock.as_raw_fd())?;
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(Errno::ENOTSOCK);
    }
    // As the kernel: the length, then the value, then the privilege.
    if (ctx.arg(4) as i32) < std::mem::size_of::<libc::c_int>() as i32 {
        return Err(Errno::EINVAL);
    }
    let val = ctx.guest.read_value::<u32>(ctx.arg(3))? as i32;
    // Rootless, the sandbox's root is what it is under `unshare --map-root-user`: no host
    // capability, so EPERM, as Linux answers it there.
    let host_root = nix::unistd::geteuid().is_root();
    if !host_root || !ctx.creds()?.has_cap(cap::NET_ADMIN) {
        return Err(Errno::EPERM);
    }
    let plain = if ctx.arg(2) as i32 == libc::SO_RCVBUFFORCE {
        libc::SO_RCVBUF
    } else {
        libc::SO_SNDBUF
    };
    // SAFETY: setsockopt reads one int, which we own, on our copy of the guest's socket.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            plain,
            std::ptr::addr_of!(val).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(Errno::last());
    }
    Ok(Reply::Value(0))
}
