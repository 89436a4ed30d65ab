//! The sentry's service loop: receive a trapped call, dispatch it through the table, reply.
//!
//! Each worker owns a bump arena that is reset per request, so servicing a call in steady state
//! makes no global-allocator call. Several workers may block in `receive` on one platform; how
//! many do at a time is [`crate::scaling`]'s choice.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bumpalo::Bump;
use nix::errno::Errno;

use crate::guest::Guest;
use crate::platform::{Platform, PlatformError, Reply, Trap};
use crate::sandbox::Sandbox;
use crate::scaling::{Lane, Scaling};
use crate::strace::Strace;
use crate::syscalls::{Action, Ctx, Entry, TABLE, UNKNOWN};

/// `AUDIT_ARCH_X86_64`; the filter kills every other ABI before it can trap.
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
/// Initial arena size: enough for a path, a strace line and their neighbours.
const ARENA_BYTES: usize = 16 * 1024;

/// Counters printed with `--stats`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Calls trapped.
    pub trapped: AtomicU64,
    /// Calls answered by the sentry.
    pub emulated: AtomicU64,
    /// Calls refused.
    pub denied: AtomicU64,
    /// Calls handed back to the host kernel after a check.
    pub continued: AtomicU64,
}

/// A platform, the sandbox it serves, and how to report.
pub struct Sentry<P: Platform> {
    platform: P,
    /// Shared with the sentries of processes that joined later (`rvisor exec`): one sandbox,
    /// several listeners.
    sandbox: Arc<Sandbox>,
    strace: Option<Strace>,
    /// Counters.
    pub stats: Stats,
    /// A call whose signal interrupted it (see [`Raised`]), and whether one is held.
    raised: parking_lot::Mutex<Option<Raised>>,
    raised_held: AtomicBool,
    /// How many workers serve at once.
    scaling: Scaling,
}

/// A call already made whose caller was sent a signal it handles before the reply. Under
/// seccomp user-notify that signal interrupts the caller's wait: the handler runs, and the call
/// is restarted (or fails with EINTR). The restarted call (same thread, number and arguments,
/// before any other trapped call of that thread) is answered with the first one's reply, so the
/// handler runs before the call returns, as natively, and the work is not done twice.
#[derive(Debug, Clone, Copy)]
struct Raised {
    tid: i32,
    nr: i64,
    args: [u64; 6],
    reply: Reply,
}

impl<P: Platform> std::fmt::Debug for Sentry<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sentry")
            .field("platform", &self.platform.name())
            .finish()
    }
}

impl<P: Platform> Sentry<P> {
    /// A sentry for `sandbox`, trapping through `platform`.
    pub fn new(platform: P, sandbox: impl Into<Arc<Sandbox>>, strace: Option<Strace>) -> Self {
        Sentry {
            platform,
            sandbox: sandbox.into(),
            strace,
            stats: Stats::default(),
            raised: parking_lot::Mutex::new(None),
            raised_held: AtomicBool::new(false),
            scaling: Scaling::new(1),
        }
    }

    /// Lets up to `workers` workers serve at once (they join while trapped calls overlap).
    /// [`Sentry::workers`] of them are to be made with [`Sentry::worker`] and run.
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.scaling = Scaling::new(workers);
        self
    }

    /// The sandbox served.
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// The sandbox, to serve another listener of the same guest.
    pub fn shared_sandbox(&self) -> Arc<Sandbox> {
        Arc::clone(&self.sandbox)
    }

    /// The reply of a call interrupted by the signal it raised, if `trap` is its restart.
    fn replay(&self, trap: &Trap) -> Option<Reply> {
        if !self.raised_held.load(Ordering::Acquire) {
            return None;
        }
        let mut held = self.raised.lock();
        let r = (*held)?;
        if r.tid != trap.tid {
            return None;
        }
        *held = None;
        self.raised_held.store(false, Ordering::Release);
        (r.nr == trap.nr && r.args == trap.args).then_some(r.reply)
    }

    /// Workers that may serve at once: as asked with [`Sentry::with_workers`], at most one per
    /// CPU this process may use.
    pub fn workers(&self) -> usize {
        self.scaling.max()
    }

    /// A worker with its own arena.
    pub fn worker(&self) -> Worker<'_, P> {
        Worker {
            sentry: self,
            arena: Bump::with_capacity(ARENA_BYTES),
            trap: Trap::default(),
            lane: self.scaling.lane(),
        }
    }
}

/// One service thread.
pub struct Worker<'s, P: Platform> {
    sentry: &'s Sentry<P>,
    arena: Bump,
    trap: Trap,
    lane: Lane,
}

impl<P: Platform> std::fmt::Debug for Worker<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("trap", &self.trap).finish()
    }
}

impl<P: Platform> Worker<'_, P> {
    /// Serves calls until the platform has no guest left (a worker not needed yet waits its
    /// turn).
    pub fn run(&mut self) -> Result<(), PlatformError> {
        let scaling = &self.sentry.scaling;
        loop {
            scaling.before_receive(&mut self.lane);
            match self.serve_one() {
                Ok(()) => {}
                Err(PlatformError::Detached) => return Ok(()),
                Err(e) => return Err(e),
            }
            let platform = &self.sentry.platform;
            scaling.answered(&mut self.lane, self.trap.tid, || platform.pending());
        }
    }

    /// Receives, services and answers one trapped call.
    pub fn serve_one(&mut self) -> Result<(), PlatformError> {
        let sentry = self.sentry;
        sentry.platform.receive(&mut self.trap)?;
        sentry.scaling.received(&mut self.lane, self.trap.tid);
        sentry.stats.trapped.fetch_add(1, Ordering::Relaxed);
        self.arena.reset();
        let trap = &self.trap;
        let entry = if trap.arch == AUDIT_ARCH_X86_64 {
            TABLE.get(trap.nr)
        } else {
            &UNKNOWN
        };
        let read = Cell::new(false);
        let mut ctx = Ctx {
            trap,
            guest: Guest::new(&sentry.platform, trap, &read),
            arena: &self.arena,
            sandbox: &sentry.sandbox,
            refused: false,
            injected: None,
            raise: None,
        };
        let mut reply = match sentry.replay(trap) {
            Some(reply) => reply,
            None => dispatch(entry, &mut ctx),
        };
        match reply {
            Reply::Continue => sentry.stats.continued.fetch_add(1, Ordering::Relaxed),
            _ => sentry.stats.emulated.fetch_add(1, Ordering::Relaxed),
        };
        if ctx.refused || matches!(entry.action, Action::Denied(_)) {
            sentry.stats.denied.fetch_add(1, Ordering::Relaxed);
            log_denial(&ctx, entry, reply);
        }
        // A signal the call raises goes before the reply where it cannot cut the call short.
        let late = ctx.raise.take().and_then(|sig| {
            let ids = ctx.sandbox.tasks.ids(trap.tid).ok()?;
            let caller = crate::raise::Caller {
                tid: trap.tid,
                tgid: ids.host_tgid,
            };
            (!crate::raise::before_reply(&sentry.platform, caller, sig)).then_some((caller, sig))
        });
        // One the caller handles is sent now too, and the call's reply kept for its restart
        // (a reply that installs nothing; another follows the reply).
        let replayed = matches!(reply, Reply::Value(_) | Reply::Errno(_));
        if let Some((caller, sig)) = late.filter(|_| replayed) {
            *sentry.raised.lock() = Some(Raised {
                tid: trap.tid,
                nr: trap.nr,
                args: trap.args,
                reply,
            });
            sentry.raised_held.store(true, Ordering::Release);
            let _ = crate::raise::send(caller, sig);
        }
        let line = sentry.strace.as_ref().map(|s| s.begin(&ctx, entry));
        let sent = match (reply, ctx.injected.take()) {
            (Reply::Fd { cloexec }, Some(fd)) => {
                match sentry.platform.reply_with_fd(trap, fd, cloexec) {
                    Ok(n) => {
                        reply = Reply::Value(i64::from(n));
                        Ok(())
                    }
                    Err(PlatformError::Sys { errno, .. }) => {
                        // The guest's fd table is full (or similar): the call is still pending.
                        reply = Reply::Errno(errno);
                        sentry.platform.reply(trap, reply)
                    }
                    Err(e) => Err(e),
                }
            }
            _ => sentry.platform.reply(trap, reply),
        };
        if let Some((caller, sig)) = late.filter(|_| !replayed) {
            let _ = crate::raise::send(caller, sig);
        }
        if late.is_some() && replayed && sent.is_ok() {
            // Answered before the signal landed: no restart will come.
            let mut held = sentry.raised.lock();
            if held.is_some_and(|r| r.tid == trap.tid) {
                *held = None;
                sentry.raised_held.store(false, Ordering::Release);
            }
        }
        if let (Some(strace), Some(line)) = (&sentry.strace, line) {
            strace.finish(line, reply);
        }
        match sent {
            // The caller died or was interrupted; there is nobody to answer.
            Ok(()) | Err(PlatformError::Gone) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

pub(crate) fn dispatch(entry: &Entry, ctx: &mut Ctx<'_>) -> Reply {
    let handled = match entry.action {
        Action::Native => return Reply::Continue,
        Action::Denied(errno) => Err(errno),
        Action::Emulated(handler) | Action::Guarded { handler, .. } => handler(ctx),
    };
    let reply = handled.unwrap_or_else(Reply::Errno);
    if reply == Reply::Continue && !entry.continues.allows(ctx.guest.was_read()) {
        // A handler bug, never a guest's doing: fail closed rather than let the kernel act on
        // memory the guest may have changed since the check.
        tracing::error!(
            "{} would have continued against its class ({}); refused",
            entry.name,
            entry.continues.describe()
        );
        ctx.refused = true;
        return Reply::Errno(Errno::EPERM);
    }
    reply
}

fn log_denial(ctx: &Ctx<'_>, entry: &Entry, reply: Reply) {
    // Decided first: a guest looping on a refused call costs no task lookup per call.
    let Some(unshown) = DENIALS.admit() else {
        return;
    };
    let pid = ctx
        .sandbox
        .tasks
        .ids(ctx.trap.tid)
        .map(|i| i.ns_tgid)
        .unwrap_or(0);
    let errno = match reply {
        Reply::Errno(e) => e,
        _ => Errno::UnknownErrno,
    };
    let name = if entry.nr < 0 { "unknown" } else { entry.name };
    let more = if unshown > 0 {
        format!(" ({unshown} more denials not shown)")
    } else {
        String::new()
    };
    tracing::warn!(
        target: "rvisor::denied",
        "denied {name} (nr {}) from pid {pid}: {}{more}",
        ctx.trap.nr,
        errno.desc()
    );
}

/// Denials left out of the log since its last line (taken: the count starts again).
pub fn take_unshown_denials() -> u64 {
    std::mem::take(&mut DENIALS.state.lock().1)
}

/// Denials logged before the log is rate-limited.
const DENIALS_IN_FULL: u64 = 64;

/// How many denial lines reach the caller's stderr: the first [`DENIALS_IN_FULL`], then one a
/// second (a guest looping on a refused call would otherwise flood the operator's terminal or
/// log, 87,000 lines in one review run).
static DENIALS: DenialLog = DenialLog {
    state: parking_lot::Mutex::new((0, 0, None)),
};

struct DenialLog {
    /// Lines shown, denials not shown since the last line, when the last was shown.
    state: parking_lot::Mutex<(u64, u64, Option<std::time::Instant>)>,
}

impl DenialLog {
    /// Whether to log this denial; if so, how many went unlogged before it.
    fn admit(&self) -> Option<u64> {
        let mut state = self.state.lock();
        let (shown, unshown, last) = &mut *state;
        let now = std::time::Instant::now();
        let due = *shown < DENIALS_IN_FULL
            || last.is_none_or(|t| now.duration_since(t) >= std::time::Duration::from_secs(1));
        if !due {
            *unshown += 1;
            return None;
        }
        *shown += 1;
        *last = Some(now);
        Some(std::mem::take(unshown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_are_logged_in_full_then_once_a_second_with_the_count_left_out() {
        let log = DenialLog {
            state: parking_lot::Mutex::new((0, 0, None)),
        };
        for _ in 0..DENIALS_IN_FULL {
            assert_eq!(log.admit(), Some(0));
        }
        for _ in 0..1000 {
            assert_eq!(log.admit(), None);
        }
        // A second later (set back, not waited for), the next line carries the count.
        log.state.lock().2 = Some(std::time::Instant::now() - std::time::Duration::from_secs(2));
        assert_eq!(log.admit(), Some(1000));
        assert_eq!(log.admit(), None);
    }
}
