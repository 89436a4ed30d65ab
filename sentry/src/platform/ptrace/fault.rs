//! A fault in a container's PID 1 under a tracer.
//!
//! The kernel lets a pid namespace's init die of a fault it does not handle by clearing the
//! namespace init's immunity when it forces the signal, but only for an untraced task; traced,
//! the init ignores its own SIGSEGV and faults again at once, forever (native: it dies, 139). So
//! at the signal-delivery-stop of such a fault the tracer lets the thread go: it faults again
//! untraced and dies of it as it would natively. Its wait status is recorded then, since the
//! tracer no longer sees its end.

use nix::unistd::Pid;

use super::tracee::Stopped;

/// Signals the kernel raises for a faulting instruction.
const FAULTS: [i32; 6] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGSYS,
    libc::SIGTRAP,
];

/// Whether `tracee`, stopped to receive `signal`, is a thread of `init` that faulted and
/// would die of it untraced: the kernel raised it, and the process does not catch it.
pub fn fatal_in_init(tracee: &Stopped, signal: i32, init: Pid) -> bool {
    if !FAULTS.contains(&signal) || tracee.signal_code().map_or(true, |code| code <= 0) {
        return false;
    }
    let path = format!("{}{}/status", crate::procfs::prefix(), tracee.tid());
    let Ok(status) = std::fs::read_to_string(path) else {
        return false;
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let tgid_is_init = field("Tgid:").and_then(|t| t.parse::<i32>().ok()) == Some(init.as_raw());
    let caught = field("SigCgt:")
        .and_then(|m| u64::from_str_radix(m, 16).ok())
        .is_some_and(|mask| mask & (1u64 << (signal - 1)) != 0);
    tgid_is_init && !caught
}
