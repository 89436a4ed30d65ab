//! open and batched walks.

use std::os::fd::AsRawFd;

use nix::errno::Errno;
use rvisor_protocol::Loc;

use crate::resolve::{cstring, openat2, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS};
use crate::server::{Gofer, Outcome};

/// Opens `at` for the guest. A FIFO is handed back to the guest's own kernel, unopened: an open
/// here, even non-blocking and closed at once, would be the partner a guest reader or writer
/// blocked in its own open is waiting for, which then gets EOF or EPIPE from a peer that is
/// gone (a shell's `cat fifo & echo x > fifo` lost its reader, and hung, in 1 run of 4). So an
/// existing object's type is looked at first (an O_PATH handle opens nothing); the rest is
/// opened non-blocking (a FIFO swapped in meanwhile must not block the gofer), and the flag is
/// dropped again when the guest did not ask for it.
pub fn open(
    g: &mut Gofer,
    at: &Loc<'_>,
    flags: u32,
    mode: u32,
    resolve: u64,
) -> Result<Outcome, Errno> {
    let flags = flags as i32 & !libc::O_CLOEXEC;
    let wants_nonblock = flags & libc::O_NONBLOCK != 0;
    let opath = flags & libc::O_PATH != 0;
    let fresh = flags & (libc::O_CREAT | libc::O_EXCL) == libc::O_CREAT | libc::O_EXCL
        || flags & libc::O_TMPFILE == libc::O_TMPFILE;
    if !opath && !fresh && is_fifo(g, at) {
        return Ok(Outcome::Native);
    }
    let ours = if opath {
        flags
    } else {
        flags | libc::O_NONBLOCK | libc::O_NOCTTY
    };
    let fd = match g
        .root
        .open(&mut g.scratch, at, ours as u64, u64::from(mode), resolve)
    {
        // A FIFO without a reader refuses a non-blocking writer: let the guest block natively.
        Err(Errno::ENXIO) if is_fifo(g, at) => return Ok(Outcome::Native),
        r => r?,
    };
    if opath {
        return Ok(Outcome::Fd(fd));
    }
    let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
    if st.st_mode & libc::S_IFMT == libc::S_IFIFO {
        return Ok(Outcome::Native);
    }
    if !wants_nonblock {
        // SAFETY: F_GETFL/F_SETFL on an fd we own.
        let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
        // SAFETY: as above.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK) };
    }
    Ok(Outcome::Fd(fd))
}

fn is_fifo(g: &mut Gofer, at: &Loc<'_>) -> bool {
    g.root
        .lookup(&mut g.scratch, at, false)
        .ok()
        .and_then(|fd| nix::sys::stat::fstat(fd.as_raw_fd()).ok())
        .is_some_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFIFO)
}

/// O_PATH handles for several absolute paths (what a dynamic loader will open).
pub fn walk(g: &mut Gofer, paths: &[&[u8]], nofollow: bool) -> Result<Outcome, Errno> {
    let flags = if nofollow {
        libc::O_PATH | libc::O_NOFOLLOW
    } else {
        libc::O_PATH
    } as u64;
    let mut results = Vec::with_capacity(paths.len());
    let mut fds = Vec::with_capacity(paths.len());
    for p in paths {
        let found = cstring(p).and_then(|c| {
            openat2(
                g.root.raw(),
                &c,
                flags,
                0,
                RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
            )
        });
        match found {
            Ok(fd) => {
                results.push(0);
                fds.push(fd);
            }
            Err(e) => results.push(e as i32),
        }
    }
    Ok(Outcome::Walked(results, fds))
}
