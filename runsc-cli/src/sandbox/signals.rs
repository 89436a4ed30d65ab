//! Supervising a child: reap it, and pass on the signals a person sends us.
//!
//! Each supervising process (runtime, sentry, guest init) blocks these signals and takes them
//! with `sigwaitinfo`, so no handler runs. A signal the terminal sent (Ctrl-C) already reached the
//! whole foreground process group, the command included, so only signals sent by a process are
//! forwarded; otherwise the command would get Ctrl-C twice.

use nix::errno::Errno;
use nix::sys::signal::{
    kill, sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal,
};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Signals passed on to the supervised child.
pub const FORWARDED: [Signal; 6] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// The set a supervisor blocks: forwarded signals and SIGCHLD.
pub fn supervised_set() -> SigSet {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGCHLD);
    set
}

/// The caller's mask before the first supervisor blocked anything; the command gets it back.
static ORIGINAL_MASK: std::sync::OnceLock<SigSet> = std::sync::OnceLock::new();

/// Blocks the supervised set; returns the mask the launcher started with (the sentry and the
/// init inherit a blocked mask, which the command must not).
pub fn block() -> Result<SigSet, Errno> {
    let mut old = SigSet::empty();
    nix::sys::signal::sigprocmask(
        SigmaskHow::SIG_BLOCK,
        Some(&supervised_set()),
        Some(&mut old),
    )?;
    Ok(*ORIGINAL_MASK.get_or_init(|| old))
}

extern "C" fn ignore(_: libc::c_int) {}

/// A pid namespace's init drops signals it has no handler for, even blocked ones sent from an
/// ancestor namespace; give it a handler that never runs (the signals stay blocked).
pub fn install_init_handlers() -> Result<(), Errno> {
    let action = SigAction::new(
        SigHandler::Handler(ignore),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for s in FORWARDED.into_iter().chain([Signal::SIGCHLD]) {
        // SAFETY: `ignore` is async-signal-safe (it does nothing).
        unsafe { sigaction(s, &action)? };
    }
    Ok(())
}

/// Undoes `block` and `install_init_handlers` in a child about to exec.
pub fn reset_for_exec(old_mask: &SigSet) {
    // Every disposition, real-time signals included: a handler is reset by exec anyway, but an
    // ignored signal stays ignored, and Rust's runtime ignores SIGPIPE (`yes | head -1` would
    // then report a broken pipe instead of dying of it, as runc's processes do).
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // The kernel's struct (handler, flags, restorer, mask), all zero: SIG_DFL. Raw, since
        // glibc's sigaction refuses the two real-time signals it reserves (32 and 33).
        let dfl = [0u64; 4];
        // SAFETY: rt_sigaction reads `dfl` (a SIG_DFL action, no handler code) and writes no old
        // action; 8 is the kernel's sigset size. Numbers the kernel refuses just fail.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                dfl.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(old_mask), None);
}

/// How a supervised child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// exit(code).
    Exited(i32),
    /// Killed by this signal.
    Signaled(Signal),
}

impl Ended {
    /// Shell convention: the code, or 128 + the signal number.
    pub fn code(self) -> i32 {
        match self {
            Ended::Exited(c) => c,
            Ended::Signaled(s) => 128 + s as i32,
        }
    }
}

fn wait_signal(set: &SigSet) -> (i32, i32) {
    loop {
        // SAFETY: siginfo_t is plain data; sigwaitinfo fills it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid sigset and `info` a valid out-pointer.
        let sig = unsafe { libc::sigwaitinfo(set.as_ref(), &mut info) };
        if sig > 0 {
            return (sig, info.si_code);
        }
    }
}

/// Waits for `child` to end while forwarding signals to it. With `reap_all` (a pid namespace's
/// init) every other exited child is reaped too. The supervised set must be blocked.
pub fn supervise(child: Pid, reap_all: bool) -> Ended {
    let set = supervised_set();
    loop {
        if let Some(ended) = reap(child, reap_all) {
            return ended;
        }
        let (sig, code) = wait_signal(&set);
        if sig == libc::SIGCHLD {
            continue;
        }
        // SI_USER, SI_QUEUE, SI_TKILL...: sent by a process; SI_KERNEL: the terminal.
        if code <= 0 {
            if let Ok(signal) = Signal::try_from(sig) {
                let _ = kill(child, signal);
            }
        }
    }
}

fn reap(child: Pid, reap_all: bool) -> Option<Ended> {
    let target = if reap_all { None } else { Some(child) };
    loop {
        match waitpid(target, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == child => return Some(Ended::Exited(code)),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => {
                return Some(Ended::Signaled(sig))
            }
            Ok(WaitStatus::StillAlive) => return None,
            Ok(_) => {}
            Err(Errno::EINTR) => {}
            Err(_) => return None,
        }
    }
}
