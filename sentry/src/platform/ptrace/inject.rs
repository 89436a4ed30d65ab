//! Installing an fd in a traced guest without ADDFD: the tracer sends the fd over its end of the
//! reserved socket, turns the trapped call into `recvmsg(RESERVED_FD, ...)` with the message
//! header written below the thread's red zone (where a signal frame would go), runs it to its
//! exit, and makes the received fd number the trapped call's result.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use super::reserved::RESERVED_FD;
use super::tracee::{Regs, Site, Stopped};
use super::{memory, PlatformError};

/// The x86-64 red zone: the 128 bytes below the stack pointer belong to the running function.
const RED_ZONE: u64 = 128;
/// Layout of the scratch area: msghdr, iovec, control buffer, data byte.
const MSGHDR_AT: usize = 0;
const IOVEC_AT: usize = 56;
const CONTROL_AT: usize = 72;
/// CMSG_SPACE(sizeof(int)).
const CONTROL_LEN: usize = 24;
const DATA_AT: usize = CONTROL_AT + CONTROL_LEN;
const SCRATCH: usize = DATA_AT + 8;

/// Where the scratch area goes for a thread whose stack pointer is `rsp`.
fn scratch_at(rsp: u64) -> u64 {
    (rsp - RED_ZONE - SCRATCH as u64) & !15
}

/// The msghdr, iovec and empty control buffer of one `recvmsg`, for a scratch area at `base`.
fn layout(base: u64) -> [u8; SCRATCH] {
    let mut b = [0u8; SCRATCH];
    let mut put = |at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_ne_bytes());
    // struct msghdr { name, namelen, iov, iovlen, control, controllen, flags }
    put(MSGHDR_AT + 16, base + IOVEC_AT as u64);
    put(MSGHDR_AT + 24, 1);
    put(MSGHDR_AT + 32, base + CONTROL_AT as u64);
    put(MSGHDR_AT + 40, CONTROL_LEN as u64);
    // struct iovec { base, len }
    put(IOVEC_AT, base + DATA_AT as u64);
    put(IOVEC_AT + 8, 1);
    b
}

/// The fd in a received control buffer: `cmsghdr { len: u64, level: i32, type: i32 }`, then it.
fn received_fd(control: &[u8; CONTROL_LEN]) -> Option<i32> {
    let len = u64::from_ne_bytes(control[0..8].try_into().ok()?);
    let level = i32::from_ne_bytes(control[8..12].try_into().ok()?);
    let kind = i32::from_ne_bytes(control[12..16].try_into().ok()?);
    (len >= 20 && level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS)
        .then(|| i32::from_ne_bytes(control[16..20].try_into().unwrap_or_default()))
}

/// Installs `fd` in the guest of `tracee`, stopped at a trapped call whose registers were
/// `regs`, and completes that call with the new fd number. On success the tracee runs again.
pub fn install(
    sender: BorrowedFd<'_>,
    mut tracee: Stopped,
    regs: &Regs,
    fd: OwnedFd,
    cloexec: bool,
) -> Result<i32, (Option<Stopped>, PlatformError)> {
    let sys = |op, errno| PlatformError::Sys { op, errno };
    let base = scratch_at(regs.rsp);
    let tid = tracee.tid().as_raw();
    let wrote = memory::write(tid, base, &layout(base));
    if wrote != Ok(SCRATCH) {
        // The stack ends right there (never touched below): no room for the header.
        return Err((
            Some(tracee),
            sys("writing the recvmsg header", Errno::ENOMEM),
        ));
    }
    let fds = [fd.as_raw_fd()];
    let sent = sendmsg::<()>(
        sender.as_raw_fd(),
        &[IoSlice::new(&[0])],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_DONTWAIT,
        None,
    );
    // The socket holds the file now. Closing our copy before the guest runs makes its close
    // the last one (close events, flock release and exec's ETXTBSY come when Linux has them).
    drop(fd);
    if let Err(errno) = sent {
        return Err((Some(tracee), sys("sending the fd", errno)));
    }
    let mut call = *regs;
    call.orig_rax = libc::SYS_recvmsg as u64;
    call.rdi = RESERVED_FD as u64;
    call.rsi = base + MSGHDR_AT as u64;
    call.rdx = (libc::MSG_DONTWAIT | if cloexec { libc::MSG_CMSG_CLOEXEC } else { 0 }) as u64;
    let gone = |_| (None, PlatformError::Gone);
    // The steps above take a while: an exec from another thread may have taken the tid
    // meanwhile (its call is gone then; the fd we sent is drained by the caller).
    if !tracee.still_at(regs) {
        return Err((None, PlatformError::Gone));
    }
    tracee.set_regs(&call).map_err(gone)?;
    match tracee.where_now(regs) {
        Site::Same => {}
        // Killed meanwhile (an exec from another thread, say): nothing more to do.
        Site::Dying => return Err((None, PlatformError::Gone)),
        // An exec took the tid between the check and the write: the new image has the old
        // one's registers now and cannot go on. Fail closed.
        Site::Elsewhere => {
            tracing::warn!("tid {tid}: an exec took it while an fd was being installed; killed");
            kill_process(tid);
            return Err((None, PlatformError::Gone));
        }
    }
    let mut tracee = tracee.run_call().map_err(gone)?;
    let result = tracee.regs().map_err(gone)?.rax as i64;
    let mut control = [0u8; CONTROL_LEN];
    let got = if result < 0 {
        Err(Errno::from_raw(-result as i32))
    } else {
        match memory::read(tid, base + CONTROL_AT as u64, &mut control) {
            // No control message: the guest's fd table is full (the kernel dropped the fd).
            Ok(CONTROL_LEN) => received_fd(&control).ok_or(Errno::EMFILE),
            _ => Err(Errno::EFAULT),
        }
    };
    let mut done = *regs;
    done.rax = match got {
        Ok(n) => n as u64,
        Err(e) => -(e as i64) as u64,
    };
    tracee.set_regs(&done).map_err(gone)?;
    drop(tracee.resume(0).map_err(gone)?);
    got.map_err(|errno| (None, sys("recvmsg in the guest", errno)))
}

/// SIGKILL to the process of thread `tid`.
fn kill_process(tid: i32) {
    // SAFETY: kill takes integers; `tid` names a traced thread, whose process it ends.
    unsafe { libc::kill(tid, libc::SIGKILL) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_points_into_itself_below_the_red_zone() {
        let rsp = 0x7ffd_1234_5678;
        let base = scratch_at(rsp);
        assert!(base + SCRATCH as u64 <= rsp - RED_ZONE);
        assert_eq!(base % 16, 0);
        let b = layout(base);
        let at = |i: usize| u64::from_ne_bytes(b[i..i + 8].try_into().unwrap());
        assert_eq!(at(16), base + IOVEC_AT as u64);
        assert_eq!(at(32), base + CONTROL_AT as u64);
        assert_eq!(at(IOVEC_AT), base + DATA_AT as u64);
        assert_eq!(CONTROL_LEN, {
            // SAFETY: CMSG_SPACE is a pure size computation.
            unsafe { libc::CMSG_SPACE(4) as usize }
        });
    }

    #[test]
    fn only_an_scm_rights_message_yields_an_fd() {
        let mut c = [0u8; CONTROL_LEN];
        c[0..8].copy_from_slice(&20u64.to_ne_bytes());
        c[8..12].copy_from_slice(&libc::SOL_SOCKET.to_ne_bytes());
        c[12..16].copy_from_slice(&libc::SCM_RIGHTS.to_ne_bytes());
        c[16..20].copy_from_slice(&7i32.to_ne_bytes());
        assert_eq!(received_fd(&c), Some(7));
        assert_eq!(received_fd(&[0; CONTROL_LEN]), None);
    }
}
