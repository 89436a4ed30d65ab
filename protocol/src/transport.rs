//! One frame per `SOCK_SEQPACKET` message, with fds beside it.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

/// Most fds in one message.
pub const MAX_FDS: usize = 32;

/// Failures moving a frame.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The peer closed its end.
    #[error("the peer hung up")]
    HungUp,
    /// The message did not fit the buffer (it was cut).
    #[error("message truncated")]
    Truncated,
    /// The socket call failed.
    #[error("socket: {0}")]
    Sys(#[from] Errno),
}

/// Sends `frame` with `fds`.
pub fn send_frame(
    sock: BorrowedFd<'_>,
    frame: &[u8],
    fds: &[BorrowedFd<'_>],
) -> Result<(), TransportError> {
    let raw: [RawFd; MAX_FDS] = std::array::from_fn(|i| fds.get(i).map_or(-1, |f| f.as_raw_fd()));
    let rights = [ControlMessage::ScmRights(&raw[..fds.len().min(MAX_FDS)])];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
    loop {
        match sendmsg::<()>(
            sock.as_raw_fd(),
            &[IoSlice::new(frame)],
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => {}
            Err(Errno::EPIPE | Errno::ECONNRESET) => return Err(TransportError::HungUp),
            Err(e) => return Err(e.into()),
        }
    }
}

/// A receive buffer, sized once: frames land in it without re-zeroing or allocating.
#[derive(Debug)]
pub struct FrameBuf {
    data: Vec<u8>,
    cmsg: Vec<u8>,
    len: usize,
}

impl Default for FrameBuf {
    fn default() -> Self {
        FrameBuf {
            data: vec![0; crate::MAX_FRAME],
            cmsg: nix::cmsg_space!([RawFd; MAX_FDS]),
            len: 0,
        }
    }
}

impl FrameBuf {
    /// The last frame received.
    pub fn frame(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

/// Receives one frame into `buf` and its fds into `fds`.
pub fn recv_frame(
    sock: BorrowedFd<'_>,
    buf: &mut FrameBuf,
    fds: &mut Vec<OwnedFd>,
) -> Result<(), TransportError> {
    recv_frame_polling(sock, buf, fds, 0)
}

/// As `recv_frame`, but first polls without sleeping up to `spins` times: an answer that is
/// microseconds away then costs no wake-up.
pub fn recv_frame_polling(
    sock: BorrowedFd<'_>,
    buf: &mut FrameBuf,
    fds: &mut Vec<OwnedFd>,
    spins: u32,
) -> Result<(), TransportError> {
    fds.clear();
    let mut spins_left = spins;
    let (len, flags) = loop {
        let dontwait = if spins_left > 0 {
            MsgFlags::MSG_DONTWAIT
        } else {
            MsgFlags::empty()
        };
        let mut iov = [IoSliceMut::new(buf.data.as_mut_slice())];
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut buf.cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC | dontwait,
        ) {
            Ok(msg) => {
                for c in msg.cmsgs()? {
                    if let ControlMessageOwned::ScmRights(received) = c {
                        // SAFETY: SCM_RIGHTS just installed these fds in our table; we own them.
                        fds.extend(
                            received
                                .into_iter()
                                .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                        );
                    }
                }
                break (msg.bytes, msg.flags);
            }
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) if spins_left > 0 => {
                spins_left -= 1;
                std::hint::spin_loop();
            }
            // The peer closed with our last frame unread (it failed or exited first): gone, as
            // at end of file.
            Err(Errno::ECONNRESET) => return Err(TransportError::HungUp),
            Err(e) => return Err(e.into()),
        }
    };
    if len == 0 {
        return Err(TransportError::HungUp);
    }
    if flags.intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC) {
        return Err(TransportError::Truncated);
    }
    buf.len = len;
    Ok(())
}
