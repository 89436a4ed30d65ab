//! A process joining a running sandbox (`rvisor exec`): it enters the guest init's namespaces
//! and cgroup, takes its identity, installs the sentry's filter with a listener of its own and
//! hands that listener to the sentry over the control socket, then execs. It is supervised
//! from its first instruction of the new program on; and it dies with the sandbox, since it
//! lives in the guest's pid namespace, whose init dies with the sentry.
//!
//! ```text
//! rvisor exec ── keeper (host pid ns; waits, exits with the status) ── process (guest pid ns)
//! ```

use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::sched::CloneFlags;
use nix::unistd::{fork, ForkResult, Pid};
use sentry::filter::BpfProgram;

use super::container::{CapSets, Rlimit};
use super::error::{Context, SandboxError};
use super::{console, control, identity, init, signals};

/// What to run in the sandbox.
#[derive(Debug, Clone, Default)]
pub struct JoinSpec {
    /// argv; `args[0]` is looked up in the process's `PATH` if it has no slash.
    pub args: Vec<String>,
    /// Environment.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Capabilities.
    pub capabilities: Option<CapSets>,
    /// Resource limits.
    pub rlimits: Vec<Rlimit>,
    /// `--preserve-fds`: the caller's fds 3 to 2+N reach the process.
    pub preserve_fds: u32,
    /// `noNewPrivileges: false`: no_new_privs stays off.
    pub new_privileges: bool,
    /// The container's own seccomp filters, installed on top of the sentry's (as the init's).
    pub seccomp: Vec<BpfProgram>,
}

/// Namespaces entered, in order (as root, the user namespace last: entering it gives up our
/// host privileges, which the others need; unprivileged, it is entered first, see [`keeper`]).
const NAMESPACES: [(&str, CloneFlags); 6] = [
    ("net", CloneFlags::CLONE_NEWNET),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("mnt", CloneFlags::CLONE_NEWNS),
    ("user", CloneFlags::CLONE_NEWUSER),
];

/// Descriptors a joining process is handed.
#[derive(Debug)]
pub struct JoinFds {
    /// Connected to the sandbox's control socket.
    pub control: OwnedFd,
    /// Connected `--console-socket`, for a pty.
    pub console: Option<OwnedFd>,
    /// Written with an error, or closed by the exec (CLOEXEC): the caller's "started".
    pub started: OwnedFd,
}

/// Forks the keeper, which starts the process in the sandbox of `init` (a host pid) and exits
/// with its status; returns the keeper's pid. `prelude` runs first in the keeper (joining the
/// container's cgroup).
pub fn spawn(
    init: Pid,
    spec: &JoinSpec,
    prog: &BpfProgram,
    fds: JoinFds,
    prelude: &dyn Fn() -> Result<(), String>,
) -> Result<Pid, SandboxError> {
    let (source, pidfd) = namespace_source(init)?;
    let mut rest: Vec<(OwnedFd, CloneFlags)> = Vec::new();
    for (name, flag) in NAMESPACES {
        let path = format!("/proc/{source}/ns/{name}");
        let file = std::fs::File::open(&path)
            .map_err(|e| SandboxError::Invalid(format!("{path}: {e}")))?;
        // One the sandbox shares with us (the host's network) is not entered: unprivileged, we
        // could not (its owner is the host's user namespace), and need not.
        if !same_file(&file, &format!("/proc/self/ns/{name}")) {
            rest.push((OwnedFd::from(file), flag));
        }
    }
    // Unprivileged, we may enter a namespace only from inside the sandbox's user namespace,
    // where we (the owner of its parent, the gofer's) hold every capability: the keeper enters
    // it first, and the process inherits it.
    let user_first = match nix::unistd::geteuid().is_root() {
        true => None,
        false => rest
            .iter()
            .position(|(_, flag)| *flag == CloneFlags::CLONE_NEWUSER)
            .map(|i| rest.remove(i).0),
    };
    let pid = std::fs::File::open(format!("/proc/{source}/ns/pid"))
        .map_err(|e| SandboxError::Invalid(format!("the sandbox's pid namespace: {e}")))?;
    // Still the process we chose: its pid was not reused while we opened.
    // SAFETY: pidfd_send_signal takes an fd we own, signal 0 (no signal) and no siginfo.
    if unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), 0, 0, 0) } != 0 {
        return Err(SandboxError::Setup(
            "the container's processes ended while joining it".into(),
        ));
    }
    drop(pidfd);
    let ns = Namespaces {
        user_first,
        pid: pid.into(),
        rest,
    };
    let args = cstrings(&spec.args)?;
    let env = cstrings(&spec.env)?;
    signals::block().ctx(|| "blocking signals".into())?;
    // SAFETY: the runtime is single-threaded; the child only runs `keeper`, which never returns.
    match unsafe { fork() }.ctx(|| "forking".into())? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            let result = prelude()
                .map(|()| super::unix_guard::join(init))
                .map_err(SandboxError::Setup)
                .and_then(|()| keeper(spec, prog, &fds, &ns, &args, &env));
            let message = result.err().map(|e| e.to_string()).unwrap_or_default();
            let _ = nix::unistd::write(&fds.started, message.as_bytes());
            std::process::exit(125)
        }
    }
}

/// The process whose namespaces we enter, and a pidfd on it: the init, unless we may not read
/// its namespaces (unprivileged, an init that is not dumpable, as with `--init`: its memory is
/// the runtime's user namespace's, where we have no CAP_SYS_PTRACE); then a child of it, which
/// shares them (the guest cannot make namespaces).
fn namespace_source(init: Pid) -> Result<(Pid, OwnedFd), SandboxError> {
    let pidfd = |pid: Pid| {
        // SAFETY: pidfd_open takes integers; a valid fd is ours alone.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
        // SAFETY: the kernel just returned this fd; nothing else owns it.
        (fd >= 0).then(|| unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) })
    };
    let readable = |pid: Pid| std::fs::File::open(format!("/proc/{pid}/ns/mnt")).is_ok();
    let parent = |pid: Pid| -> Option<Pid> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let ppid = stat[stat.rfind(')')? + 2..]
            .split(' ')
            .nth(1)?
            .parse()
            .ok()?;
        Some(Pid::from_raw(ppid))
    };
    let gone = || SandboxError::Setup("the container's processes have ended".into());
    let init_fd = pidfd(init).ok_or_else(gone)?;
    if readable(init) {
        return Ok((init, init_fd));
    }
    let children =
        std::fs::read_to_string(format!("/proc/{init}/task/{init}/children")).unwrap_or_default();
    for child in children.split_whitespace().filter_map(|p| p.parse().ok()) {
        let child = Pid::from_raw(child);
        // Held by the pidfd, it is still the init's child (not a reused pid) if its parent is.
        if let Some(fd) = pidfd(child).filter(|_| parent(child) == Some(init) && readable(child)) {
            return Ok((child, fd));
        }
    }
    Err(SandboxError::Invalid(format!(
        "/proc/{init}/ns: cannot read the container's namespaces (the init is not dumpable, and \
         no process of the container is readable)"
    )))
}

/// The sandbox's namespaces, as the keeper and the process enter them.
struct Namespaces {
    /// Unprivileged: the user namespace, which the keeper enters first.
    user_first: Option<OwnedFd>,
    /// The pid namespace (the keeper's children's).
    pid: OwnedFd,
    /// The others the process enters, in order.
    rest: Vec<(OwnedFd, CloneFlags)>,
}

/// Whether `file` is the file at `path` (by device and inode).
fn same_file(file: &std::fs::File, path: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

fn cstrings(list: &[String]) -> Result<Vec<CString>, SandboxError> {
    list.iter()
        .map(|s| {
            CString::new(s.as_bytes())
                .map_err(|_| SandboxError::Invalid(format!("{s:?} contains a NUL byte")))
        })
        .collect()
}

fn keeper(
    spec: &JoinSpec,
    prog: &BpfProgram,
    fds: &JoinFds,
    ns: &Namespaces,
    args: &[CString],
    env: &[CString],
) -> Result<std::convert::Infallible, SandboxError> {
    // The process inherits this: it must not be dumpable for a moment in the guest's pid
    // namespace (unprivileged, with our creds in the guest's user namespace, a guest process
    // with CAP_SYS_PTRACE there could then take the control socket it inherits).
    identity::set_dumpable(false);
    if let Some(user) = &ns.user_first {
        nix::sched::setns(user, CloneFlags::CLONE_NEWUSER)
            .ctx(|| "entering the sandbox's user namespace".into())?;
    }
    nix::sched::setns(&ns.pid, CloneFlags::CLONE_NEWPID)
        .ctx(|| "entering the pid namespace".into())?;
    // SAFETY: the keeper is single-threaded; the child only runs `process`, which never returns.
    match unsafe { fork() }.ctx(|| "forking into the sandbox".into())? {
        ForkResult::Child => {
            let err = process(spec, prog, fds, ns, args, env).unwrap_err();
            let _ = nix::unistd::write(&fds.started, err.to_string().as_bytes());
            std::process::exit(125)
        }
        ForkResult::Parent { child } => {
            // Only the process reports; our copies must not hold the caller's pipe open.
            for fd in [fds.started.as_raw_fd(), fds.control.as_raw_fd()] {
                // SAFETY: these fds are ours to close; the `JoinFds` are never used again here.
                unsafe { libc::close(fd) };
            }
            super::container::release_stdio();
            std::process::exit(signals::supervise(child, false).code())
        }
    }
}

fn process(
    spec: &JoinSpec,
    prog: &BpfProgram,
    fds: &JoinFds,
    ns: &Namespaces,
    args: &[CString],
    env: &[CString],
) -> Result<std::convert::Infallible, SandboxError> {
    // SAFETY: PR_SET_PDEATHSIG takes integers only: if the keeper dies, so do we.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    // We are in the guest's pid namespace holding the control socket and the namespace fds until
    // our exec: not dumpable, no guest process can trace us or take them (exec resets it).
    identity::set_dumpable(false);
    for (fd, flag) in &ns.rest {
        nix::sched::setns(fd, *flag)
            .ctx(|| format!("entering the sandbox's {flag:?} namespace"))?;
    }
    // A session of our own, as the init's: in the caller's process group a guest-written binary
    // could signal the operator's processes (`kill(0, …)`), or reach its terminal.
    match &fds.console {
        Some(console) => console::attach(console)?,
        None => {
            nix::unistd::setsid().ctx(|| "setsid".into())?;
        }
    }
    // A container's root is its bundle's, never a tree of the host's with files handed in
    // beneath it.
    init::confine_opens(sentry::landlock::Root::Own, 3 + spec.preserve_fds)?;
    let held = identity::assume(
        spec.uid,
        spec.gid,
        &spec.groups,
        spec.capabilities.as_ref(),
        spec.new_privileges,
    )?;
    nix::unistd::chdir(&spec.cwd).ctx(|| format!("working directory {}", spec.cwd.display()))?;
    let env_os: Vec<OsString> = spec.env.iter().map(OsString::from).collect();
    let path = init::resolve(&OsString::from(&spec.args[0]), &env_os, true)?;
    identity::set_rlimits(&spec.rlimits)?;
    // The listener goes to the sentry attached to the request, sent by a thread started before
    // the filter, which therefore does not cover it: under the filter our `sendmsg` would trap
    // and wait on the very listener in flight (see control.rs).
    let control_fd = fds.control.as_fd();
    let outside = super::handed_in::objects(3 + spec.preserve_fds);
    let handed = std::thread::scope(|scope| -> Result<OwnedFd, SandboxError> {
        let (to_sender, from_main) = std::sync::mpsc::channel::<OwnedFd>();
        let sender = scope.spawn(move || {
            let listener = from_main.recv().ok()?;
            let sent = control::send_exec(control_fd, listener.as_fd(), &outside);
            Some((listener, sent))
        });
        let listener = match sentry::filter::install_with_listener_as(
            prog,
            identity::filter_privs(spec.new_privileges),
        ) {
            Ok(listener) => listener,
            Err(e) => {
                drop(to_sender);
                let _ = sender.join();
                return Err(e.into());
            }
        };
        let _ = to_sender.send(listener);
        match sender.join() {
            Ok(Some((listener, Ok(())))) => Ok(listener),
            Ok(Some((_, Err(e)))) => Err(e),
            _ => Err(SandboxError::Setup(
                "sending the listener to the sentry".into(),
            )),
        }
    });
    let listener = handed?;
    // Under the sentry now; then the container's own filters, as the init takes them.
    identity::install_spec_filters(&spec.seccomp, spec.new_privileges)?;
    // Held only to install the filters without no_new_privs.
    identity::release(held)?;
    // The listener stays open until the sentry answers.
    control::reply_on(fds.control.as_fd())?;
    drop(listener);
    if ns.user_first.is_some() {
        // Unprivileged, the sentry can read our memory (the exec's path) and /proc/<pid>/cwd
        // only while we are dumpable: our memory belongs to the runtime's user namespace, where
        // it has no CAP_SYS_PTRACE. From here until the exec, guest processes with our
        // capabilities could trace us too, so we first close every fd of ours (the control
        // socket, the namespace fds, whatever the runtime held; the listener is the sentry's
        // alone) but the started pipe: what stays is our stdio and `--preserve-fds`.
        let started = fds.started.as_raw_fd() as u32;
        let from = 3 + spec.preserve_fds;
        for (first, last) in [
            (from, started.saturating_sub(1)),
            (from.max(started + 1), u32::MAX),
        ] {
            if first <= last {
                // SAFETY: close_range takes integers; nothing uses these fds before the exec.
                unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
            }
        }
        identity::set_dumpable(true);
    }
    super::init::disarm_inherited_dirs(3 + spec.preserve_fds);
    // SAFETY: close_range takes integers; CLOEXEC only marks fds (the started pipe among them:
    // the exec closes it, which tells the caller we are running).
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 + spec.preserve_fds,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    signals::reset_for_exec(&nix::sys::signal::SigSet::empty());
    let err = nix::unistd::execve(&path, args, env).unwrap_err();
    Err(err).ctx(|| format!("exec {}", spec.args[0]))
}
