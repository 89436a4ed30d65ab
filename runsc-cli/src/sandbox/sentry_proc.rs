//! The sentry process: creates the guest init in new namespaces, writes its id maps, receives
//! the seccomp listener, and services trapped calls until the init exits.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::unistd::Pid;
use sentry::filter::BpfProgram;
use sentry::gofer_client::GoferClient;
use sentry::platform::ptrace::watch::{self, ExitSlot};
use sentry::platform::ptrace::TracerThread;
use sentry::platform::{Platform, Ptrace, SeccompNotify};
use sentry::sandbox::{Sandbox, SandboxConfig};
use sentry::server::{Sentry, Worker};
use sentry::strace::Strace;

use super::container::Attach;
use super::error::{Context, SandboxError};
use super::fdpass::{self, InitReport};
use super::spec::{Network, PlatformKind, SandboxSpec};
use super::{clone, confine, control, gofer_proc, signals};

/// A sentry on whichever platform was asked for.
type AnySentry = Sentry<Box<dyn Platform>>;

/// Exit code for a sandbox that could not be started.
pub const SETUP_FAILED: i32 = 125;

/// How the sentry was started.
pub enum Role<'a> {
    /// `rvisor do`: `runtime` is our parent, whose death must end us; start at once.
    Attached {
        /// The runtime's pid.
        runtime: Pid,
    },
    /// An OCI container: we outlive the runtime that created us, report "created" and wait for
    /// `start` on the control socket. `prelude` runs first (joining the cgroup).
    Detached {
        /// Runs before anything else; an error fails the create.
        prelude: &'a dyn Fn() -> Result<(), String>,
    },
}

impl std::fmt::Debug for Role<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::Attached { runtime } => write!(f, "Attached({runtime})"),
            Role::Detached { .. } => f.write_str("Detached"),
        }
    }
}

/// Runs as the sentry; never returns.
pub fn main(
    spec: &SandboxSpec,
    prog: &BpfProgram,
    strace: Option<Box<dyn Write + Send>>,
    role: Role<'_>,
    attach: Attach,
) -> ! {
    // Fail closed: a panic in any thread of the sentry (a worker's) ends the whole process, and
    // with it the guest, rather than leaving that worker's callers waiting for ever. The gofer
    // and the init are forked from here and keep the hook.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::abort();
    }));
    // Before the sentry has threads, when growing its fd table costs no RCU grace period.
    super::fd_table::reserve();
    // What the guest will inherit from us (the init is forked from here), before a container's
    // stdio is released.
    let outside = super::handed_in::objects(3 + spec.container.preserve_fds);
    let container = matches!(role, Role::Detached { .. });
    match role {
        Role::Attached { runtime } => {
            // SAFETY: PR_SET_PDEATHSIG takes integers only.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            if nix::unistd::getppid() != runtime {
                std::process::exit(SETUP_FAILED);
            }
        }
        Role::Detached { prelude } => {
            let _ = nix::unistd::setsid();
            if let Err(e) = prelude() {
                fail(&attach, &e);
            }
        }
    }
    let mut started = match start(spec, prog, &attach) {
        Ok(started) => started,
        Err(e) => fail(&attach, &e.to_string()),
    };
    let exit = ExitSlot::new();
    // A container's init waits for `start`, maybe long, in namespaces a pod's other containers
    // may join: on seccomp-notify the exit watch holds (traces) it from now on, so no one else
    // can trace it meanwhile (it is not dumpable either). The ptrace platform's tracer seizes it
    // at start: an idle tracer would leave its stops (a signal, its death) unanswered.
    let mut held = None;
    if attach.created.is_some() {
        // The guest has its stdio now; ours would keep the caller's pipes open (its reaper
        // waits for them). Before our filesystem is confined: /dev/null is opened by path.
        super::container::release_stdio();
    }
    if container && spec.platform == PlatformKind::SeccompNotify {
        held = Some(take_hold(&mut started, spec.platform, &exit, &attach));
    }
    let start_conn = match &attach.created {
        Some(created) => {
            let line = format!("ok {} {}\n", started.init, started.gofer);
            let _ = nix::unistd::write(created, line.as_bytes());
            match wait_for_start(&attach, started.ends.as_ref()) {
                Some(c) => Some(c),
                // Nobody will start us: the runtime deleted the container, or its init died.
                None => kill_and_exit(started.gofer),
            }
        }
        None => None,
    };
    let state = start_conn.as_ref().map_or(&b""[..], |(_, s)| s.as_slice());
    let held = match held {
        Some(held) => held,
        None => take_hold(&mut started, spec.platform, &exit, &attach),
    };
    let supervision = match release(&started, state, held) {
        Ok(supervision) => supervision,
        Err(e) => {
            if let Some((conn, _)) = &start_conn {
                let _ = control::answer(conn.as_fd(), Err(&e));
            }
            fail(&attach, &e)
        }
    };
    let report = started.report.take();
    let mut answering = None;
    if let (Some((conn, _)), Some(report)) = (start_conn, report) {
        // Start hooks and the spec's filters come next, supervised (so we must be serving);
        // the socket closes when the init execs the command. Only then is the container
        // started, and `start` answered (its poststart hooks follow).
        answering = Some(std::thread::spawn(move || {
            let result = match fdpass::receive(report.as_fd()) {
                Ok(InitReport::Failed(message)) => Err(message),
                _ => Ok(()),
            };
            let _ = control::answer(
                conn.as_fd(),
                result.as_ref().map(|()| "").map_err(String::as_str),
            );
        }));
    }
    serve(
        spec,
        started,
        supervision,
        strace,
        (attach, exit),
        answering,
        outside,
    )
}

/// Reports a setup failure (to the creating runtime, or on stderr) and exits.
fn fail(attach: &Attach, message: &str) -> ! {
    match &attach.created {
        Some(created) => {
            let _ = nix::unistd::write(created, format!("err {message}\n").as_bytes());
        }
        None => super::report!("rvisor: {message}"),
    }
    std::process::exit(SETUP_FAILED)
}

/// As [`fail`], killing the gofer (and so the guest) first.
fn fail_killing(attach: &Attach, gofer: Pid, message: &str) -> ! {
    let _ = nix::sys::signal::kill(gofer, nix::sys::signal::Signal::SIGKILL);
    fail(attach, message)
}

/// How the init is held before it is released.
enum Held {
    /// seccomp-notify: its listener comes at release (a container's init is traced by the exit
    /// watch already).
    Listener,
    /// ptrace: the tracer thread has seized it; the reserved socket's guest end goes to it.
    Tracer(TracerThread, Box<Ptrace>, OwnedFd),
}

/// Makes sure the init is in the guard cgroup, confines our filesystem, then takes hold of the
/// init: on ptrace the tracer thread seizes it; on seccomp-notify a container's init gets the
/// exit watch (it is not our child: we learn its end as its tracer, and it dies with us).
fn take_hold(
    started: &mut Started,
    platform: PlatformKind,
    exit: &Arc<ExitSlot>,
    attach: &Attach,
) -> Held {
    // Where the gofer could not create it there, moved while we still see the host's cgroup2.
    if let Some(guard) = started.guard.take() {
        if started.in_guard {
            started.guard = Some(guard);
        } else {
            match guard.move_in(started.init) {
                Ok(()) => started.guard = Some(guard),
                Err(e) => {
                    tracing::debug!(
                        "no Unix-socket guard cgroup ({e}); the sentry's checks stand alone"
                    );
                    guard.remove();
                }
            }
        }
    }
    if let Some(guard) = &mut started.guard {
        guard.settled();
    }
    // Before a tracer thread exists, which must share the confined view: no host filesystem of
    // our own from here on.
    let confined = if started.confined {
        Ok(())
    } else {
        confine_filesystem()
    };
    if let Err(e) = confined {
        fail_killing(attach, started.gofer, &e);
    }
    // Every serving thread starts after this one joins the guest's UTS namespace, so uname and
    // sethostname meet the names the guest's kernel serves. Rootless this fails, and the sentry
    // keeps the names itself.
    if let Err(e) = sentry::syscalls::join_guest_uts(started.init.as_raw()) {
        tracing::debug!(
            "the guest's UTS namespace stays the kernel's alone: {}",
            e.desc()
        );
    }
    let held = match platform {
        PlatformKind::SeccompNotify => {
            if started.ends.is_some() {
                watch::spawn(started.init, Arc::clone(exit))
                    .map(|()| Held::Listener)
                    .map_err(|e| format!("watching the guest: {e}"))
            } else {
                Ok(Held::Listener)
            }
        }
        PlatformKind::Ptrace => TracerThread::spawn(started.init, Arc::clone(exit))
            .map(|(tracer, platform, guest_end)| {
                Held::Tracer(tracer, Box::new(platform), guest_end)
            })
            .map_err(|e| format!("tracing the guest: {e}")),
    };
    held.unwrap_or_else(|e| fail_killing(attach, started.gofer, &e))
}

/// Makes the sentry undumpable (the guest must not ptrace or read it) and takes its host
/// filesystem away.
fn confine_filesystem() -> Result<(), String> {
    // SAFETY: PR_SET_DUMPABLE takes integers only.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0) };
    confine::sentry_filesystem().map_err(|e| format!("confining the sentry: {e}"))
}

fn kill_and_exit(gofer: Pid) -> ! {
    let _ = nix::sys::signal::kill(gofer, nix::sys::signal::Signal::SIGKILL);
    std::process::exit(SETUP_FAILED)
}

/// Serves `stats` until `start` arrives; returns its connection and the state it carries.
/// `None`: the control socket failed, or the init ended while it waited.
fn wait_for_start(attach: &Attach, ends: Option<&Ends>) -> Option<(OwnedFd, Vec<u8>)> {
    let listener = attach.control.as_ref()?;
    loop {
        if let Some(ends) = ends {
            let mut polls = [
                nix::poll::PollFd::new(listener.as_fd(), nix::poll::PollFlags::POLLIN),
                nix::poll::PollFd::new(ends.init.as_fd(), nix::poll::PollFlags::POLLIN),
            ];
            match nix::poll::poll(&mut polls, nix::poll::PollTimeout::NONE) {
                Ok(_) if polls[1].revents().is_some_and(|r| !r.is_empty()) => return None,
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(_) => return None,
            }
            if polls[0].revents().is_none_or(|r| r.is_empty()) {
                continue;
            }
        }
        match control::accept(listener.as_fd()) {
            Ok((conn, control::Request::Start(state))) => return Some((conn, state)),
            Ok((conn, _)) => {
                let _ = control::answer(conn.as_fd(), Err("the container is not started"));
            }
            Err(_) => return None,
        }
    }
}

/// How the sentry holds the guest once it is started.
enum Supervision {
    /// The seccomp listener.
    Listener(OwnedFd),
    /// The tracer thread that seized the init, and the platform to use on it.
    Tracer(TracerThread, Box<Ptrace>),
}

/// Starts the prepared init and takes it under supervision: receives its listener, or seizes it
/// from a new tracer thread.
fn release(started: &Started, state: &[u8], held: Held) -> Result<Supervision, String> {
    let report = started.report.as_ref().ok_or("no report socket")?;
    fdpass::send_start(report.as_fd(), state).map_err(|e| format!("starting the guest: {e}"))?;
    let died = || "the guest died while starting".to_string();
    match (fdpass::receive(report.as_fd()), held) {
        (Ok(InitReport::Ready(fd)), Held::Listener) => {
            let listener = fdpass::take_fd(started.init.as_raw(), fd)
                .map_err(|e| format!("taking the guest's seccomp listener: {e}"))?;
            fdpass::send_taken(report.as_fd()).map_err(|_| died())?;
            Ok(Supervision::Listener(listener))
        }
        (Ok(InitReport::Traceable), Held::Tracer(tracer, platform, guest_end)) => {
            fdpass::send_seized(report.as_fd(), guest_end.as_fd()).map_err(|_| died())?;
            match fdpass::receive(report.as_fd()) {
                Ok(InitReport::Traced) => Ok(Supervision::Tracer(tracer, platform)),
                Ok(InitReport::Failed(message)) => Err(message),
                _ => Err(died()),
            }
        }
        (Ok(InitReport::Failed(message)), _) => Err(message),
        (Ok(_), _) => Err("the guest asked for another platform".into()),
        _ => Err(died()),
    }
}

/// Pidfds of a container's gofer and init, whose ends we watch (they are not ours to reap).
struct Ends {
    gofer: OwnedFd,
    init: OwnedFd,
}

/// What the sentry holds once the sandbox is up.
struct Started {
    gofer: Pid,
    init: Pid,
    /// A container's: its gofer and init are not our children.
    ends: Option<Ends>,
    /// The guest's Unix-socket guard cgroup, removed when the sandbox ends.
    guard: Option<super::unix_guard::UnixGuard>,
    /// The gofer created the init in `guard` already.
    in_guard: bool,
    /// Our filesystem is confined already.
    confined: bool,
    /// Until the guest runs its command.
    report: Option<OwnedFd>,
    requests: OwnedFd,
}

/// Whether `ns` is our own network namespace (the runtime's, which we still are in) or the host
/// init's. The OCI layer refuses such a path already; this checks the very file joined, so a
/// path swapped since cannot give the guest the host's network.
fn is_host_netns(ns: &std::fs::File) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let id = |m: std::fs::Metadata| (m.dev(), m.ino());
    let target = id(ns.metadata()?);
    let own = id(std::fs::metadata("/proc/self/ns/net")?);
    let init = std::fs::metadata("/proc/1/ns/net").ok().map(id);
    Ok(target == own || Some(target) == init)
}

fn join_netns(spec: &SandboxSpec) -> Result<(), SandboxError> {
    if let Network::Join(path) = &spec.network {
        let invalid = |what: String| {
            SandboxError::Invalid(format!("network namespace {}: {what}", path.display()))
        };
        let ns = std::fs::File::open(path).map_err(|e| invalid(e.to_string()))?;
        match is_host_netns(&ns) {
            Ok(false) => {}
            Ok(true) => return Err(invalid("the host's own: refusing to join it".into())),
            Err(e) => return Err(invalid(format!("cannot tell it from the host's: {e}"))),
        }
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .ctx(|| format!("joining network namespace {}", path.display()))?;
    }
    Ok(())
}

fn start(spec: &SandboxSpec, prog: &BpfProgram, attach: &Attach) -> Result<Started, SandboxError> {
    let mut guard = None;
    match create(spec, prog, attach, &mut guard) {
        Ok(mut started) => {
            started.guard = guard;
            Ok(started)
        }
        Err(e) => {
            if let Some(guard) = &guard {
                guard.remove();
            }
            Err(e)
        }
    }
}

/// Creates the gofer (which creates the init), and the guard cgroup (in `guard`) for the init
/// to be created in, then waits for the sandbox to be built.
fn create(
    spec: &SandboxSpec,
    prog: &BpfProgram,
    attach: &Attach,
    guard: &mut Option<super::unix_guard::UnixGuard>,
) -> Result<Started, SandboxError> {
    let rootless = !nix::unistd::geteuid().is_root();
    join_netns(spec)?;
    let (maps_read, maps_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe".into())?;
    let seqpacket = || {
        socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .ctx(|| "socketpair".into())
    };
    let (report_sentry, report_child) = seqpacket()?;
    let (requests_sentry, requests_gofer) = seqpacket()?;
    // The gofer needs its own user namespace to mount when we are unprivileged.
    let mut flags = libc::CLONE_NEWNS;
    if rootless {
        flags |= libc::CLONE_NEWUSER;
    }
    // A container's gofer is its runtime caller's child, as its init will be (see gofer_proc):
    // the caller's reaper collects them all, and each of us watches the others through pidfds.
    if attach.detached() {
        flags |= libc::CLONE_PARENT;
    }
    // SAFETY: the sentry is single-threaded here; the child only runs `gofer_proc::main`, which
    // never returns.
    let (cloned, gofer_fd) = unsafe { clone::fork_into_with_pidfd(flags, "creating the gofer")? };
    let gofer = match cloned {
        clone::Cloned::Parent(pid) => pid,
        clone::Cloned::Child => {
            drop(maps_write);
            drop(report_sentry);
            drop(requests_sentry);
            let ch = gofer_proc::Channels {
                maps_written: rootless.then_some(maps_read),
                report: report_child,
                requests: requests_gofer,
            };
            gofer_proc::main(spec, prog, ch, rootless, attach);
        }
    };
    drop(maps_read);
    drop(report_child);
    drop(requests_gofer);
    let kill_gofer = |e: SandboxError| {
        let _ = nix::sys::signal::kill(gofer, nix::sys::signal::Signal::SIGKILL);
        e
    };
    // Only an unprivileged gofer waits for its maps (and so holds the pipe's read end).
    if rootless {
        write_gofer_maps(gofer).map_err(kill_gofer)?;
        nix::unistd::write(&maps_write, &[1]).ctx(|| "releasing the gofer".into())?;
    }
    drop(maps_write);
    // While the gofer builds the tree, and while we still see the host's cgroup2: the kernel's
    // backstop behind our socket checks. The gofer waits for it (or for word that there is
    // none) to create the init in it.
    *guard = super::unix_guard::prepare(attach.detached());
    if let Err(e) = fdpass::send(
        requests_sentry.as_fd(),
        &[u8::from(guard.is_some())],
        guard.as_ref().and_then(|g| g.dir()),
    ) {
        // The gofer is gone already (it could not build the tree, say): its report says why.
        if let Ok(InitReport::Failed(message)) = fdpass::receive(report_sentry.as_fd()) {
            return Err(kill_gofer(SandboxError::Setup(message)));
        }
        return Err(e)
            .ctx(|| "handing the gofer the guard cgroup".into())
            .map_err(kill_gofer);
    }
    // `rvisor do`: nothing of the host's filesystem is needed from here on, so we take it away
    // while the init builds the guest's view, not after. (A container's sentry still opens
    // /dev/null by path once created.)
    let confined = !attach.detached();
    if confined {
        confine_filesystem()
            .map_err(SandboxError::Setup)
            .map_err(kill_gofer)?;
    }
    match fdpass::receive(report_sentry.as_fd()).ctx(|| "waiting for the sandbox".into())? {
        InitReport::Prepared => {}
        InitReport::Failed(message) => return Err(SandboxError::Setup(message)),
        _ => return Err(SandboxError::Setup("the sandbox died during setup".into())),
    }
    let mut hello = rvisor_protocol::FrameBuf::default();
    let mut no_fds = Vec::new();
    rvisor_protocol::recv_frame(requests_sentry.as_fd(), &mut hello, &mut no_fds)
        .map_err(|e| SandboxError::Setup(format!("the gofer did not report: {e}")))?;
    let (init, in_guard) = <[u8; 5]>::try_from(hello.frame())
        .map(|b| {
            let pid = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            (Pid::from_raw(pid), b[4] == 1)
        })
        .map_err(|_| SandboxError::Setup("malformed report from the gofer".into()))?;
    // Alive (it waits for `start`), so the pid is still its.
    let ends = match gofer_fd.filter(|_| attach.detached()) {
        Some(gofer_fd) => Some(Ends {
            gofer: gofer_fd,
            init: clone::pidfd_open(init)?,
        }),
        None => None,
    };
    Ok(Started {
        gofer,
        init,
        ends,
        guard: None,
        in_guard,
        confined,
        report: Some(report_sentry),
        requests: requests_sentry,
    })
}

/// Maps the gofer's root to us: an unprivileged gofer is root of its own user namespace only.
fn write_gofer_maps(gofer: Pid) -> Result<(), SandboxError> {
    let proc_file = |name: &str, content: &str| {
        std::fs::write(format!("/proc/{gofer}/{name}"), content).map_err(|e| {
            SandboxError::Invalid(format!("writing /proc/{gofer}/{name} ({content:?}): {e}"))
        })
    };
    proc_file("uid_map", &format!("0 {} 1\n", nix::unistd::geteuid()))?;
    proc_file("setgroups", "deny")?;
    proc_file("gid_map", &format!("0 {} 1\n", nix::unistd::getegid()))
}

fn serve(
    spec: &SandboxSpec,
    started: Started,
    supervision: Supervision,
    strace: Option<Box<dyn Write + Send>>,
    (attach, exit): (Attach, Arc<ExitSlot>),
    answering: Option<std::thread::JoinHandle<()>>,
    outside: Vec<(u64, u64)>,
) -> ! {
    let Started {
        gofer,
        init: init_pid,
        ends,
        in_guard: _,
        confined: _,
        guard,
        requests,
        report,
    } = started;
    drop(report);
    // No exec, mount or namespace changes from here on. A tracer (or a container's exit watch)
    // keeps ptrace.
    let tracer = matches!(supervision, Supervision::Tracer(..)) || ends.is_some();
    if let Err(e) = sentry::own_filter::install(tracer) {
        fail_killing(&attach, gofer, &format!("confining the sentry: {e}"));
    }
    // The task table holds pidfds for every live guest thread.
    if let Ok((_, hard)) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
    {
        let _ =
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard);
    }
    let mut config = SandboxConfig {
        hostname: spec.hostname.clone(),
        domainname: guest_domainname(spec),
        kernel_unix_guard: guard.is_some(),
        host_network: spec.network == Network::Host,
        outside,
        reserved_fd: matches!(supervision, Supervision::Tracer(..))
            .then_some(sentry::platform::ptrace::reserved::RESERVED_FD),
        ..Default::default()
    };
    if let Some(release) = &spec.release {
        config.release.clone_from(release);
    }
    let mut client = GoferClient::new(requests);
    if spec.no_fd_cache {
        client = client.without_cache();
    }
    let sandbox = Sandbox::new(&config)
        .with_gofer(client)
        .with_ids(host_ids(spec));
    // Workers open cached handles as the caller: a root sentry switches to each caller's file
    // identity (an unprivileged one is already the only user its guest can be).
    if nix::unistd::geteuid().is_root() {
        sentry::file_identity::enable_switching();
    }
    sandbox.tasks.set_init_pid(init_pid.as_raw());
    let (platform, tracer): (Box<dyn Platform>, _) = match supervision {
        Supervision::Listener(listener) => (Box::new(SeccompNotify::new(listener)), None),
        Supervision::Tracer(tracer, platform) => (platform, Some(tracer)),
    };
    tracing::debug!(platform = platform.name(), "sentry serving");
    // The tracer is the only thread that may serve a ptraced guest.
    let workers = if tracer.is_some() {
        1
    } else {
        spec.workers.max(1)
    };
    let sentry =
        Arc::new(Sentry::new(platform, sandbox, strace.map(Strace::new)).with_workers(workers));
    if let Some(control) = attach.control {
        control_thread(control, Arc::clone(&sentry));
    }
    let work = move |sentry: &AnySentry| run_worker(sentry.worker(), init_pid);
    let stats = spec.stats;
    // Once the guest is gone: the sandbox's status, and our exit (which ends the workers).
    let end = || -> ! {
        let code = match &ends {
            // The gofer exits with the guest init's status.
            None => {
                let ended = signals::supervise(gofer, false);
                if let signals::Ended::Signaled(sig) = ended {
                    super::report!("rvisor: the gofer was killed by {sig}; the guest died with it");
                }
                Some(ended.code())
            }
            Some(ends) => {
                if clone::wait_any_exit(&[&ends.init, &ends.gofer]) == 1 {
                    super::report!("rvisor: the gofer died; the guest dies with it");
                    clone::pidfd_kill(&ends.init, libc::SIGKILL);
                }
                let code = exit
                    .wait(std::time::Duration::from_secs(10))
                    .map(watch::exit_code);
                // The gofer follows the init; our end must mean the sandbox's (its cgroup is
                // removed next).
                clone::pidfd_kill(&ends.gofer, libc::SIGKILL);
                clone::wait_any_exit(&[&ends.gofer]);
                code
            }
        };
        // `start` is answered before we go (a command that ends at once must not make it fail);
        // the init's end closed the socket that thread waits on.
        if let Some(answering) = answering {
            let _ = answering.join();
        }
        // What the rate limit left out of the denial log since its last line.
        let unshown = sentry::server::take_unshown_denials();
        if unshown > 0 {
            tracing::warn!(target: "rvisor::denied", "{unshown} more denials not shown");
        }
        if stats {
            super::report!("{}", stats_line(&sentry));
        }
        if let Some(guard) = &guard {
            guard.remove();
        }
        if let (Some(file), Some(code)) = (&attach.exit_status, code) {
            let _ = nix::unistd::write(file, format!("{code}\n").as_bytes());
        }
        std::process::exit(code.unwrap_or(SETUP_FAILED))
    };
    let _ = crossbeam::thread::scope(|scope| match &tracer {
        // Only the thread that seized the guest may serve it.
        Some(tracer) => {
            let sentry = Arc::clone(&sentry);
            tracer.run(move || work(&sentry));
            end()
        }
        None => {
            scope.spawn(|_| end());
            // This thread's worker is the first (the one that serves alone until calls
            // overlap): it runs already, where a new thread would first have to be scheduled
            // while the guest waits for the answer to its first call (a millisecond on a busy
            // machine).
            let first = sentry.worker();
            for _ in 1..sentry.workers() {
                scope.spawn(|_| work(&sentry));
            }
            run_worker(first, init_pid);
            // The guest is gone: the thread above ends the process once the gofer is.
            loop {
                std::thread::park();
            }
        }
    });
    std::process::exit(SETUP_FAILED)
}

/// Runs one worker until the guest is gone.
fn run_worker(mut worker: Worker<'_, Box<dyn Platform>>, init_pid: nix::unistd::Pid) {
    if let Err(e) = worker.run() {
        super::report!("rvisor: sentry worker failed: {e}");
        // Fail closed: without a worker the guest would hang; kill it instead.
        let _ = nix::sys::signal::kill(init_pid, nix::sys::signal::Signal::SIGKILL);
    }
}

/// The domain name the guest's kernel starts with: the spec's, else the one its new UTS
/// namespace inherited from ours (Linux's own default is "(none)").
fn guest_domainname(spec: &SandboxSpec) -> String {
    if !spec.container.domainname.is_empty() {
        return spec.container.domainname.clone();
    }
    nix::sys::utsname::uname()
        .map(|u| u.domainname().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "(none)".into())
}

/// Serves the control socket of a started container: counters, and processes joining through
/// `rvisor exec` (each listener gets a worker of its own, sharing the sandbox).
fn control_thread(control: OwnedFd, sentry: Arc<AnySentry>) {
    // Every sentry serving this sandbox: the counters are their sum. A joined sentry whose
    // worker has ended (we hold its last reference) is retired: counted, and its listener closed.
    let mut all = vec![sentry];
    let mut retired = [0u64; 4];
    std::thread::spawn(move || loop {
        let Ok((conn, request)) = control::accept(control.as_fd()) else {
            return;
        };
        let sentry = Arc::clone(&all[0]);
        all.retain(|s| {
            let done = Arc::strong_count(s) == 1;
            if done {
                for (sum, n) in retired.iter_mut().zip(counters(s)) {
                    *sum += n;
                }
            }
            !done
        });
        let answer = match request {
            control::Request::Stats => Ok(stats_json(&all, retired)),
            control::Request::Start(_) => Err("the container is already started".to_string()),
            // The joining process took on its identity itself; the kernel holds it.
            control::Request::Exec { listener, outside } => {
                match sentry.shared_sandbox().hand_in(&outside) {
                    Err(e) => Err(format!("recording the fds handed in: {e}")),
                    Ok(()) => {
                        let joined: Arc<AnySentry> = Arc::new(Sentry::new(
                            Box::new(SeccompNotify::new(listener)),
                            sentry.shared_sandbox(),
                            None,
                        ));
                        all.push(Arc::clone(&joined));
                        std::thread::spawn(move || {
                            if let Err(e) = joined.worker().run() {
                                super::report!("rvisor: sentry worker (exec) failed: {e}");
                            }
                        });
                        Ok(String::new())
                    }
                }
            }
        };
        let _ = control::answer(conn.as_fd(), answer.as_deref().map_err(|e| e.as_str()));
    });
}

/// trapped, emulated, continued, denied.
fn counters(sentry: &AnySentry) -> [u64; 4] {
    use std::sync::atomic::Ordering::Relaxed;
    let s = &sentry.stats;
    [&s.trapped, &s.emulated, &s.continued, &s.denied].map(|c| c.load(Relaxed))
}

/// The counters of every sentry of the sandbox (and of retired ones), summed, as JSON for
/// `rvisor events`.
fn stats_json(all: &[Arc<AnySentry>], retired: [u64; 4]) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let Some(sentry) = all.first() else {
        return "{}".into();
    };
    let mut sum = retired;
    for s in all {
        for (total, n) in sum.iter_mut().zip(counters(s)) {
            *total += n;
        }
    }
    let mut fields = vec![
        ("trapped", sum[0]),
        ("emulated", sum[1]),
        ("continued", sum[2]),
        ("denied", sum[3]),
    ];
    if let Some(g) = &sentry.sandbox().gofer {
        let gs = &g.stats;
        fields.extend([
            ("gofer_round_trips", gs.round_trips.load(Relaxed)),
            ("cache_hits", gs.cache_hits.load(Relaxed)),
            ("cache_misses", gs.cache_misses.load(Relaxed)),
        ]);
    }
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    format!("{{{}}}", body.join(","))
}

fn stats_line(sentry: &AnySentry) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let s = &sentry.stats;
    let mut line = format!(
        "rvisor stats: trapped={} emulated={} continued={} denied={}",
        s.trapped.load(Relaxed),
        s.emulated.load(Relaxed),
        s.continued.load(Relaxed),
        s.denied.load(Relaxed)
    );
    if let Some(g) = &sentry.sandbox().gofer {
        let gs = &g.stats;
        line.push_str(&format!(
            " gofer_round_trips={} cache_hits={} cache_misses={} batches={} batched_paths={}",
            gs.round_trips.load(Relaxed),
            gs.cache_hits.load(Relaxed),
            gs.cache_misses.load(Relaxed),
            gs.batches.load(Relaxed),
            gs.batched_paths.load(Relaxed)
        ));
    }
    line
}

/// How host ids show in the guest: as root, its uid and 0 map to themselves; unprivileged, our
/// id is the sandbox's.
fn host_ids(spec: &SandboxSpec) -> sentry::sandbox::HostIds {
    let pairs = |sandbox: u32, ours: u32| {
        if nix::unistd::geteuid().is_root() {
            vec![(0, 0), (sandbox, sandbox)]
        } else {
            vec![(ours, sandbox)]
        }
    };
    sentry::sandbox::HostIds {
        uids: pairs(spec.uid, nix::unistd::geteuid().as_raw()),
        gids: pairs(spec.gid, nix::unistd::getegid().as_raw()),
        // As root the guest's map is the container's, or every id to itself.
        ranges: nix::unistd::geteuid().is_root().then(|| {
            let m = spec
                .container
                .id_map
                .clone()
                .unwrap_or_else(crate::sandbox::idmap::container_map);
            let triples = |r: &[gofer::IdRange]| -> sentry::sandbox::IdRanges {
                r.iter().map(|r| (r.inside, r.outside, r.count)).collect()
            };
            (triples(&m.uids), triples(&m.gids))
        }),
    }
}
