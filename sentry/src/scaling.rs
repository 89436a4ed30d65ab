//! How many of a sentry's workers serve at once: one while trapped calls come one at a time, more
//! while they overlap.
//!
//! One guest thread is served fastest by one worker that the kernel wakes on the guest's CPU
//! (seccomp's synchronous wake-up) and that completes the call on its own CPU, so guest and
//! worker take turns on one CPU without an inter-processor wake-up. A second worker waiting in
//! receive would take every other call (the kernel wakes the longest waiter) and the guest would
//! follow it from CPU to CPU. So the other workers stay parked until a worker, having answered a
//! call, finds another one already waiting. Then each serving worker is pinned to a CPU of its
//! own: unpinned, the same wake-ups gather every guest thread and every worker on one CPU (a
//! worker woken by a guest on CPU 0 moves there, and so does the guest it answers next).
//!
//! The last joined worker parks again when most of its calls come from a thread another worker
//! has just served: then the callers take turns rather than overlap (one guest thread, or
//! threads handing work to each other), and two workers only move them between CPUs. With one
//! worker serving, it is unpinned.
//!
//! None of this touches a decision on a call: it only chooses which thread waits in receive.

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use nix::sched::CpuSet;
use nix::unistd::Pid;

/// Calls the last joined worker receives between two looks at whom it served. Short: a shell
/// script's parent and child overlap for a call or two and then take turns, and for as long as
/// two workers serve, pinned, each new process is pulled from CPU to CPU (1,024 kept a second
/// worker for a whole `python3 -c pass`, 125 task migrations against native's 35).
const WINDOW: u32 = 16;
/// While one worker serves, it looks for a waiting call on every this-many'th change of caller.
const PROBE_EVERY: u32 = 4;

/// Shared by the workers of one sentry.
#[derive(Debug)]
pub(crate) struct Scaling {
    /// Workers that may serve (at most the CPUs allowed).
    max: usize,
    /// Workers serving now: those with an index below it; the others are parked.
    active: AtomicUsize,
    /// Each worker's last caller (kept only while more than one serves).
    callers: Vec<Caller>,
    /// Where in `cpus` worker 0 is pinned; worker i takes the i-th allowed CPU after it.
    base: AtomicUsize,
    /// The CPUs this process may run on.
    cpus: Vec<usize>,
    /// The affinity to go back to with one worker serving.
    original: Option<CpuSet>,
    park: parking_lot::Mutex<()>,
    unpark: parking_lot::Condvar,
    /// The next worker's index.
    next: AtomicUsize,
}

/// A worker's last caller, on a cache line of its own (written by that worker only).
#[derive(Debug, Default)]
#[repr(align(64))]
struct Caller(AtomicI32);

/// One worker's part.
#[derive(Debug, Default)]
pub(crate) struct Lane {
    index: usize,
    pinned: bool,
    last_tid: i32,
    switches: u32,
    received: u32,
    shared: u32,
}

impl Scaling {
    /// Up to `workers` workers (never more than the CPUs this process may run on).
    pub(crate) fn new(workers: usize) -> Self {
        let original = nix::sched::sched_getaffinity(Pid::from_raw(0)).ok();
        let cpus: Vec<usize> = match &original {
            Some(set) => (0..CpuSet::count())
                .filter(|&c| set.is_set(c).unwrap_or(false))
                .collect(),
            None => Vec::new(),
        };
        let max = if cpus.len() < 2 {
            1
        } else {
            workers.clamp(1, cpus.len())
        };
        Scaling {
            max,
            active: AtomicUsize::new(1),
            callers: (0..max).map(|_| Caller::default()).collect(),
            base: AtomicUsize::new(0),
            cpus,
            original,
            park: parking_lot::Mutex::new(()),
            unpark: parking_lot::Condvar::new(),
            next: AtomicUsize::new(0),
        }
    }

    /// A lane for the next worker made.
    pub(crate) fn lane(&self) -> Lane {
        Lane {
            index: self.next.fetch_add(1, Ordering::Relaxed),
            ..Lane::default()
        }
    }

    /// Workers that may serve.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// Workers serving now.
    pub(crate) fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Before receiving: parks a worker not needed, and pins or unpins one that is.
    pub(crate) fn before_receive(&self, lane: &mut Lane) {
        if lane.index >= self.active() {
            self.set_pinned(lane, false);
            let mut guard = self.park.lock();
            while lane.index >= self.active() {
                self.unpark.wait(&mut guard);
            }
            lane.received = 0;
            lane.shared = 0;
        }
        let pin = self.active() > 1;
        if pin != lane.pinned {
            self.set_pinned(lane, pin);
        }
    }

    /// A call from `tid` was received: notes it, and, for the last joined worker, whether
    /// another worker's last call came from the same thread.
    pub(crate) fn received(&self, lane: &mut Lane, tid: i32) {
        let active = self.active();
        if active < 2 {
            return;
        }
        if let Some(mine) = self.callers.get(lane.index) {
            // Written only when it changes: callers that stay with their worker share nothing.
            if mine.0.load(Ordering::Relaxed) != tid {
                mine.0.store(tid, Ordering::Relaxed);
            }
        }
        if lane.index > 0 && lane.index + 1 == active {
            lane.received += 1;
            let shared = self.callers[..active.min(self.callers.len())]
                .iter()
                .enumerate()
                .any(|(i, c)| i != lane.index && c.0.load(Ordering::Relaxed) == tid);
            if shared {
                lane.shared += 1;
            }
        }
    }

    /// After a call from `tid` was answered: grows if a call already waits, or shrinks if this
    /// worker (the last joined) mostly serves threads another worker serves too.
    pub(crate) fn answered(&self, lane: &mut Lane, tid: i32, pending: impl FnOnce() -> bool) {
        let active = self.active();
        if active < self.max && tid != lane.last_tid {
            lane.switches = lane.switches.wrapping_add(1);
            if lane.switches.is_multiple_of(PROBE_EVERY) && pending() {
                self.grow(active);
            }
        }
        lane.last_tid = tid;
        if lane.index > 0 && lane.index + 1 == active && lane.received >= WINDOW {
            let turns = lane.shared * 2 > lane.received;
            lane.received = 0;
            lane.shared = 0;
            if turns {
                let _ = self.active.compare_exchange(
                    active,
                    active - 1,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            }
        }
    }

    fn grow(&self, active: usize) {
        if active == 1 {
            // Worker 0 stays on the CPU it is on (its guest thread is there too).
            // SAFETY: sched_getcpu takes no argument and only reads the calling thread's CPU.
            let cpu = unsafe { libc::sched_getcpu() };
            let at = usize::try_from(cpu)
                .ok()
                .and_then(|c| self.cpus.iter().position(|&x| x == c))
                .unwrap_or(0);
            self.base.store(at, Ordering::Relaxed);
        }
        if self
            .active
            .compare_exchange(active, active + 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            let _guard = self.park.lock();
            self.unpark.notify_all();
        }
    }

    fn set_pinned(&self, lane: &mut Lane, pin: bool) {
        if pin == lane.pinned {
            return;
        }
        let set = if pin {
            let Some(&cpu) = self
                .cpus
                .get((self.base.load(Ordering::Relaxed) + lane.index) % self.cpus.len().max(1))
            else {
                return;
            };
            let mut set = CpuSet::new();
            if set.set(cpu).is_err() {
                return;
            }
            set
        } else {
            match self.original {
                Some(set) => set,
                None => return,
            }
        };
        // Pid 0: the calling thread. Failing (a CPU taken offline) only costs speed.
        if nix::sched::sched_setaffinity(Pid::from_raw(0), &set).is_ok() || !pin {
            lane.pinned = pin;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_caller_keeps_one_worker() {
        let s = Scaling::new(4);
        let mut lane = s.lane();
        for _ in 0..10_000 {
            s.before_receive(&mut lane);
            s.received(&mut lane, 7);
            s.answered(&mut lane, 7, || panic!("probed with one caller"));
        }
        assert_eq!(s.active(), 1);
    }

    #[test]
    fn a_waiting_call_adds_a_worker_and_a_lone_one_parks_again() {
        let s = Scaling::new(2);
        if s.max < 2 {
            return; // One CPU: never more than one worker.
        }
        let mut first = s.lane();
        let mut second = s.lane();
        for tid in [1, 2, 1, 2, 1, 2, 1, 2] {
            s.answered(&mut first, tid, || true);
        }
        assert_eq!(s.active(), 2);
        // Both serve thread 3 in turn for a window: back to one.
        for _ in 0..WINDOW {
            s.received(&mut first, 3);
            s.answered(&mut first, 3, || false);
            s.received(&mut second, 3);
            s.answered(&mut second, 3, || false);
        }
        assert_eq!(s.active(), 1);
        s.before_receive(&mut first);
        assert!(!first.pinned);
    }

    #[test]
    fn threads_that_stay_with_their_worker_keep_the_second_worker() {
        let s = Scaling::new(2);
        if s.max < 2 {
            return;
        }
        let mut first = s.lane();
        let mut second = s.lane();
        s.grow(1);
        for _ in 0..WINDOW {
            s.received(&mut first, 3);
            s.answered(&mut first, 3, || false);
            s.received(&mut second, 4);
            s.answered(&mut second, 4, || false);
        }
        assert_eq!(s.active(), 2);
    }
}
