//! Output pipes handed to the guest are relayed through pipes of the sandbox's own.
//!
//! An fd reopened through `/proc/self/fd/N` is a new open of the same object: for a pipe the
//! caller holds only for writing (stdout into `| consumer`), an open for reading gets the pipe's
//! read end, and with it whatever anyone else writes into that pipe (`{ producer & rvisor do cmd;
//! } | consumer`). Opens for reading run natively, so nothing checks that reopen; Landlock lets
//! it through too (pipes have no path). The guest is therefore given a pipe of its own in place
//! of each pipe or FIFO it receives write-only, and the init (out of the guest's reach: not
//! dumpable, its memory in the runtime's user namespace) splices what comes out of it into the
//! caller's. Reopening the guest's end reads only what the guest itself wrote.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::thread::JoinHandle;

use nix::errno::Errno;

use super::error::{Context, SandboxError};

/// One pipe of the sandbox's, and the caller's fd it feeds.
#[derive(Debug)]
pub(crate) struct Relay {
    /// The read end of the guest's pipe.
    from: OwnedFd,
    /// The caller's pipe or FIFO, open for writing.
    to: OwnedFd,
    /// The fds of the guest's that write into it (for [`Interposed::restore`]).
    fds: Vec<RawFd>,
}

/// The relays of a guest about to start.
#[derive(Debug, Default)]
pub(crate) struct Interposed {
    relays: Vec<Relay>,
}

/// An fd number above `floor`, close-on-exec, for the same open file as `fd`.
fn dup_above(fd: RawFd, floor: RawFd) -> Result<OwnedFd, Errno> {
    // SAFETY: F_DUPFD_CLOEXEC takes integers and returns a new fd we then own.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, floor) };
    if new < 0 {
        return Err(Errno::last());
    }
    // SAFETY: `new` was just returned to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Whether `fd` is a pipe or FIFO open write-only, and which (device, inode) it is.
fn write_only_pipe(fd: RawFd) -> Option<(u64, u64)> {
    // SAFETY: F_GETFL reads an fd number's status flags; a closed one fails with EBADF.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || flags & libc::O_ACCMODE != libc::O_WRONLY {
        return None;
    }
    let st = nix::sys::stat::fstat(fd).ok()?;
    (st.st_mode & libc::S_IFMT == libc::S_IFIFO).then_some((st.st_dev, st.st_ino))
}

/// Puts a pipe of the sandbox's own in place of each of fds `0..count` that is a pipe or FIFO
/// open write-only (fds naming the same pipe, `2>&1`, share one). Called in the init, before
/// the command is started; the command inherits the new write ends.
pub(crate) fn interpose(count: u32) -> Result<Interposed, SandboxError> {
    let floor = count as RawFd;
    let mut relays: Vec<Relay> = Vec::new();
    let mut seen: Vec<((u64, u64), OwnedFd)> = Vec::new();
    for fd in 0..floor {
        let Some(id) = write_only_pipe(fd) else {
            continue;
        };
        // `seen` and `relays` grow together: the same index names one pipe in both.
        if let Some(i) = seen.iter().position(|(k, _)| *k == id) {
            // SAFETY: dup2 takes integers; `fd` is ours to replace.
            if unsafe { libc::dup2(seen[i].1.as_raw_fd(), fd) } < 0 {
                return Err(Errno::last()).ctx(|| format!("relaying fd {fd}"));
            }
            relays[i].fds.push(fd);
            continue;
        }
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .ctx(|| format!("a pipe to relay fd {fd}"))?;
        // Above the fds being replaced, so that none of them is taken by the new ones.
        let (r, w) = (
            dup_above(r.as_raw_fd(), floor).ctx(|| "dup".into())?,
            dup_above(w.as_raw_fd(), floor).ctx(|| "dup".into())?,
        );
        let to = dup_above(fd, floor).ctx(|| format!("keeping fd {fd}"))?;
        // A non-blocking stdout stays non-blocking for the guest.
        // SAFETY: F_GETFL takes integers on an fd we hold.
        let status = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if status >= 0 && status & libc::O_NONBLOCK != 0 {
            // SAFETY: F_SETFL takes integers on an fd we hold.
            unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
        }
        // SAFETY: dup2 takes integers; `fd` is ours to replace (dup2 clears close-on-exec).
        if unsafe { libc::dup2(w.as_raw_fd(), fd) } < 0 {
            return Err(Errno::last()).ctx(|| format!("relaying fd {fd}"));
        }
        relays.push(Relay {
            from: r,
            to,
            fds: vec![fd],
        });
        seen.push((id, w));
    }
    Ok(Interposed { relays })
}

impl Interposed {
    /// In the init once the command is started: gives the init's own copies of the relayed fds
    /// back to the caller's objects (so that the guest's pipes end when the guest's writers do)
    /// and starts one thread per relay. `stop` is an eventfd written when the command ended.
    pub(crate) fn start(self, stop: RawFd) -> Vec<JoinHandle<()>> {
        self.relays
            .into_iter()
            .map(|relay| {
                for &fd in &relay.fds {
                    // SAFETY: dup2 takes integers; these fd numbers are the init's own.
                    unsafe { libc::dup2(relay.to.as_raw_fd(), fd) };
                }
                std::thread::spawn(move || pump(&relay, stop))
            })
            .collect()
    }
}

fn poll(fds: &mut [libc::pollfd]) {
    loop {
        // SAFETY: `fds` is a valid array of pollfd of the length given.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if rc >= 0 || Errno::last() != Errno::EINTR {
            return;
        }
    }
}

/// Moves what the guest writes into the caller's pipe until the guest's writers are gone, the
/// caller's reader is gone, or (`stop`) the command ended and what it left is moved.
fn pump(relay: &Relay, stop: RawFd) {
    // A reader gone is an EPIPE here, never a signal for the init.
    let mut pipe_signal = nix::sys::signal::SigSet::empty();
    pipe_signal.add(nix::sys::signal::Signal::SIGPIPE);
    let _ = pipe_signal.thread_block();
    let (from, to) = (relay.from.as_raw_fd(), relay.to.as_raw_fd());
    let mut stopping = false;
    loop {
        if !stopping {
            let mut fds = [
                libc::pollfd {
                    fd: from,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: stop,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            poll(&mut fds);
            stopping = fds[1].revents != 0;
        }
        // SAFETY: splice between two fds we hold, with null offsets (both are pipes).
        let n = unsafe {
            libc::splice(
                from,
                std::ptr::null_mut(),
                to,
                std::ptr::null_mut(),
                1 << 20,
                libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
            )
        };
        match n {
            0 => return,
            n if n > 0 => continue,
            _ => match Errno::last() {
                Errno::EINTR => continue,
                // Either side: nothing to read (then, stopping, all is moved), or the caller's
                // pipe is full (wait for its reader).
                Errno::EAGAIN => {
                    let mut fds = [
                        libc::pollfd {
                            fd: to,
                            events: libc::POLLOUT,
                            revents: 0,
                        },
                        libc::pollfd {
                            fd: from,
                            events: libc::POLLIN,
                            revents: 0,
                        },
                    ];
                    // SAFETY: as in `poll`, with a zero timeout.
                    unsafe { libc::poll(fds.as_mut_ptr(), 2, 0) };
                    let readable = fds[1].revents & (libc::POLLIN | libc::POLLHUP) != 0;
                    if !readable {
                        if stopping {
                            return;
                        }
                        continue;
                    }
                    if fds[0].revents & libc::POLLERR != 0 {
                        return;
                    }
                    poll(&mut fds[..1]);
                    if fds[0].revents & libc::POLLERR != 0 {
                        return;
                    }
                }
                _ => return,
            },
        }
    }
}
