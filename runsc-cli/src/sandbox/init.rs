//! The guest init: PID 1 of the sandbox. It builds the guest's view of the system, installs the
//! seccomp filter on itself, hands the listener to the sentry, then starts the command and reaps
//! until the command ends. Everything after the filter (init included) is supervised.

use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::SigSet;
use nix::unistd::{execve, fork, ForkResult, Gid, Uid};
use sentry::filter::BpfProgram;
use sentry::landlock::Root;

use super::container::{Attach, ContainerSettings};
use super::error::{Context, SandboxError};
use super::spec::{Network, Overlay, PlatformKind, SandboxSpec};
use super::{console, fdpass, guest_root, hooks, identity, relay, signals};

/// Exit code when the command cannot be found.
const NOT_FOUND: i32 = 127;
/// Exit code when the command cannot be executed.
const NOT_EXECUTABLE: i32 = 126;

/// Runs as the guest init; never returns.
pub fn main(
    spec: &SandboxSpec,
    prog: &BpfProgram,
    tree: &Path,
    maps_written: OwnedFd,
    report: OwnedFd,
    attach: &Attach,
    rootless: bool,
) -> ! {
    if !attach.detached() {
        // SAFETY: PR_SET_PDEATHSIG takes integers only. If the gofer dies, so do we, and with us
        // (PID 1) the whole pid namespace. (A container's init is its caller's child: the sentry
        // traces it with PTRACE_O_EXITKILL, and sentry and gofer each kill it if the other dies.)
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    }
    let mut byte = [0u8; 1];
    // EOF: the gofer died before writing our id maps.
    if !matches!(
        nix::unistd::read(maps_written.as_fd().as_raw_fd(), &mut byte),
        Ok(1)
    ) {
        std::process::exit(1);
    }
    drop(maps_written);
    // As root, not dumpable from here (before anyone learns our pid): until `start` the init
    // runs unfiltered in namespaces others may join (a pod's containers), and a process in them
    // must not trace it (its memory belongs to the runtime's user namespace, where no guest
    // holds CAP_SYS_PTRACE). The exec of the command makes the command dumpable as usual.
    // Rootless, the unprivileged sentry could then not trace it either: there the guest's user
    // namespace is the caller's own to begin with.
    if !rootless {
        identity::set_dumpable(false);
    }
    let prepared = setup(spec, tree, attach).and_then(|p| {
        fdpass::send_prepared(report.as_fd()).ctx(|| "reporting the sandbox built".into())?;
        Ok(p)
    });
    let (path, argv, envp, old_mask, held) = match prepared {
        Ok(p) => p,
        Err(e) => {
            fdpass::send_failure(report.as_fd(), &e.to_string());
            std::process::exit(125)
        }
    };
    // Created: wait for start (EOF: the sentry went away, or the container was deleted).
    let Some(state) = fdpass::receive_start(report.as_fd()) else {
        std::process::exit(125)
    };
    if let Err(e) = start(spec, prog, &report, &state, held) {
        fdpass::send_failure(report.as_fd(), &e.to_string());
        std::process::exit(125)
    }
    drop(report);
    if spec.container.exec_as_init {
        exec_command(&path, &argv, &envp, &old_mask, &spec.container)
    }
    // From here the init lives next to guest processes that share its user namespace (and, as
    // the sandbox's root, may hold CAP_SYS_PTRACE in it). Not dumpable, it is out of their reach:
    // ptrace, pidfd_getfd, process_vm_readv and /proc/1/{mem,fd,environ} need CAP_SYS_PTRACE in
    // the namespace of its memory, which is the runtime's, not the guest's.
    identity::set_dumpable(false);
    let relays = match relay::interpose(3 + spec.container.preserve_fds) {
        Ok(r) => r,
        Err(e) => {
            super::report!("rvisor: {e}");
            std::process::exit(125)
        }
    };
    run_command(&path, &argv, &envp, &old_mask, &spec.container, relays)
}

/// Replaces each of the guest's inherited fds below `count` that is a directory or an O_PATH
/// handle with `/dev/null`. The guest's kernel resolves path calls natively in the guest's view
/// (directory opens, the stat family), and a handle from outside the root is a starting point
/// outside it: `openat(fd, "..")`, `/proc/self/fd/N/..` and a reopen of an O_PATH handle would
/// list or reach the host's files. Stdio and `--preserve-fds` carry data, not directories.
pub(crate) fn disarm_inherited_dirs(count: u32) {
    for fd in 0..count as i32 {
        // SAFETY: F_GETFL reads the flags of an fd number; a closed one fails with EBADF.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags < 0 {
            continue;
        }
        let dir =
            nix::sys::stat::fstat(fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR);
        if !dir && flags & libc::O_PATH == 0 {
            continue;
        }
        // SAFETY: a NUL-terminated path and flags.
        let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        // SAFETY: dup2 takes integers; `fd` is ours to replace.
        if null < 0 || unsafe { libc::dup2(null, fd) } < 0 {
            // SAFETY: close takes an integer; `fd` is ours to close.
            unsafe { libc::close(fd) };
        }
        if null >= 0 {
            // SAFETY: as above; `null` was opened just now.
            unsafe { libc::close(null) };
        }
    }
}

/// Holds the guest's file opens to its root, and those of the `inherited` fds handed in to the
/// access they have (see `sentry::landlock`), before the filter that lets reads run natively.
/// Where this kernel has Landlock the filter was compiled counting on it (`ReadOpens::here`):
/// failing here fails the start.
pub(crate) fn confine_opens(root: Root<'_>, inherited: u32) -> Result<(), SandboxError> {
    if sentry::filter::ReadOpens::here() == sentry::filter::ReadOpens::Native {
        sentry::landlock::confine_to_root(root, inherited)
            .ctx(|| "holding the guest's opens to its root (Landlock)".into())?;
    }
    Ok(())
}

/// Closes every fd from `from` up, except `keep`.
fn close_all_but(from: u32, keep: i32) {
    let keep = keep as u32;
    let close = |first: u32, last: u32| {
        // SAFETY: close_range takes integers; these fds are the launcher's, unused here.
        unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    };
    if keep > from {
        close(from, keep - 1);
    }
    close(from.max(keep + 1), u32::MAX);
}

type Prepared = (
    CString,
    Vec<CString>,
    Vec<CString>,
    SigSet,
    Option<identity::Held>,
);

fn setup(spec: &SandboxSpec, tree: &Path, attach: &Attach) -> Result<Prepared, SandboxError> {
    let settings = &spec.container;
    guest_root::build(tree, settings, || become_namespace_root(settings))?;
    let joined_uts = settings
        .joins
        .iter()
        .any(|j| j.kind == super::ns_join::NsKind::Uts);
    if !joined_uts {
        nix::unistd::sethostname(&spec.hostname).ctx(|| "sethostname".into())?;
    }
    if !settings.domainname.is_empty() && !joined_uts {
        set_domainname(&settings.domainname)?;
    }
    if spec.network == Network::Loopback {
        guest_root::loopback_up()?;
    }
    if let Some(console) = &attach.console {
        if settings.terminal {
            console::attach(console)?;
        }
    } else if !attach.detached() {
        // A session of our own: kill(0, ...), setpriority(PRIO_PGRP, 0, ...) and the like act on
        // the caller's process group, and the kernel reaches every member, in our pid namespace
        // or not (the caller's shell, its pipeline). The terminal stays our stdio, as data; job
        // control signals reach the command through the runtime, which forwards them.
        nix::unistd::setsid().ctx(|| "setsid".into())?;
    }
    // Still the namespace's root (Landlock needs CAP_SYS_ADMIN here, or no_new_privs), in the
    // guest's root, and before anything of the guest's runs.
    // Under `--overlay=none` the root is the host's own directories; the volumes and the spec's
    // tmpfs mounts the guest writes through the gofer are granted beside the sandbox's own /dev,
    // /tmp and /run (a FIFO there opens natively, for writing too).
    let writable: Vec<&Path> = spec
        .volumes
        .iter()
        .filter(|v| !v.readonly)
        .map(|v| v.dest.as_path())
        .chain(
            spec.container
                .tmpfs
                .iter()
                .filter(|t| !t.readonly)
                .map(|t| t.dest.as_path()),
        )
        .collect();
    let root = if spec.overlay == Overlay::None {
        Root::Host {
            writable: &writable,
        }
    } else {
        Root::Own
    };
    confine_opens(root, 3 + spec.container.preserve_fds)?;
    let held = become_user(spec)?;
    match nix::unistd::chdir(&spec.cwd) {
        Err(Errno::ENOENT | Errno::ENOTDIR) if spec.cwd_fallback => {
            tracing::debug!(cwd = %spec.cwd.display(), "not in the sandbox; starting in /");
            nix::unistd::chdir("/").ctx(|| "chdir /".into())?;
        }
        r => r.ctx(|| format!("working directory {} in the sandbox", spec.cwd.display()))?,
    }
    let envp = to_cstrings(&spec.env)?;
    let argv = to_cstrings(&spec.args)?;
    let path = resolve(&spec.args[0], &spec.env, settings.exec_as_init)?;
    signals::install_init_handlers().ctx(|| "signal handlers".into())?;
    let old_mask = signals::block().ctx(|| "blocking signals".into())?;
    Ok((path, argv, envp, old_mask, held))
}

/// After start: supervision (the sentry's filter, listener handed over), the start hooks, then
/// the spec's own filters; then the capability held for installing them without no_new_privs
/// goes.
fn start(
    spec: &SandboxSpec,
    prog: &BpfProgram,
    report: &OwnedFd,
    state: &[u8],
    held: Option<identity::Held>,
) -> Result<(), SandboxError> {
    // Nothing of the launcher's may reach the guest but stdio and what the caller named: closed,
    // not only marked close-on-exec, since the init itself lives on next to the guest.
    close_all_but(3 + spec.container.preserve_fds, report.as_raw_fd());
    disarm_inherited_dirs(3 + spec.container.preserve_fds);
    supervise(spec, prog, report)?;
    // Supervised already: their writes reach the tree through the gofer, as the process's do.
    hooks::run_all(&spec.container.start_hooks, state).map_err(SandboxError::Invalid)?;
    identity::install_spec_filters(&spec.container.seccomp, spec.container.new_privileges)?;
    identity::release(held)
}

/// Puts the init under the sentry: hands it the seccomp listener, or (ptrace) is seized first,
/// takes the reserved socket, and only then installs the filter (a RET_TRACE with no tracer
/// would fail calls with ENOSYS).
fn supervise(spec: &SandboxSpec, prog: &BpfProgram, report: &OwnedFd) -> Result<(), SandboxError> {
    let privs = identity::filter_privs(spec.container.new_privileges);
    match spec.platform {
        PlatformKind::SeccompNotify => {
            let listener = sentry::filter::install_with_listener_as(prog, privs)?;
            fdpass::send_listener(report.as_fd(), listener.as_fd())
                .ctx(|| "handing over the listener".into())
        }
        PlatformKind::Ptrace => {
            fdpass::send_traceable(report.as_fd()).ctx(|| "asking to be traced".into())?;
            let end = fdpass::receive_seized(report.as_fd())
                .ok_or_else(|| SandboxError::Setup("the sentry did not trace the guest".into()))?;
            sentry::platform::ptrace::reserved::install_in_guest(end)
                .ctx(|| "installing the reserved socket".into())?;
            sentry::filter::install_as(prog, privs)?;
            fdpass::send_traced(report.as_fd()).ctx(|| "reporting the filter on".into())
        }
    }
}

fn set_domainname(name: &str) -> Result<(), SandboxError> {
    // SAFETY: the pointer and length describe `name`, which outlives the call.
    let rc = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if rc != 0 {
        return Err(Errno::last()).ctx(|| format!("setdomainname {name:?}"));
    }
    Ok(())
}

/// Where the spec's mappings leave host root unmapped, we are nobody in our namespace and could
/// create no file while building the view: become its root first (we hold every capability in
/// it).
fn become_namespace_root(settings: &ContainerSettings) -> Result<(), SandboxError> {
    let Some(map) = &settings.id_map else {
        return Ok(());
    };
    let maps = |ranges: &[gofer::IdRange], outside: u32| {
        ranges
            .iter()
            .any(|r| outside >= r.outside && outside - r.outside < r.count)
    };
    if maps(&map.uids, 0) && maps(&map.gids, 0) {
        return Ok(());
    }
    let root_gid = Gid::from_raw(0);
    let root_uid = Uid::from_raw(0);
    nix::unistd::setresgid(root_gid, root_gid, root_gid)
        .ctx(|| "becoming the user namespace's root (gid)".into())?;
    nix::unistd::setresuid(root_uid, root_uid, root_uid)
        .ctx(|| "becoming the user namespace's root (uid)".into())
}

/// Drops to the sandbox identity (and, for a container, its groups and capabilities).
/// Supplementary groups can only be set where the launcher was privileged (rootless user
/// namespaces deny setgroups).
fn become_user(spec: &SandboxSpec) -> Result<Option<identity::Held>, SandboxError> {
    let c = &spec.container;
    identity::assume(
        spec.uid,
        spec.gid,
        &c.extra_gids,
        c.capabilities.as_ref(),
        c.new_privileges,
    )
}

fn to_cstrings(list: &[OsString]) -> Result<Vec<CString>, SandboxError> {
    list.iter()
        .map(|s| {
            CString::new(s.clone().into_vec())
                .map_err(|_| SandboxError::Invalid(format!("{s:?} contains a NUL byte")))
        })
        .collect()
}

/// The command's path: `args[0]` if it has a slash, else the first executable match in `PATH`.
/// With `strict` (a container), a command not found fails `create`, as with runc.
pub(super) fn resolve(
    cmd: &OsString,
    env: &[OsString],
    strict: bool,
) -> Result<CString, SandboxError> {
    let bytes = cmd.as_bytes();
    let found = if bytes.contains(&b'/') {
        Some(PathBuf::from(cmd))
    } else {
        let path = env
            .iter()
            .find_map(|kv| kv.as_bytes().strip_prefix(b"PATH="))
            .map(|p| p.to_vec())
            .unwrap_or_else(|| {
                b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_vec()
            });
        path.split(|&b| b == b':')
            .map(|dir| Path::new(std::ffi::OsStr::from_bytes(dir)).join(cmd))
            .find(|p| nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok() && !p.is_dir())
    };
    if strict {
        // As runc: a container whose process cannot start is refused at create, not started
        // to exit 126.
        match &found {
            Some(p) if p.is_dir() => {
                return Err(SandboxError::Invalid(format!(
                    "exec: {cmd:?}: is a directory"
                )))
            }
            Some(p) if p.exists() => {
                if nix::unistd::access(p.as_path(), nix::unistd::AccessFlags::X_OK).is_err() {
                    return Err(SandboxError::Invalid(format!(
                        "exec: {cmd:?}: permission denied"
                    )));
                }
            }
            _ => {
                return Err(SandboxError::Invalid(format!(
                    "exec: {cmd:?}: executable file not found in $PATH"
                )))
            }
        }
    }
    // A missing command is reported by the exec in the child, with the usual exit code.
    Ok(CString::new(
        found
            .unwrap_or_else(|| cmd.into())
            .into_os_string()
            .into_vec(),
    )
    .unwrap_or_default())
}

/// Replaces the init with the command (an OCI container's process is PID 1).
fn exec_command(
    path: &CString,
    argv: &[CString],
    envp: &[CString],
    old_mask: &SigSet,
    settings: &ContainerSettings,
) -> ! {
    signals::reset_for_exec(old_mask);
    if let Err(e) = identity::set_rlimits(&settings.rlimits) {
        super::report!("rvisor: {e}");
        std::process::exit(NOT_EXECUTABLE);
    }
    let err = execve(path, argv, envp).unwrap_err();
    super::report!("rvisor: {}: {}", argv[0].to_string_lossy(), err.desc());
    std::process::exit(if err == Errno::ENOENT {
        NOT_FOUND
    } else {
        NOT_EXECUTABLE
    })
}

fn run_command(
    path: &CString,
    argv: &[CString],
    envp: &[CString],
    old_mask: &SigSet,
    settings: &ContainerSettings,
    relays: relay::Interposed,
) -> ! {
    // SAFETY: the init is single-threaded (cloned from the sentry before it started threads;
    // the relays start after the fork).
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            // The command is the guest's: dumpable like any process it starts (and the sentry,
            // rootless, can read its memory only then).
            identity::set_dumpable(true);
            exec_command(path, argv, envp, old_mask, settings)
        }
        Ok(ForkResult::Parent { child }) => {
            // SAFETY: eventfd takes integers and returns a new fd we own (or fails).
            let stop = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
            let pumps = relays.start(stop);
            let ended = signals::supervise(child, true);
            // The command's last output is moved before the sandbox ends.
            // SAFETY: an 8-byte counter from a buffer we own, to our eventfd.
            unsafe { libc::write(stop, 1u64.to_ne_bytes().as_ptr().cast(), 8) };
            if stop >= 0 {
                for pump in pumps {
                    let _ = pump.join();
                }
            }
            std::process::exit(ended.code())
        }
        Err(e) => {
            super::report!("rvisor: fork: {}", e.desc());
            std::process::exit(125)
        }
    }
}
