//! The kernel floor of ptrace interception: a minimal tracer in raw libc that seizes a child,
//! whose filter returns `SECCOMP_RET_TRACE` for one system call, and only waits for each stop and
//! resumes it ("continue"). What rvisor's ptrace platform adds on top is rvisor's cost.

use std::io::{Error, Result};

use crate::floor::install_trapping;

const RET_TRACE: u32 = 0x7ff0_0000;

/// Runs `measure` in a traced child whose `nr` calls stop it; returns the child's exit status.
pub fn supervise(nr: libc::c_long, measure: impl FnOnce() -> i32) -> Result<i32> {
    let mut sv = [0; 2];
    // SAFETY: socketpair fills our array.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, sv.as_mut_ptr()) } != 0 {
        return Err(Error::last_os_error());
    }
    // SAFETY: single-threaded; the child waits to be seized, installs its filter and measures.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::last_os_error());
    }
    if pid == 0 {
        let mut ack = 0u8;
        // SAFETY: one byte into `ack`: we are seized (a RET_TRACE with no tracer fails calls).
        unsafe { libc::recv(sv[1], std::ptr::addr_of_mut!(ack).cast(), 1, 0) };
        install_trapping(nr, RET_TRACE, 0)
            .unwrap_or_else(|e| panic!("installing the floor filter: {e}"));
        let code = measure();
        // SAFETY: ends the child without unwinding into the parent's state.
        unsafe { libc::_exit(code) };
    }
    // Children are traced too (the two-process cases): the filter they inherit needs a tracer.
    let options = libc::PTRACE_O_TRACESECCOMP
        | libc::PTRACE_O_TRACEFORK
        | libc::PTRACE_O_TRACEVFORK
        | libc::PTRACE_O_TRACECLONE
        | libc::PTRACE_O_EXITKILL;
    // SAFETY: integer arguments; `pid` is our child.
    if unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, 0, options) } != 0 {
        return Err(Error::last_os_error());
    }
    // SAFETY: one byte from a literal.
    unsafe { libc::write(sv[0], [1u8].as_ptr().cast(), 1) };
    let mut status = 0;
    let mut code = 0;
    loop {
        // SAFETY: `status` is ours.
        let who = unsafe { libc::waitpid(-1, &mut status, libc::__WALL) };
        if who < 0 {
            if Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            // ECHILD: every tracee is gone.
            break;
        }
        if !libc::WIFSTOPPED(status) {
            if who == pid {
                code = libc::WEXITSTATUS(status);
            }
            continue;
        }
        // A seccomp stop, an event or a new child's first stop continues as issued; a signal
        // is delivered.
        let signal = match (libc::WSTOPSIG(status), status >> 16) {
            (_, e) if e != 0 => 0,
            (s, _) => s,
        };
        // SAFETY: integer arguments; the tracee is in a ptrace-stop.
        unsafe { libc::ptrace(libc::PTRACE_CONT, who, 0, signal) };
    }
    for fd in sv {
        // SAFETY: fds we opened.
        unsafe { libc::close(fd) };
    }
    Ok(code)
}
