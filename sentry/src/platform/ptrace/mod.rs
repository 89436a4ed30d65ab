//! The ptrace platform: the sentry's tracer thread seizes the guest init (and, through the
//! options, every thread and process it makes); the filter returns SECCOMP_RET_TRACE for trapped
//! calls, so only those stop. A trapped call is emulated by skipping it (`orig_rax = -1`) with the
//! result in `rax`, or continued as issued. Every other stop (signals, group-stops, events) is
//! settled here, so handlers see the same requests as on seccomp-notify.
//!
//! ptrace ties tracees to the thread that seized them: the platform must be used (received from
//! and replied through) on that thread only, which [`TracerThread`] provides.

mod fault;
mod inject;
pub mod reserved;
pub mod tracee;
pub mod watch;

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use nix::errno::Errno;
use nix::unistd::Pid;
use parking_lot::Mutex;

use super::{memory, Platform, PlatformError, Reply, Trap};
use crate::syscalls::{Action, TABLE};
use reserved::{Policed, RESERVED_FD};
use tracee::{Event, Regs, Stop, Stopped};

/// `AUDIT_ARCH_X86_64`: the filter kills every other ABI before it can trap.
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;

/// The trapped call being served: the stopped thread and its registers at the stop.
#[derive(Debug)]
struct Current {
    id: u64,
    tracee: Stopped,
    regs: Regs,
}

/// Serves the calls its tracees trap.
#[derive(Debug)]
pub struct Ptrace {
    /// The thread that seized the guest (the only one ptrace answers).
    tracer: libc::pid_t,
    /// Our end of the reserved socket, and a copy of the guest's (to drain).
    sender: OwnedFd,
    guest_end: OwnedFd,
    current: Mutex<Option<Current>>,
    next_id: AtomicU64,
    /// The init seized, and where its end is reported.
    init: Pid,
    exit: Arc<watch::ExitSlot>,
}

fn gettid() -> libc::pid_t {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::gettid() }
}

impl Ptrace {
    /// Seizes `init` from the calling thread, which alone may use the platform from now on.
    /// `sender` and `guest_end` are the reserved socket pair; the guest end goes to the init.
    pub fn seize(init: Pid, sender: OwnedFd, guest_end: OwnedFd) -> Result<Self, PlatformError> {
        tracee::seize(init).map_err(PlatformError::of("PTRACE_SEIZE"))?;
        Ok(Ptrace {
            tracer: gettid(),
            sender,
            guest_end,
            current: Mutex::new(None),
            next_id: AtomicU64::new(1),
            init,
            exit: watch::ExitSlot::new(),
        })
    }

    /// Where the init's wait status goes when it ends (this thread sees it first).
    pub fn report_exit_to(mut self, slot: Arc<watch::ExitSlot>) -> Self {
        self.exit = slot;
        self
    }

    fn on_tracer(&self) -> Result<(), PlatformError> {
        if gettid() == self.tracer {
            Ok(())
        } else {
            Err(PlatformError::Sys {
                op: "ptrace from a thread other than the tracer",
                errno: Errno::EPERM,
            })
        }
    }

    /// The call being served, if it is `trap` and its thread is still stopped at it. An exec
    /// from another thread of its process kills it and hands its tid to the exec'ing thread,
    /// stopped at the exec event: writing the old call's registers there would run the new
    /// image from the old one's address.
    fn take(&self, trap: &Trap) -> Result<Current, PlatformError> {
        self.on_tracer()?;
        let mut slot = self.current.lock();
        match slot.take() {
            // Not at the call any more: its next stop is waited for as any other.
            Some(c) if c.id == trap.id => {
                if c.tracee.still_at(&c.regs) {
                    Ok(c)
                } else {
                    Err(PlatformError::Gone)
                }
            }
            other => {
                *slot = other;
                Err(PlatformError::Gone)
            }
        }
    }

    /// A seccomp stop: settles the platform's own cases and returns the rest for the handlers.
    fn seccomp_stop(&self, tracee: Stopped, trap: &mut Trap) -> Result<bool, Errno> {
        let regs = tracee.regs()?;
        let nr = regs.orig_rax as i64;
        let args = reserved::args(&regs);
        let tid = tracee.tid().as_raw();
        match reserved::police(nr, &args, |fd| lists_fds(tid, fd)) {
            Policed::Pass => {}
            Policed::Ebadf => return finish(tracee, &regs, -i64::from(libc::EBADF)).map(|_| false),
            Policed::SkipClose => return skip_close(tracee, &regs).map(|()| false),
            Policed::SplitClose { then_from } => {
                return split_close(tracee, &regs, then_from).map(|()| false)
            }
            Policed::FilterListing => return filter_listing(tracee, &regs).map(|()| false),
            Policed::Eperm => {
                tracing::warn!(target: "rvisor::denied", "denied ptrace (nr {nr}) from tid {tid}: the guest traces nothing on the ptrace platform");
                return finish(tracee, &regs, -i64::from(libc::EPERM)).map(|_| false);
            }
            Policed::Enosys => {
                tracing::debug!(
                    "io_setup (nr {nr}) from tid {tid}: no Linux AIO on the ptrace platform"
                );
                return finish(tracee, &regs, -i64::from(libc::ENOSYS)).map(|_| false);
            }
            Policed::StripUntraced => return strip_untraced(tracee, &regs).map(|()| false),
        }
        // Trapped only because an argument equals the reserved fd (or by the platform's own
        // rules): the table runs it natively.
        if matches!(TABLE.get(nr).action, Action::Native) {
            return tracee.resume(0).map(|_| false);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        *trap = Trap {
            id,
            tid,
            nr,
            args,
            arch: AUDIT_ARCH_X86_64,
            ip: regs.rip,
        };
        *self.current.lock() = Some(Current { id, tracee, regs });
        Ok(true)
    }
}

/// Skips the call and completes it with `value` (a result or a negated errno).
fn finish(mut tracee: Stopped, regs: &Regs, value: i64) -> Result<tracee::Running, Errno> {
    let mut done = *regs;
    done.orig_rax = u64::MAX;
    done.rax = value as u64;
    tracee.set_regs(&done)?;
    tracee.resume(0)
}

/// `clone` without CLONE_UNTRACED: resumed, the kernel rechecks the filter on the new flags and
/// runs it; the child is auto-attached like any other.
fn strip_untraced(mut tracee: Stopped, regs: &Regs) -> Result<(), Errno> {
    let mut call = *regs;
    call.rdi &= !(libc::CLONE_UNTRACED as u64);
    tracee.set_regs(&call)?;
    tracee.resume(0).map(drop)
}

/// `close_range(RESERVED_FD, last, flags)`: closes from the next fd on, or nothing.
fn skip_close(mut tracee: Stopped, regs: &Regs) -> Result<(), Errno> {
    if regs.rsi as u32 == RESERVED_FD as u32 {
        return finish(tracee, regs, 0).map(drop);
    }
    let mut call = *regs;
    call.rdi = RESERVED_FD as u64 + 1;
    tracee.set_regs(&call)?;
    tracee.resume(0).map(drop)
}

/// `close_range(first, last, flags)` over the reserved fd: closes up to it, then re-issues the
/// call from just after it (the re-issued call traps again and passes).
fn split_close(mut tracee: Stopped, regs: &Regs, then_from: Option<u32>) -> Result<(), Errno> {
    let mut call = *regs;
    call.rsi = RESERVED_FD as u64 - 1;
    tracee.set_regs(&call)?;
    let mut tracee = tracee.run_call()?;
    let mut out = tracee.regs()?;
    if let (Some(from), 0) = (then_from, out.rax) {
        reissue(&mut out, regs);
        out.rdi = u64::from(from);
    }
    tracee.set_regs(&out)?;
    tracee.resume(0).map(drop)
}

/// Rewinds a thread stopped at a call's exit so that it issues the call `regs` made again.
fn reissue(out: &mut Regs, regs: &Regs) {
    *out = *regs;
    // `syscall` is two bytes long; the number goes back where the instruction reads it.
    out.rip -= 2;
    out.rax = regs.orig_rax;
}

/// getdents on a `/proc/<pid>/fd` directory: runs it and cuts the reserved fd's entry out of
/// what it returned. A buffer that held only that entry is read again rather than returned empty
/// (which would mean the end of the directory).
fn filter_listing(tracee: Stopped, regs: &Regs) -> Result<(), Errno> {
    let mut tracee = tracee.run_call()?;
    let mut out = tracee.regs()?;
    let n = out.rax as i64;
    if n > 0 {
        let tid = tracee.tid().as_raw();
        let mut buf = vec![0u8; n as usize];
        if memory::read(tid, regs.rsi, &mut buf) == Ok(buf.len()) {
            let wide = regs.orig_rax as i64 == libc::SYS_getdents64;
            let len = buf.len();
            let kept = reserved::strip_entry(&mut buf, len, wide);
            if kept == 0 {
                reissue(&mut out, regs);
            } else if kept < buf.len() && memory::write(tid, regs.rsi, &buf[..kept]) == Ok(kept) {
                out.rax = kept as u64;
            }
        }
        tracee.set_regs(&out)?;
    }
    tracee.resume(0).map(drop)
}

/// Whether guest fd `fd` of thread `tid` is a directory listing fds.
fn lists_fds(tid: i32, fd: i32) -> bool {
    let mut name = [0u8; 64];
    let mut cursor = std::io::Cursor::new(&mut name[..]);
    if write!(cursor, "{}{tid}/fd/{fd}\0", crate::procfs::prefix()).is_err() {
        return false;
    }
    let mut link = [0u8; 128];
    // SAFETY: `name` is NUL-terminated (written above); readlink writes at most link.len() bytes.
    let n = unsafe { libc::readlink(name.as_ptr().cast(), link.as_mut_ptr().cast(), link.len()) };
    n > 0 && reserved::lists_fds(&link[..n as usize])
}

impl Platform for Ptrace {
    fn name(&self) -> &'static str {
        "ptrace"
    }

    fn receive(&self, trap: &mut Trap) -> Result<(), PlatformError> {
        self.on_tracer()?;
        loop {
            let (tracee, stop) = match tracee::wait_any() {
                Ok(Event::Stopped(t, s)) => (t, s),
                // Its ptrace side is reaped; its parent reaps the rest.
                Ok(Event::Gone(tid, status)) => {
                    if tid == self.init {
                        self.exit.set(status);
                    }
                    continue;
                }
                Err(Errno::ECHILD) => return Err(PlatformError::Detached),
                Err(errno) => {
                    return Err(PlatformError::Sys {
                        op: "waitpid",
                        errno,
                    })
                }
            };
            // ESRCH below: killed while stopped; its end is reported next.
            let _ = match stop {
                Stop::Seccomp => match self.seccomp_stop(tracee, trap) {
                    Ok(true) => return Ok(()),
                    _ => continue,
                },
                Stop::Signal(signal) if fault::fatal_in_init(&tracee, signal, self.init) => {
                    // See fault.rs: it dies of the fault untraced, with this status.
                    self.exit.set(signal);
                    let _ = tracee.detach();
                    continue;
                }
                Stop::Signal(signal) => tracee.resume(signal),
                Stop::Group(_) => tracee.listen(),
                Stop::Attached | Stop::Event(_) | Stop::SyscallExit => tracee.resume(0),
            };
        }
    }

    fn read_memory(&self, trap: &Trap, addr: u64, buf: &mut [u8]) -> Result<usize, PlatformError> {
        memory::read(trap.tid, addr, buf).map_err(PlatformError::of("process_vm_readv/writev"))
    }

    fn write_memory(&self, trap: &Trap, addr: u64, data: &[u8]) -> Result<usize, PlatformError> {
        memory::write(trap.tid, addr, data).map_err(PlatformError::of("process_vm_readv/writev"))
    }

    /// A tracee in a ptrace-stop cannot leave it but to die, and its tid is not released before
    /// the tracer (this thread) reaps it: the call is pending while it is the one being served.
    fn still_pending(&self, trap: &Trap) -> bool {
        self.current
            .lock()
            .as_ref()
            .is_some_and(|c| c.id == trap.id)
    }

    fn reply(&self, trap: &Trap, reply: Reply) -> Result<(), PlatformError> {
        let Current { tracee, regs, .. } = self.take(trap)?;
        let resumed = match reply {
            Reply::Value(v) => finish(tracee, &regs, v),
            Reply::Errno(e) => finish(tracee, &regs, -(e as i64)),
            Reply::Continue => tracee.resume(0),
            // Fds go through reply_with_fd; reaching here means the fd went missing.
            Reply::Fd { .. } => finish(tracee, &regs, -i64::from(libc::EIO)),
        };
        resumed
            .map(drop)
            .map_err(PlatformError::of("resuming the tracee"))
    }

    fn reply_with_fd(&self, trap: &Trap, fd: OwnedFd, cloexec: bool) -> Result<i32, PlatformError> {
        let Current { id, tracee, regs } = self.take(trap)?;
        inject::install(self.sender.as_fd(), tracee, &regs, fd, cloexec).map_err(|(stopped, e)| {
            reserved::drain(self.guest_end.as_fd());
            // Still stopped at the call: the caller answers it with the error.
            if let Some(tracee) = stopped {
                *self.current.lock() = Some(Current { id, tracee, regs });
            }
            e
        })
    }
}

/// A job for the tracer thread.
type Job = Box<dyn FnOnce() + Send>;

/// The thread that seized the guest: it runs what it is given (the worker serving the
/// platform), since no other thread may use the tracees.
#[derive(Debug)]
pub struct TracerThread {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl TracerThread {
    /// Starts the thread and seizes `init` from it, with a new reserved socket pair; returns the
    /// platform (to be used only by jobs run on the thread) and the guest's end for the init.
    /// `exit` receives the init's wait status.
    pub fn spawn(
        init: Pid,
        exit: Arc<watch::ExitSlot>,
    ) -> Result<(Self, Ptrace, OwnedFd), PlatformError> {
        let (sender, guest_end) = reserved::pair().map_err(PlatformError::of("socketpair"))?;
        let for_init = guest_end.try_clone().map_err(|e| PlatformError::Sys {
            op: "dup",
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
        let (jobs, job_rx) = std::sync::mpsc::channel::<Job>();
        let (seized_tx, seized) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("rvisor-tracer".into())
            .spawn(move || {
                let seized = Ptrace::seize(init, sender, guest_end).map(|p| p.report_exit_to(exit));
                let _ = seized_tx.send(seized);
                // Tracees die with this thread (PTRACE_O_EXITKILL): it lives as long as jobs can
                // come.
                while let Ok(job) = job_rx.recv() {
                    job();
                }
            })
            .map_err(|_| PlatformError::Sys {
                op: "spawning the tracer thread",
                errno: Errno::EAGAIN,
            })?;
        let platform = seized.recv().map_err(|_| PlatformError::Detached)??;
        Ok((TracerThread { jobs }, platform, for_init))
    }

    /// Runs `job` on the tracer thread.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) {
        let _ = self.jobs.send(Box::new(job));
    }
}
