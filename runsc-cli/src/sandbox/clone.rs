//! Creating a child process in new namespaces.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use nix::unistd::Pid;

use super::error::{Context, SandboxError};

/// Where a fork-like clone left us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloned {
    /// In the parent, with the child's pid.
    Parent(Pid),
    /// In the child.
    Child,
}

/// A fork that also creates the namespaces in `flags` (CLONE_NEW*).
///
/// # Safety
/// As for fork: the caller must be single-threaded, and the child must only run code that is
/// safe after fork (it gets a copy of the caller's memory and exits without returning into the
/// caller's frames).
pub unsafe fn fork_into(flags: libc::c_int, what: &str) -> Result<Cloned, SandboxError> {
    // SAFETY: no new stack and no CLONE_VM: this is fork with namespace flags; the caller
    // upholds fork's conditions.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags | libc::SIGCHLD,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match pid {
        p if p < 0 => Err(nix::errno::Errno::last()).ctx(|| what.to_string()),
        0 => Ok(Cloned::Child),
        p => Ok(Cloned::Parent(Pid::from_raw(p as i32))),
    }
}

/// As [`fork_into`], also returning a pidfd for the child (CLONE_PIDFD): the child may not be
/// ours to wait for (CLONE_PARENT), and a pid number alone could be reused once it is reaped.
///
/// # Safety
/// As for [`fork_into`].
pub unsafe fn fork_into_with_pidfd(
    flags: libc::c_int,
    what: &str,
) -> Result<(Cloned, Option<OwnedFd>), SandboxError> {
    let mut pidfd: libc::c_int = -1;
    // SAFETY: as in `fork_into`; `pidfd` is a valid out-pointer for CLONE_PIDFD (the parent_tid
    // argument), written by the kernel in the parent only.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags | libc::CLONE_PIDFD | libc::SIGCHLD,
            0usize,
            &mut pidfd as *mut libc::c_int,
            0usize,
            0usize,
        )
    };
    match pid {
        p if p < 0 => Err(nix::errno::Errno::last()).ctx(|| what.to_string()),
        0 => Ok((Cloned::Child, None)),
        p => {
            // SAFETY: the kernel just gave us this fd; nothing else owns it.
            let fd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) });
            Ok((Cloned::Parent(Pid::from_raw(p as i32)), fd))
        }
    }
}

/// A pidfd for `pid` (which must not have been reaped yet).
pub fn pidfd_open(pid: Pid) -> Result<OwnedFd, SandboxError> {
    // SAFETY: pidfd_open takes integers.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(nix::errno::Errno::last()).ctx(|| format!("pidfd_open {pid}"));
    }
    // SAFETY: the kernel just gave us this fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Sends `sig` to the process behind `pidfd` (no pid reuse race).
pub fn pidfd_kill(pidfd: &OwnedFd, sig: libc::c_int) {
    // SAFETY: pidfd_send_signal takes an fd we own, a signal number and a null info.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
}

/// Blocks until one of `pidfds` has exited; returns its index.
pub fn wait_any_exit(pidfds: &[&OwnedFd]) -> usize {
    let mut polls: Vec<nix::poll::PollFd<'_>> = pidfds
        .iter()
        .map(|fd| nix::poll::PollFd::new(fd.as_fd(), nix::poll::PollFlags::POLLIN))
        .collect();
    loop {
        match nix::poll::poll(&mut polls, nix::poll::PollTimeout::NONE) {
            Ok(_) => {
                if let Some(i) = polls
                    .iter()
                    .position(|p| p.revents().is_some_and(|r| !r.is_empty()))
                {
                    return i;
                }
            }
            Err(nix::errno::Errno::EINTR) => {}
            // Not expected (the fds are ours); never taken for an end.
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
}
