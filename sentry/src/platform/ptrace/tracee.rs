//! A traced guest thread, typed by state (as in safeptrace): only a [`Stopped`] tracee's registers
//! can be read or written, and resuming it consumes it, so register access on a running thread
//! does not compile. A `Stopped` comes only out of a wait that reported a ptrace-stop.
//!
//! Every request must come from the tracer thread: ptrace ties a tracee to the thread that seized
//! it.

use nix::errno::Errno;
use nix::unistd::Pid;

/// `PTRACE_EVENT_STOP`: group-stop, a new auto-attached tracee, or the end of a listen.
const EVENT_STOP: i32 = 128;
/// Syscall-stops report SIGTRAP | 0x80 (PTRACE_O_TRACESYSGOOD).
const SYSCALL_TRAP: i32 = libc::SIGTRAP | 0x80;

/// Options every tracee carries: only seccomp-trapped calls stop; new threads and processes are
/// traced from their first instruction; exec and exit are seen; the guest dies with the tracer.
pub const OPTIONS: libc::c_int = libc::PTRACE_O_TRACESYSGOOD
    | libc::PTRACE_O_TRACESECCOMP
    | libc::PTRACE_O_TRACECLONE
    | libc::PTRACE_O_TRACEFORK
    | libc::PTRACE_O_TRACEVFORK
    | libc::PTRACE_O_TRACEEXEC
    | libc::PTRACE_O_TRACEEXIT
    | libc::PTRACE_O_EXITKILL;

/// Register file of a stopped tracee.
pub type Regs = libc::user_regs_struct;

/// A tracee in a ptrace-stop: its registers may be used.
#[derive(Debug)]
#[must_use = "a stopped tracee stays stopped until resumed"]
pub struct Stopped {
    tid: Pid,
}

/// A tracee that was resumed: it can only be waited for.
#[derive(Debug)]
#[must_use = "a resumed tracee's next stop must be waited for"]
pub struct Running {
    tid: Pid,
}

/// Why a tracee stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// A call the filter answered with SECCOMP_RET_TRACE.
    Seccomp,
    /// Leaving a call it was resumed into with PTRACE_SYSCALL.
    SyscallExit,
    /// A signal is about to be delivered; resuming with it delivers it.
    Signal(i32),
    /// The thread group stopped (SIGSTOP and friends): listen, so SIGCONT can wake it.
    Group(i32),
    /// A new auto-attached tracee, or the end of a listen: resume.
    Attached,
    /// A fork, clone, exec, exit or vfork-done event: resume.
    Event(i32),
}

/// Where a tracee is, against the stop the tracer took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// Still at that seccomp stop.
    Same,
    /// In another stop: the tid belongs to a new image now.
    Elsewhere,
    /// Not stopped: dying.
    Dying,
}

/// What a wait reported.
#[derive(Debug)]
pub enum Event {
    /// A tracee stopped.
    Stopped(Stopped, Stop),
    /// A tracee exited or was killed (its ptrace side is reaped), with its wait status.
    Gone(Pid, i32),
}

impl Event {
    /// The tracee it is about.
    pub fn tid(&self) -> Pid {
        match self {
            Event::Stopped(t, _) => t.tid,
            Event::Gone(tid, _) => *tid,
        }
    }
}

/// The exit-event stop (`PTRACE_O_TRACEEXIT`).
const EXIT: i32 = libc::PTRACE_EVENT_EXIT;

fn request(req: libc::c_uint, tid: Pid, addr: usize, data: usize) -> Result<libc::c_long, Errno> {
    // SAFETY: every caller passes a request whose `addr`/`data` are either integers or pointers
    // to objects of the type the request expects, valid for the call.
    let rc = unsafe {
        libc::ptrace(
            req,
            tid.as_raw(),
            addr as *mut libc::c_void,
            data as *mut libc::c_void,
        )
    };
    if rc < 0 {
        Err(Errno::last())
    } else {
        Ok(rc)
    }
}

/// Seizes `pid` with [`OPTIONS`]; it keeps running.
pub fn seize(pid: Pid) -> Result<(), Errno> {
    seize_with(pid, OPTIONS)
}

/// Seizes `pid` with `options` only; it keeps running.
pub fn seize_with(pid: Pid, options: libc::c_int) -> Result<(), Errno> {
    request(libc::PTRACE_SEIZE, pid, 0, options as usize).map(drop)
}

impl Stopped {
    /// The thread.
    pub fn tid(&self) -> Pid {
        self.tid
    }

    /// Its registers.
    pub fn regs(&self) -> Result<Regs, Errno> {
        // SAFETY: user_regs_struct is plain old data.
        let mut regs: Regs = unsafe { std::mem::zeroed() };
        request(
            libc::PTRACE_GETREGS,
            self.tid,
            0,
            std::ptr::addr_of_mut!(regs) as usize,
        )?;
        Ok(regs)
    }

    /// Replaces its registers.
    pub fn set_regs(&mut self, regs: &Regs) -> Result<(), Errno> {
        request(
            libc::PTRACE_SETREGS,
            self.tid,
            0,
            std::ptr::addr_of!(*regs) as usize,
        )
        .map(drop)
    }

    /// Resumes it, delivering `signal` if non-zero; only trapped calls and events stop it again.
    pub fn resume(self, signal: i32) -> Result<Running, Errno> {
        request(libc::PTRACE_CONT, self.tid, 0, signal as usize)?;
        Ok(Running { tid: self.tid })
    }

    /// Resumes it into the call it stopped at, to stop again when the call returns.
    pub fn resume_to_exit(self) -> Result<Running, Errno> {
        request(libc::PTRACE_SYSCALL, self.tid, 0, 0)?;
        Ok(Running { tid: self.tid })
    }

    /// Runs the call it is stopped at (as its registers now say) and stops it again at the
    /// call's exit. Events on the way (its death) are passed; ESRCH if it died.
    pub fn run_call(self) -> Result<Stopped, Errno> {
        let mut running = self.resume_to_exit()?;
        loop {
            running = match running.wait()? {
                Event::Stopped(t, Stop::SyscallExit) => return Ok(t),
                // An exec from another thread killed this one and gave its tid to the new
                // image: the call is gone. The new image goes on; its trapped calls come to the
                // tracer's loop like any other (never run here unserved).
                Event::Stopped(t, Stop::Event(libc::PTRACE_EVENT_EXEC)) => {
                    drop(t.resume(0)?);
                    return Err(Errno::ESRCH);
                }
                Event::Stopped(t, Stop::Event(_)) => t.resume(0)?,
                // The call itself, trapped again (an argument is the reserved fd): run it.
                Event::Stopped(t, Stop::Seccomp) => t.resume_to_exit()?,
                // No signal is delivered inside a call: if one is, the thread is not where the
                // tracer put it. It gets the signal; the call is abandoned.
                Event::Stopped(t, Stop::Signal(signal)) => {
                    drop(t.resume(signal)?);
                    return Err(Errno::ESRCH);
                }
                Event::Stopped(t, _) => t.resume_to_exit()?,
                Event::Gone(..) => return Err(Errno::ESRCH),
            };
        }
    }

    /// Where it is stopped at a seccomp stop: (call number, instruction pointer, stack pointer);
    /// None in any other stop. An exec from another thread hands this thread's tid to the exec'ing
    /// one, in an exec-event stop: a stop the tracer took earlier for the tid is then gone.
    pub fn seccomp_site(&self) -> Result<Option<(u64, u64, u64)>, Errno> {
        /// `struct ptrace_syscall_info`, as far as the seccomp member's number.
        #[repr(C)]
        #[derive(Default)]
        struct Info {
            op: u8,
            pad: [u8; 3],
            arch: u32,
            ip: u64,
            sp: u64,
            nr: u64,
            rest: [u64; 7],
        }
        /// `PTRACE_SYSCALL_INFO_SECCOMP`.
        const OP_SECCOMP: u8 = 3;
        let mut info = Info::default();
        request(
            libc::PTRACE_GET_SYSCALL_INFO,
            self.tid,
            std::mem::size_of::<Info>(),
            std::ptr::addr_of_mut!(info) as usize,
        )?;
        Ok((info.op == OP_SECCOMP).then_some((info.nr, info.ip, info.sp)))
    }

    /// Whether it is still in a seccomp stop at the instruction and stack of `regs` (taken at
    /// that stop): false once an exec from another thread has handed its tid to a new image.
    pub fn still_at(&self, regs: &Regs) -> bool {
        self.where_now(regs) == Site::Same
    }

    /// Where it is now, against the seccomp stop `regs` were taken at.
    pub fn where_now(&self, regs: &Regs) -> Site {
        match self.seccomp_site() {
            Ok(Some((_, ip, sp))) if (ip, sp) == (regs.rip, regs.rsp) => Site::Same,
            // Stopped, but not there: another image has the tid (an exec from another thread).
            Ok(_) => Site::Elsewhere,
            // Not in a ptrace-stop at all: killed (its exit comes next).
            Err(_) => Site::Dying,
        }
    }

    /// `si_code` of the signal it is stopped to receive (a signal-delivery-stop): positive when
    /// the kernel raised it (a fault), not a process.
    pub fn signal_code(&self) -> Result<i32, Errno> {
        // SAFETY: siginfo_t is plain old data.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        request(
            libc::PTRACE_GETSIGINFO,
            self.tid,
            0,
            std::ptr::addr_of_mut!(info) as usize,
        )?;
        Ok(info.si_code)
    }

    /// Stops tracing it; it resumes without the signal it stopped for.
    pub fn detach(self) -> Result<(), Errno> {
        request(libc::PTRACE_DETACH, self.tid, 0, 0).map(drop)
    }

    /// Leaves it group-stopped, but lets SIGCONT (and later stops) be reported.
    pub fn listen(self) -> Result<Running, Errno> {
        request(libc::PTRACE_LISTEN, self.tid, 0, 0)?;
        Ok(Running { tid: self.tid })
    }
}

thread_local! {
    /// Other tracees' stops and ends seen while waiting for one tracee, for [`wait_any`].
    static ASIDE: std::cell::RefCell<std::collections::VecDeque<Event>> =
        const { std::cell::RefCell::new(std::collections::VecDeque::new()) };
}

impl Running {
    /// Waits for this tracee's next stop (or end).
    ///
    /// Meanwhile the others are not left waiting for the tracer where that could stall this
    /// one: an exec from another thread kills every other thread of the process, and waits for
    /// all of them to be gone before it completes; each stops at its exit event on the way,
    /// and the leader's end is not reported at all before then. So other tracees' exit-event
    /// stops are resumed here (they are dying), and whatever else they report is set aside for
    /// the tracer's loop, in order.
    pub fn wait(self) -> Result<Event, Errno> {
        loop {
            let event = wait(-1, libc::__WNOTHREAD)?;
            let tid = event.tid();
            if tid == self.tid {
                return Ok(event);
            }
            ASIDE.with(|aside| {
                let mut aside = aside.borrow_mut();
                if matches!(
                    event,
                    Event::Gone(..) | Event::Stopped(_, Stop::Event(EXIT))
                ) {
                    // Dying: a stop set aside for it earlier is over (SIGKILL ended it), and
                    // must not be served later as if it still held, least of all once its tid
                    // is reused.
                    aside.retain(|e| !matches!(e, Event::Stopped(..)) || e.tid() != tid);
                }
                match event {
                    // ESRCH: it is gone already; its end is reported next.
                    Event::Stopped(t, Stop::Event(EXIT)) => drop(t.resume(0)),
                    other => aside.push_back(other),
                }
            });
        }
    }
}

/// Waits for the next stop or end of any tracee of this thread (first those set aside while one
/// tracee was waited for). ECHILD: none is left.
pub fn wait_any() -> Result<Event, Errno> {
    if let Some(event) = ASIDE.with(|aside| aside.borrow_mut().pop_front()) {
        return Ok(event);
    }
    // __WNOTHREAD: only this thread's tracees; the sentry's real children (the gofer) are other
    // threads' business.
    wait(-1, libc::__WNOTHREAD)
}

fn wait(pid: libc::pid_t, flags: libc::c_int) -> Result<Event, Errno> {
    let mut status = 0;
    let tid = loop {
        // SAFETY: `status` is a valid out-pointer for the call.
        let tid = unsafe { libc::waitpid(pid, &mut status, libc::__WALL | flags) };
        match Errno::result(tid) {
            Ok(tid) => break Pid::from_raw(tid),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    };
    Ok(decode(tid, status))
}

/// Classifies a wait status (ptrace(2), "Stopped states").
fn decode(tid: Pid, status: i32) -> Event {
    if !libc::WIFSTOPPED(status) {
        return Event::Gone(tid, status);
    }
    let signal = libc::WSTOPSIG(status);
    let event = status >> 16;
    let stop = match (signal, event) {
        (SYSCALL_TRAP, _) => Stop::SyscallExit,
        (libc::SIGTRAP, libc::PTRACE_EVENT_SECCOMP) => Stop::Seccomp,
        (libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU, EVENT_STOP) => {
            Stop::Group(signal)
        }
        (_, EVENT_STOP) => Stop::Attached,
        (libc::SIGTRAP, e) if e != 0 => Stop::Event(e),
        (s, _) => Stop::Signal(s),
    };
    Event::Stopped(Stopped { tid }, stop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stop_of(status: i32) -> Stop {
        match decode(Pid::from_raw(7), status) {
            Event::Stopped(_, s) => s,
            Event::Gone(..) => panic!("gone"),
        }
    }

    /// Builds a stopped wait status the way the kernel does: 0x7f, the signal, the event.
    fn stopped(signal: i32, event: i32) -> i32 {
        0x7f | (signal << 8) | (event << 16)
    }

    #[test]
    fn statuses_decode_as_ptrace_documents_them() {
        assert_eq!(
            stop_of(stopped(libc::SIGTRAP, libc::PTRACE_EVENT_SECCOMP)),
            Stop::Seccomp
        );
        assert_eq!(stop_of(stopped(SYSCALL_TRAP, 0)), Stop::SyscallExit);
        assert_eq!(
            stop_of(stopped(libc::SIGSTOP, EVENT_STOP)),
            Stop::Group(libc::SIGSTOP)
        );
        assert_eq!(stop_of(stopped(libc::SIGTRAP, EVENT_STOP)), Stop::Attached);
        assert_eq!(
            stop_of(stopped(libc::SIGTRAP, libc::PTRACE_EVENT_CLONE)),
            Stop::Event(libc::PTRACE_EVENT_CLONE)
        );
        // A real SIGTRAP, SIGSTOP (before it stops the group) and real-time signals are
        // delivered.
        assert_eq!(
            stop_of(stopped(libc::SIGTRAP, 0)),
            Stop::Signal(libc::SIGTRAP)
        );
        assert_eq!(
            stop_of(stopped(libc::SIGSTOP, 0)),
            Stop::Signal(libc::SIGSTOP)
        );
        assert_eq!(stop_of(stopped(40, 0)), Stop::Signal(40));
        assert!(matches!(decode(Pid::from_raw(7), 0), Event::Gone(..)));
        assert!(matches!(decode(Pid::from_raw(7), 9), Event::Gone(..)));
    }
}
