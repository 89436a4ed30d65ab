//! How a container's sentry learns its init's exit status and keeps it from outliving the
//! sentry, when the init is not the sentry's child (it is the runtime caller's, so that
//! containerd's shim, a subreaper, reaps it and gets the status it reports).
//!
//! A traced process's end is reported to its tracer before its parent; and a tracee seized with
//! `PTRACE_O_EXITKILL` is killed when its tracer goes. On the ptrace platform the tracer thread
//! already holds the init: its platform fills the [`ExitSlot`]. On seccomp-notify a watch thread
//! seizes the init with that one option and does nothing but pass its signals and group-stops
//! on, so the guest sees no difference but for `TracerPid` (which names no pid in its namespace).

use std::sync::Arc;
use std::time::Duration;

use nix::unistd::Pid;
use parking_lot::{Condvar, Mutex};

use super::tracee::{self, Event, Stop};
use crate::platform::PlatformError;

/// The init's wait status, once it has ended.
#[derive(Debug, Default)]
pub struct ExitSlot {
    status: Mutex<Option<i32>>,
    ended: Condvar,
}

impl ExitSlot {
    /// A new, empty slot to share.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Records the wait status (the first one counts).
    pub fn set(&self, status: i32) {
        let mut slot = self.status.lock();
        if slot.is_none() {
            *slot = Some(status);
            self.ended.notify_all();
        }
    }

    /// The wait status, waiting up to `limit` for it.
    pub fn wait(&self, limit: Duration) -> Option<i32> {
        let mut slot = self.status.lock();
        if slot.is_none() {
            let _ = self.ended.wait_for(&mut slot, limit);
        }
        *slot
    }
}

/// The status as a shell reports it: the exit code, or 128 + the signal that killed it.
pub fn exit_code(status: i32) -> i32 {
    if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

/// Starts a thread that seizes `init` and its threads (kill-on-exit) and fills `slot` when it
/// ends. The thread lives until then: the init dies with it.
pub fn spawn(init: Pid, slot: Arc<ExitSlot>) -> Result<(), PlatformError> {
    let (seized_tx, seized) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("rvisor-exit-watch".into())
        .spawn(move || {
            // Every thread is traced (TRACECLONE): a thread other than the leader may exec, and
            // then becomes the leader; a watch on the leader alone would lose the process.
            let result =
                tracee::seize_with(init, libc::PTRACE_O_EXITKILL | libc::PTRACE_O_TRACECLONE);
            let ok = result.is_ok();
            let _ = seized_tx.send(result);
            if ok {
                watch(init, &slot);
            }
        })
        .map_err(|_| PlatformError::Sys {
            op: "spawning the exit watch",
            errno: nix::errno::Errno::EAGAIN,
        })?;
    seized
        .recv()
        .map_err(|_| PlatformError::Detached)?
        .map_err(PlatformError::of("PTRACE_SEIZE (exit watch)"))
}

fn watch(init: Pid, slot: &ExitSlot) {
    let mut let_go = false;
    loop {
        let _ = match tracee::wait_any() {
            // The leader's end is reported once the whole process has ended.
            Ok(Event::Gone(tid, status)) if tid == init => return slot.set(status),
            Ok(Event::Gone(..)) => continue,
            Ok(Event::Stopped(t, Stop::Signal(signal)))
                if super::fault::fatal_in_init(&t, signal, init) =>
            {
                // See fault.rs: it dies of the fault untraced, with this status.
                slot.set(signal);
                let_go = true;
                let _ = t.detach();
                continue;
            }
            Ok(Event::Stopped(t, Stop::Signal(signal))) => t.resume(signal),
            Ok(Event::Stopped(t, Stop::Group(_))) => t.listen(),
            Ok(Event::Stopped(t, _)) => t.resume(0),
            Err(nix::errno::Errno::EINTR) => continue,
            // ECHILD: nothing of it is traced any more, which must not happen while it lives:
            // fail closed.
            Err(_) => {
                if !let_go {
                    let _ = nix::sys::signal::kill(init, nix::sys::signal::Signal::SIGKILL);
                }
                return;
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_read_as_a_shell_reports_them() {
        assert_eq!(exit_code(3 << 8), 3);
        assert_eq!(exit_code(libc::SIGKILL), 137);
        assert_eq!(exit_code(libc::SIGTERM | 0x80), 143);
    }

    #[test]
    fn a_slot_keeps_the_first_status_and_wakes_waiters() {
        let slot = ExitSlot::new();
        let waiter = {
            let slot = Arc::clone(&slot);
            std::thread::spawn(move || slot.wait(Duration::from_secs(60)))
        };
        slot.set(7 << 8);
        slot.set(9);
        assert_eq!(waiter.join().unwrap(), Some(7 << 8));
        assert_eq!(ExitSlot::new().wait(Duration::ZERO), None);
    }
}
