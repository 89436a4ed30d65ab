//! The kernel floor of seccomp user notification: a minimal supervisor in raw libc that traps
//! one system call with `SECCOMP_RET_USER_NOTIF`, turns on synchronous wake-up (as rvisor
//! does), and only receives and answers "continue". Whatever rvisor adds on top of this is
//! rvisor's cost.

use std::io::{Error, Result};

const RET_USER_NOTIF: u32 = 0x7fc0_0000;
const RET_ALLOW: u32 = 0x7fff_0000;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const FILTER_FLAG_NEW_LISTENER: libc::c_ulong = 1 << 3;
const IOCTL_NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const IOCTL_NOTIF_SEND: libc::c_ulong = 0xc018_2101;
const IOCTL_NOTIF_SET_FLAGS: libc::c_ulong = 0x4008_2104;
const USER_NOTIF_FD_SYNC_WAKE_UP: u64 = 1;
const USER_NOTIF_FLAG_CONTINUE: u32 = 1;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jeq(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: 0x15,
        jt,
        jf,
        k,
    }
}

/// Installs, with seccomp `flags`, a filter returning `ret` for `nr` and allowing the rest;
/// returns what seccomp returned (the listener with `FILTER_FLAG_NEW_LISTENER`).
pub(crate) fn install_trapping(
    nr: libc::c_long,
    ret: u32,
    flags: libc::c_ulong,
) -> Result<libc::c_int> {
    let prog = [
        stmt(0x20, 4), // ld arch
        jeq(AUDIT_ARCH_X86_64, 0, 3),
        stmt(0x20, 0), // ld nr
        jeq(nr as u32, 0, 1),
        stmt(0x06, ret),
        stmt(0x06, RET_ALLOW),
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(Error::last_os_error());
    }
    // SAFETY: `fprog` points at `prog`, alive for the call.
    let rc = unsafe { libc::syscall(libc::SYS_seccomp, 1, flags, std::ptr::addr_of!(fprog)) };
    if rc < 0 {
        return Err(Error::last_os_error());
    }
    Ok(rc as libc::c_int)
}

/// Runs `measure` in a child whose `nr` calls are trapped and answered by this process;
/// returns the child's exit status.
pub fn supervise(nr: libc::c_long, measure: impl FnOnce() -> i32) -> Result<i32> {
    supervise_with(nr, 1, measure)
}

/// As [`supervise`], with `workers` threads receiving from the one listener, each pinned to a
/// CPU of its own when there are several (as rvisor pins its workers while calls overlap): the
/// kernel's ceiling for a multi-threaded guest.
pub fn supervise_with(
    nr: libc::c_long,
    workers: usize,
    measure: impl FnOnce() -> i32,
) -> Result<i32> {
    let mut sv = [0; 2];
    // SAFETY: socketpair fills our array.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, sv.as_mut_ptr()) } != 0 {
        return Err(Error::last_os_error());
    }
    // SAFETY: single-threaded; the child installs its filter, reports, measures and exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::last_os_error());
    }
    if pid == 0 {
        let listener = install_trapping(nr, RET_USER_NOTIF, FILTER_FLAG_NEW_LISTENER)
            .unwrap_or_else(|e| panic!("installing the floor filter: {e}"));
        let pid_bytes = listener.to_ne_bytes();
        // The measured call traps from here on, with nobody serving it yet: report with a call
        // that is not it (write/read, or send/recv, which are sendto/recvfrom, for write).
        let (tx, rx) = if nr == libc::SYS_write || nr == libc::SYS_read {
            (libc::SYS_sendto, libc::SYS_recvfrom)
        } else {
            (libc::SYS_write, libc::SYS_read)
        };
        // SAFETY: four bytes from our buffer (sendto's flags, address and length are zero).
        unsafe { libc::syscall(tx, sv[1], pid_bytes.as_ptr(), 4usize, 0, 0, 0) };
        let mut ack = 0u8;
        // SAFETY: one byte into `ack`: the supervisor has the listener.
        unsafe { libc::syscall(rx, sv[1], std::ptr::addr_of_mut!(ack), 1usize, 0, 0, 0) };
        // SAFETY: the supervisor holds its own copy.
        unsafe { libc::close(listener) };
        let code = measure();
        // SAFETY: ends the child without unwinding into the parent's state.
        unsafe { libc::_exit(code) };
    }
    let mut raw = [0u8; 4];
    // SAFETY: four bytes into `raw`.
    if unsafe { libc::read(sv[0], raw.as_mut_ptr().cast(), 4) } != 4 {
        return Err(Error::other("the measured child died before reporting"));
    }
    let child_fd = i32::from_ne_bytes(raw);
    // The child's listener, taken from its fd table.
    // SAFETY: integer arguments.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: integer arguments.
    let listener =
        unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, child_fd, 0) } as libc::c_int;
    if listener < 0 {
        return Err(Error::last_os_error());
    }
    // SAFETY: the flag is passed by value.
    unsafe {
        libc::ioctl(
            listener,
            IOCTL_NOTIF_SET_FLAGS as _,
            USER_NOTIF_FD_SYNC_WAKE_UP,
        )
    };
    // SAFETY: one byte from a literal.
    unsafe { libc::write(sv[0], [1u8].as_ptr().cast(), 1) };
    let cpus = allowed_cpus();
    let workers = workers.clamp(1, cpus.len().max(1));
    std::thread::scope(|s| {
        for i in 0..workers {
            let cpu = (workers > 1).then(|| cpus[i % cpus.len()]);
            s.spawn(move || serve(listener, cpu));
        }
    });
    let mut status = 0;
    // SAFETY: `pid` is our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    for fd in [listener, pidfd as libc::c_int, sv[0], sv[1]] {
        // SAFETY: fds we opened.
        unsafe { libc::close(fd) };
    }
    Ok(libc::WEXITSTATUS(status))
}

/// The CPUs this process may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; all-zero is an empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is ours and of the size passed.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    if rc != 0 {
        return vec![0];
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `c` is below CPU_SETSIZE.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// One worker: receives and answers "continue" until no task is left under the filter.
fn serve(listener: libc::c_int, cpu: Option<usize>) {
    if let Some(cpu) = cpu {
        // SAFETY: cpu_set_t is plain data; all-zero is an empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `cpu` is one of the allowed CPUs, below CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu, &mut set) };
        // SAFETY: `set` is ours and of the size passed; pid 0 is this thread. Failing only
        // leaves the worker unpinned.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    }
    loop {
        // SAFETY: seccomp_notif is plain data; the kernel wants it zeroed before each receive.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: `req` is ours and the size the ioctl expects.
        if unsafe { libc::ioctl(listener, IOCTL_NOTIF_RECV as _, &mut req) } != 0 {
            match Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                // A caller gone between wake-up and receipt, unless no task is left at all.
                Some(libc::ENOENT) if !hung_up(listener) => continue,
                _ => break,
            }
        }
        let resp = libc::seccomp_notif_resp {
            id: req.id,
            val: 0,
            error: 0,
            flags: USER_NOTIF_FLAG_CONTINUE,
        };
        // SAFETY: `resp` is ours; an ENOENT (the caller died) is not ours to handle.
        unsafe { libc::ioctl(listener, IOCTL_NOTIF_SEND as _, &resp) };
    }
}

/// Whether every task under the listener's filter is gone.
fn hung_up(listener: libc::c_int) -> bool {
    let mut fds = [libc::pollfd {
        fd: listener,
        events: libc::POLLIN,
        revents: 0,
    }];
    // SAFETY: one pollfd, valid for the call; a zero timeout never blocks.
    unsafe { libc::poll(fds.as_mut_ptr(), 1, 0) == 1 && fds[0].revents & libc::POLLHUP != 0 }
}
