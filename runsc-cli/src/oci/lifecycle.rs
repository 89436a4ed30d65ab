//! The container lifecycle, as the commands use it: create, start, signal, delete, wait.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::cgroup::{self, Cgroup};
use super::convert::{self, Options};
use super::rootless::{self, RootlessMode};
use super::state::{self, ContainerDir, LaterHooks, Phase, Record, StateRoot, Status};
use super::{time, OciError};
use crate::sandbox::{self, control, hooks, Attach, Network, SandboxError};

/// Annotation `state` adds when the OOM killer has struck.
pub const OOM_ANNOTATION: &str = "io.github.rvisor.oom-killed";
/// Annotation that sizes a writable root's memory overlay (`--overlay=memory`), with `/tmp`, `/run`
/// and `/dev/shm` (as `rvisor do --overlay-size`: `512m`, `2g`, `10%`); without it, the same
/// default as `do`. Other roots ignore it.
/// Either way the pages are also charged to the container's memory cgroup, which every sandbox
/// process (the guest, which writes through the fds the gofer opens, and the gofer, which
/// copies up) is in.
pub const OVERLAY_SIZE_ANNOTATION: &str = "io.github.rvisor.overlay-size";

/// Runtime-wide settings from the global flags.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// The state root.
    pub root: StateRoot,
    /// Container options.
    pub opts: Options,
    /// `--network` override.
    pub network: Option<Network>,
    /// `--platform`.
    pub platform: crate::sandbox::PlatformKind,
    /// Trace trapped calls to this file (`--strace`; the log file, or stderr).
    pub strace: Option<Option<PathBuf>>,
    /// `--rootless`: whether a cgroup that cannot be made may be done without.
    pub rootless: RootlessMode,
}

/// `create`'s arguments.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// Container id.
    pub id: String,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// Where to write the container's pid.
    pub pid_file: Option<PathBuf>,
    /// Where to send the pty master.
    pub console_socket: Option<PathBuf>,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
}

fn write_pid_file(path: &Path, pid: i32) -> Result<(), OciError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |err| OciError::File {
        path: format!("--pid-file {}", path.display()),
        err,
    };
    // The directory may be one a guest writes (a path in its rootfs): whatever it left at the
    // temporary name is removed (unlink does not follow a symlink) and the name made anew
    // (O_EXCL does not follow one either, and fails if it was put back meanwhile); the rename
    // replaces the final name itself, never what a link there points at.
    let tmp = path.with_extension("rvisor-tmp");
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .mode(0o644)
        .open(&tmp)
        .map_err(io)?;
    file.write_all(pid.to_string().as_bytes()).map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io)
}

fn state_json(record: &Record, status: Status) -> Vec<u8> {
    serde_json::to_vec(&record.oci_state(status)).unwrap_or_default()
}

fn owner() -> String {
    let uid = nix::unistd::geteuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name)
}

fn connect_console(path: &Path) -> Result<OwnedFd, OciError> {
    let stream = std::os::unix::net::UnixStream::connect(path)
        .map_err(|e| OciError::Spec(format!("--console-socket {}: {e}", path.display())))?;
    Ok(OwnedFd::from(stream))
}

fn strace_sink(rt: &Runtime) -> Result<Option<Box<dyn std::io::Write + Send>>, OciError> {
    Ok(match &rt.strace {
        None => None,
        Some(None) => Some(Box::new(std::io::stderr())),
        Some(Some(path)) => Some(Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|err| OciError::State {
                    path: path.display().to_string(),
                    err,
                })?,
        )),
    })
}

/// Creates a container; it waits for `start`.
pub fn create(rt: &Runtime, req: &CreateRequest) -> Result<Record, OciError> {
    let bundle = std::fs::canonicalize(&req.bundle)
        .map_err(|e| OciError::Spec(format!("bundle {}: {e}", req.bundle.display())))?;
    let spec = convert::load(&bundle)?;
    let euid = nix::unistd::geteuid();
    if !euid.is_root() {
        // Unprivileged: the sandbox maps the process's ids to ours, and nothing else.
        rootless::check_spec(&spec, euid.as_raw(), nix::unistd::getegid().as_raw())?;
    }
    let mut b = convert::convert(&spec, &bundle, &rt.opts)?;
    b.sandbox.container.preserve_fds = req.preserve_fds;
    if let (Some(size), sandbox::Overlay::Memory { .. }) = (
        b.annotations.get(OVERLAY_SIZE_ANNOTATION),
        b.sandbox.overlay,
    ) {
        let size = sandbox::spec::parse_size(size)
            .map_err(|e| OciError::Spec(format!("annotation {OVERLAY_SIZE_ANNOTATION}: {e}")))?;
        b.sandbox.overlay = sandbox::Overlay::Memory { size: Some(size) };
    }
    if let Some(net) = &rt.network {
        b.sandbox.network = net.clone();
    }
    b.sandbox.platform = rt.platform;
    // Joining a sandbox's user namespace (or what it owns) takes its id maps.
    if let Some(owner) = check_joins(rt, &b.sandbox.container.joins)? {
        b.sandbox.container.id_map = Some(maps_of(owner)?);
    }
    // Checked before anything exists: a bad cgroupsPath leaves nothing behind.
    let cg_path = cgroup::path_for(b.cgroups_path.as_deref(), &req.id)?;

    let console = match (&req.console_socket, b.sandbox.container.terminal) {
        (Some(path), true) => Some(connect_console(path)?),
        (None, true) => {
            return Err(OciError::Spec(
                "process.terminal is set: --console-socket is required".into(),
            ))
        }
        _ => None,
    };
    let dir = rt.root.claim(&req.id)?;
    // A cgroup with processes is another container's (the same id under another --root, or a
    // spec naming its cgroupsPath): sharing it, a delete of either would kill both. Checked
    // once the id is ours (a second create of it says "already exists"), and left alone.
    if !Cgroup::load(&cg_path).pids().is_empty() {
        let _ = dir.remove();
        return Err(OciError::Spec(format!(
            "cgroup {cg_path} already holds processes (another container's: the same id under \
             another --root, or the same cgroupsPath)"
        )));
    }
    let made = build(rt, req, &dir, &b, &bundle, &cg_path, console);
    match made {
        Ok(record) => Ok(record),
        Err((e, sentry)) => {
            if let Some(pid) = sentry {
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                let deadline = Instant::now() + Duration::from_secs(5);
                while matches!(state::process_start(pid.as_raw()), Some((_, false)))
                    && Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            let _ = Cgroup::load(&cg_path).destroy();
            let _ = dir.remove();
            Err(e)
        }
    }
}

/// A namespace joined by path must be one of a running rvisor container of this state root (a
/// pod's sandbox): anything else (a runc container's, a host process's, one a careless caller
/// made with `unshare`) would let the guest into processes no sentry supervises.
/// Returns the init whose user namespace the guest will join, if any.
fn check_joins(rt: &Runtime, joins: &[sandbox::ns_join::NsJoin]) -> Result<Option<i32>, OciError> {
    use sandbox::ns_join::NsKind;
    use std::os::unix::fs::MetadataExt;
    if joins.is_empty() {
        return Ok(None);
    }
    let mut owner = None;
    let id = |p: &Path| std::fs::metadata(p).map(|m| (m.dev(), m.ino()));
    let inits: Vec<i32> = rt
        .root
        .ids()?
        .iter()
        .filter_map(|id| rt.root.peek(id))
        .filter(Record::alive)
        .map(|r| r.init_pid)
        .collect();
    for join in joins {
        let kind = join.kind.proc_name();
        let target = id(&join.path).map_err(|e| {
            OciError::Spec(format!("{kind} namespace {}: {e}", join.path.display()))
        })?;
        let ours = inits.iter().copied().find(|pid| {
            id(Path::new(&format!("/proc/{pid}/ns/{kind}"))).is_ok_and(|ns| ns == target)
        });
        if matches!(
            join.kind,
            NsKind::User | NsKind::Ipc | NsKind::Uts | NsKind::Pid
        ) {
            owner = owner.or(ours);
        }
        if ours.is_none() {
            return Err(OciError::Spec(format!(
                "{kind} namespace {}: not a namespace of a running rvisor container (of this \
                 --root); only another sandbox's namespaces can be joined",
                join.path.display()
            )));
        }
    }
    Ok(owner)
}

/// The id maps of `pid`'s user namespace.
fn maps_of(pid: i32) -> Result<gofer::IdMap, OciError> {
    let read = |name: &str| -> Result<Vec<gofer::IdRange>, OciError> {
        let path = format!("/proc/{pid}/{name}");
        let text =
            std::fs::read_to_string(&path).map_err(|e| OciError::Spec(format!("{path}: {e}")))?;
        Ok(text
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace().map(|n| n.parse::<u32>().ok());
                Some(gofer::IdRange {
                    inside: f.next()??,
                    outside: f.next()??,
                    count: f.next()??,
                })
            })
            .collect())
    };
    Ok(gofer::IdMap {
        uids: read("uid_map")?,
        gids: read("gid_map")?,
    })
}

/// Why create failed, and the sentry to kill if it got that far.
type Failed = (OciError, Option<Pid>);

/// Creates the mount points the spec needs in a read-only root, as runc does (in the bundle's
/// rootfs, refusing to follow a symlink out of it).
/// With `all`, the spec's mount points too (a read-only root cannot take them in the sandbox).
fn make_mount_points(b: &convert::Bundle, all: bool) -> Result<(), OciError> {
    // The sandbox mounts its own procfs, /dev and sysfs on these: a minimal rootfs (a busybox
    // and `rvisor spec`) need not have them.
    let own: Vec<PathBuf> = ["/proc", "/dev", "/sys"]
        .iter()
        .map(PathBuf::from)
        .collect();
    let volumes = b.sandbox.volumes.iter().filter(|_| all);
    let tmpfs = b.sandbox.container.tmpfs.iter().filter(|_| all);
    let dests = volumes
        .map(|v| (&v.dest, v.source.is_dir()))
        .chain(tmpfs.map(|t| (&t.dest, true)))
        .chain(own.iter().map(|d| (d, true)));
    for (dest, dir) in dests {
        let mut at = b.rootfs.clone();
        let parts: Vec<_> = dest.components().skip(1).collect();
        for (i, part) in parts.iter().enumerate() {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(OciError::Spec(format!(
                        "mount destination {}: {} is a symlink",
                        dest.display(),
                        at.display()
                    )))
                }
                Ok(_) => {}
                Err(_) if i + 1 < parts.len() || dir => {
                    std::fs::create_dir(&at).map_err(|err| OciError::State {
                        path: at.display().to_string(),
                        err,
                    })?
                }
                Err(_) => {
                    std::fs::File::create(&at).map_err(|err| OciError::State {
                        path: at.display().to_string(),
                        err,
                    })?;
                }
            }
        }
    }
    Ok(())
}

fn build(
    rt: &Runtime,
    req: &CreateRequest,
    dir: &ContainerDir,
    b: &convert::Bundle,
    bundle: &Path,
    cg_path: &str,
    console: Option<OwnedFd>,
) -> Result<Record, Failed> {
    // A read-only root cannot take them in the sandbox: they are made in the bundle's rootfs,
    // as runc does (a memory overlay or a written-through root takes them as the gofer builds
    // the tree, resolved inside it).
    dir.note_cgroup(cg_path).map_err(|e| (e, None))?;
    match b.sandbox.overlay {
        sandbox::Overlay::None => make_mount_points(b, true).map_err(|e| (e, None))?,
        // The gofer makes the spec's mount points; the sandbox's own need their directories.
        sandbox::Overlay::Rootfs => make_mount_points(b, false).map_err(|e| (e, None))?,
        sandbox::Overlay::Memory { .. } => {}
    }
    let cg = rootless::cgroup(
        rt.rootless,
        cg_path,
        b.cgroups_path.as_deref(),
        b.resources.as_ref(),
    )
    .map_err(|e| (e, None))?;
    let recorded_cgroup = cg.as_ref().map(|_| cg_path.to_string());
    let control = control::listen_at(&dir.control_socket()).map_err(|e| (e.into(), None))?;
    let exit = std::fs::File::create(dir.exit_file()).map_err(|err| {
        (
            OciError::State {
                path: dir.exit_file().display().to_string(),
                err,
            },
            None,
        )
    })?;
    let attach = Attach {
        console,
        control: Some(control),
        exit_status: Some(OwnedFd::from(exit)),
        created: None,
    };
    let oom_adj = b.sandbox.container.oom_score_adj;
    let lock = dir.lock_fd();
    let prelude = move || -> Result<(), String> {
        // SAFETY: the forked sentry's copy of the lock fd is closed and never used again.
        unsafe { libc::close(lock) };
        if let Some(cg) = &cg {
            cg.add(std::process::id() as i32)
                .map_err(|e| e.to_string())?;
        }
        if let Some(adj) = oom_adj {
            std::fs::write("/proc/self/oom_score_adj", adj.to_string())
                .map_err(|e| format!("oom_score_adj {adj}: {e}"))?;
        }
        Ok(())
    };
    let strace = strace_sink(rt).map_err(|e| (e, None))?;
    let note_sentry = |pid: Pid| dir.note_sentry(pid.as_raw());
    let created =
        sandbox::create(&b.sandbox, strace, attach, &prelude, &note_sentry).map_err(|e| {
            // A sandbox the OOM killer ended during setup says only that it died: say why.
            let oom = recorded_cgroup
                .as_deref()
                .is_some_and(|path| Cgroup::load(path).oom_kills() > 0);
            let e = OciError::from(e);
            match oom {
                true => (
                    OciError::Spec(format!(
                        "{e}: the container's memory limit (linux.resources.memory) killed it"
                    )),
                    None,
                ),
                false => (e, None),
            }
        })?;
    let record = Record {
        id: req.id.clone(),
        bundle: bundle.to_path_buf(),
        rootfs: b.rootfs.clone(),
        pid: created.init.as_raw(),
        pid_start: state::process_start(created.init.as_raw()).map_or(0, |(s, _)| s),
        init_pid: created.init.as_raw(),
        sentry_pid: created.sentry.as_raw(),
        sentry_start: state::process_start(created.sentry.as_raw()).map_or(0, |(s, _)| s),
        gofer_pid: created.gofer.as_raw(),
        phase: Phase::Created,
        created: time::rfc3339(SystemTime::now()),
        owner: owner(),
        annotations: b.annotations.clone(),
        cgroup: recorded_cgroup,
        hooks: LaterHooks {
            poststart: b.hooks.poststart.clone(),
            poststop: b.hooks.poststop.clone(),
        },
        platform: rt.platform.name().into(),
        seccomp: b.seccomp.clone(),
    };
    let fail = |e: OciError| (e, Some(created.sentry));
    Cgroup::load(cg_path)
        .confine_guest(
            &[created.sentry.as_raw(), created.gofer.as_raw()],
            b.resources.as_ref(),
        )
        .map_err(fail)?;
    dir.write(&record).map_err(fail)?;
    let state = state_json(&record, Status::Created);
    for list in [
        &b.hooks.prestart,
        &b.hooks.create_runtime,
        &b.hooks.create_container,
    ] {
        hooks::run_all(list, &state).map_err(|e| fail(OciError::Hook(e)))?;
    }
    if let Some(path) = &req.pid_file {
        write_pid_file(path, record.pid).map_err(fail)?;
    }
    Ok(record)
}

/// Starts a created container and runs its poststart hooks.
pub fn start(rt: &Runtime, id: &str) -> Result<(), OciError> {
    let (dir, mut record) = rt.root.open(id)?;
    let status = record.status(&dir);
    if status != Status::Created {
        return Err(wrong(id, status, "start"));
    }
    let mut frame = b"start\n".to_vec();
    frame.extend(state_json(&record, Status::Running));
    control::call(&dir.control_socket(), &frame)?;
    record.phase = Phase::Running;
    dir.write(&record)?;
    let state = state_json(&record, Status::Running);
    if let Err(e) = hooks::run_all(&record.hooks.poststart, &state) {
        tracing::warn!("poststart: {e}");
    }
    Ok(())
}

/// The error for a command the status does not allow.
pub fn wrong(id: &str, status: Status, action: &'static str) -> OciError {
    OciError::WrongState {
        id: id.into(),
        status: status.as_str(),
        action,
    }
}

/// Waits up to `limit` for the container's process and the sentry to be gone (or zombies).
pub fn wait_gone(record: &Record, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while record.alive() || record.sentry_alive() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Sends `sig` to the container's process (or, with `all`, to every guest process). As runc:
/// a stopped container is "not running" (but `--all` succeeds: nothing is left to signal), and a
/// created one that the signal would end stops (its init has not run the process yet).
pub fn kill(rt: &Runtime, id: &str, sig: Signal, all: bool) -> Result<(), OciError> {
    let (dir, record) = rt.root.open(id)?;
    let status = record.status(&dir);
    if status == Status::Stopped {
        if !all {
            return Err(OciError::NotRunning);
        }
        // What a stopped container may have left (its init ended in a pod's shared pid
        // namespace, whose PID 1 is another's): containerd's shim sends exactly this.
        for pid in guest_pids(&record) {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), sig);
        }
        return Ok(());
    }
    if status == Status::Created && ends_a_process(sig) {
        kill_sandbox(&record);
        wait_gone(&record, Duration::from_secs(10));
        return Ok(());
    }
    let targets: Vec<i32> = if all {
        guest_pids(&record)
    } else {
        vec![record.init_pid]
    };
    for pid in targets {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), sig);
    }
    Ok(())
}

/// Kills the container's process (its reaper sees SIGKILL, as with runc) and the sentry (which
/// takes the gofer with it).
fn kill_sandbox(record: &Record) {
    if record.alive() {
        let _ = nix::sys::signal::kill(Pid::from_raw(record.pid), Signal::SIGKILL);
    }
    if record.sentry_alive() {
        let _ = nix::sys::signal::kill(Pid::from_raw(record.sentry_pid), Signal::SIGKILL);
    }
}

/// Whether `sig`'s default action ends a process (all but the ignored and stopping ones).
fn ends_a_process(sig: Signal) -> bool {
    !matches!(
        sig,
        Signal::SIGCHLD
            | Signal::SIGCONT
            | Signal::SIGSTOP
            | Signal::SIGTSTP
            | Signal::SIGTTIN
            | Signal::SIGTTOU
            | Signal::SIGURG
            | Signal::SIGWINCH
    )
}

/// Host pids of the guest's processes (the cgroup's, but for the sentry and the gofer).
pub fn guest_pids(record: &Record) -> Vec<i32> {
    let Some(cg) = &record.cgroup else {
        return rootless::pid_namespace_members(record.init_pid);
    };
    Cgroup::load(cg)
        .pids()
        .into_iter()
        .filter(|&p| p != record.sentry_pid && p != record.gofer_pid)
        .collect()
}

/// What a `create` killed before it wrote its record left: its sentry (noted as soon as it was
/// forked; the gofer and init end with it, as with any sentry's end), the cgroup once empty,
/// and the directory. Such an id could be neither started nor created again, so a plain delete
/// removes it too. Only the noted sentry is killed, and the cgroup removed only if that sentry
/// was still there: otherwise the cgroup may be another container's by now (the same id under
/// another --root, made after the sentry died).
fn delete_unrecorded(dir: ContainerDir) -> Result<(), OciError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let sentry = dir.noted_sentry();
    if let Some(sentry) = sentry {
        let _ = nix::sys::signal::kill(Pid::from_raw(sentry), Signal::SIGKILL);
        while matches!(state::process_start(sentry), Some((_, false))) {
            if Instant::now() > deadline {
                return Err(OciError::Sandbox(SandboxError::Setup(format!(
                    "the sentry (pid {sentry}) of a half-made container did not exit"
                ))));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // Without our sentry, the cgroup is no longer ours to remove: its own teardown removes it,
    // or another container has taken it.
    if let Some(path) = dir.noted_cgroup().filter(|_| sentry.is_some()) {
        let cg = Cgroup::load(&path);
        let settle = Instant::now() + Duration::from_secs(3);
        while !cg.pids().is_empty() && Instant::now() < settle {
            std::thread::sleep(Duration::from_millis(10));
        }
        if cg.pids().is_empty() {
            cg.destroy()?;
        }
    }
    dir.remove()
}

/// Deletes a container: a stopped (or never started) one at once; a running one only with
/// `force`, which kills it (SIGKILL, as runc: containerd gives a stuck shim no more time).
/// Leaves nothing behind.
pub fn delete(rt: &Runtime, id: &str, force: bool) -> Result<(), OciError> {
    let (dir, record) = match rt.root.open(id) {
        Ok(opened) => opened,
        Err(OciError::NotFound(e)) => {
            return match rt.root.open_unrecorded(id)? {
                Some(dir) => delete_unrecorded(dir),
                None => Err(OciError::NotFound(e)),
            }
        }
        Err(e) => return Err(e),
    };
    let status = record.status(&dir);
    match status {
        // A sentry may outlive its init by its teardown (or hang on a dead guest): it goes too.
        Status::Stopped => kill_sandbox(&record),
        Status::Created => kill_sandbox(&record),
        Status::Running | Status::Paused if force => {
            if let Some(cg) = &record.cgroup {
                let _ = Cgroup::load(cg).set_frozen(false);
            }
            kill_sandbox(&record);
        }
        Status::Running | Status::Paused => {
            return Err(wrong(id, status, "delete without --force"))
        }
    }
    if !wait_gone(&record, Duration::from_secs(10)) {
        return Err(OciError::Sandbox(SandboxError::Setup(format!(
            "the sandbox of {id} (pid {}, sentry {}) did not exit",
            record.pid, record.sentry_pid
        ))));
    }
    // Processes the init left in a shared pid namespace (not PID 1's children, so not killed with
    // it) are still the container's: as runc, delete kills them.
    kill_leftovers(&record);
    let state = state_json(&record, Status::Stopped);
    if let Err(e) = hooks::run_all(&record.hooks.poststop, &state) {
        tracing::warn!("poststop: {e}");
    }
    if let Some(cg) = &record.cgroup {
        Cgroup::load(cg).destroy()?;
    }
    dir.remove()
}

/// SIGKILLs what is left of the guest and waits (up to 10 s) until nothing is.
fn kill_leftovers(record: &Record) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = guest_pids(record);
        if left.is_empty() || Instant::now() >= deadline {
            return;
        }
        for pid in left {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Blocks until the container has stopped; returns its exit status (`None` if the sandbox was
/// killed before it could record one).
pub fn wait(rt: &Runtime, id: &str) -> Result<Option<i32>, OciError> {
    let (dir, record) = rt.root.open(id)?;
    let path = dir.path.clone();
    // Not holding the lock while waiting: delete and kill must go on.
    drop(dir);
    // The sentry records the status, then exits.
    // SAFETY: pidfd_open takes integers; a valid fd is ours alone.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, record.sentry_pid, 0) };
    if fd >= 0 && record.sentry_alive() {
        // SAFETY: the kernel just returned this fd; nothing else owns it.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
        let mut poll = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(&fd),
            nix::poll::PollFlags::POLLIN,
        )];
        while let Err(nix::errno::Errno::EINTR) =
            nix::poll::poll(&mut poll, nix::poll::PollTimeout::NONE)
        {}
    }
    Ok(std::fs::read_to_string(path.join("exit"))
        .ok()
        .and_then(|s| s.trim().parse().ok()))
}

/// The OCI state, with the OOM annotation once the OOM killer has struck.
pub fn state(rt: &Runtime, id: &str) -> Result<serde_json::Value, OciError> {
    let (dir, record) = rt.root.open(id)?;
    let status = record.status(&dir);
    let mut v = record.oci_state(status);
    if let Some(cg) = &record.cgroup {
        if Cgroup::load(cg).oom_kills() > 0 {
            v["annotations"][OOM_ANNOTATION] = "true".into();
        }
    }
    if let (Status::Stopped, Some(code)) = (status, dir.exit_code()) {
        v["annotations"]["io.github.rvisor.exit-status"] = code.to_string().into();
    }
    Ok(v)
}

/// `exec`'s arguments.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// Container id.
    pub id: String,
    /// The process.
    pub process: oci_spec::runtime::Process,
    /// Return once it runs.
    pub detach: bool,
    /// Where to write its pid (the keeper's: it exits with the process's status).
    pub pid_file: Option<PathBuf>,
    /// Where to send the pty master (when the process has a terminal).
    pub console_socket: Option<PathBuf>,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
}

/// Runs a process in a running container; returns its exit status (0 when detached).
pub fn exec(rt: &Runtime, req: &ExecRequest) -> Result<i32, OciError> {
    let (dir, record) = rt.root.open(&req.id)?;
    let status = record.status(&dir);
    if status != Status::Running {
        return Err(wrong(&req.id, status, "exec"));
    }
    if record.platform == crate::sandbox::PlatformKind::Ptrace.name() {
        return Err(OciError::Unsupported(format!(
            "exec into container {}: it runs on the ptrace platform, whose tracer cannot take \
             in a process from outside the sandbox (create it with --platform=seccomp-notify)",
            req.id
        )));
    }
    let mut spec = convert::join_spec(&req.process)?;
    // The container's own profile binds every process in it, as runc's does.
    if let Some(profile) = &record.seccomp {
        spec.seccomp = super::seccomp::compile_profile(profile)?;
    }
    if !nix::unistd::geteuid().is_root() {
        rootless::check_exec_ids(record.init_pid, spec.uid, spec.gid, &spec.groups)?;
    }
    spec.preserve_fds = req.preserve_fds;
    let console = match (&req.console_socket, req.process.terminal().unwrap_or(false)) {
        (Some(path), true) => Some(connect_console(path)?),
        (None, true) => {
            return Err(OciError::Spec(
                "a terminal was asked for: --console-socket is required".into(),
            ))
        }
        _ => None,
    };
    let prog = sentry::filter::compile(
        sentry::filter::TrapReturn::UserNotif,
        sentry::filter::ReadOpens::here(),
    )
    .map_err(SandboxError::from)?;
    let (started_read, started_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| SandboxError::Sys {
            what: "pipe".into(),
            errno: e,
        })?;
    let fds = sandbox::join::JoinFds {
        control: control::connect_to(&dir.control_socket())?,
        console,
        started: started_write,
    };
    let cg = record.cgroup.as_deref().map(Cgroup::load);
    let lock = dir.lock_fd();
    let prelude = move || -> Result<(), String> {
        // SAFETY: the keeper's copy of the lock fd is closed and never used again.
        unsafe { libc::close(lock) };
        match &cg {
            Some(cg) => cg.add(std::process::id() as i32).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    };
    let keeper = sandbox::join::spawn(Pid::from_raw(record.init_pid), &spec, &prog, fds, &prelude)?;
    // The process may run long: kill and delete must not wait for us.
    drop(dir);
    let mut message = String::new();
    let _ = std::io::Read::read_to_string(&mut std::fs::File::from(started_read), &mut message);
    if !message.is_empty() {
        let _ = nix::sys::wait::waitpid(keeper, None);
        return Err(OciError::Sandbox(SandboxError::Setup(message)));
    }
    // The process runs: the keeper (ours, not the guest's) stops counting as a guest task.
    if let Some(cg) = record.cgroup.as_deref().map(Cgroup::load) {
        if let Err(e) = cg.leave_guest_only(&[keeper.as_raw()]) {
            tracing::warn!("exec keeper {keeper}: {e}");
        }
    }
    if let Some(path) = &req.pid_file {
        write_pid_file(path, keeper.as_raw())?;
    }
    if req.detach {
        return Ok(0);
    }
    Ok(sandbox::wait_sentry(keeper))
}
