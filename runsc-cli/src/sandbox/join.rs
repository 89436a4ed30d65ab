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
}

/// Namespaces entered, in order (the user namespace last: entering it gives up our host
/// privileges, which the others need).
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
    let ns: Vec<(OwnedFd, CloneFlags)> = NAMESPACES
        .iter()
        .map(|(name, flag)| {
            let path = format!("/proc/{init}/ns/{name}");
            std::fs::File::open(&path)
                .map(|f| (OwnedFd::from(f), *flag))
                .map_err(|e| SandboxError::Invalid(format!("{path}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let pid_ns = std::fs::File::open(format!("/proc/{init}/ns/pid"))
        .map_err(|e| SandboxError::Invalid(format!("the sandbox's pid namespace: {e}")))?;
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
                .and_then(|()| keeper(spec, prog, &fds, &ns, pid_ns, &args, &env));
            let message = result.err().map(|e| e.to_string()).unwrap_or_default();
            let _ = nix::unistd::write(&fds.started, message.as_bytes());
            std::process::exit(125)
        }
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
    ns: &[(OwnedFd, CloneFlags)],
    pid_ns: std::fs::File,
    args: &[CString],
    env: &[CString],
) -> Result<std::convert::Infallible, SandboxError> {
    nix::sched::setns(pid_ns, CloneFlags::CLONE_NEWPID)
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
    ns: &[(OwnedFd, CloneFlags)],
    args: &[CString],
    env: &[CString],
) -> Result<std::convert::Infallible, SandboxError> {
    // SAFETY: PR_SET_PDEATHSIG takes integers only: if the keeper dies, so do we.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    // We are in the guest's pid namespace holding the control socket and the namespace fds until
    // our exec: not dumpable, no guest process can trace us or take them (exec resets it).
    identity::set_dumpable(false);
    // Our host pid, read before procfs becomes the guest's.
    let host_pid: i32 = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str()?.parse().ok())
        .ok_or_else(|| SandboxError::Invalid("reading /proc/self".into()))?;
    for (fd, flag) in ns {
        nix::sched::setns(fd, *flag)
            .ctx(|| format!("entering the sandbox's {flag:?} namespace"))?;
    }
    if let Some(console) = &fds.console {
        console::attach(console)?;
    }
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
    let listener = sentry::filter::install_with_listener_as(
        prog,
        identity::filter_privs(spec.new_privileges),
    )?;
    identity::release(held)?;
    let groups: Vec<String> = spec.groups.iter().map(u32::to_string).collect();
    // Named by number: see control.rs (the listener stays open until the sentry answers).
    let frame = format!(
        "exec {host_pid} {} {} {} {}",
        spec.uid,
        spec.gid,
        groups.join(","),
        listener.as_raw_fd()
    );
    control::call_on(fds.control.as_fd(), frame.as_bytes())?;
    drop(listener);
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
