//! The control socket of a detached sandbox: a `SOCK_SEQPACKET` socket the runtime binds in the
//! container's state directory and the sentry serves (it was bound before the sentry gave up its
//! filesystem). One request per connection:
//!
//! - `start` + the container state (JSON, for the start hooks): releases the guest init; the
//!   answer comes once the guest is supervised.
//! - `stats`: the sentry's counters as JSON.
//! - `exec` with the seccomp listener attached: serve one more process
//!   (joined by `rvisor exec`). It sends from a thread of its own that the filter does not cover
//!   (`sendmsg` traps under it). The sentry does not take the listener with `pidfd_getfd`, as
//!   it does the guest init's: the joiner is not dumpable by then, and its memory belongs to the
//!   runtime's user namespace, in which an unprivileged sentry has no `CAP_SYS_PTRACE`.
//!
//! Answers are `ok`, `ok ` + payload, or `err ` + a message.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::socket::{
    accept4, bind, connect, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
};

use super::error::{Context, SandboxError};
use super::fdpass::{recv, send};

/// Longest request or answer.
const MAX_FRAME: usize = 256 * 1024;

/// A request received by the sentry.
#[derive(Debug)]
pub enum Request {
    /// Release the init; the state is for its start hooks.
    Start(Vec<u8>),
    /// Report counters.
    Stats,
    /// Serve this listener too: a process joined the sandbox.
    Exec {
        /// Its seccomp listener.
        listener: OwnedFd,
        /// The objects its caller handed it (device, inode): see `handed_in.rs`.
        outside: Vec<(u64, u64)>,
    },
}

/// Binds and listens on `path` (the runtime does this before the sandbox exists).
pub fn listen_at(path: &Path) -> Result<OwnedFd, SandboxError> {
    let sock = seqpacket()?;
    with_addr(path, |addr| {
        bind(sock.as_raw_fd(), addr).ctx(|| format!("binding {}", path.display()))
    })?;
    listen(&sock, Backlog::new(16).unwrap_or(Backlog::MAXCONN)).ctx(|| "listen".into())?;
    Ok(sock)
}

/// A new `SOCK_SEQPACKET` socket.
fn seqpacket() -> Result<OwnedFd, SandboxError> {
    socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ctx(|| "control socket".into())
}

/// Runs `f` with the address of `path`: the path itself, or, where it does not fit in
/// `sun_path` (108 bytes: Docker's state directories are deeper), the same file named through an
/// fd on its directory, `/proc/self/fd/N/name`.
fn with_addr<T>(
    path: &Path,
    f: impl FnOnce(&UnixAddr) -> Result<T, SandboxError>,
) -> Result<T, SandboxError> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Ok(addr) = UnixAddr::new(path) {
        return f(&addr);
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(SandboxError::Invalid(format!(
            "control socket {}",
            path.display()
        )));
    };
    let held = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(dir)
        .map_err(|e| SandboxError::Invalid(format!("{}: {e}", dir.display())))?;
    let short = Path::new("/proc/self/fd")
        .join(held.as_raw_fd().to_string())
        .join(name);
    let addr = UnixAddr::new(&short).ctx(|| format!("control socket {}", path.display()))?;
    f(&addr)
}

/// Sentry side: waits for the next request; the connection is where the answer goes.
pub fn accept(listener: BorrowedFd<'_>) -> Result<(OwnedFd, Request), Errno> {
    loop {
        let conn = match accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
            // SAFETY: accept4 just returned this fd; nothing else owns it.
            Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
            Err(Errno::EINTR | Errno::ECONNABORTED) => continue,
            Err(e) => return Err(e),
        };
        // SAFETY: `conn` stays open for the borrow.
        let borrowed = unsafe { BorrowedFd::borrow_raw(conn.as_raw_fd()) };
        let Ok((frame, fd)) = recv(borrowed, MAX_FRAME) else {
            continue;
        };
        let request = if let Some(state) = frame.strip_prefix(b"start\n") {
            Request::Start(state.to_vec())
        } else if frame == b"stats" {
            Request::Stats
        } else if let Some((listener, outside)) = fd.and_then(|l| Some((l, exec_objects(&frame)?)))
        {
            Request::Exec { listener, outside }
        } else {
            let _ = answer(borrowed, Err("malformed request"));
            continue;
        };
        return Ok((conn, request));
    }
}

/// The objects an `exec` frame names: `exec` and a space-separated `DEV:INO` per object.
fn exec_objects(frame: &[u8]) -> Option<Vec<(u64, u64)>> {
    let text = std::str::from_utf8(frame.strip_prefix(b"exec")?).ok()?;
    text.split_whitespace()
        .map(|pair| {
            let (dev, ino) = pair.split_once(':')?;
            Some((dev.parse().ok()?, ino.parse().ok()?))
        })
        .collect()
}

/// Sentry side: answers a request.
pub fn answer(conn: BorrowedFd<'_>, result: Result<&str, &str>) -> Result<(), Errno> {
    let frame = match result {
        Ok("") => "ok".to_string(),
        Ok(payload) => format!("ok {payload}"),
        Err(message) => format!("err {message}"),
    };
    send(conn, frame.as_bytes(), None)
}

/// Runtime side: sends one request and returns the answer's payload.
pub fn call(path: &Path, frame: &[u8]) -> Result<String, SandboxError> {
    call_on(connect_to(path)?.as_fd(), frame)
}

/// Runtime side: connects to the control socket, for a caller that sends later.
pub fn connect_to(path: &Path) -> Result<OwnedFd, SandboxError> {
    let sock = seqpacket()?;
    with_addr(path, |addr| {
        connect(sock.as_raw_fd(), addr)
            .ctx(|| "the sandbox is not answering (connecting to its control socket)".into())
    })?;
    Ok(sock)
}

/// Sends one request over a connected control socket and returns the answer's payload. Requests
/// without an fd go out with `write`.
pub fn call_on(borrowed: BorrowedFd<'_>, frame: &[u8]) -> Result<String, SandboxError> {
    super::fdpass::write_frame(borrowed, frame).ctx(|| "sending to the sandbox".into())?;
    reply_on(borrowed)
}

/// Sends `exec`'s request, with the listener attached (from a thread the filter does not cover:
/// see the module's comment); the answer is for [`reply_on`].
pub fn send_exec(
    borrowed: BorrowedFd<'_>,
    listener: BorrowedFd<'_>,
    outside: &[(u64, u64)],
) -> Result<(), SandboxError> {
    let mut frame = String::from("exec");
    for (dev, ino) in outside {
        frame.push_str(&format!(" {dev}:{ino}"));
    }
    send(borrowed, frame.as_bytes(), Some(listener)).ctx(|| "sending to the sandbox".into())
}

/// Waits for the answer to a request sent on `borrowed`; returns its payload. Uses `recvmsg`
/// only, which the guest filter lets run.
pub fn reply_on(borrowed: BorrowedFd<'_>) -> Result<String, SandboxError> {
    let (reply, _) = recv(borrowed, MAX_FRAME).ctx(|| "waiting for the sandbox".into())?;
    let reply = String::from_utf8_lossy(&reply).into_owned();
    if reply == "ok" {
        return Ok(String::new());
    }
    if let Some(payload) = reply.strip_prefix("ok ") {
        return Ok(payload.to_string());
    }
    Err(SandboxError::Setup(
        reply
            .strip_prefix("err ")
            .unwrap_or("the sandbox ended before answering")
            .to_string(),
    ))
}
