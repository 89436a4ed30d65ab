//! Messages with at most one fd over a Unix socket ([`send`], [`recv`]), and on them the guest
//! init's messages to the sentry: prepared (waiting for start), then the seccomp listener, or
//! why setup failed; and the sentry's one message back: start.

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
/// Longest setup error carried back.
const MAX_MESSAGE: usize = 4096;
/// Longest start message (the container state).
const MAX_START: usize = 64 * 1024;

/// Sends `frame`, with `fd` attached if given.
pub fn send(sock: BorrowedFd<'_>, frame: &[u8], fd: Option<BorrowedFd<'_>>) -> Result<(), Errno> {
    let fds: Vec<i32> = fd.iter().map(|f| f.as_raw_fd()).collect();
    let cmsg: Vec<ControlMessage<'_>> = if fds.is_empty() {
        Vec::new()
    } else {
        vec![ControlMessage::ScmRights(&fds)]
    };
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(frame)],
        &cmsg,
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
    /// Setup succeeded; here is the listener.
    Ready(OwnedFd),
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

/// Sends the listener fd.
pub fn send_listener(sock: BorrowedFd<'_>, listener: BorrowedFd<'_>) -> Result<(), Errno> {
    send(sock, &[READY], Some(listener))
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
        (Some((&READY, _)), Some(fd)) => InitReport::Ready(fd),
        (Some((&READY, [])), None) => InitReport::Traced,
        (Some((&TRACEABLE, [])), None) => InitReport::Traceable,
        (Some((&PREPARED, [])), None) => InitReport::Prepared,
        (Some((&FAILED, message)), _) => {
            InitReport::Failed(String::from_utf8_lossy(message).into_owned())
        }
        _ => InitReport::Failed("malformed report from the guest init".into()),
    })
}
