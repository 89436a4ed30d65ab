//! The reserved fd: one end of a datagram socket pair that every guest process holds at
//! [`RESERVED_FD`], through which the tracer hands the guest new fds (ptrace has no ADDFD).
//!
//! The guest may not close it, dup over it, use it, or see it listed. The filter (in `ptrace`
//! mode) traps every call whose fd arguments could name it, and `close_range`, `getdents` and
//! `getdents64`; [`police`] answers those before any handler sees them.

use nix::errno::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::tracee::Regs;

/// The guest's fd number of the reserved socket: under the usual soft limit of 1024, above what
/// programs open, and an unlikely value for the other arguments the filter compares with it.
pub const RESERVED_FD: i32 = 1021;

/// [`RESERVED_FD`] as a directory entry name.
const RESERVED_NAME: &[u8] = b"1021";

/// Calls the filter sends to the tracer whatever their arguments. `ptrace` is here because a
/// guest may trace nothing on this platform (every guest task is the sentry's tracee);
/// `io_setup` because Linux AIO names its fds in memory (an `iocb`), where a read of the
/// reserved socket would take the fds meant for other processes: without a context, no AIO.
pub const ALWAYS_TRAPPED: [i64; 5] = [
    libc::SYS_getdents,
    libc::SYS_getdents64,
    libc::SYS_close_range,
    libc::SYS_ptrace,
    libc::SYS_io_setup,
];

/// Calls whose third argument is also an fd (the filter compares it too).
pub const FD_IN_ARG2: [i64; 3] = [
    libc::SYS_epoll_ctl,
    libc::SYS_splice,
    libc::SYS_copy_file_range,
];

/// Which arguments of `nr` are fds the call uses (not dirfds of `*at` calls: a path
/// relative to the reserved socket fails with ENOTDIR as it would for any socket).
fn fd_args(nr: i64) -> &'static [usize] {
    match nr {
        libc::SYS_dup2 | libc::SYS_dup3 | libc::SYS_sendfile | libc::SYS_tee => &[0, 1],
        libc::SYS_epoll_ctl | libc::SYS_splice | libc::SYS_copy_file_range => &[0, 2],
        libc::SYS_pidfd_getfd => &[1],
        libc::SYS_read
        | libc::SYS_write
        | libc::SYS_close
        | libc::SYS_fstat
        | libc::SYS_lseek
        | libc::SYS_ioctl
        | libc::SYS_pread64
        | libc::SYS_pwrite64
        | libc::SYS_readv
        | libc::SYS_writev
        | libc::SYS_dup
        | libc::SYS_connect
        | libc::SYS_accept
        | libc::SYS_accept4
        | libc::SYS_sendto
        | libc::SYS_recvfrom
        | libc::SYS_sendmsg
        | libc::SYS_recvmsg
        | libc::SYS_sendmmsg
        | libc::SYS_recvmmsg
        | libc::SYS_shutdown
        | libc::SYS_bind
        | libc::SYS_listen
        | libc::SYS_getsockname
        | libc::SYS_getpeername
        | libc::SYS_setsockopt
        | libc::SYS_getsockopt
        | libc::SYS_fcntl
        | libc::SYS_flock
        | libc::SYS_fsync
        | libc::SYS_fdatasync
        | libc::SYS_ftruncate
        | libc::SYS_fchdir
        | libc::SYS_fchmod
        | libc::SYS_fchown
        | libc::SYS_fstatfs
        | libc::SYS_readahead
        | libc::SYS_fsetxattr
        | libc::SYS_fgetxattr
        | libc::SYS_flistxattr
        | libc::SYS_fremovexattr
        | libc::SYS_fadvise64
        | libc::SYS_epoll_wait
        | libc::SYS_epoll_pwait
        | libc::SYS_epoll_pwait2
        | libc::SYS_inotify_rm_watch
        | libc::SYS_sync_file_range
        | libc::SYS_vmsplice
        | libc::SYS_signalfd
        | libc::SYS_signalfd4
        | libc::SYS_timerfd_settime
        | libc::SYS_timerfd_gettime
        | libc::SYS_preadv
        | libc::SYS_pwritev
        | libc::SYS_preadv2
        | libc::SYS_pwritev2
        | libc::SYS_syncfs
        | libc::SYS_fallocate => &[0],
        _ => &[],
    }
}

/// Whether an argument register names the reserved fd (the kernel reads fds as `int`).
fn is_reserved(arg: u64) -> bool {
    arg as i32 == RESERVED_FD
}

/// The six argument registers of a call.
pub fn args(regs: &Regs) -> [u64; 6] {
    [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9]
}

/// What the tracer does with a call that reached it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policed {
    /// Not the reserved fd's business: the table decides.
    Pass,
    /// Fail it with EBADF, as for an fd that is not open.
    Ebadf,
    /// close_range over the reserved fd: close `[first, RESERVED_FD - 1]` now, then (if
    /// `then_from` is set) the range from there to `last`.
    SplitClose {
        /// Where the second range starts, if there is one.
        then_from: Option<u32>,
    },
    /// close_range starting at the reserved fd: close only from the next one (or nothing).
    SkipClose,
    /// getdents on a directory that may list the reserved fd: run it, then filter.
    FilterListing,
    /// Fail it with EPERM: `ptrace` (the guest traces nothing here).
    Eperm,
    /// Fail it with ENOSYS, as a kernel without it: `io_setup` (see [`ALWAYS_TRAPPED`]).
    Enosys,
    /// `clone` with CLONE_UNTRACED: clear that bit and let it run, so the child is traced from
    /// its first instruction like every other guest task.
    StripUntraced,
}

/// Decides what the tracer does with call `nr`; `fd_dir` tells whether a guest fd is an open
/// `/proc/<pid>/fd` (or `fdinfo`) directory.
pub fn police(nr: i64, args: &[u64; 6], fd_dir: impl Fn(i32) -> bool) -> Policed {
    if fd_args(nr).iter().any(|&i| is_reserved(args[i])) {
        return Policed::Ebadf;
    }
    match nr {
        libc::SYS_ptrace => Policed::Eperm,
        libc::SYS_io_setup => Policed::Enosys,
        // The kernel rechecks the filter after a trace stop but lets a second RET_TRACE through,
        // so a clone is resumed only when nothing but CLONE_UNTRACED made it trap; one asking
        // for namespaces goes on to the table, which refuses it.
        libc::SYS_clone
            if args[0] & libc::CLONE_UNTRACED as u64 != 0
                && args[0] & crate::syscalls::NAMESPACE_FLAGS == 0 =>
        {
            Policed::StripUntraced
        }
        libc::SYS_close_range => {
            let (first, last) = (args[0] as u32, args[1] as u32);
            let reserved = RESERVED_FD as u32;
            if first > reserved || last < reserved || first > last {
                Policed::Pass
            } else if first == reserved {
                Policed::SkipClose
            } else {
                Policed::SplitClose {
                    then_from: (last > reserved).then_some(reserved + 1),
                }
            }
        }
        libc::SYS_getdents | libc::SYS_getdents64 if fd_dir(args[0] as i32) => {
            Policed::FilterListing
        }
        _ => Policed::Pass,
    }
}

/// Whether a `/proc/<tid>/fd/<n>` link text names a directory listing fds.
pub fn lists_fds(link: &[u8]) -> bool {
    let Some(rest) = link.strip_prefix(b"/proc/") else {
        return false;
    };
    let mut parts = rest.split(|&b| b == b'/').skip(1);
    let tail = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(tail), None, None, None) => tail,
        (Some(b"task"), Some(_), Some(tail), None) => tail,
        _ => return false,
    };
    tail == b"fd" || tail == b"fdinfo"
}

/// Removes the reserved fd's entry from `len` bytes of a directory listing in `buf`; returns the
/// new length. `wide` is `linux_dirent64` (name at 19), else the old `linux_dirent` (name at 18).
pub fn strip_entry(buf: &mut [u8], len: usize, wide: bool) -> usize {
    let name_at = if wide { 19 } else { 18 };
    let (mut read, mut write) = (0, 0);
    while read + name_at <= len {
        let reclen = usize::from(u16::from_ne_bytes([buf[read + 16], buf[read + 17]]));
        if reclen == 0 || read + reclen > len {
            break;
        }
        let name_bytes = &buf[read + name_at..read + reclen];
        let end = name_bytes.iter().position(|&b| b == 0).unwrap_or(0);
        if &name_bytes[..end] != RESERVED_NAME {
            buf.copy_within(read..read + reclen, write);
            write += reclen;
        }
        read += reclen;
    }
    write + (len - read)
}

/// The reserved socket pair: the tracer's end (it sends fds) and the guest's (the guest init
/// puts it at [`RESERVED_FD`]; the tracer keeps a copy to drain a message nobody received).
pub fn pair() -> Result<(OwnedFd, OwnedFd), Errno> {
    nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::Datagram,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
}

/// Guest side: puts the guest's end at [`RESERVED_FD`], inherited across fork and exec.
pub fn install_in_guest(end: OwnedFd) -> Result<(), Errno> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    // dup2 needs the number under the soft limit; the fd outlives a lower limit afterwards.
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let needed = RESERVED_FD as u64 + 1;
    if soft < needed {
        setrlimit(Resource::RLIMIT_NOFILE, needed.min(hard), hard)?;
    }
    let placed = place(&end);
    if soft < needed {
        setrlimit(Resource::RLIMIT_NOFILE, soft, hard)?;
    }
    placed
}

fn place(end: &OwnedFd) -> Result<(), Errno> {
    // SAFETY: dup2 onto a number this process reserves by convention; without O_CLOEXEC the
    // copy survives exec.
    let rc = unsafe { libc::dup2(end.as_raw_fd(), RESERVED_FD) };
    if rc < 0 {
        return Err(Errno::last());
    }
    // SAFETY: dup2 returned RESERVED_FD, a new fd nothing else owns; it stays open for the
    // guest's lifetime.
    std::mem::forget(unsafe { OwnedFd::from_raw_fd(rc) });
    Ok(())
}

/// Tracer side: receives and closes every message queued on the guest's end (after an injection
/// whose guest died before receiving it), so the next injection gets its own fd.
pub fn drain(guest_end: std::os::fd::BorrowedFd<'_>) {
    loop {
        let mut byte = [0u8; 1];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let mut iov = [std::io::IoSliceMut::new(&mut byte)];
        let received = nix::sys::socket::recvmsg::<()>(
            guest_end.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            nix::sys::socket::MsgFlags::MSG_DONTWAIT | nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC,
        );
        let Ok(msg) = received else { return };
        for c in msg.cmsgs().into_iter().flatten() {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
                for fd in fds {
                    // SAFETY: the kernel installed these fds in our table for us.
                    drop(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(args: [u64; 6]) -> [u64; 6] {
        args
    }

    #[test]
    fn calls_naming_the_reserved_fd_fail_with_ebadf() {
        let r = RESERVED_FD as u64;
        let no = |_| false;
        assert_eq!(
            police(libc::SYS_close, &call([r, 0, 0, 0, 0, 0]), no),
            Policed::Ebadf
        );
        assert_eq!(
            police(libc::SYS_dup2, &call([3, r, 0, 0, 0, 0]), no),
            Policed::Ebadf
        );
        assert_eq!(
            police(libc::SYS_recvmsg, &call([r, 0, 0, 0, 0, 0]), no),
            Policed::Ebadf
        );
        assert_eq!(
            police(libc::SYS_pidfd_getfd, &call([4, r, 0, 0, 0, 0]), no),
            Policed::Ebadf
        );
        assert_eq!(
            police(libc::SYS_epoll_ctl, &call([5, 1, r, 0, 0, 0]), no),
            Policed::Ebadf
        );
        // The upper half is ignored by the kernel, so it is here.
        assert_eq!(
            police(libc::SYS_close, &call([r | 1 << 32, 0, 0, 0, 0, 0]), no),
            Policed::Ebadf
        );
        // Not an fd argument: a write of 1021 bytes, an openat relative to it.
        assert_eq!(
            police(libc::SYS_write, &call([1, 0, r, 0, 0, 0]), no),
            Policed::Pass
        );
        assert_eq!(
            police(libc::SYS_read, &call([1, r, 0, 0, 0, 0]), no),
            Policed::Pass
        );
        assert_eq!(
            police(libc::SYS_openat, &call([r, 0, 0, 0, 0, 0]), no),
            Policed::Pass
        );
    }

    #[test]
    fn close_range_never_closes_the_reserved_fd() {
        let r = RESERVED_FD as u64;
        let no = |_| false;
        let cr = |a: u64, b: u64| police(libc::SYS_close_range, &call([a, b, 0, 0, 0, 0]), no);
        assert_eq!(
            cr(3, u64::from(u32::MAX)),
            Policed::SplitClose {
                then_from: Some(RESERVED_FD as u32 + 1)
            }
        );
        assert_eq!(cr(3, r), Policed::SplitClose { then_from: None });
        assert_eq!(cr(r, r + 5), Policed::SkipClose);
        assert_eq!(cr(3, 100), Policed::Pass);
        assert_eq!(cr(r + 1, r + 9), Policed::Pass);
    }

    #[test]
    fn only_fd_directories_are_filtered() {
        assert!(lists_fds(b"/proc/12/fd"));
        assert!(lists_fds(b"/proc/12/task/13/fdinfo"));
        assert!(!lists_fds(b"/proc/12"));
        assert!(!lists_fds(b"/proc/12/fd/3"));
        assert!(!lists_fds(b"/home/fd"));
        let fd_dir = |fd| fd == 5;
        let gd = |fd: u64| police(libc::SYS_getdents64, &call([fd, 0, 0, 0, 0, 0]), fd_dir);
        assert_eq!(gd(5), Policed::FilterListing);
        assert_eq!(gd(6), Policed::Pass);
    }

    fn dirent64(name: &str) -> Vec<u8> {
        let reclen = (19 + name.len() + 1).next_multiple_of(8);
        let mut e = vec![0u8; reclen];
        e[16..18].copy_from_slice(&(reclen as u16).to_ne_bytes());
        e[19..19 + name.len()].copy_from_slice(name.as_bytes());
        e
    }

    #[test]
    fn the_entry_name_is_the_fd_number() {
        assert_eq!(RESERVED_NAME, RESERVED_FD.to_string().as_bytes());
    }

    #[test]
    fn the_reserved_entry_is_cut_out_of_a_listing() {
        let names = [".", "..", "0", "1", "2", "1021", "10210", "3"];
        let mut buf: Vec<u8> = names.iter().flat_map(|n| dirent64(n)).collect();
        let len = buf.len();
        let new = strip_entry(&mut buf, len, true);
        assert_eq!(new, len - dirent64("1021").len());
        let mut seen = Vec::new();
        let mut at = 0;
        while at < new {
            let reclen = usize::from(u16::from_ne_bytes([buf[at + 16], buf[at + 17]]));
            let name = &buf[at + 19..at + reclen];
            let end = name.iter().position(|&b| b == 0).unwrap();
            seen.push(String::from_utf8(name[..end].to_vec()).unwrap());
            at += reclen;
        }
        assert_eq!(seen, [".", "..", "0", "1", "2", "10210", "3"]);
    }
}
