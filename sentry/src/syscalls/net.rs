//! Sockets. Binding a Unix socket to a path creates a file: in the sandbox tree that is the
//! gofer's to do (the guest's own view is read-only). Every other bind runs natively; if a racing
//! thread turns the address into a path after the check, the kernel binds it in the read-only
//! view, where it fails.

use std::os::fd::AsFd;

use nix::errno::Errno;
use rvisor_protocol::Request;

use super::fs_path::{ask_with_fd, guest_fd, locate_path, umask, value, Target};
use super::{Action, Arg, Ctx, Def};
use crate::platform::Reply;

pub(super) const DEFS: &[Def] = &[Def {
    name: "bind",
    action: Action::Emulated(bind),
    args: &[Arg::Int, Arg::Ptr, Arg::Int],
}];

/// `offsetof(struct sockaddr_un, sun_path)`.
const SUN_PATH: usize = 2;
/// `sizeof(struct sockaddr_un)`.
const SOCKADDR_UN: usize = 110;

fn bind(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let (fd, addr, len) = (ctx.arg(0) as i32, ctx.arg(1), ctx.arg(2) as usize);
    if len <= SUN_PATH || len > SOCKADDR_UN {
        return Ok(Reply::Continue);
    }
    let raw = ctx.arena.alloc_slice_fill_copy(len, 0u8);
    ctx.guest.read_exact(addr, raw)?;
    let family = u16::from_ne_bytes([raw[0], raw[1]]);
    let sun_path = &raw[SUN_PATH..];
    // Other families, autobind and abstract addresses touch no file.
    if i32::from(family) != libc::AF_UNIX || sun_path[0] == 0 {
        return Ok(Reply::Continue);
    }
    let end = sun_path
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(sun_path.len());
    let path: &[u8] = &sun_path[..end];
    match locate_path(ctx, libc::AT_FDCWD, path, 0)? {
        Target::Gofer(at) => {
            let sock = guest_fd(ctx, fd)?;
            let req = Request::Bind {
                at,
                umask: umask(ctx),
            };
            value(ask_with_fd(ctx, &req, Some(sock.as_fd()))?).map(Reply::Value)
        }
        Target::Native | Target::Fd(_) => Ok(Reply::Continue),
    }
}
