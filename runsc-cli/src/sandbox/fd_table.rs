//! Growing the sentry's fd table once, before it has threads.
//!
//! The kernel grows a process's fd table by doubling it, and when the table is shared by several
//! threads each growth waits for an RCU grace period (`expand_files` → `synchronize_rcu`): 4 to
//! 12 ms on the reference machine, with the worker that opened the fd, and the guest thread it
//! serves, stalled. The sentry's workers open a pidfd per new guest thread and keep cached
//! handles, so a fork-heavy guest (a shell script) used to hit four such stalls in its first few
//! hundred processes. Grown while the sentry is still single-threaded, the table costs no grace
//! period, and it never shrinks.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Slots reserved: the fd cache's capacity (4,096) plus a pidfd or two for each of the task
/// table's first 1,024 threads, rounded to the kernel's next power of two. 64 KiB of kernel
/// memory.
pub const RESERVED_SLOTS: u64 = 8192;

/// Grows this process's fd table to hold [`RESERVED_SLOTS`] (or the hard limit) fds. Must be
/// called while the process has one thread. The soft limit is put back: the gofer and the guest
/// init are forked from us and inherit it. Best effort: a failure only costs the stalls above.
pub fn reserve() {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let slots = RESERVED_SLOTS.min(hard);
    if slots < 2 || (soft < slots && setrlimit(Resource::RLIMIT_NOFILE, slots, hard).is_err()) {
        return;
    }
    // SAFETY: eventfd takes integers only; its result is checked before it is owned.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd >= 0 {
        // SAFETY: `fd` was just opened and is owned by nothing else.
        let probe = unsafe { OwnedFd::from_raw_fd(fd) };
        let top = (slots - 1) as libc::c_int;
        // SAFETY: F_DUPFD_CLOEXEC takes integers; the new fd is owned (and closed) at once.
        let copy = unsafe { libc::fcntl(probe.as_raw_fd(), libc::F_DUPFD_CLOEXEC, top) };
        if copy >= 0 {
            // SAFETY: `copy` was just opened and is owned by nothing else.
            drop(unsafe { OwnedFd::from_raw_fd(copy) });
        }
    }
    if soft < slots {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, soft, hard);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fd_table_size() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("FDSize:")).unwrap();
        line["FDSize:".len()..].trim().parse().unwrap()
    }

    #[test]
    fn reserve_grows_the_table_and_leaves_the_limit_as_it_was() {
        let before = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        reserve();
        assert_eq!(getrlimit(Resource::RLIMIT_NOFILE).unwrap(), before);
        assert!(fd_table_size() >= RESERVED_SLOTS.min(before.1));
    }
}
