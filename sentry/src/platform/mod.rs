//! The boundary between syscall handlers and the mechanism that traps guest system calls.
//!
//! A platform only moves requests and replies: it receives a trapped call, gives access to the
//! calling thread's memory, and answers with a value, an errno, "continue natively", or an
//! injected file descriptor. Handlers never learn which platform they run on.

#[cfg(test)]
pub mod fake;
mod memory;
pub mod ptrace;
mod seccomp_notify;

use std::os::fd::OwnedFd;

pub use ptrace::Ptrace;
pub use seccomp_notify::SeccompNotify;

/// Errors of the trap mechanism.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The trapped request is no longer pending: the guest thread died or was interrupted.
    #[error("the trapped request is no longer pending")]
    Gone,
    /// The platform has no more guests to serve.
    #[error("no guest is attached to the platform any more")]
    Detached,
    /// A platform operation failed.
    #[error("{op} failed: {errno}")]
    Sys {
        /// What was being done.
        op: &'static str,
        /// The errno the kernel gave.
        errno: nix::errno::Errno,
    },
}

impl PlatformError {
    /// Maps a failed request about a guest thread: ESRCH means the thread is gone.
    pub fn of(op: &'static str) -> impl Fn(nix::errno::Errno) -> PlatformError {
        move |errno| match errno {
            nix::errno::Errno::ESRCH => PlatformError::Gone,
            errno => PlatformError::Sys { op, errno },
        }
    }
}

/// One system call a guest thread is blocked in, waiting for the sentry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trap {
    /// Platform-specific cookie identifying this request.
    pub id: u64,
    /// Host thread id of the caller (in the sentry's pid namespace).
    pub tid: i32,
    /// System call number.
    pub nr: i64,
    /// Raw argument registers.
    pub args: [u64; 6],
    /// AUDIT_ARCH of the call.
    pub arch: u32,
    /// Instruction pointer at the call.
    pub ip: u64,
}

/// How the sentry answers a trapped call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// The call returns this value.
    Value(i64),
    /// The call fails with this errno.
    Errno(nix::errno::Errno),
    /// The host kernel executes the call as issued (only where the guest's own
    /// namespaces confine the result).
    Continue,
    /// The call returns a new fd: the one the handler left in its context, installed in the
    /// guest (close-on-exec as asked) atomically with the reply.
    Fd {
        /// O_CLOEXEC for the guest's new fd.
        cloexec: bool,
    },
}

/// A mechanism that traps guest system calls (seccomp user-notify, ptrace).
pub trait Platform: Send + Sync {
    /// Short name, as given to `--platform`.
    fn name(&self) -> &'static str;

    /// Blocks until a guest thread traps, and fills `trap` with the call.
    fn receive(&self, trap: &mut Trap) -> Result<(), PlatformError>;

    /// Copies guest memory at `addr` into `buf`; returns how many bytes were read (short at an
    /// unmapped page).
    fn read_memory(&self, trap: &Trap, addr: u64, buf: &mut [u8]) -> Result<usize, PlatformError>;

    /// Copies `data` into guest memory at `addr`; returns how many bytes were written.
    fn write_memory(&self, trap: &Trap, addr: u64, data: &[u8]) -> Result<usize, PlatformError>;

    /// True while the trapped call is still waiting for its reply. Checked after every read of
    /// guest memory, so what was read belongs to the call being answered (no pid reuse race).
    fn still_pending(&self, trap: &Trap) -> bool;

    /// Answers the trapped call.
    fn reply(&self, trap: &Trap, reply: Reply) -> Result<(), PlatformError>;

    /// Installs `fd` in the guest's fd table and completes the call with the new fd number as
    /// its result. Our copy is closed before the guest runs again, so the guest holds the
    /// file's last reference.
    fn reply_with_fd(&self, trap: &Trap, fd: OwnedFd, cloexec: bool) -> Result<i32, PlatformError>;

    /// Whether a signal the caller would handle, sent while it waits for its reply, cuts the
    /// call short (seccomp user-notify abandons it: restarted, or EINTR) instead of waiting for
    /// the reply (a ptrace stop holds it).
    fn signal_interrupts_wait(&self) -> bool {
        false
    }

    /// Whether another trapped call already waits to be received, without blocking. Platforms
    /// served by one thread (ptrace) need not tell: they answer false.
    fn pending(&self) -> bool {
        false
    }
}

/// A boxed platform is a platform (the runtime picks one at run time).
impl<P: Platform + ?Sized> Platform for Box<P> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn receive(&self, trap: &mut Trap) -> Result<(), PlatformError> {
        (**self).receive(trap)
    }

    fn read_memory(&self, trap: &Trap, addr: u64, buf: &mut [u8]) -> Result<usize, PlatformError> {
        (**self).read_memory(trap, addr, buf)
    }

    fn write_memory(&self, trap: &Trap, addr: u64, data: &[u8]) -> Result<usize, PlatformError> {
        (**self).write_memory(trap, addr, data)
    }

    fn still_pending(&self, trap: &Trap) -> bool {
        (**self).still_pending(trap)
    }

    fn reply(&self, trap: &Trap, reply: Reply) -> Result<(), PlatformError> {
        (**self).reply(trap, reply)
    }

    fn reply_with_fd(&self, trap: &Trap, fd: OwnedFd, cloexec: bool) -> Result<i32, PlatformError> {
        (**self).reply_with_fd(trap, fd, cloexec)
    }

    fn signal_interrupts_wait(&self) -> bool {
        (**self).signal_interrupts_wait()
    }

    fn pending(&self) -> bool {
        (**self).pending()
    }
}
