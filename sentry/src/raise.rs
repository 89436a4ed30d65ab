//! Signals a trapped call raises on its caller, as the kernel would at the call's return
//! (SIGXFSZ past RLIMIT_FSIZE).
//!
//! Natively the signal is pending when the call returns. Sent while the caller still waits for
//! its reply, it is the same wherever it cannot cut the call short: under ptrace (a stopped
//! tracee takes it on resuming), and under seccomp user-notify when the caller blocks, ignores
//! or does not catch it (a fatal one ends the caller, as natively). A handler the caller would
//! run abandons the call instead (restarted, or EINTR): the call's reply is then kept and given to
//! its restart (`server::Raised`), so the handler has run when the call returns, as natively
//! (sent after the reply, it would race the caller's next instructions).

use nix::errno::Errno;

use crate::platform::Platform;

/// The caller's thread.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    /// Host thread id.
    pub tid: i32,
    /// Host process id.
    pub tgid: i32,
}

/// Sends `sig` to `caller` now if that cannot cut its pending call short; `false` if it must
/// wait for the reply ([`send`] it then).
pub fn before_reply(platform: &dyn Platform, caller: Caller, sig: i32) -> bool {
    if platform.signal_interrupts_wait() && handled(caller.tid, sig) {
        return false;
    }
    let _ = send(caller, sig);
    true
}

/// Sends `sig` to the caller's thread.
pub fn send(caller: Caller, sig: i32) -> Result<(), Errno> {
    // SAFETY: tgkill takes integers; the tgid pins the thread to its process.
    let rc = unsafe { libc::syscall(libc::SYS_tgkill, caller.tgid, caller.tid, sig) };
    if rc < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Whether the thread runs a handler for `sig` (caught and not blocked), from its status.
fn handled(tid: i32, sig: i32) -> bool {
    let path = format!("{}{tid}/status", crate::procfs::prefix());
    let Ok(status) = std::fs::read_to_string(path) else {
        return false;
    };
    let mask = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    let bit = 1u64 << (sig - 1);
    mask("SigCgt:") & bit != 0 && mask("SigBlk:") & bit == 0
}
