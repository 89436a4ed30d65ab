//! The gofer's request loop.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use rvisor_protocol::{
    recv_frame, send_frame, FrameBuf, Identity, Request, Response, TransportError, RELEASED,
};

use crate::idmap::IdMap;
use crate::resolve::{PathBuf, Root};
use crate::{meta, mutate, open, socket};

/// Why the gofer stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum GoferError {
    /// The socket to the sentry failed.
    #[error("gofer transport: {0}")]
    Transport(#[from] TransportError),
}

/// What a handler produced, before encoding.
#[derive(Debug)]
pub enum Outcome {
    /// A value.
    Value(i64),
    /// One fd.
    Fd(OwnedFd),
    /// A walk's per-path results and the fds found.
    Walked(Vec<i32>, Vec<OwnedFd>),
    /// `len` bytes at the start of the gofer's byte buffer.
    Bytes(usize),
    /// Let the guest's kernel do it (FIFOs).
    Native,
}

/// The gofer: the root, the guest's id maps, and reusable buffers.
#[derive(Debug)]
pub struct Gofer {
    pub(crate) root: Root,
    pub(crate) ids: IdMap,
    pub(crate) scratch: PathBuf,
    pub(crate) bytes: Vec<u8>,
    identity: crate::identity::Taker,
    /// The Unix sockets this gofer bound for the guest (device, inode), each with an O_PATH
    /// handle that keeps its inode number from being reused: the host's sockets that volumes or
    /// a read-only root expose are not among them.
    pub(crate) bound: std::collections::HashMap<(u64, u64), OwnedFd>,
    /// `--host-uds=open`: the guest may also reach sockets it did not make.
    pub(crate) host_sockets: bool,
    /// Host sockets refused so far (logged at powers of two: a guest must not flood the log).
    pub(crate) refused_sockets: u64,
    /// The objects (device, inode) handed in to the guest from outside (its stdio and
    /// `--preserve-fds`): no attribute change reaches them, even by a path in a volume.
    pub(crate) outside: std::collections::HashSet<(u64, u64)>,
}

impl Gofer {
    /// A gofer serving `root` for a guest whose user namespace maps ids as `ids`.
    pub fn new(root: OwnedFd, ids: IdMap) -> Self {
        // Modes arrive with the guest's own umask applied; ours must not mask them again.
        nix::sys::stat::umask(nix::sys::stat::Mode::empty());
        Gofer {
            root: Root::new(root),
            ids,
            scratch: PathBuf::default(),
            bytes: Vec::new(),
            identity: crate::identity::Taker::default(),
            bound: std::collections::HashMap::new(),
            host_sockets: false,
            refused_sockets: 0,
            outside: std::collections::HashSet::new(),
        }
    }

    /// Refuses attribute changes to these objects (device, inode): what the caller handed in.
    pub fn with_outside(mut self, objects: &[(u64, u64)]) -> Self {
        self.outside.extend(objects.iter().copied());
        self
    }

    /// EPERM if `handle` names an object handed in from outside.
    pub(crate) fn refuse_outside(&self, handle: &OwnedFd) -> Result<(), Errno> {
        if self.outside.is_empty() {
            return Ok(());
        }
        let st = nix::sys::stat::fstat(handle.as_raw_fd())?;
        if self.outside.contains(&(st.st_dev, st.st_ino)) {
            return Err(Errno::EPERM);
        }
        Ok(())
    }

    /// Lets the guest connect to Unix sockets it did not bind (runsc's `--host-uds=open`).
    pub fn with_host_sockets(mut self, open: bool) -> Self {
        self.host_sockets = open;
        self
    }

    /// The bytes of the last `Outcome::Bytes`.
    pub fn reply_bytes(&self, len: usize) -> &[u8] {
        &self.bytes[..len]
    }

    /// Serves requests until the sentry hangs up.
    pub fn serve(&mut self, sock: BorrowedFd<'_>) -> Result<(), GoferError> {
        let mut frame = FrameBuf::default();
        let mut fds_in = Vec::new();
        let mut reply = Vec::new();
        loop {
            match recv_frame(sock, &mut frame, &mut fds_in) {
                Ok(()) => {}
                Err(TransportError::HungUp) => return Ok(()),
                Err(TransportError::Truncated) => {
                    Response::Errno(Errno::EMSGSIZE as i32).encode(&mut reply);
                    send_frame(sock, &reply, &[])?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            let outcome = match Request::decode(frame.frame()) {
                Ok((who, req)) => self.handle(who, &req, std::mem::take(&mut fds_in)),
                // A malformed frame is refused; the gofer carries on.
                Err(e) => {
                    tracing::warn!("gofer: bad request: {e}");
                    Err(Errno::EBADMSG)
                }
            };
            let mut out_fds: Vec<OwnedFd> = Vec::new();
            let resp = match outcome {
                Ok(Outcome::Value(v)) => Response::Value(v),
                Ok(Outcome::Fd(fd)) => {
                    out_fds.push(fd);
                    Response::Fd
                }
                Ok(Outcome::Walked(results, fds)) => {
                    out_fds = fds;
                    Response::Walked(results)
                }
                Ok(Outcome::Bytes(len)) => Response::Bytes(&self.bytes[..len]),
                Ok(Outcome::Native) => Response::Native,
                Err(e) => Response::Errno(e as i32),
            };
            resp.encode(&mut reply);
            let borrowed: Vec<BorrowedFd<'_>> = out_fds.iter().map(|f| f.as_fd()).collect();
            send_frame(sock, &reply, &borrowed)?;
            if resp.carries_fds() {
                drop(borrowed);
                drop(out_fds);
                send_frame(sock, RELEASED, &[])?;
            }
        }
    }

    /// Services one request as `who`.
    pub fn handle(
        &mut self,
        who: Identity<'_>,
        req: &Request<'_>,
        fds: Vec<OwnedFd>,
    ) -> Result<Outcome, Errno> {
        self.identity.take(&who, &self.ids)?;
        match req {
            Request::Open {
                at,
                flags,
                mode,
                resolve,
            } => open::open(self, at, *flags, *mode, *resolve),
            Request::Walk { paths, nofollow } => open::walk(self, paths, *nofollow),
            Request::Bind { at, umask } => mutate::bind(self, at, *umask, fds.into_iter().next()),
            Request::Socket { at } => socket::reachable(self, at),
            Request::Stat { at, flags } => meta::stat(self, at, *flags),
            Request::Readlink { at } => meta::readlink(self, at),
            Request::Statfs { at } => meta::statfs(self, at),
            Request::Access { at, mode, flags } => meta::access(self, at, *mode, *flags),
            Request::GetXattr {
                at,
                name,
                size,
                flags,
            } => meta::getxattr(self, at, name, *size, *flags),
            Request::ListXattr { at, size, flags } => meta::listxattr(self, at, *size, *flags),
            Request::Mkdir { at, mode } => mutate::mkdir(self, at, *mode),
            Request::Mknod { at, mode, dev } => mutate::mknod(self, at, *mode, *dev),
            Request::Unlink { at, flags } => mutate::unlink(self, at, *flags),
            Request::Rename { from, to, flags } => mutate::rename(self, from, to, *flags),
            Request::Link { from, to, flags } => {
                mutate::link(self, from, to, *flags, fds.into_iter().next())
            }
            Request::Symlink { target, at } => mutate::symlink(self, target, at),
            Request::Chmod { at, mode, flags } => mutate::chmod(self, at, *mode, *flags),
            Request::Chown {
                at,
                uid,
                gid,
                flags,
            } => mutate::chown(self, at, *uid, *gid, *flags),
            Request::Utimens { at, times, flags } => mutate::utimens(self, at, times, *flags),
            Request::Truncate { at, length, limit } => mutate::truncate(self, at, *length, *limit),
            Request::SetXattr {
                at,
                name,
                value,
                xflags,
                flags,
            } => mutate::setxattr(self, at, name, value, *xflags, *flags),
            Request::RemoveXattr { at, name, flags } => mutate::removexattr(self, at, name, *flags),
            Request::HandIn { objects } => {
                for &o in objects {
                    if self.outside.len() >= rvisor_protocol::MAX_OUTSIDE {
                        return Err(Errno::ENOSPC);
                    }
                    self.outside.insert(o);
                }
                Ok(Outcome::Value(0))
            }
        }
    }
}

/// A libc return value of any width.
pub(crate) trait SysRet {
    fn widen(self) -> i64;
}
impl SysRet for i32 {
    fn widen(self) -> i64 {
        i64::from(self)
    }
}
impl SysRet for i64 {
    fn widen(self) -> i64 {
        self
    }
}
impl SysRet for isize {
    fn widen(self) -> i64 {
        self as i64
    }
}

/// Turns a libc return value into a Result.
pub(crate) fn check(rc: impl SysRet) -> Result<i64, Errno> {
    let rc = rc.widen();
    if rc < 0 {
        Err(Errno::last())
    } else {
        Ok(rc)
    }
}
