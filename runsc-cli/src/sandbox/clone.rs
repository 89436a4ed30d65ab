//! Creating a child process in new namespaces.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

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

/// `struct clone_args` of `clone3(2)`, up to `cgroup` (`CLONE_ARGS_SIZE_VER2`).
#[repr(C)]
#[derive(Debug, Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_INTO_CGROUP` (Linux 5.7).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// As [`fork_into_with_pidfd`], the child born in the cgroup2 cgroup whose directory is
/// `cgroup` (`CLONE_INTO_CGROUP`), which spares the kernel's cost of migrating it later. Where
/// that fails (an older kernel, a cgroup the kernel refuses), the child is created where we
/// are; the `bool` says whether it is in `cgroup`.
///
/// # Safety
/// As for [`fork_into`].
pub unsafe fn fork_into_cgroup_with_pidfd(
    flags: libc::c_int,
    cgroup: Option<BorrowedFd<'_>>,
    what: &str,
) -> Result<(Cloned, Option<OwnedFd>, bool), SandboxError> {
    if let Some(cgroup) = cgroup {
        let mut pidfd: libc::c_int = -1;
        let args = CloneArgs {
            // The namespace flags are the low, non-negative bits of `flags`.
            flags: u64::from((flags | libc::CLONE_PIDFD) as u32) | CLONE_INTO_CGROUP,
            pidfd: std::ptr::addr_of_mut!(pidfd) as u64,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: cgroup.as_raw_fd() as u64,
            ..Default::default()
        };
        // SAFETY: clone3 without CLONE_VM and without a stack is fork with namespace flags (the
        // caller upholds fork's conditions); `args` is a valid clone_args of the size given, and
        // `pidfd` a valid out-pointer written by the kernel in the parent only.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                std::ptr::addr_of!(args),
                std::mem::size_of::<CloneArgs>(),
            )
        };
        match pid {
            0 => return Ok((Cloned::Child, None, true)),
            p if p > 0 => {
                // SAFETY: the kernel just gave us this fd; nothing else owns it.
                let fd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) });
                return Ok((Cloned::Parent(Pid::from_raw(p as i32)), fd, true));
            }
            _ => tracing::debug!(
                "creating the child in its cgroup: {}; it is created in ours",
                nix::errno::Errno::last()
            ),
        }
    }
    // SAFETY: as for this function.
    let (cloned, fd) = unsafe { fork_into_with_pidfd(flags, what)? };
    Ok((cloned, fd, false))
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
