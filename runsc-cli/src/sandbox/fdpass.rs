//! The guest init's messages to the sentry: prepared (waiting for start), then the seccomp
//! listener, or why setup failed; and the sentry's one message back: start.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

const READY: u8 = 0;
const FAILED: u8 = 1;
const PREPARED: u8 = 2;
const START: u8 = 3;
/// Longest setup error carried back.
const MAX_MESSAGE: usize = 4096;

/// What the guest init reported.
#[derive(Debug)]
pub enum InitReport {
    /// Setup succeeded; here is the listener.
    Ready(OwnedFd),
    /// Setup failed with this message.
    Failed(String),
    /// The sandbox is built; the init waits for start.
    Prepared,
    /// The init died without a word.
    Silent,
}

/// Tells the sentry the sandbox is built.
pub fn send_prepared(sock: BorrowedFd<'_>) -> Result<(), Errno> {
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(&[PREPARED])],
        &[],
        MsgFlags::empty(),
        None,
    )
    .map(drop)
}

/// Starts the prepared init; `state` is the container state its start hooks read.
pub fn send_start(sock: BorrowedFd<'_>, state: &[u8]) -> Result<(), Errno> {
    let mut frame = vec![START];
    frame.extend_from_slice(state);
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(&frame)],
        &[],
        MsgFlags::empty(),
        None,
    )
    .map(drop)
}

/// Waits for start; `None` if the sentry went away instead.
pub fn receive_start(sock: BorrowedFd<'_>) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        match recvmsg::<()>(sock.as_raw_fd(), &mut iov, None, MsgFlags::empty()) {
            Ok(msg) if msg.bytes > 0 => {
                let n = msg.bytes;
                return (buf[0] == START).then(|| buf[1..n].to_vec());
            }
            Err(Errno::EINTR) => continue,
            _ => return None,
        }
    }
}

/// Sends the listener fd.
pub fn send_listener(sock: BorrowedFd<'_>, listener: BorrowedFd<'_>) -> Result<(), Errno> {
    let fds = [listener.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(&[READY])],
        &cmsg,
        MsgFlags::empty(),
        None,
    )?;
    Ok(())
}

/// Sends a setup failure.
pub fn send_failure(sock: BorrowedFd<'_>, message: &str) {
    let mut frame = vec![FAILED];
    frame.extend(message.as_bytes().iter().take(MAX_MESSAGE));
    let _ = sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(&frame)],
        &[],
        MsgFlags::empty(),
        None,
    );
}

/// Waits for the init's report.
pub fn receive(sock: BorrowedFd<'_>) -> Result<InitReport, Errno> {
    let mut buf = vec![0u8; MAX_MESSAGE + 1];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let (bytes, fd) = loop {
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
                break (msg.bytes, fd);
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    };
    // SAFETY: the kernel installed this fd in our table for us with SCM_RIGHTS; nothing else owns it.
    let fd = fd.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    Ok(match (bytes, buf.first(), fd) {
        (0, _, _) => InitReport::Silent,
        (_, Some(&READY), Some(fd)) => InitReport::Ready(fd),
        (1, Some(&PREPARED), None) => InitReport::Prepared,
        (n, Some(&FAILED), _) => {
            InitReport::Failed(String::from_utf8_lossy(&buf[1..n]).into_owned())
        }
        _ => InitReport::Failed("malformed report from the guest init".into()),
    })
}
