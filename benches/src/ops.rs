//! The operations, ready to run once per iteration (raw libc: nothing in the measured path
//! allocates or takes a lock of ours).

use std::ffi::CString;

use crate::cases::{Case, STATIC_BINARY};

/// An operation with whatever it keeps between iterations (fds, an echoing peer process).
#[derive(Debug)]
pub struct Op {
    case: &'static str,
    path: CString,
    fds: [libc::c_int; 2],
    peer: libc::pid_t,
    argv: [*const libc::c_char; 3],
    true_arg: CString,
}

fn check(rc: libc::c_long, what: &str) {
    if rc < 0 {
        panic!("{what}: {}", std::io::Error::last_os_error());
    }
}

/// Forks a peer that echoes every byte it reads on `rx` back on `tx` until EOF; `ours` are the
/// probe's ends (closed in the peer), and the peer's ends are closed in the probe, so that
/// closing ours ends the peer.
fn echo_peer(rx: libc::c_int, tx: libc::c_int, ours: &[libc::c_int]) -> libc::pid_t {
    // SAFETY: the probe is single-threaded; the child only loops on read/write and exits.
    let pid = unsafe { libc::fork() };
    check(pid.into(), "fork");
    let close = |fds: &[libc::c_int]| {
        for &fd in fds {
            // SAFETY: fds of this process that the other side owns.
            unsafe { libc::close(fd) };
        }
    };
    if pid > 0 {
        close(&if rx == tx { vec![rx] } else { vec![rx, tx] });
        return pid;
    }
    close(ours);
    {
        let mut b = 0u8;
        loop {
            // SAFETY: one byte into `b`, which we own.
            let n = unsafe { libc::read(rx, std::ptr::addr_of_mut!(b).cast(), 1) };
            if n != 1 {
                // SAFETY: _exit ends the child without running the parent's destructors.
                unsafe { libc::_exit(0) };
            }
            // SAFETY: one byte from `b`.
            unsafe { libc::write(tx, std::ptr::addr_of!(b).cast(), 1) };
        }
    }
}

impl Op {
    /// Sets up `case`.
    pub fn new(case: &Case) -> Op {
        let mut op = Op {
            case: case.name,
            path: CString::new("/etc/passwd").unwrap_or_default(),
            fds: [-1, -1],
            peer: 0,
            argv: [std::ptr::null(); 3],
            true_arg: CString::new("true").unwrap_or_default(),
        };
        match case.name {
            "read_zero" | "write_null" => {
                let path = if case.name == "read_zero" {
                    c"/dev/zero"
                } else {
                    c"/dev/null"
                };
                // SAFETY: a NUL-terminated path and flags.
                let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
                check(fd.into(), "open");
                op.fds[0] = fd;
            }
            "pipe_pingpong" => {
                let (mut a, mut b) = ([0; 2], [0; 2]);
                // SAFETY: each pipe() fills a two-int array we own.
                check(unsafe { libc::pipe(a.as_mut_ptr()) }.into(), "pipe");
                // SAFETY: as above.
                check(unsafe { libc::pipe(b.as_mut_ptr()) }.into(), "pipe");
                op.peer = echo_peer(a[0], b[1], &[a[1], b[0]]);
                op.fds = [a[1], b[0]];
            }
            "socketpair_pingpong" => {
                let mut sv = [0; 2];
                // SAFETY: socketpair fills a two-int array we own.
                check(
                    unsafe {
                        libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, sv.as_mut_ptr())
                    }
                    .into(),
                    "socketpair",
                );
                op.peer = echo_peer(sv[1], sv[1], &[sv[0]]);
                op.fds = [sv[0], sv[0]];
            }
            "execve_static" => {
                op.path = CString::new(STATIC_BINARY).unwrap_or_default();
            }
            _ => {}
        }
        op.argv = [op.path.as_ptr(), op.true_arg.as_ptr(), std::ptr::null()];
        op
    }

    /// Runs the operation once.
    pub fn once(&mut self) {
        match self.case {
            // SAFETY (all arms): plain system calls on buffers and fds this `Op` owns.
            "getppid" => {
                // SAFETY: no arguments.
                unsafe { libc::syscall(libc::SYS_getppid) };
            }
            "clock_gettime" => {
                let mut ts = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                // SAFETY: `ts` is ours.
                unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
            }
            "getuid" => {
                // SAFETY: no arguments.
                unsafe { libc::syscall(libc::SYS_getuid) };
            }
            "uname" => {
                // SAFETY: utsname is plain data; uname fills it.
                let mut u: libc::utsname = unsafe { std::mem::zeroed() };
                // SAFETY: `u` is ours.
                unsafe { libc::uname(&mut u) };
            }
            "open_close" => {
                // SAFETY: a NUL-terminated path; the fd is closed at once.
                let fd =
                    unsafe { libc::open(self.path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
                check(fd.into(), "open");
                // SAFETY: `fd` was just opened.
                unsafe { libc::close(fd) };
            }
            "stat" => {
                // SAFETY: stat is plain data; the call fills it.
                let mut st: libc::stat = unsafe { std::mem::zeroed() };
                // SAFETY: a NUL-terminated path and our buffer.
                check(
                    unsafe { libc::stat(self.path.as_ptr(), &mut st) }.into(),
                    "stat",
                );
            }
            "read_zero" => {
                let mut b = 0u8;
                // SAFETY: one byte into `b`.
                unsafe { libc::read(self.fds[0], std::ptr::addr_of_mut!(b).cast(), 1) };
            }
            "write_null" => {
                let b = 0u8;
                // SAFETY: one byte from `b`.
                unsafe { libc::write(self.fds[0], std::ptr::addr_of!(b).cast(), 1) };
            }
            "pipe_pingpong" | "socketpair_pingpong" => {
                let mut b = 1u8;
                // SAFETY: one byte from `b`, then one byte into it.
                unsafe {
                    libc::write(self.fds[0], std::ptr::addr_of!(b).cast(), 1);
                }
                // SAFETY: as above.
                unsafe { libc::read(self.fds[1], std::ptr::addr_of_mut!(b).cast(), 1) };
            }
            "mmap_munmap" => {
                // SAFETY: a new private anonymous mapping, unmapped at once.
                let p = unsafe {
                    libc::mmap(
                        std::ptr::null_mut(),
                        4096,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                        -1,
                        0,
                    )
                };
                // SAFETY: `p` is the mapping just made.
                unsafe { libc::munmap(p, 4096) };
            }
            "fork_wait" | "execve_static" => {
                // SAFETY: the probe is single-threaded; the child only execs or exits.
                let pid = unsafe { libc::fork() };
                check(pid.into(), "fork");
                if pid == 0 {
                    if self.case == "execve_static" {
                        // SAFETY: NUL-terminated path and argv; environ is the process's.
                        unsafe { libc::execv(self.path.as_ptr(), self.argv.as_ptr()) };
                    }
                    // SAFETY: ends the child.
                    unsafe { libc::_exit(0) };
                }
                let mut status = 0;
                // SAFETY: `status` is ours; `pid` is our child.
                unsafe { libc::waitpid(pid, &mut status, 0) };
            }
            other => panic!("unknown case {other}"),
        }
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        let [a, b] = self.fds;
        for fd in if a == b { vec![a] } else { vec![a, b] } {
            if fd >= 0 {
                // SAFETY: fds this Op opened (closing a pair's write end ends the peer).
                unsafe { libc::close(fd) };
            }
        }
        if self.peer > 0 {
            let mut status = 0;
            // SAFETY: the peer is our child.
            unsafe { libc::waitpid(self.peer, &mut status, 0) };
        }
    }
}
