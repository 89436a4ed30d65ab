//! The sentry process: creates the guest init in new namespaces, writes its id maps, receives
//! the seccomp listener, and services trapped calls until the init exits.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::unistd::Pid;
use sentry::filter::BpfProgram;
use sentry::platform::SeccompNotify;
use sentry::sandbox::{Sandbox, SandboxConfig};
use sentry::server::Sentry;
use sentry::strace::Strace;

use super::error::{Context, SandboxError};
use super::fdpass::{self, InitReport};
use super::spec::{Network, SandboxSpec};
use super::{idmap, init, signals};

/// Exit code for a sandbox that could not be started.
pub const SETUP_FAILED: i32 = 125;

/// Runs as the sentry; never returns. `runtime` is our parent, whose death must end us.
pub fn main(
    spec: &SandboxSpec,
    prog: &BpfProgram,
    strace: Option<Box<dyn Write + Send>>,
    runtime: Pid,
) -> ! {
    // SAFETY: PR_SET_PDEATHSIG takes integers only.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    if nix::unistd::getppid() != runtime {
        std::process::exit(SETUP_FAILED);
    }
    match start(spec, prog) {
        Ok((init_pid, listener)) => serve(spec, init_pid, listener, strace),
        Err(e) => {
            eprintln!("rvisor: {e}");
            std::process::exit(SETUP_FAILED)
        }
    }
}

fn clone_flags(spec: &SandboxSpec) -> libc::c_int {
    let mut flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWCGROUP;
    if spec.network == Network::Loopback {
        flags |= libc::CLONE_NEWNET;
    }
    flags
}

fn start(spec: &SandboxSpec, prog: &BpfProgram) -> Result<(Pid, OwnedFd), SandboxError> {
    let (maps_read, maps_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe".into())?;
    let (report_sentry, report_init) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .ctx(|| "socketpair".into())?;
    // SAFETY: fork-like clone (no new stack, no CLONE_VM) of a single-threaded process: the child
    // gets a copy of our memory and only runs `init::main`, which never returns.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            clone_flags(spec) | libc::SIGCHLD,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid < 0 {
        return Err(nix::errno::Errno::last()).ctx(|| "creating the sandbox namespaces".into());
    }
    if pid == 0 {
        drop(maps_write);
        drop(report_sentry);
        init::main(spec, prog, maps_read, report_init);
    }
    let init_pid = Pid::from_raw(pid as i32);
    drop(maps_read);
    drop(report_init);
    let kill_init = |e: SandboxError| {
        let _ = nix::sys::signal::kill(init_pid, nix::sys::signal::Signal::SIGKILL);
        e
    };
    write_id_maps(init_pid, spec).map_err(kill_init)?;
    nix::unistd::write(&maps_write, &[1]).ctx(|| "releasing the guest init".into())?;
    drop(maps_write);
    match fdpass::receive(report_sentry.as_fd()).ctx(|| "waiting for the guest init".into())? {
        InitReport::Ready(listener) => Ok((init_pid, listener)),
        InitReport::Failed(message) => Err(SandboxError::Setup(message)),
        InitReport::Silent => Err(SandboxError::Setup(
            "the guest init died during setup".into(),
        )),
    }
}

fn write_id_maps(init: Pid, spec: &SandboxSpec) -> Result<(), SandboxError> {
    let rootless = !nix::unistd::geteuid().is_root();
    let proc_file = |name: &str, content: &str| {
        std::fs::write(format!("/proc/{init}/{name}"), content).map_err(|e| {
            SandboxError::Invalid(format!("writing /proc/{init}/{name} ({content:?}): {e}"))
        })
    };
    proc_file(
        "uid_map",
        &idmap::map(spec.uid, nix::unistd::geteuid().as_raw(), rootless),
    )?;
    if rootless {
        proc_file("setgroups", "deny")?;
    }
    proc_file(
        "gid_map",
        &idmap::map(spec.gid, nix::unistd::getegid().as_raw(), rootless),
    )
}

fn serve(
    spec: &SandboxSpec,
    init_pid: Pid,
    listener: OwnedFd,
    strace: Option<Box<dyn Write + Send>>,
) -> ! {
    // SAFETY: PR_SET_DUMPABLE takes integers only; the guest must not ptrace or read us.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0) };
    // The task table holds pidfds for every live guest thread.
    if let Ok((_, hard)) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
    {
        let _ =
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard);
    }
    let mut config = SandboxConfig {
        hostname: spec.hostname.clone(),
        uid: spec.uid,
        gid: spec.gid,
        ..Default::default()
    };
    if let Some(release) = &spec.release {
        config.release.clone_from(release);
    }
    let sandbox = Sandbox::new(&config);
    sandbox.tasks.set_init_pid(init_pid.as_raw());
    tracing::debug!(listener = listener.as_raw_fd(), "sentry serving");
    let sentry = Sentry::new(
        SeccompNotify::new(listener),
        sandbox,
        strace.map(Strace::new),
    );
    let workers = spec.workers.max(1);
    // Workers block in receive forever once the guest is gone; exiting the process ends them.
    let _ = crossbeam::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|_| {
                if let Err(e) = sentry.worker().run() {
                    eprintln!("rvisor: sentry worker failed: {e}");
                    // Fail closed: without a worker the guest would hang; kill it instead.
                    let _ = nix::sys::signal::kill(init_pid, nix::sys::signal::Signal::SIGKILL);
                }
            });
        }
        let ended = signals::supervise(init_pid, false);
        std::process::exit(ended.code())
    });
    std::process::exit(SETUP_FAILED)
}
