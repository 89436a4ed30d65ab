//! Creating a child process in new namespaces.

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
