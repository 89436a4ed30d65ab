//! Taking a copy of an fd out of another process's (or thread's) table.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

/// `PIDFD_THREAD`: `pid` names a thread, not a thread group.
const PIDFD_THREAD: libc::c_uint = libc::O_EXCL as libc::c_uint;

/// A duplicate of fd `fd` of host process `pid` (a thread's id with `thread`): the same open
/// file description, through `pidfd_open` and `pidfd_getfd` (close-on-exec).
pub fn take_fd(pid: i32, fd: i32, thread: bool) -> Result<OwnedFd, Errno> {
    let flags = if thread { PIDFD_THREAD } else { 0 };
    // SAFETY: pidfd_open takes integers and returns a new fd or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, flags) };
    if pidfd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this fd; nothing else owns it.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    // SAFETY: pidfd_getfd takes integers and returns a new fd or -1.
    let copy = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if copy < 0 {
        return Err(Errno::last());
    }
    // SAFETY: as above.
    Ok(unsafe { OwnedFd::from_raw_fd(copy as i32) })
}
