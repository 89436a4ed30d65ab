//! The operations, ready to run once per iteration (raw libc: nothing in the measured path
//! allocates or takes a lock of ours).

use std::ffi::CString;

use crate::cases::{Case, FRESH_DIR, STATIC_BINARY};

/// An operation with whatever it keeps between iterations (fds, an echoing peer process).
#[derive(Debug)]
pub struct Op {
    case: &'static str,
    path: CString,
    fds: [libc::c_int; 2],
    peer: libc::pid_t,
    argv: [*const libc::c_char; 3],
    true_arg: CString,
    /// A socket address the case sends to or connects to, and its length.
    addr: libc::sockaddr_storage,
    addr_len: libc::socklen_t,
    /// `open_close_new`: the path buffer (the directory and `/f`, then digits and a NUL are
    /// written in place) and the index of the next file.
    fresh: Vec<u8>,
    fresh_prefix: usize,
    next: u64,
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

/// A connected Unix stream socket pair.
fn stream_pair() -> [libc::c_int; 2] {
    let mut sv = [0; 2];
    // SAFETY: socketpair fills a two-int array we own.
    check(
        unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, sv.as_mut_ptr()) }.into(),
        "socketpair",
    );
    sv
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
            // SAFETY: sockaddr_storage is plain data; all-zero is valid.
            addr: unsafe { std::mem::zeroed() },
            addr_len: 0,
            fresh: Vec::new(),
            fresh_prefix: 0,
            next: 0,
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
                let sv = stream_pair();
                op.peer = echo_peer(sv[1], sv[1], &[sv[0]]);
                op.fds = [sv[0], sv[0]];
            }
            "sendmsg_unix" => op.fds = stream_pair(),
            "sendto_udp" => op.setup_udp(),
            "connect_unix" => op.setup_unix_dgram_server(),
            "execve_static" => {
                op.path = CString::new(STATIC_BINARY).unwrap_or_default();
            }
            "open_write" => {
                op.path = CString::new(format!("/tmp/rvisor-bench-write-{}", std::process::id()))
                    .unwrap_or_default();
                // SAFETY: a NUL-terminated path and flags; the fd is closed at once.
                let fd = unsafe {
                    libc::open(
                        op.path.as_ptr(),
                        libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC,
                        0o600,
                    )
                };
                check(fd.into(), "creating the open_write file");
                // SAFETY: `fd` was just opened.
                unsafe { libc::close(fd) };
            }
            "open_close_new" => {
                op.fresh = format!("{FRESH_DIR}/f").into_bytes();
                op.fresh_prefix = op.fresh.len();
                // Room for any u64 and the NUL, so that writing a name never reallocates.
                op.fresh.resize(op.fresh_prefix + 21, 0);
            }
            _ => {}
        }
        op.argv = [op.path.as_ptr(), op.true_arg.as_ptr(), std::ptr::null()];
        op
    }

    /// A UDP socket bound to an ephemeral loopback port; `addr` is that port.
    fn setup_udp(&mut self) {
        // SAFETY: socket takes integers.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        check(fd.into(), "socket");
        // SAFETY: sockaddr_in is plain data; all-zero is valid.
        let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        sin.sin_family = libc::AF_INET as libc::sa_family_t;
        sin.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: `sin` is a sockaddr_in of `len` bytes that we own.
        check(
            unsafe { libc::bind(fd, std::ptr::addr_of!(sin).cast(), len) }.into(),
            "bind",
        );
        // SAFETY: getsockname fills `addr` up to `len` bytes.
        check(
            unsafe { libc::getsockname(fd, std::ptr::addr_of_mut!(self.addr).cast(), &mut len) }
                .into(),
            "getsockname",
        );
        self.addr_len = len;
        self.fds = [fd, fd];
    }

    /// A Unix datagram socket bound to a fresh path in /tmp; `addr` is that path.
    fn setup_unix_dgram_server(&mut self) {
        // SAFETY: socket takes integers.
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        check(fd.into(), "socket");
        let path = format!("/tmp/rvisor-bench-{}.sock", std::process::id());
        let _ = std::fs::remove_file(&path);
        // SAFETY: sockaddr_un is plain data; all-zero is valid.
        let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (d, s) in sun.sun_path.iter_mut().zip(path.bytes()) {
            *d = s as libc::c_char;
        }
        let len = (2 + path.len() + 1) as libc::socklen_t;
        // SAFETY: `sun` is a sockaddr_un of at least `len` bytes that we own.
        check(
            unsafe { libc::bind(fd, std::ptr::addr_of!(sun).cast(), len) }.into(),
            "bind",
        );
        // SAFETY: both are plain data of these sizes; sockaddr_storage is the larger.
        unsafe {
            std::ptr::copy_nonoverlapping(
                std::ptr::addr_of!(sun).cast::<u8>(),
                std::ptr::addr_of_mut!(self.addr).cast::<u8>(),
                std::mem::size_of::<libc::sockaddr_un>(),
            )
        };
        self.addr_len = len;
        self.path = CString::new(path).unwrap_or_default();
        self.fds = [fd, fd];
    }

    /// Writes the next fresh file's name after the prefix, NUL-terminated, without allocating.
    fn write_fresh_name(&mut self) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut v = self.next;
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.next += 1;
        let end = self.fresh_prefix + digits.len() - i;
        self.fresh[self.fresh_prefix..end].copy_from_slice(&digits[i..]);
        self.fresh[end] = 0;
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
            "open_write" => {
                // SAFETY: a NUL-terminated path; the fd is closed at once.
                let fd = unsafe {
                    libc::open(
                        self.path.as_ptr(),
                        libc::O_WRONLY | libc::O_APPEND | libc::O_CLOEXEC,
                    )
                };
                check(fd.into(), "open");
                // SAFETY: `fd` was just opened.
                unsafe { libc::close(fd) };
            }
            "open_close_new" => {
                self.write_fresh_name();
                // SAFETY: `fresh` holds a NUL-terminated path; the fd is closed at once.
                let fd = unsafe {
                    libc::open(self.fresh.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC)
                };
                if fd < 0 {
                    panic!(
                        "open {}: {} (rvisor bench pre-creates these files)",
                        String::from_utf8_lossy(
                            self.fresh.split(|&b| b == 0).next().unwrap_or_default()
                        ),
                        std::io::Error::last_os_error()
                    );
                }
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
            "sendmsg_unix" => {
                let mut b = 1u8;
                let mut iov = libc::iovec {
                    iov_base: std::ptr::addr_of_mut!(b).cast(),
                    iov_len: 1,
                };
                // SAFETY: msghdr is plain data; all-zero is valid.
                let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
                msg.msg_iov = &mut iov;
                msg.msg_iovlen = 1;
                // SAFETY: one byte described by `msg`, then read back.
                check(
                    unsafe { libc::sendmsg(self.fds[0], &msg, 0) } as libc::c_long,
                    "sendmsg",
                );
                // SAFETY: one byte into `b`.
                unsafe { libc::read(self.fds[1], std::ptr::addr_of_mut!(b).cast(), 1) };
            }
            "sendto_udp" => {
                let mut b = 1u8;
                // SAFETY: one byte to our own bound socket, then read back.
                check(
                    unsafe {
                        libc::sendto(
                            self.fds[0],
                            std::ptr::addr_of!(b).cast(),
                            1,
                            0,
                            std::ptr::addr_of!(self.addr).cast(),
                            self.addr_len,
                        )
                    } as libc::c_long,
                    "sendto",
                );
                // SAFETY: one byte into `b`.
                unsafe { libc::read(self.fds[0], std::ptr::addr_of_mut!(b).cast(), 1) };
            }
            "connect_unix" => {
                // SAFETY: socket takes integers; the socket is closed at once.
                let fd = unsafe {
                    libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
                };
                check(fd.into(), "socket");
                // SAFETY: `addr` holds a sockaddr_un of `addr_len` bytes.
                check(
                    unsafe {
                        libc::connect(fd, std::ptr::addr_of!(self.addr).cast(), self.addr_len)
                    }
                    .into(),
                    "connect",
                );
                // SAFETY: `fd` was just opened.
                unsafe { libc::close(fd) };
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
        if self.case == "connect_unix" || self.case == "open_write" {
            // SAFETY: a NUL-terminated path this Op bound or made.
            unsafe { libc::unlink(self.path.as_ptr()) };
        }
        if self.peer > 0 {
            let mut status = 0;
            // SAFETY: the peer is our child.
            unsafe { libc::waitpid(self.peer, &mut status, 0) };
        }
    }
}
