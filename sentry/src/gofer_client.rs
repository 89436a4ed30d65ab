//! The sentry's end of the gofer channel: one request in flight at a time, buffers reused.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use bumpalo::Bump;
use nix::errno::Errno;
use parking_lot::Mutex;
use rvisor_protocol::{recv_frame, send_frame, Identity, Request, Response};

/// Counters printed with `--stats`.
#[derive(Debug, Default)]
pub struct GoferStats {
    /// Requests sent to the gofer.
    pub round_trips: AtomicU64,
    /// Opens served from the fd cache without a round trip.
    pub cache_hits: AtomicU64,
    /// Cacheable opens that had to ask the gofer.
    pub cache_misses: AtomicU64,
    /// Batched walks sent.
    pub batches: AtomicU64,
    /// Paths in those batches.
    pub batched_paths: AtomicU64,
}

/// What the gofer answered, with bytes copied into the request's arena.
#[derive(Debug)]
pub enum Answer<'a> {
    /// A value.
    Value(i64),
    /// An fd.
    Fd(OwnedFd),
    /// Bytes.
    Bytes(&'a [u8]),
    /// Let the guest's kernel do it.
    Native,
    /// Per-path results of a walk and the fds found.
    Walked(Vec<i32>, Vec<OwnedFd>),
}

#[derive(Debug, Default)]
struct Io {
    out: Vec<u8>,
    inbuf: Vec<u8>,
    fds: Vec<OwnedFd>,
}

/// The channel to the gofer.
#[derive(Debug)]
pub struct GoferClient {
    sock: OwnedFd,
    io: Mutex<Io>,
    /// Counters.
    pub stats: GoferStats,
}

impl GoferClient {
    /// A client on the sentry's end of the request socket.
    pub fn new(sock: OwnedFd) -> Self {
        GoferClient {
            sock,
            io: Mutex::default(),
            stats: GoferStats::default(),
        }
    }

    /// Sends `req` (with `fd` beside it) for `who` and waits for the answer. A broken channel is
    /// EIO: the gofer is gone, and the sandbox with it.
    pub fn call<'a>(
        &self,
        arena: &'a Bump,
        who: Identity,
        req: &Request<'_>,
        fd: Option<BorrowedFd<'_>>,
    ) -> Result<Answer<'a>, Errno> {
        self.stats.round_trips.fetch_add(1, Ordering::Relaxed);
        let mut io = self.io.lock();
        let io = &mut *io;
        req.encode(who, &mut io.out);
        let fds: &[BorrowedFd<'_>] = match &fd {
            Some(f) => std::slice::from_ref(f),
            None => &[],
        };
        send_frame(self.sock.as_fd(), &io.out, fds).map_err(|_| Errno::EIO)?;
        recv_frame(self.sock.as_fd(), &mut io.inbuf, &mut io.fds).map_err(|_| Errno::EIO)?;
        let resp = Response::decode(&io.inbuf).map_err(|_| Errno::EIO)?;
        Ok(match resp {
            Response::Value(v) => Answer::Value(v),
            Response::Errno(e) => return Err(Errno::from_raw(e)),
            Response::Fd => Answer::Fd(io.fds.pop().ok_or(Errno::EIO)?),
            Response::Bytes(b) => Answer::Bytes(arena.alloc_slice_copy(b)),
            Response::Native => Answer::Native,
            Response::Walked(results) => Answer::Walked(results, std::mem::take(&mut io.fds)),
        })
    }
}
