//! Sockets.
//!
//! Binding a Unix socket to a path creates a file: in the sandbox tree that is the gofer's to do
//! (the guest's own view is read-only). Every other bind runs natively; if a racing thread turns
//! the address into a path after the check, the kernel binds it in the read-only view, where it
//! fails (bind only creates: it reaches no existing socket).
//!
//! Reaching a socket is different: a path can name a host socket that a volume (or a read-only
//! root) exposes. So connect on a Unix socket, sendto with an address, and sendmsg on a Unix
//! datagram socket are never handed back to the kernel with the guest's address: the sentry
//! copies the address (and the data), takes a duplicate of the guest's socket, and makes the call
//! itself. A Unix path goes through the gofer, which hands back an O_PATH handle only on a socket
//! the sandbox bound (or any with `--host-uds=open`); the sentry then addresses that very inode
//! as `/proc/self/fd/<handle>`. Connect and sendmsg on other sockets, which cannot address a
//! path, run natively only where the runtime's guard cgroup makes the kernel refuse a Unix
//! address should a sibling thread swap the fd first; elsewhere the sentry makes them too.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use bumpalo::collections::Vec as ArenaVec;
use nix::errno::Errno;
use rvisor_protocol::Request;

use super::fs_path::{ask, ask_with_fd, guest_fd, local_access, locate_path, umask, value, Target};
use super::{Action, Arg, Cond, Ctx, Def};
use crate::file_identity;
use crate::gofer_client::Answer;
use crate::guest::Guest;
use crate::platform::Reply;

/// Reached only for `AF_VSOCK`: refused as a family this kernel lacks, unless the guest shares the
/// host's network anyway. Decided on the family register alone.
fn socket_family(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    if ctx.sandbox.host_network {
        Ok(Reply::Continue)
    } else {
        ctx.refuse(Errno::EAFNOSUPPORT)
    }
}

pub(super) const DEFS: &[Def] = &[
    Def {
        name: "socket",
        action: Action::Guarded {
            // Every family but vsock natively: its ports and peers (the hypervisor, the host's
            // vsock services) are the machine's, not a network namespace's.
            allow_when: &[Cond::Ne {
                arg: 0,
                value: libc::AF_VSOCK as u64,
            }],
            handler: socket_family,
        },
        args: &[Arg::Int, Arg::Hex, Arg::Int],
    },
    Def {
        name: "bind",
        action: Action::Emulated(bind),
        args: &[Arg::Int, Arg::Ptr, Arg::Int],
    },
    Def {
        name: "connect",
        action: Action::Emulated(connect),
        args: &[Arg::Int, Arg::Ptr, Arg::Int],
    },
    Def {
        name: "sendto",
        action: Action::Guarded {
            // No address (a zero length: the kernel then ignores the pointer, and the filter
            // compares 32 bits, which fits the `int` length but not a 64-bit pointer): the
            // socket's own peer, natively.
            allow_when: &[Cond::MaskedEq {
                arg: 5,
                mask: u32::MAX as u64,
                value: 0,
            }],
            handler: sendto,
        },
        args: &[Arg::Int, Arg::Ptr, Arg::Int, Arg::Hex, Arg::Ptr, Arg::Int],
    },
    Def {
        name: "sendmsg",
        action: Action::Emulated(sendmsg),
        args: &[Arg::Int, Arg::Ptr, Arg::Hex],
    },
    Def {
        name: "sendmmsg",
        action: Action::Emulated(sendmmsg),
        args: &[Arg::Int, Arg::Ptr, Arg::Int, Arg::Hex],
    },
];

/// `offsetof(struct sockaddr_un, sun_path)`.
const SUN_PATH: usize = 2;
/// `sizeof(struct sockaddr_un)`.
const SOCKADDR_UN: usize = 110;
/// `sizeof(struct sockaddr_storage)`: the kernel refuses longer addresses.
const SOCKADDR_MAX: usize = 128;
/// Most data one emulated send copies: above any datagram the kernel accepts by default (Unix
/// datagrams up to the 212 KiB send buffer, UDP up to 64 KiB).
const MAX_SEND: usize = 256 * 1024;
/// Longest the sentry waits on a peer for the guest (a full datagram queue or listen backlog).
/// Its worker must come back to serve the guest's other threads, one of which may be the very
/// peer that would drain the queue: an unbounded wait here is a deadlock the guest can cause.
const WAIT_BUDGET_US: libc::suseconds_t = 20_000;
/// Longest send timeout of the guest's own the sentry waits out (then EINTR, as an endless wait).
const GUEST_TIMEOUT_CAP_S: libc::time_t = 1;
/// `UIO_MAXIOV`.
const MAX_IOV: u64 = 1024;
/// Most ancillary data copied (the kernel's default optmem_max is 20 KiB).
const MAX_CONTROL: usize = 64 * 1024;

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
    match locate_path(ctx, libc::AT_FDCWD, unix_path(sun_path), 0)? {
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

/// `sun_path` up to its NUL.
fn unix_path(sun_path: &[u8]) -> &[u8] {
    let end = sun_path
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(sun_path.len());
    &sun_path[..end]
}

/// A duplicate of the guest's socket `fd` and its domain and type.
fn guest_socket(ctx: &Ctx<'_>, fd: i32) -> Result<(OwnedFd, i32, i32), Errno> {
    let sock = guest_fd(ctx, fd)?;
    let int_opt = |opt: libc::c_int| -> Result<i32, Errno> {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `v`, which we own.
        let rc = unsafe {
            libc::getsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                std::ptr::addr_of_mut!(v).cast(),
                &mut len,
            )
        };
        if rc < 0 {
            Err(Errno::last())
        } else {
            Ok(v)
        }
    };
    let domain = int_opt(libc::SO_DOMAIN)?;
    let kind = int_opt(libc::SO_TYPE)?;
    Ok((sock, domain, kind))
}

/// A copy of the `len`-byte socket address at `addr`.
fn read_addr<'a>(ctx: &Ctx<'a>, addr: u64, len: u64) -> Result<&'a mut [u8], Errno> {
    if len > SOCKADDR_MAX as u64 {
        return Err(Errno::EINVAL);
    }
    let raw = ctx.arena.alloc_slice_fill_copy(len as usize, 0u8);
    ctx.guest.read_exact(addr, raw)?;
    Ok(raw)
}

/// Where an emulated call sends: the guest's address as copied, or (a Unix path) the socket the
/// gofer pinned, named through our own fd table.
#[derive(Debug)]
enum Dest<'a> {
    /// No address.
    None,
    /// The copied address, for the kernel to resolve (IP, abstract, unnamed).
    Raw(&'a [u8]),
    /// A path socket the gofer allowed (held open for the call), and its address as
    /// `/proc/self/fd/N`.
    Pinned {
        _handle: OwnedFd,
        sun: libc::sockaddr_un,
    },
}

impl Dest<'_> {
    fn as_ptr_len(&self) -> (*const libc::sockaddr, libc::socklen_t) {
        match self {
            Dest::None => (std::ptr::null(), 0),
            Dest::Raw(a) => (a.as_ptr().cast(), a.len() as libc::socklen_t),
            Dest::Pinned { sun, .. } => (
                std::ptr::addr_of!(*sun).cast(),
                std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
            ),
        }
    }
}

/// Resolves a copied address for a socket of `domain`.
fn destination<'a>(ctx: &mut Ctx<'a>, domain: i32, raw: &'a [u8]) -> Result<Dest<'a>, Errno> {
    // As the kernel's unix_validate_addr: no Unix address is longer than `sockaddr_un`.
    if domain == libc::AF_UNIX && raw.len() > SOCKADDR_UN {
        return Err(Errno::EINVAL);
    }
    let unix = domain == libc::AF_UNIX
        && raw.len() > SUN_PATH
        && i32::from(u16::from_ne_bytes([raw[0], raw[1]])) == libc::AF_UNIX
        && raw[SUN_PATH] != 0;
    if !unix {
        return Ok(if raw.is_empty() {
            Dest::None
        } else {
            Dest::Raw(raw)
        });
    }
    let at = match locate_path(ctx, libc::AT_FDCWD, unix_path(&raw[SUN_PATH..]), 0)? {
        Target::Gofer(at) => at,
        // The guest's own /dev, /proc and /sys hold no socket of the tree's; refusing is the one
        // safe answer (the kernel would resolve a path we could not check).
        Target::Native | Target::Fd(_) => {
            ctx.refused = true;
            return Err(Errno::EACCES);
        }
    };
    let pin = match ask(ctx, &Request::Socket { at })? {
        Answer::Fd(fd) => fd,
        _ => return Err(Errno::EIO),
    };
    let name =
        bumpalo::format!(in ctx.arena, "{}self/fd/{}", crate::procfs::prefix(), pin.as_raw_fd());
    // SAFETY: sockaddr_un is plain data; zero is valid.
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if name.len() >= sun.sun_path.len() {
        return Err(Errno::ENAMETOOLONG);
    }
    for (d, s) in sun.sun_path.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    // Linux checks write permission on the socket file: as the caller (a process that dropped
    // root must not reach a socket only root may). The worker stays the caller for the connect;
    // a send that carries the caller's credentials is made as the sentry (`with_credentials`).
    file_identity::take_on(&ctx.creds()?)?;
    local_access(&pin, libc::W_OK as u32)?;
    Ok(Dest::Pinned { _handle: pin, sun })
}

/// `SCM_CREDENTIALS` with the caller's own process and real ids as the host knows them, for a
/// Unix send the sentry makes: the kernel would otherwise stamp the sentry's (a receiver with
/// `SO_PASSCRED` saw pid 0 and uid 0 for a guest process running as uid 1000). Only a root
/// sentry may name another process and ids (`None` otherwise: the sentry's own go).
fn credentials<'a>(ctx: &Ctx<'a>) -> Result<Option<&'a [u8]>, Errno> {
    if !file_identity::switching() {
        return Ok(None);
    }
    let creds = ctx.creds()?;
    let pid = ctx.sandbox.tasks.ids(ctx.trap.tid)?.host_tgid;
    let ids = &ctx.sandbox.ids;
    let (Some(uid), Some(gid)) = (
        ids.uid_to_host(creds.uid.real),
        ids.gid_to_host(creds.gid.real),
    ) else {
        return Ok(None);
    };
    const HDR: usize = std::mem::size_of::<libc::cmsghdr>();
    let c = ctx.arena.alloc_slice_fill_copy(HDR + 16, 0u8);
    c[..8].copy_from_slice(&((HDR + 12) as u64).to_ne_bytes());
    c[8..12].copy_from_slice(&libc::SOL_SOCKET.to_ne_bytes());
    c[12..16].copy_from_slice(&libc::SCM_CREDENTIALS.to_ne_bytes());
    c[HDR..HDR + 4].copy_from_slice(&pid.to_ne_bytes());
    c[HDR + 4..HDR + 8].copy_from_slice(&uid.to_ne_bytes());
    c[HDR + 8..HDR + 12].copy_from_slice(&gid.to_ne_bytes());
    Ok(Some(c))
}

/// `control` (the guest's, translated) with the caller's credentials after it, for a Unix send.
fn with_credentials<'a>(
    ctx: &Ctx<'a>,
    domain: i32,
    control: &'a mut [u8],
) -> Result<&'a mut [u8], Errno> {
    if domain != libc::AF_UNIX {
        return Ok(control);
    }
    let Some(creds) = credentials(ctx)? else {
        return Ok(control);
    };
    // Naming another process's credentials takes the sentry's own capabilities.
    file_identity::take_back()?;
    let start = cmsg_align(control.len());
    let all = ctx.arena.alloc_slice_fill_copy(start + creds.len(), 0u8);
    all[..control.len()].copy_from_slice(control);
    all[start..].copy_from_slice(creds);
    Ok(all)
}

/// The result of a call made here: its value, or its errno.
fn result(rc: Result<libc::ssize_t, Errno>) -> Result<Reply, Errno> {
    rc.map(|n| Reply::Value(n as i64))
}

/// A libc return value as a result (negative: the errno).
fn checked(rc: libc::ssize_t) -> Result<libc::ssize_t, Errno> {
    if rc < 0 {
        Err(Errno::last())
    } else {
        Ok(rc)
    }
}

/// `SO_SNDTIMEO` of `sock`.
fn send_timeout(sock: &OwnedFd) -> libc::timeval {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `tv`, which we own.
    unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            std::ptr::addr_of_mut!(tv).cast(),
            &mut len,
        )
    };
    tv
}

fn set_send_timeout(sock: &OwnedFd, tv: &libc::timeval) {
    // SAFETY: setsockopt reads a timeval, which we own.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            std::ptr::addr_of!(*tv).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
}

/// Runs `op`, a send or connect made here on the guest's socket `sock`. A non-blocking call
/// (`MSG_DONTWAIT`, `O_NONBLOCK`) never waits, and one on a socket with a send timeout of the
/// guest's up to [`GUEST_TIMEOUT_CAP_S`] waits that long and fails with EAGAIN, as in Linux. An
/// endless wait is cut at [`WAIT_BUDGET_US`], a longer timeout at the cap (the socket's send
/// timeout, which connect and Unix sends honour, is set for the call and put back), and ends in
/// EINTR, as a signal would end it: the guest retries, and meanwhile the worker serves its other
/// threads, one of which may be the peer to drain. (Honouring a guest's hour-long timeout held a
/// worker, and on ptrace the one tracer, for the hour: no call served, no killed guest reaped.)
fn bounded(
    sock: &OwnedFd,
    dontwait: bool,
    op: impl FnOnce() -> libc::ssize_t,
) -> Result<libc::ssize_t, Errno> {
    // SAFETY: F_GETFL takes no argument.
    let nonblocking = unsafe { libc::fcntl(sock.as_raw_fd(), libc::F_GETFL) } & libc::O_NONBLOCK;
    if dontwait || nonblocking != 0 {
        return checked(op());
    }
    let guest = send_timeout(sock);
    let endless = guest.tv_sec == 0 && guest.tv_usec == 0;
    if !endless && guest.tv_sec < GUEST_TIMEOUT_CAP_S {
        return checked(op());
    }
    let budget = if endless {
        libc::timeval {
            tv_sec: 0,
            tv_usec: WAIT_BUDGET_US,
        }
    } else {
        libc::timeval {
            tv_sec: GUEST_TIMEOUT_CAP_S,
            tv_usec: 0,
        }
    };
    set_send_timeout(sock, &budget);
    let rc = checked(op());
    set_send_timeout(sock, &guest);
    match rc {
        Err(Errno::EAGAIN | Errno::EINPROGRESS) => Err(Errno::EINTR),
        rc => rc,
    }
}

/// connect: made here on a duplicate of the guest's socket (it is the same socket), to the
/// address as copied, or to the pinned socket for a Unix path. A non-Unix socket connects
/// natively where the guard cgroup refuses a Unix connect that a racing thread could swap in
/// (an IP handshake may take minutes: it must not hold a sentry worker).
fn connect(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    // addrlen is an `int`: the kernel ignores the upper half of the register.
    let (fd, addr, len) = (
        ctx.arg(0) as i32,
        ctx.arg(1),
        ctx.arg(2) & u64::from(u32::MAX),
    );
    let (sock, domain, _) = guest_socket(ctx, fd)?;
    if domain != libc::AF_UNIX && ctx.sandbox.kernel_unix_guard {
        return Ok(Reply::Continue);
    }
    let raw = read_addr(ctx, addr, len)?;
    let dest = destination(ctx, domain, raw)?;
    let (ptr, len) = dest.as_ptr_len();
    // SAFETY: `ptr`/`len` describe an address we own (or NULL, 0); the socket is our duplicate.
    let call = || unsafe { libc::connect(sock.as_raw_fd(), ptr, len) } as libc::ssize_t;
    if domain == libc::AF_UNIX {
        result(bounded(&sock, false, call))
    } else {
        // Without the guard: made here, whole. An IP handshake completes in the kernel whatever
        // the guest's threads do (so it cannot deadlock the worker, only delay it); cutting it
        // short would leave the guest a half-open connect to retry (EALREADY).
        result(checked(call()))
    }
}

/// Copies `len` bytes of guest data at `addr` (at most [`MAX_SEND`]; a datagram longer than
/// that fails with EMSGSIZE, a stream send is short).
fn read_data<'a>(ctx: &Ctx<'a>, addr: u64, len: u64, datagram: bool) -> Result<&'a [u8], Errno> {
    if datagram && len > MAX_SEND as u64 {
        return Err(Errno::EMSGSIZE);
    }
    let n = len.min(MAX_SEND as u64) as usize;
    let buf = ctx.arena.alloc_slice_fill_copy(n, 0u8);
    ctx.guest.read_exact(addr, buf)?;
    Ok(buf)
}

/// A send on a stream socket whose peer is gone raises SIGPIPE in the sender: that is the
/// guest's thread, not the sentry (whose own send never raises it).
fn pipe_signal(ctx: &Ctx<'_>, rc: &Result<libc::ssize_t, Errno>, flags: i32) {
    if *rc == Err(Errno::EPIPE) && flags & libc::MSG_NOSIGNAL == 0 {
        // SAFETY: tkill takes integers; the thread is blocked in the call we are answering.
        unsafe { libc::syscall(libc::SYS_tkill, ctx.trap.tid, libc::SIGPIPE) };
    }
}

/// sendto with an address: made here on a duplicate, with copied data.
fn sendto(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let (fd, buf, len, flags) = (ctx.arg(0) as i32, ctx.arg(1), ctx.arg(2), ctx.arg(3) as i32);
    let (addr, addr_len) = (ctx.arg(4), ctx.arg(5));
    let (sock, domain, kind) = guest_socket(ctx, fd)?;
    let raw = if addr == 0 {
        &mut [][..]
    } else {
        read_addr(ctx, addr, addr_len & u64::from(u32::MAX))?
    };
    let dest = destination(ctx, domain, raw)?;
    let data = read_data(ctx, buf, len, kind != libc::SOCK_STREAM)?;
    let control = with_credentials(ctx, domain, &mut [])?;
    let rc = send_copied(&sock, data, &dest, control, flags);
    pipe_signal(ctx, &rc, flags);
    result(rc)
}

/// `struct msghdr` as the guest lays it out.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
struct MsgHdr {
    name: u64,
    namelen: u32,
    _pad: u32,
    iov: u64,
    iovlen: u64,
    control: u64,
    controllen: u64,
    flags: i32,
    _pad2: u32,
}

// SAFETY: repr(C) integers with explicit padding fields: no implicit padding, any bit pattern.
unsafe impl crate::guest::Pod for MsgHdr {}

/// `struct iovec`.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
struct IoVec {
    base: u64,
    len: u64,
}

// SAFETY: two u64s in repr(C).
unsafe impl crate::guest::Pod for IoVec {}

/// Whether the guest's socket is one whose sends must be made here: only a Unix datagram socket
/// can address a path in a send (a stream or seqpacket socket ignores or refuses the address;
/// IP sockets cannot name a file).
fn sends_to_paths(domain: i32, kind: i32) -> bool {
    domain == libc::AF_UNIX && kind == libc::SOCK_DGRAM
}

/// Whether a sendmsg on this socket may run natively: it cannot address a path, and the kernel
/// refuses a Unix address should a sibling thread swap a datagram socket over the fd before the
/// kernel runs the call (the guard cgroup). Without that guard every sendmsg is made here.
/// Never where guest processes hold a reserved fd: the SCM_RIGHTS of a native send could
/// carry it (see [`crate::sandbox::SandboxConfig::reserved_fd`]).
fn continues_natively(ctx: &Ctx<'_>, domain: i32, kind: i32) -> bool {
    ctx.sandbox.kernel_unix_guard
        && ctx.sandbox.reserved_fd.is_none()
        && !sends_to_paths(domain, kind)
}

/// sendmsg: made here from copies (address, data, ancillary data), except where
/// [`continues_natively`] says the kernel may run it. That decision reads the socket the fd
/// register names and the sandbox, never guest memory.
fn sendmsg(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let (fd, msg, flags) = (ctx.arg(0) as i32, ctx.arg(1), ctx.arg(2) as i32);
    let (sock, domain, kind) = guest_socket(ctx, fd)?;
    if continues_natively(ctx, domain, kind) {
        return Ok(Reply::Continue);
    }
    send_one(ctx, &sock, domain, kind, msg, flags).map(|n| Reply::Value(n as i64))
}

/// `struct mmsghdr`: a msghdr, then the length sent.
const MMSGHDR: u64 = 64;

/// sendmmsg: as sendmsg, one message at a time, each length written back.
fn sendmmsg(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let (fd, vec, vlen, flags) = (
        ctx.arg(0) as i32,
        ctx.arg(1),
        ctx.arg(2).min(MAX_IOV) as u32,
        ctx.arg(3) as i32,
    );
    let (sock, domain, kind) = guest_socket(ctx, fd)?;
    if continues_natively(ctx, domain, kind) {
        return Ok(Reply::Continue);
    }
    let mut sent = 0u32;
    while sent < vlen {
        let entry = Guest::offset(vec, u64::from(sent) * MMSGHDR)?;
        match send_one(ctx, &sock, domain, kind, entry, flags) {
            Ok(n) => ctx
                .guest
                .write_value(Guest::offset(entry, 56)?, &(n as u32))?,
            // As the kernel: an error after the first message ends the batch, counted so far.
            Err(e) if sent == 0 => return Err(e),
            Err(_) => break,
        }
        sent += 1;
    }
    Ok(Reply::Value(i64::from(sent)))
}

/// Sends the guest's message at `msg` on `sock` (of `domain` and `kind`) from copies; returns the
/// bytes sent. A stream send copies at most [`MAX_SEND`] bytes (a short write); a longer datagram
/// fails with EMSGSIZE.
fn send_one(
    ctx: &mut Ctx<'_>,
    sock: &OwnedFd,
    domain: i32,
    kind: i32,
    msg: u64,
    flags: i32,
) -> Result<usize, Errno> {
    let hdr: MsgHdr = ctx.guest.read_value(msg)?;
    let raw = if hdr.name == 0 {
        &mut [][..]
    } else {
        read_addr(ctx, hdr.name, u64::from(hdr.namelen))?
    };
    let dest = destination(ctx, domain, raw)?;
    if hdr.iovlen > MAX_IOV {
        return Err(Errno::EMSGSIZE);
    }
    // Gather the iovecs into one buffer.
    let mut total = 0u64;
    let mut parts: ArenaVec<'_, IoVec> = ArenaVec::new_in(ctx.arena);
    for i in 0..hdr.iovlen {
        let v: IoVec = ctx.guest.read_value(Guest::offset(hdr.iov, i * 16)?)?;
        // As the kernel: a length past SSIZE_MAX, alone or summed, is EINVAL.
        total = total
            .checked_add(v.len)
            .filter(|&t| t <= isize::MAX as u64)
            .ok_or(Errno::EINVAL)?;
        parts.push(v);
    }
    let stream = kind == libc::SOCK_STREAM;
    if total > MAX_SEND as u64 && !stream {
        return Err(Errno::EMSGSIZE);
    }
    let data = ctx
        .arena
        .alloc_slice_fill_copy(total.min(MAX_SEND as u64) as usize, 0u8);
    let mut at = 0;
    for v in &parts {
        let len = (v.len as usize).min(data.len() - at);
        ctx.guest.read_exact(v.base, &mut data[at..at + len])?;
        at += len;
    }
    // Ancillary data: fds are the guest's numbers, made ours; credentials are refused (the kernel
    // would check them against the sentry's, not the guest's).
    let mut held: ArenaVec<'_, OwnedFd> = ArenaVec::new_in(ctx.arena);
    if hdr.control == 0 && hdr.controllen != 0 {
        return Err(Errno::EFAULT);
    }
    let control = if hdr.control == 0 || hdr.controllen == 0 {
        &mut [][..]
    } else {
        if hdr.controllen > MAX_CONTROL as u64 {
            return Err(Errno::ENOBUFS);
        }
        let c = ctx
            .arena
            .alloc_slice_fill_copy(hdr.controllen as usize, 0u8);
        ctx.guest.read_exact(hdr.control, c)?;
        translate_rights(ctx, c, &mut held)?;
        c
    };
    let control = with_credentials(ctx, domain, control)?;
    let rc = send_copied(sock, data, &dest, control, flags);
    drop(held);
    pipe_signal(ctx, &rc, flags);
    rc.map(|n| n as usize)
}

/// sendmsg of copied `data` to `dest` with a copied `control` on our duplicate `sock` of the
/// guest's socket, within the bounded wait.
fn send_copied(
    sock: &OwnedFd,
    data: &[u8],
    dest: &Dest<'_>,
    control: &mut [u8],
    flags: i32,
) -> Result<libc::ssize_t, Errno> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr().cast_mut().cast(),
        iov_len: data.len(),
    };
    let (name, namelen) = dest.as_ptr_len();
    // SAFETY: msghdr is plain data; zero is valid.
    let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
    m.msg_name = name.cast_mut().cast();
    m.msg_namelen = namelen;
    m.msg_iov = &mut iov;
    m.msg_iovlen = 1;
    if !control.is_empty() {
        m.msg_control = control.as_mut_ptr().cast();
        m.msg_controllen = control.len();
    }
    bounded(sock, flags & libc::MSG_DONTWAIT != 0, || {
        // SAFETY: every buffer `m` points at is ours and outlives the call (the kernel only
        // reads the data); the socket is our duplicate of the guest's.
        unsafe { libc::sendmsg(sock.as_raw_fd(), &m, flags | libc::MSG_NOSIGNAL) }
    })
}

/// `CMSG_ALIGN`.
fn cmsg_align(n: usize) -> usize {
    (n + 7) & !7
}

/// Rewrites the SCM_RIGHTS fds in a copied control buffer from the guest's numbers to
/// duplicates held in `held`; refuses any other kind of message.
fn translate_rights<'a>(
    ctx: &mut Ctx<'a>,
    control: &mut [u8],
    held: &mut ArenaVec<'a, OwnedFd>,
) -> Result<(), Errno> {
    const HDR: usize = std::mem::size_of::<libc::cmsghdr>();
    let mut at = 0;
    while at + HDR <= control.len() {
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&control[i..i + 8]);
            u64::from_ne_bytes(b)
        };
        let len = word(at) as usize;
        let level = i32::from_ne_bytes(control[at + 8..at + 12].try_into().unwrap_or([0; 4]));
        let kind = i32::from_ne_bytes(control[at + 12..at + 16].try_into().unwrap_or([0; 4]));
        if len < HDR || at + len > control.len() {
            return Err(Errno::EINVAL);
        }
        if level != libc::SOL_SOCKET || kind != libc::SCM_RIGHTS {
            ctx.refused = true;
            return Err(Errno::EPERM);
        }
        for slot in (at + HDR..at + len).step_by(4) {
            if slot + 4 > at + len {
                break;
            }
            let n = i32::from_ne_bytes(control[slot..slot + 4].try_into().unwrap_or([0; 4]));
            // As for any fd the guest does not have open.
            if ctx.sandbox.reserved_fd == Some(n) {
                ctx.refused = true;
                return Err(Errno::EBADF);
            }
            let ours = guest_fd(ctx, n)?;
            control[slot..slot + 4].copy_from_slice(&ours.as_raw_fd().to_ne_bytes());
            held.push(ours);
        }
        at += cmsg_align(len);
    }
    Ok(())
}
