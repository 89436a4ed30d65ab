//! The default platform: `SECCOMP_RET_USER_NOTIF` with a listener fd held by the sentry.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;

use super::{memory, Platform, PlatformError, Reply, Trap};

/// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (Linux 6.6): wake the sentry on the guest's CPU.
const SYNC_WAKE_UP: libc::c_ulong = 1;

/// Serves the calls trapped by one seccomp listener.
#[derive(Debug)]
pub struct SeccompNotify {
    listener: OwnedFd,
}

impl SeccompNotify {
    /// Takes ownership of a listener returned by `SECCOMP_FILTER_FLAG_NEW_LISTENER`.
    ///
    /// Asks for synchronous wake-ups where the kernel has them: the guest blocks on every trapped
    /// call, so running the sentry on the same CPU right away halves the round trip.
    pub fn new(listener: OwnedFd) -> Self {
        let this = Self { listener };
        // SAFETY: SET_FLAGS takes its flags by value (not through a pointer) on a listener fd we
        // own; an older kernel fails it with EINVAL, which is harmless (wake-ups stay
        // asynchronous).
        let _ = unsafe {
            libc::ioctl(
                this.listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS as _,
                SYNC_WAKE_UP,
            )
        };
        this
    }

    fn ioctl<T>(
        &self,
        req: libc::Ioctl,
        arg: *mut T,
        op: &'static str,
    ) -> Result<(), PlatformError> {
        // SAFETY: every caller passes the ioctl request matching the pointee type `T`, and the
        // pointer is valid for the duration of the call.
        let rc = unsafe { libc::ioctl(self.listener.as_raw_fd(), req as _, arg) };
        if rc < 0 {
            return Err(match Errno::last() {
                Errno::ENOENT => PlatformError::Gone,
                errno => PlatformError::Sys { op, errno },
            });
        }
        Ok(())
    }
}

impl SeccompNotify {
    /// Whether every task under the filter is gone (the listener polls as hung up).
    fn orphaned(&self) -> bool {
        use std::os::fd::AsFd;
        let mut fds = [nix::poll::PollFd::new(
            self.listener.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        matches!(nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO), Ok(n) if n > 0)
            && fds[0]
                .revents()
                .is_some_and(|r| r.contains(nix::poll::PollFlags::POLLHUP))
    }
}

impl Platform for SeccompNotify {
    fn name(&self) -> &'static str {
        "seccomp-notify"
    }

    /// True even where the filter has WAIT_KILLABLE_RECV (a received call is then not cut
    /// short): the listener does not tell, and holding the reply for a restart is only
    /// unneeded there, never wrong.
    fn signal_interrupts_wait(&self) -> bool {
        true
    }

    fn receive(&self, trap: &mut Trap) -> Result<(), PlatformError> {
        // SAFETY: seccomp_notif is plain old data; all-zero is the required input state.
        let mut notif: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        loop {
            match self.ioctl(
                libc::SECCOMP_IOCTL_NOTIF_RECV,
                &mut notif,
                "SECCOMP_IOCTL_NOTIF_RECV",
            ) {
                Ok(()) => break,
                // Interrupted.
                Err(PlatformError::Sys {
                    errno: Errno::EINTR,
                    ..
                }) => {}
                // The caller was killed between notification and receipt, or no task is left
                // under the filter: then every receive fails at once, and the listener polls as
                // hung up (no task can come back under it: only a filtered task forks one).
                Err(PlatformError::Gone) => {
                    if self.orphaned() {
                        return Err(PlatformError::Detached);
                    }
                }
                Err(PlatformError::Sys {
                    errno: Errno::EBADF,
                    ..
                }) => return Err(PlatformError::Detached),
                Err(e) => return Err(e),
            }
        }
        *trap = Trap {
            id: notif.id,
            tid: notif.pid as i32,
            nr: i64::from(notif.data.nr),
            args: notif.data.args,
            arch: notif.data.arch,
            ip: notif.data.instruction_pointer,
        };
        Ok(())
    }

    fn pending(&self) -> bool {
        let mut fds = [libc::pollfd {
            fd: self.listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: one pollfd, valid for the call; a zero timeout never blocks.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, 0) };
        n > 0 && fds[0].revents & libc::POLLIN != 0
    }

    fn read_memory(&self, trap: &Trap, addr: u64, buf: &mut [u8]) -> Result<usize, PlatformError> {
        memory::read(trap.tid, addr, buf).map_err(PlatformError::of("process_vm_readv/writev"))
    }

    fn write_memory(&self, trap: &Trap, addr: u64, data: &[u8]) -> Result<usize, PlatformError> {
        memory::write(trap.tid, addr, data).map_err(PlatformError::of("process_vm_readv/writev"))
    }

    fn still_pending(&self, trap: &Trap) -> bool {
        let mut id = trap.id;
        self.ioctl(
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
            &mut id,
            "SECCOMP_IOCTL_NOTIF_ID_VALID",
        )
        .is_ok()
    }

    fn reply(&self, trap: &Trap, reply: Reply) -> Result<(), PlatformError> {
        let (val, error, flags) = match reply {
            Reply::Value(v) => (v, 0, 0),
            Reply::Errno(e) => (0, -(e as i32), 0),
            Reply::Continue => (0, 0, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32),
            // Fds go through reply_with_fd; reaching here means the fd went missing.
            Reply::Fd { .. } => (0, -libc::EIO, 0),
        };
        let mut resp = libc::seccomp_notif_resp {
            id: trap.id,
            val,
            error,
            flags,
        };
        self.ioctl(
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &mut resp,
            "SECCOMP_IOCTL_NOTIF_SEND",
        )
    }

    fn reply_with_fd(&self, trap: &Trap, fd: OwnedFd, cloexec: bool) -> Result<i32, PlatformError> {
        // ADDFD|SEND would let the guest run on while we still hold the file; scheduled out
        // then, our close could come after the guest's and be the last one, so close events,
        // the release of flock locks and exec's ETXTBSY check would come late. Installing
        // first and closing our copy before the reply makes the guest's close the last.
        let mut addfd = libc::seccomp_notif_addfd {
            id: trap.id,
            flags: 0,
            srcfd: fd.as_raw_fd() as u32,
            newfd: 0,
            newfd_flags: if cloexec { libc::O_CLOEXEC as u32 } else { 0 },
        };
        // SAFETY: ADDFD takes a seccomp_notif_addfd; it returns the guest's new fd number once
        // the guest has installed it, the call still pending.
        let rc = unsafe {
            libc::ioctl(
                self.listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_ADDFD as _,
                std::ptr::addr_of_mut!(addfd),
            )
        };
        if rc < 0 {
            return Err(match Errno::last() {
                // ESRCH: interrupted before it took the fd (the kernel drops it then).
                Errno::ENOENT | Errno::ESRCH => PlatformError::Gone,
                errno => PlatformError::Sys {
                    op: "SECCOMP_IOCTL_NOTIF_ADDFD",
                    errno,
                },
            });
        }
        drop(fd);
        // Only a fatal signal can end the call between the two (the filter's
        // WAIT_KILLABLE_RECV); on a kernel without that flag a handled one could too, leaving
        // the fd installed and the call restarted or EINTR.
        self.reply(trap, Reply::Value(i64::from(rc)))?;
        Ok(rc)
    }
}
