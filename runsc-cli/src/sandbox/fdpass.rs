//! Messages with at most one fd over a Unix socket ([`send`], [`recv`]), and on them the guest
//! init's messages to the sentry: prepared (waiting for start), then the seccomp listener, or
//! why setup failed; and the sentry's one message back: start.
//!
//! A process that has just installed the guest filter cannot send its own listener with
//! `sendmsg`: that call is trapped, and the notification would wait on the very listener in
//! flight. It writes the listener's fd number instead (`write` runs natively), and the sentry
//! takes the fd out of its table with `pidfd_getfd` ([`take_fd`]), then acknowledges.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

const READY: u8 = 0;
const FAILED: u8 = 1;
const PREPARED: u8 = 2;
const START: u8 = 3;
/// ptrace platform: the init waits to be seized...
const TRACEABLE: u8 = 4;
/// ...and is, with the guest's end of the reserved socket.
const SEIZED: u8 = 5;
/// The sentry took the listener the init named.
const TAKEN: u8 = 6;
/// Longest setup error carried back.
const MAX_MESSAGE: usize = 4096;
/// Longest start message (the container state).
const MAX_START: usize = 64 * 1024;

/// Sends `frame`, with `fd` attached if given. Without an fd it is a plain `write`, which the
/// guest filter never traps (the init reports through here after installing it, sometimes
/// before anyone serves its trapped calls).
pub fn send(sock: BorrowedFd<'_>, frame: &[u8], fd: Option<BorrowedFd<'_>>) -> Result<(), Errno> {
    let Some(fd) = fd else {
        return write_frame(sock, frame);
    };
    let fds = [fd.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(frame)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map(drop)
}

/// Receives one message of at most `max` bytes and the fd attached to it, if any; an empty
/// message is the peer's end.
pub fn recv(sock: BorrowedFd<'_>, max: usize) -> Result<(Vec<u8>, Option<OwnedFd>), Errno> {
    let mut buf = vec![0u8; max];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => {
                let fd = msg.cmsgs()?.find_map(|c| match c {
                    ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
                    _ => None,
                });
                let n = msg.bytes;
                // SAFETY: the kernel installed this fd in our table for us; nothing else owns it.
                let fd = fd.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
                buf.truncate(n);
                return Ok((buf, fd));
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// What the guest init reported.
#[derive(Debug)]
pub enum InitReport {
    /// Setup succeeded; the listener is this fd of the init's (to take with [`take_fd`]).
    Ready(i32),
    /// Setup succeeded under the tracer (ptrace platform: no listener).
    Traced,
    /// The init waits to be seized by the tracer (ptrace platform).
    Traceable,
    /// Setup failed with this message.
    Failed(String),
    /// The sandbox is built; the init waits for start.
    Prepared,
    /// The init died without a word.
    Silent,
}

/// Tells the sentry the sandbox is built.
pub fn send_prepared(sock: BorrowedFd<'_>) -> Result<(), Errno> {
    send(sock, &[PREPARED], None)
}

/// Starts the prepared init; `state` is the container state its start hooks read.
pub fn send_start(sock: BorrowedFd<'_>, state: &[u8]) -> Result<(), Errno> {
    let mut frame = vec![START];
    frame.extend_from_slice(state);
    send(sock, &frame, None)
}

/// Waits for start; `None` if the sentry went away instead.
pub fn receive_start(sock: BorrowedFd<'_>) -> Option<Vec<u8>> {
    let (frame, _) = recv(sock, MAX_START).ok()?;
    frame.strip_prefix(&[START]).map(<[u8]>::to_vec)
}

/// Tells the sentry which of our fds is the listener (with `write`: see the module comment),
/// and keeps it open until the sentry has taken it.
pub fn send_listener(sock: BorrowedFd<'_>, listener: BorrowedFd<'_>) -> Result<(), Errno> {
    let mut frame = vec![READY];
    frame.extend_from_slice(&listener.as_raw_fd().to_ne_bytes());
    write_frame(sock, &frame)?;
    match recv(sock, MAX_MESSAGE) {
        Ok((ack, _)) if ack == [TAKEN] => Ok(()),
        Ok(_) => Err(Errno::EPROTO),
        Err(e) => Err(e),
    }
}

/// The sentry's acknowledgement that it took the listener.
pub fn send_taken(sock: BorrowedFd<'_>) -> Result<(), Errno> {
    send(sock, &[TAKEN], None)
}

/// Sends one record with `write` (a SOCK_SEQPACKET socket keeps it whole), never `sendmsg`.
pub fn write_frame(sock: BorrowedFd<'_>, frame: &[u8]) -> Result<(), Errno> {
    loop {
        match nix::unistd::write(sock, frame) {
            Ok(n) if n == frame.len() => return Ok(()),
            Ok(_) => return Err(Errno::EMSGSIZE),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A duplicate of fd `fd` of process `pid` (host pid), for a listener handed over by number.
pub fn take_fd(pid: i32, fd: i32) -> Result<OwnedFd, Errno> {
    sentry::pidfd::take_fd(pid, fd, false)
}

/// Tells the sentry the filter is on, with no listener (ptrace platform).
pub fn send_traced(sock: BorrowedFd<'_>) -> Result<(), Errno> {
    send(sock, &[READY], None)
}

/// Asks the sentry to seize us (ptrace platform).
pub fn send_traceable(sock: BorrowedFd<'_>) -> Result<(), Errno> {
    send(sock, &[TRACEABLE], None)
}

/// Tells the init it is traced, handing it the guest's end of the reserved socket.
pub fn send_seized(sock: BorrowedFd<'_>, guest_end: BorrowedFd<'_>) -> Result<(), Errno> {
    send(sock, &[SEIZED], Some(guest_end))
}

/// Waits to be seized; the guest's end of the reserved socket, or `None` if the sentry gave up.
pub fn receive_seized(sock: BorrowedFd<'_>) -> Option<OwnedFd> {
    match recv(sock, MAX_MESSAGE) {
        Ok((frame, fd)) if frame == [SEIZED] => fd,
        _ => None,
    }
}

/// Sends a setup failure.
pub fn send_failure(sock: BorrowedFd<'_>, message: &str) {
    let mut frame = vec![FAILED];
    frame.extend(message.as_bytes().iter().take(MAX_MESSAGE));
    let _ = send(sock, &frame, None);
}

/// Waits for the init's report.
pub fn receive(sock: BorrowedFd<'_>) -> Result<InitReport, Errno> {
    let (frame, fd) = recv(sock, MAX_MESSAGE + 1)?;
    Ok(match (frame.split_first(), fd) {
        (None, _) => InitReport::Silent,
        (Some((&READY, n)), None) if n.len() == 4 => {
            InitReport::Ready(i32::from_ne_bytes([n[0], n[1], n[2], n[3]]))
        }
        (Some((&READY, [])), None) => InitReport::Traced,
        (Some((&TRACEABLE, [])), None) => InitReport::Traceable,
        (Some((&PREPARED, [])), None) => InitReport::Prepared,
        (Some((&FAILED, message)), _) => {
            InitReport::Failed(String::from_utf8_lossy(message).into_owned())
        }
        _ => InitReport::Failed("malformed report from the guest init".into()),
    })
}
