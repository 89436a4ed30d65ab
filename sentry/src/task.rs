//! What the sentry knows about each guest thread: its ids as the guest sees them, and its
//! credentials. The kernel holds those (set*id, setgroups and capset run natively, per thread,
//! with Linux's rules); the sentry reads them from the thread's status file on first sight and
//! after each call that may change them, and acts as them towards the gofer.
//!
//! A known thread costs one `poll` of two pidfds per lookup: its own thread pidfd (readable once
//! that thread has exited, so a reused tid is caught) and its parent's (a parent only changes
//! when it exits). Nothing on that path allocates. Reading `/proc/<tid>/stat` instead costs 3.4 µs
//! per call on the reference machine against 0.45 µs for the poll.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;

use nix::errno::Errno;
use nix::sys::uio::pread;
use parking_lot::Mutex;

use crate::syscalls::Ids;

/// Entries kept before dead ones are first swept; the threshold doubles while most are alive.
const FIRST_SWEEP_AT: usize = 512;

/// Capability numbers the handlers check (linux/capability.h).
pub mod cap {
    /// Override file ownership checks on chown.
    pub const CHOWN: u32 = 0;
    /// Bypass file read, write and execute permission checks.
    pub const DAC_OVERRIDE: u32 = 1;
    /// Bypass file read and directory search checks.
    pub const DAC_READ_SEARCH: u32 = 2;
    /// Bypass checks that the caller owns the file.
    pub const FOWNER: u32 = 3;
    /// Keep set-id bits when a file is modified.
    pub const FSETID: u32 = 4;
    /// Signal any process.
    pub const KILL: u32 = 5;
    /// Set socket buffers beyond the limits, among other network administration.
    pub const NET_ADMIN: u32 = 12;
    /// Mount, sethostname, `trusted.*` xattrs, among much else.
    pub const SYS_ADMIN: u32 = 21;
    /// Raise hard resource limits.
    pub const SYS_RESOURCE: u32 = 24;
    /// Lower nice values.
    pub const SYS_NICE: u32 = 23;
}

/// A guest thread's ids in the sandbox's pid namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskIds {
    /// Thread id.
    pub ns_tid: i32,
    /// Process id.
    pub ns_tgid: i32,
    /// Parent process id (0 for the sandbox's init, whose parent is outside).
    pub ns_ppid: i32,
    /// Process id on the host, keying per-process state.
    pub host_tgid: i32,
}

/// A guest thread's credentials, as its kernel holds them: the guest changes them natively
/// (set*id, setgroups and capset continue to the kernel), the sentry reads them from
/// `/proc/<tid>/status` on first sight and again after each such call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creds {
    /// User ids, as the guest's user namespace shows them.
    pub uid: Ids,
    /// Group ids, likewise.
    pub gid: Ids,
    groups: Arc<[u32]>,
    /// Effective capabilities (in the guest's user namespace).
    pub caps: u64,
    /// Permitted capabilities (what access(2) checks a real root with).
    pub permitted: u64,
    /// Filesystem uid, gid and groups as the host shows them (what a worker takes on).
    pub host: HostFs,
    /// Which distinct file identity this is (see [`TaskTable::creds`]): lookups cached for one
    /// identity are never served to another.
    pub stamp: u64,
}

/// The ids a thread's file accesses are checked against, in the sentry's own view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFs {
    /// Filesystem uid.
    pub uid: u32,
    /// Filesystem gid.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Arc<[u32]>,
}

pub use rvisor_protocol::thread_creds::FILE_CAPS;

impl Creds {
    /// uid and gid everywhere, no supplementary groups, every capability if uid is 0 (handler
    /// tests stand for a guest of this identity with it; guests' own are read from the kernel).
    #[cfg(test)]
    pub(crate) fn new(uid: u32, gid: u32) -> Self {
        Creds {
            uid: Ids::all(uid),
            gid: Ids::all(gid),
            groups: Arc::from(Vec::new()),
            caps: if uid == 0 { u64::MAX } else { 0 },
            permitted: if uid == 0 { u64::MAX } else { 0 },
            host: HostFs {
                uid,
                gid,
                groups: Arc::from(Vec::new()),
            },
            stamp: 0,
        }
    }

    /// Whether the task holds capability `cap` (a `CAP_*` number) in its effective set, in the
    /// sandbox's user namespace.
    pub fn has_cap(&self, cap: u32) -> bool {
        cap < 64 && self.caps & (1 << cap) != 0
    }

    /// Supplementary groups, as the guest sees them.
    pub fn groups(&self) -> &[u32] {
        &self.groups
    }
}

/// The credential lines of a `/proc/<tid>/status`, ids as the reader's namespace shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCreds {
    /// Real, effective, saved and filesystem uid.
    pub uid: [u32; 4],
    /// Likewise for gids.
    pub gid: [u32; 4],
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Effective capabilities.
    pub cap_eff: u64,
    /// Permitted capabilities.
    pub cap_prm: u64,
}

/// Parses the Uid, Gid, Groups and CapEff lines; None if any is missing or malformed.
pub fn parse_status_creds(status: &str) -> Option<StatusCreds> {
    let four = |key: &str| -> Option<[u32; 4]> {
        let line = status.lines().find_map(|l| l.strip_prefix(key))?;
        let v: Vec<u32> = line
            .split_whitespace()
            .map(|v| v.parse().ok())
            .collect::<Option<_>>()?;
        v.try_into().ok()
    };
    let groups = status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))?
        .split_whitespace()
        .map(|v| v.parse().ok())
        .collect::<Option<Vec<u32>>>()?;
    let caps = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
    };
    Some(StatusCreds {
        uid: four("Uid:")?,
        gid: four("Gid:")?,
        groups,
        cap_eff: caps("CapEff:")?,
        cap_prm: caps("CapPrm:")?,
    })
}

/// How the sentry's view of ids becomes the guest's.
pub trait IdView: Send + Sync + std::fmt::Debug {
    /// A uid as the guest sees it.
    fn uid(&self, host: u32) -> u32;
    /// A gid as the guest sees it.
    fn gid(&self, host: u32) -> u32;
}

/// Ids unchanged (the sentry and the guest see the same numbers).
#[derive(Debug)]
pub struct SameIds;

impl IdView for SameIds {
    fn uid(&self, host: u32) -> u32 {
        host
    }
    fn gid(&self, host: u32) -> u32 {
        host
    }
}

/// Distinct file identities seen, numbered; the numbering starts over (in a new generation)
/// once it holds [`MAX_IDENTITIES`], so a guest cycling through group lists cannot grow it.
#[derive(Debug, Default)]
struct Identities {
    known: Vec<(HostFs, u64)>,
    generation: u64,
}

/// Identities numbered before the numbering starts over.
const MAX_IDENTITIES: usize = 256;

impl Identities {
    fn stamp(&mut self, host: &HostFs, caps: u64) -> u64 {
        let caps = caps & FILE_CAPS;
        if let Some(i) = self.known.iter().position(|(h, c)| h == host && *c == caps) {
            return (self.generation << 32) | i as u64;
        }
        if self.known.len() >= MAX_IDENTITIES {
            self.known.clear();
            self.generation += 1;
        }
        self.known.push((host.clone(), caps));
        (self.generation << 32) | (self.known.len() - 1) as u64
    }
}

#[derive(Debug)]
struct TaskEntry {
    /// Thread pidfd of the task.
    me: OwnedFd,
    /// Process pidfd of its parent.
    parent: OwnedFd,
    ns_tid: i32,
    ns_tgid: i32,
    host_tgid: i32,
    depth: usize,
    ns_ppid: i32,
    /// None until read, and again after a call that may change them.
    creds: Option<Creds>,
}

/// `PIDFD_THREAD` (Linux 6.9): a pidfd for one thread rather than its thread group.
const PIDFD_THREAD: libc::c_uint = libc::O_EXCL as libc::c_uint;

fn pidfd_open(pid: i32, flags: libc::c_uint) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes integers and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, flags) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as i32) })
}

/// Which of `fds` have exited (pidfds poll readable on exit).
fn exited<const N: usize>(fds: [&OwnedFd; N]) -> [bool; N] {
    let mut polls = fds.map(|fd| libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    });
    // SAFETY: `polls` is an array of N pollfds we own; timeout 0 never blocks.
    let n = unsafe { libc::poll(polls.as_mut_ptr(), N as libc::nfds_t, 0) };
    if n <= 0 {
        return [false; N];
    }
    polls.map(|p| p.revents != 0)
}

/// `struct pidfd_info` as first published (Linux 6.13), 64 bytes; later kernels accept it.
#[repr(C)]
#[derive(Default)]
struct PidfdInfo {
    mask: u64,
    cgroupid: u64,
    pid: u32,
    tgid: u32,
    ppid: u32,
    ids: [u32; 8],
    exit_code: i32,
}

/// `PIDFD_GET_INFO`: `_IOWR(0xFF, 11, struct pidfd_info)`.
const PIDFD_GET_INFO: libc::c_ulong = 0xC000_0000 | (64 << 16) | (0xFF << 8) | 11;

/// The current parent (in the sentry's pid namespace) of the thread `me` is a pidfd for, as
/// `PIDFD_GET_INFO` tells it: one ioctl where `/proc/<tid>/stat` costs an open and a read. None
/// where the kernel lacks it, or where its numbering is not the one `tid` (the sentry's) is in.
fn parent_of(me: &OwnedFd, tid: i32) -> Option<i32> {
    let mut info = PidfdInfo::default();
    // SAFETY: PIDFD_GET_INFO writes at most the 64 bytes its number encodes, which `info` has.
    let r = unsafe { libc::ioctl(me.as_raw_fd(), PIDFD_GET_INFO, std::ptr::addr_of_mut!(info)) };
    (r == 0 && info.pid == tid as u32 && info.ppid != 0).then_some(info.ppid as i32)
}

#[derive(Debug)]
struct Inner {
    tasks: HashMap<i32, TaskEntry>,
    identities: Identities,
    /// Processes with execs in flight, by host tgid (see [`TaskTable::exec_begins`]): every
    /// thread's own, as several threads of a process may exec at once.
    execs: HashMap<i32, Vec<PendingExec>>,
    sweep_at: usize,
}

/// An exec a thread has started: until it is seen to end, no thread of its process keeps
/// credentials read meanwhile (the exec hands the leader's tid to the exec'ing thread, whose
/// credentials may differ, and the tid's entry would outlive the change).
#[derive(Debug)]
struct PendingExec {
    /// The exec'ing thread.
    tid: i32,
    /// Its thread pidfd: readable once its tid is gone, which a successful exec from a
    /// non-leader thread does (the thread carries on under the leader's tid).
    thread: OwnedFd,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            tasks: HashMap::new(),
            identities: Identities::default(),
            execs: HashMap::new(),
            sweep_at: FIRST_SWEEP_AT,
        }
    }
}

/// Every guest thread the sentry has served.
#[derive(Debug)]
pub struct TaskTable {
    inner: Mutex<Inner>,
    view: parking_lot::RwLock<Arc<dyn IdView>>,
    init_pid: std::sync::atomic::AtomicI32,
}

fn open_stat(pid: i32) -> Result<OwnedFd, Errno> {
    std::fs::File::open(format!("{}{pid}/stat", crate::procfs::prefix()))
        .map(OwnedFd::from)
        .map_err(|e| match e.raw_os_error().map(Errno::from_raw) {
            Some(Errno::ENOENT) | None => Errno::ESRCH,
            Some(errno) => errno,
        })
}

/// Parent pid from a `/proc/<pid>/stat` read through `fd`; ESRCH if the task is gone.
fn read_ppid(fd: &OwnedFd) -> Result<i32, Errno> {
    let mut buf = [0u8; 512];
    let n = pread(fd.as_fd(), &mut buf, 0)?;
    parse_stat_ppid(&buf[..n]).ok_or(Errno::EIO)
}

fn parse_i32(field: &[u8]) -> Option<i32> {
    std::str::from_utf8(field).ok()?.trim().parse().ok()
}

/// The fourth field of `/proc/<pid>/stat`, after the parenthesised command name (which may itself
/// hold spaces and parentheses).
pub fn parse_stat_ppid(stat: &[u8]) -> Option<i32> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let mut fields = stat[close + 1..]
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty());
    fields.next()?;
    parse_i32(fields.next()?)
}

/// The ids on a `/proc/<pid>/status` line such as `NSpid:\t812\t3`, outermost first.
pub fn parse_status_ids(status: &str, key: &str) -> Vec<i32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn read_status(pid: i32) -> Result<String, Errno> {
    std::fs::read_to_string(format!("{}{pid}/status", crate::procfs::prefix()))
        .map_err(|_| Errno::ESRCH)
}

/// `pid`'s id in a pid namespace `depth` levels deep, or 0 if it lives outside that namespace.
fn ns_pid_of(pid: i32, depth: usize) -> i32 {
    if pid == 0 {
        return 0;
    }
    let ids = read_status(pid)
        .map(|s| parse_status_ids(&s, "NSpid:"))
        .unwrap_or_default();
    if ids.len() < depth {
        0
    } else {
        ids[depth - 1]
    }
}

/// The current parent of `tid` (whose thread pidfd is `me`) and a pidfd for it, opened
/// race-free: if the parent died between reading its pid and opening it, the child's parent pid
/// has changed and we try again. `guess` is a parent pid read a moment ago (the status file's
/// `PPid:`), checked like any other; without one, `PIDFD_GET_INFO` gives it.
fn open_parent(tid: i32, me: &OwnedFd, guess: Option<i32>) -> Result<(i32, OwnedFd), Errno> {
    if let Some(ppid) = guess.or_else(|| parent_of(me, tid)).filter(|&p| p > 0) {
        let fd = pidfd_open(ppid, 0);
        if let Some(now) = parent_of(me, tid) {
            if now == ppid {
                return Ok((ppid, fd?));
            }
        }
    }
    let stat = open_stat(tid)?;
    loop {
        let ppid = read_ppid(&stat)?;
        let fd = pidfd_open(ppid, 0);
        if read_ppid(&stat)? == ppid {
            return Ok((ppid, fd?));
        }
    }
}

impl Inner {
    fn ids(&mut self, tid: i32) -> Result<TaskIds, Errno> {
        let Some(e) = self.tasks.get_mut(&tid) else {
            return self.learn(tid).map(|(ids, _)| ids);
        };
        let [me_exited, parent_exited] = exited([&e.me, &e.parent]);
        if me_exited {
            // A new thread reuses the tid of one that has exited.
            self.tasks.remove(&tid);
            return self.learn(tid).map(|(ids, _)| ids);
        }
        if parent_exited {
            // Reparented: the parent exited.
            let (ppid, parent) = open_parent(tid, &e.me, None)?;
            e.parent = parent;
            let depth = e.depth;
            let ns_ppid = self.ns_pid_of(ppid, depth);
            if let Some(e) = self.tasks.get_mut(&tid) {
                e.ns_ppid = ns_ppid;
            }
        }
        let e = self.tasks.get(&tid).ok_or(Errno::ESRCH)?;
        Ok(TaskIds {
            ns_tid: e.ns_tid,
            ns_tgid: e.ns_tgid,
            ns_ppid: e.ns_ppid,
            host_tgid: e.host_tgid,
        })
    }

    /// Slow path: first call from this thread. Returns the status file it read, which also
    /// holds the thread's credentials.
    fn learn(&mut self, tid: i32) -> Result<(TaskIds, String), Errno> {
        if self.tasks.len() >= self.sweep_at {
            // Settle execs that ended before the sweep forgets their threads.
            let tgids: Vec<i32> = self.execs.keys().copied().collect();
            for tgid in tgids {
                self.settle_execs(tgid, None);
            }
            self.tasks.retain(|_, e| !exited([&e.me])[0]);
            if self.tasks.len() * 2 > self.sweep_at {
                self.sweep_at *= 2;
            }
        }
        let me = pidfd_open(tid, PIDFD_THREAD)?;
        let status = read_status(tid)?;
        let nspid = parse_status_ids(&status, "NSpid:");
        let nstgid = parse_status_ids(&status, "NStgid:");
        let host_tgid = parse_status_ids(&status, "Tgid:")
            .first()
            .copied()
            .ok_or(Errno::EIO)?;
        let (Some(&ns_tid), Some(&ns_tgid)) = (nspid.last(), nstgid.last()) else {
            return Err(Errno::EIO);
        };
        let depth = nspid.len();
        let guess = parse_status_ids(&status, "PPid:").first().copied();
        let (ppid, parent) = open_parent(tid, &me, guess)?;
        let ns_ppid = self.ns_pid_of(ppid, depth);
        self.tasks.insert(
            tid,
            TaskEntry {
                me,
                parent,
                ns_tid,
                ns_tgid,
                host_tgid,
                depth,
                ns_ppid,
                creds: None,
            },
        );
        let ids = TaskIds {
            ns_tid,
            ns_tgid,
            ns_ppid,
            host_tgid,
        };
        Ok((ids, status))
    }

    /// `pid`'s id `depth` levels deep: from the table when its leader is a known, live thread
    /// at that depth, otherwise from its status file.
    fn ns_pid_of(&self, pid: i32, depth: usize) -> i32 {
        match self.tasks.get(&pid) {
            Some(e) if e.depth == depth && !exited([&e.me])[0] => e.ns_tid,
            _ => ns_pid_of(pid, depth),
        }
    }

    /// Whether credentials read for `tid` (of process `tgid`) may be kept: not while any exec
    /// of its process is in flight.
    fn may_keep_creds(&mut self, tid: i32, tgid: i32) -> bool {
        self.settle_execs(tgid, Some(tid))
    }

    /// Drops the pending execs of process `tgid` that have ended, and `caller`'s own; whether
    /// none is left in flight.
    fn settle_execs(&mut self, tgid: i32, caller: Option<i32>) -> bool {
        let Some(pending) = self.execs.get_mut(&tgid) else {
            return true;
        };
        let before = pending.len();
        // An exec whose thread is gone succeeded from a non-leader thread: the leader's tid is
        // that thread now, and nothing read before is kept.
        pending.retain(|e| !exec_over(&e.thread));
        let succeeded = pending.len() < before;
        // The exec'ing thread calls again: its exec failed, or it was the leader's and is done;
        // either way its own credentials were forgotten when it began. Only its own exec ends
        // so: another thread's may still be in the kernel.
        pending.retain(|e| Some(e.tid) != caller);
        let idle = pending.is_empty();
        if idle {
            self.execs.remove(&tgid);
        }
        if succeeded {
            self.forget_process_creds(tgid);
        }
        idle
    }

    /// `tid`'s credentials, read from its status file unless known. What is read is kept only
    /// if `still_pending` then says the call being served is still waiting.
    fn creds(
        &mut self,
        tid: i32,
        view: &dyn IdView,
        still_pending: &dyn Fn() -> bool,
    ) -> Result<Creds, Errno> {
        // A thread seen for the first time: the status file read to learn its ids, within this
        // same call, holds its credentials too.
        let (tgid, fresh) = match self.tasks.contains_key(&tid) {
            true => (self.ids(tid)?.host_tgid, None),
            false => {
                let (ids, status) = self.learn(tid)?;
                (ids.host_tgid, Some(status))
            }
        };
        let keep = self.may_keep_creds(tid, tgid);
        if let Some(c) = self.tasks.get(&tid).and_then(|e| e.creds.clone()) {
            return Ok(c);
        }
        let status = match fresh {
            Some(status) => status,
            None => read_status(tid)?,
        };
        let s = parse_status_creds(&status).ok_or(Errno::EIO)?;
        let ids = |v: [u32; 4], map: &dyn Fn(u32) -> u32| Ids {
            real: map(v[0]),
            effective: map(v[1]),
            saved: map(v[2]),
            fs: map(v[3]),
        };
        let host = HostFs {
            uid: s.uid[3],
            gid: s.gid[3],
            groups: Arc::from(s.groups.as_slice()),
        };
        let guest_groups: Vec<u32> = s.groups.iter().map(|&g| view.gid(g)).collect();
        let creds = Creds {
            uid: ids(s.uid, &|u| view.uid(u)),
            gid: ids(s.gid, &|g| view.gid(g)),
            groups: Arc::from(guest_groups),
            caps: s.cap_eff,
            permitted: s.cap_prm,
            stamp: self.identities.stamp(&host, s.cap_eff),
            host,
        };
        // A call the guest has abandoned (a signal interrupted it) may be served on while the
        // thread runs a set*id or capset in its handler: a status read from before that change
        // must not outlive the forget the change made. Asked after the read and under the lock
        // that forget takes: a call still waiting means the thread has run nothing since.
        if let Some(e) = self.tasks.get_mut(&tid).filter(|_| keep && still_pending()) {
            e.creds = Some(creds.clone());
        }
        Ok(creds)
    }

    fn forget_creds(&mut self, tid: i32) {
        if let Some(e) = self.tasks.get_mut(&tid) {
            e.creds = None;
        }
    }

    /// Forgets the credentials read for every thread of process `tgid`.
    fn forget_process_creds(&mut self, tgid: i32) {
        for e in self.tasks.values_mut().filter(|e| e.host_tgid == tgid) {
            e.creds = None;
        }
    }
}

/// Whether the exec'ing thread's tid is gone (its pidfd polls readable).
fn exec_over(thread: &OwnedFd) -> bool {
    exited([thread])[0]
}

/// Child processes of every thread of `pid`.
fn children_of(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("{}{pid}/task", crate::procfs::prefix())) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(
                list.split_whitespace()
                    .filter_map(|v| v.parse::<i32>().ok()),
            );
        }
    }
    out
}

impl Default for TaskTable {
    fn default() -> Self {
        Self::new()
    }
}

impl TaskTable {
    /// An empty table; ids read from status files are the guest's until [`Self::set_view`].
    pub fn new() -> Self {
        TaskTable {
            inner: Mutex::default(),
            view: parking_lot::RwLock::new(Arc::new(SameIds)),
            init_pid: 0.into(),
        }
    }

    /// How ids in the sentry's view (status files) appear to the guest.
    pub fn set_view(&self, view: Arc<dyn IdView>) {
        *self.view.write() = view;
    }

    /// Records the host pid of the sandbox's init, root of the process tree.
    pub fn set_init_pid(&self, pid: i32) {
        self.init_pid
            .store(pid, std::sync::atomic::Ordering::Relaxed);
    }

    /// The guest-visible ids of host thread `tid`.
    pub fn ids(&self, tid: i32) -> Result<TaskIds, Errno> {
        self.inner.lock().ids(tid)
    }

    /// The credentials of thread `tid` (per thread, as Linux keeps them), which waits in the
    /// call being served: `still_pending` says whether it still does (see
    /// [`crate::guest::Guest::still_pending`]); credentials read for a call it abandoned are
    /// used for that call but not kept.
    pub fn creds(&self, tid: i32, still_pending: &dyn Fn() -> bool) -> Result<Creds, Errno> {
        let view = Arc::clone(&self.view.read());
        self.inner.lock().creds(tid, &*view, still_pending)
    }

    /// Whether credentials are kept for `tid` (tests look at what a race left behind).
    #[cfg(test)]
    fn keeps_creds(&self, tid: i32) -> bool {
        self.inner
            .lock()
            .tasks
            .get(&tid)
            .is_some_and(|e| e.creds.is_some())
    }

    /// Records `creds` as thread `tid`'s without reading them (the handlers' unit tests run as
    /// one real thread standing for guests of any identity).
    pub fn assume_creds(&self, tid: i32, creds: Creds) -> Result<(), Errno> {
        let mut inner = self.inner.lock();
        inner.ids(tid)?;
        if let Some(e) = inner.tasks.get_mut(&tid) {
            e.creds = Some(creds);
        }
        Ok(())
    }

    /// `tid` is about to change its credentials natively (a set*id call, capset): read them
    /// again on its next call.
    pub fn forget_creds(&self, tid: i32) {
        self.inner.lock().forget_creds(tid);
    }

    /// `tid` is about to exec, which may change its capabilities and, from a non-leader thread,
    /// hands it the leader's tid. Until the exec is seen to end (the thread's own tid gone, or
    /// the thread calling again), no credentials read for its process are kept: the leader's
    /// entry would otherwise outlive the exec with the old leader's credentials.
    pub fn exec_begins(&self, tid: i32) {
        let mut inner = self.inner.lock();
        let Ok(ids) = inner.ids(tid) else {
            return;
        };
        let tgid = ids.host_tgid;
        inner.forget_process_creds(tgid);
        // The thread is gone already if this fails: its exec (or its end) is over.
        if let Ok(thread) = pidfd_open(tid, PIDFD_THREAD) {
            let pending = inner.execs.entry(tgid).or_default();
            pending.retain(|e| e.tid != tid);
            pending.push(PendingExec { tid, thread });
        }
    }

    /// Processes in the sandbox: its init and all descendants.
    pub fn process_count(&self) -> usize {
        let init = self.init_pid.load(std::sync::atomic::Ordering::Relaxed);
        if init == 0 {
            return 1;
        }
        let mut stack = vec![init];
        let mut count = 0;
        while let Some(pid) = stack.pop() {
            count += 1;
            stack.extend(children_of(pid));
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_hostile_command_names() {
        assert_eq!(parse_stat_ppid(b"42 (a) b) S 7 42 42 0"), Some(7));
        assert_eq!(parse_stat_ppid(b"42 (sh) R 1 42"), Some(1));
        assert_eq!(parse_stat_ppid(b"garbage"), None);
    }

    #[test]
    fn status_ids_are_outermost_first() {
        let s = "Name:\tsh\nTgid:\t900\nNStgid:\t900\t3\nNSpid:\t901\t4\n";
        assert_eq!(parse_status_ids(s, "NSpid:"), vec![901, 4]);
        assert_eq!(parse_status_ids(s, "Tgid:"), vec![900]);
        assert!(parse_status_ids(s, "Missing:").is_empty());
    }

    #[test]
    fn own_ids_without_namespaces() {
        let table = TaskTable::new();
        let me = nix::unistd::gettid().as_raw();
        let ids = table.ids(me).unwrap();
        assert_eq!(ids.ns_tid, me);
        assert_eq!(ids.ns_tgid, std::process::id() as i32);
        assert_eq!(ids.ns_ppid, nix::unistd::getppid().as_raw());
        assert_eq!(table.ids(me).unwrap(), ids, "cached lookup must agree");
        assert_eq!(table.ids(i32::MAX), Err(Errno::ESRCH));
    }

    #[test]
    fn the_parent_comes_from_the_pidfd_or_not_at_all() {
        let me = nix::unistd::gettid().as_raw();
        let fd = pidfd_open(me, PIDFD_THREAD).unwrap();
        let ppid = nix::unistd::getppid().as_raw();
        // Linux 6.13 answers; an older kernel answers nothing rather than a wrong parent.
        let release = nix::sys::utsname::uname().unwrap();
        let mut v = release.release().to_str().unwrap().split(['.', '-']);
        let major: u32 = v.next().unwrap().parse().unwrap();
        let minor: u32 = v.next().unwrap().parse().unwrap();
        let expected = ((major, minor) >= (6, 13)).then_some(ppid);
        assert_eq!(parent_of(&fd, me), expected);
        assert_eq!(
            parent_of(&fd, me + 1),
            None,
            "another numbering is not trusted"
        );
        assert_eq!(
            open_parent(me, &fd, Some(i32::MAX)).unwrap().0,
            ppid,
            "a wrong guess"
        );
        assert_eq!(open_parent(me, &fd, None).unwrap().0, ppid);
    }

    #[test]
    fn own_creds_come_from_the_status_file() {
        let table = TaskTable::new();
        let me = nix::unistd::gettid().as_raw();
        let c = table.creds(me, &|| true).unwrap();
        assert_eq!(c.uid.effective, nix::unistd::geteuid().as_raw());
        assert_eq!(c.gid.fs, nix::unistd::getegid().as_raw());
        assert_eq!(
            table.creds(me, &|| true).unwrap(),
            c,
            "cached read must agree"
        );
        table.forget_creds(me);
        assert_eq!(
            table.creds(me, &|| true).unwrap().stamp,
            c.stamp,
            "same identity, same stamp"
        );
    }

    #[test]
    fn credentials_read_for_an_abandoned_call_are_used_but_not_kept() {
        let table = TaskTable::new();
        let me = nix::unistd::gettid().as_raw();
        let read = table.creds(me, &|| false).unwrap();
        assert_eq!(read.uid.effective, nix::unistd::geteuid().as_raw());
        assert!(!table.keeps_creds(me));
        table.creds(me, &|| true).unwrap();
        assert!(table.keeps_creds(me));
    }

    /// Threads parked until the test ends, standing for threads of this process in an exec.
    fn parked_threads(n: usize) -> (Vec<i32>, std::sync::mpsc::Sender<()>) {
        let (tids_tx, tids_rx) = std::sync::mpsc::channel();
        let (end_tx, end_rx) = std::sync::mpsc::channel::<()>();
        let end_rx = Arc::new(Mutex::new(end_rx));
        for _ in 0..n {
            let (tids_tx, end_rx) = (tids_tx.clone(), Arc::clone(&end_rx));
            std::thread::spawn(move || {
                tids_tx.send(nix::unistd::gettid().as_raw()).unwrap();
                let _ = end_rx.lock().recv();
            });
        }
        ((0..n).map(|_| tids_rx.recv().unwrap()).collect(), end_tx)
    }

    #[test]
    fn one_threads_exec_ending_leaves_another_threads_exec_in_flight() {
        let table = TaskTable::new();
        let me = nix::unistd::gettid().as_raw();
        let (tids, _end) = parked_threads(2);
        let (slow, quick) = (tids[0], tids[1]);
        table.exec_begins(slow);
        table.exec_begins(quick);
        // The quick thread's exec failed and it calls again; the slow one's is still in the
        // kernel, so nothing read for the process is kept, the leader's least (its entry would
        // outlive the exec, which hands the exec'ing thread the leader's tid).
        table.creds(quick, &|| true).unwrap();
        table.creds(me, &|| true).unwrap();
        assert!(!table.keeps_creds(quick));
        assert!(!table.keeps_creds(me));
        // Its own exec failed too: it calls again, and the process is settled.
        table.creds(slow, &|| true).unwrap();
        table.creds(me, &|| true).unwrap();
        assert!(table.keeps_creds(me));
    }

    #[test]
    fn status_creds_parse_every_line_or_none() {
        let s = "Uid:\t1\t2\t3\t4\nGid:\t5\t6\t7\t8\nGroups:\t9 10 \nCapPrm:\t7\nCapEff:\t0000000000000003\n";
        let c = parse_status_creds(s).unwrap();
        assert_eq!((c.uid, c.gid), ([1, 2, 3, 4], [5, 6, 7, 8]));
        assert_eq!((c.groups, c.cap_eff, c.cap_prm), (vec![9, 10], 3, 7));
        assert!(
            parse_status_creds("Uid:\t1\t2\t3\nGid:\t5\t6\t7\t8\nGroups:\nCapEff:\t0\n").is_none()
        );
    }

    #[test]
    fn identities_are_numbered_apart_and_start_over_when_full() {
        let mut ids = Identities::default();
        let host = |uid| HostFs {
            uid,
            gid: 0,
            groups: Arc::from(Vec::new()),
        };
        let a = ids.stamp(&host(0), u64::MAX);
        assert_eq!(ids.stamp(&host(0), u64::MAX), a);
        assert_ne!(
            ids.stamp(&host(0), 0),
            a,
            "dropped capabilities are another identity"
        );
        assert_ne!(ids.stamp(&host(1), u64::MAX), a);
        for uid in 2..(MAX_IDENTITIES as u32 + 5) {
            ids.stamp(&host(uid), 0);
        }
        assert_ne!(
            ids.stamp(&host(0), u64::MAX),
            a,
            "a new generation never reuses a stamp"
        );
    }
}
