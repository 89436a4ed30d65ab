//! The sentry's end of the gofer channel: one request in flight at a time, buffers reused.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use bumpalo::Bump;
use nix::errno::Errno;
use parking_lot::Mutex;
use rvisor_protocol::{
    recv_frame_polling, send_frame, FrameBuf, Identity, Request, Response, RELEASED,
};

/// Non-blocking polls for the gofer's answer before sleeping on it (each ~0.3 us).
const SPINS: u32 = 200;

use crate::fd_cache::FdCache;

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
    inbuf: FrameBuf,
    fds: Vec<OwnedFd>,
}

/// The channel to the gofer, and what it has already looked up.
#[derive(Debug)]
pub struct GoferClient {
    sock: OwnedFd,
    io: Mutex<Io>,
    /// Lookups already done (see `fd_cache`).
    pub cache: Mutex<FdCache>,
    /// Whether the cache is used (`--no-fd-cache` turns it off, to measure it).
    pub cache_enabled: bool,
    /// `/etc/ld.so.cache`, read once, to predict what exec will load.
    pub ld_cache: Mutex<Option<std::sync::Arc<crate::loader::LdCache>>>,
    /// Counters.
    pub stats: GoferStats,
}

/// Whether `req` can change the tree (and so must empty the cache).
fn mutates(req: &Request<'_>) -> bool {
    match req {
        Request::Open { flags, .. } => {
            *flags & (libc::O_CREAT as u32) != 0
                || *flags & (libc::O_TMPFILE as u32) == libc::O_TMPFILE as u32
        }
        r => r.op().mutates(),
    }
}

impl GoferClient {
    /// A client on the sentry's end of the request socket.
    pub fn new(sock: OwnedFd) -> Self {
        GoferClient {
            sock,
            io: Mutex::default(),
            cache: Mutex::default(),
            cache_enabled: true,
            ld_cache: Mutex::default(),
            stats: GoferStats::default(),
        }
    }

    /// The same client with the fd cache off.
    pub fn without_cache(mut self) -> Self {
        self.cache_enabled = false;
        self
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
        if mutates(req) {
            self.cache.lock().clear();
        }
        if let Request::Walk { paths, .. } = req {
            self.stats.batches.fetch_add(1, Ordering::Relaxed);
            self.stats
                .batched_paths
                .fetch_add(paths.len() as u64, Ordering::Relaxed);
        }
        let mut io = self.io.lock();
        let io = &mut *io;
        req.encode(who, &mut io.out);
        let fds: &[BorrowedFd<'_>] = match &fd {
            Some(f) => std::slice::from_ref(f),
            None => &[],
        };
        send_frame(self.sock.as_fd(), &io.out, fds).map_err(|_| Errno::EIO)?;
        recv_frame_polling(self.sock.as_fd(), &mut io.inbuf, &mut io.fds, SPINS)
            .map_err(|_| Errno::EIO)?;
        let resp = Response::decode(io.inbuf.frame()).map_err(|_| Errno::EIO)?;
        let released = resp.carries_fds();
        let answer = match resp {
            Response::Value(v) => Ok(Answer::Value(v)),
            Response::Errno(e) => Err(Errno::from_raw(e)),
            Response::Fd => io.fds.pop().map(Answer::Fd).ok_or(Errno::EIO),
            Response::Bytes(b) => Ok(Answer::Bytes(arena.alloc_slice_copy(b))),
            Response::Native => Ok(Answer::Native),
            Response::Walked(results) => Ok(Answer::Walked(results, std::mem::take(&mut io.fds))),
        };
        // Read even when the answer is unusable: the next call must find its own response.
        if released {
            // Only then is ours the gofer's last copy (see RELEASED); it follows at once.
            recv_frame_polling(self.sock.as_fd(), &mut io.inbuf, &mut io.fds, SPINS)
                .map_err(|_| Errno::EIO)?;
            if io.inbuf.frame() != RELEASED || !io.fds.is_empty() {
                return Err(Errno::EIO);
            }
        }
        answer
    }
}
