//! The sentry process: creates the guest init in new namespaces, writes its id maps, receives
//! the seccomp listener, and services trapped calls until the init exits.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::unistd::Pid;
use sentry::filter::BpfProgram;
use sentry::gofer_client::GoferClient;
use sentry::platform::SeccompNotify;
use sentry::sandbox::{Sandbox, SandboxConfig};
use sentry::server::Sentry;
use sentry::strace::Strace;

use super::error::{Context, SandboxError};
use super::fdpass::{self, InitReport};
use super::spec::SandboxSpec;
use super::{clone, confine, gofer_proc, signals};

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
        Ok(started) => serve(spec, started, strace),
        Err(e) => {
            eprintln!("rvisor: {e}");
            std::process::exit(SETUP_FAILED)
        }
    }
}

/// What the sentry holds once the sandbox is up.
struct Started {
    gofer: Pid,
    init: Pid,
    listener: OwnedFd,
    requests: OwnedFd,
}

fn start(spec: &SandboxSpec, prog: &BpfProgram) -> Result<Started, SandboxError> {
    let rootless = !nix::unistd::geteuid().is_root();
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
    // SAFETY: the sentry is single-threaded here; the child only runs `gofer_proc::main`, which
    // never returns.
    let cloned = unsafe { clone::fork_into(flags, "creating the gofer")? };
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
            gofer_proc::main(spec, prog, ch, rootless);
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
    let listener =
        match fdpass::receive(report_sentry.as_fd()).ctx(|| "waiting for the sandbox".into())? {
            InitReport::Ready(listener) => listener,
            InitReport::Failed(message) => return Err(SandboxError::Setup(message)),
            InitReport::Silent => {
                return Err(SandboxError::Setup("the sandbox died during setup".into()))
            }
        };
    let mut hello = rvisor_protocol::FrameBuf::default();
    let mut no_fds = Vec::new();
    rvisor_protocol::recv_frame(requests_sentry.as_fd(), &mut hello, &mut no_fds)
        .map_err(|e| SandboxError::Setup(format!("the gofer did not report: {e}")))?;
    let init = <[u8; 4]>::try_from(hello.frame())
        .map(|b| Pid::from_raw(i32::from_le_bytes(b)))
        .map_err(|_| SandboxError::Setup("malformed report from the gofer".into()))?;
    Ok(Started {
        gofer,
        init,
        listener,
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

fn serve(spec: &SandboxSpec, started: Started, strace: Option<Box<dyn Write + Send>>) -> ! {
    let Started {
        gofer,
        init: init_pid,
        listener,
        requests,
    } = started;
    // SAFETY: PR_SET_DUMPABLE takes integers only; the guest must not ptrace or read us.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0) };
    // No host filesystem of our own from here on, and no exec, mount or namespace changes.
    let confined = confine::sentry_filesystem()
        .map_err(|e| e.to_string())
        .and_then(|()| sentry::own_filter::install().map_err(|e| e.to_string()));
    if let Err(e) = confined {
        eprintln!("rvisor: confining the sentry: {e}");
        let _ = nix::sys::signal::kill(gofer, nix::sys::signal::Signal::SIGKILL);
        std::process::exit(SETUP_FAILED);
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
        uid: spec.uid,
        gid: spec.gid,
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
    // Workers reopen cached handles: they must do so with the guest's file identity. As root the
    // sandbox ids are host ids; unprivileged, they are already ours.
    let fs_ids = nix::unistd::geteuid()
        .is_root()
        .then_some((spec.uid, spec.gid));
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
                if let Some((uid, gid)) = fs_ids {
                    // SAFETY: setfsgid changes only this thread's filesystem gid.
                    unsafe { libc::setfsgid(gid) };
                    // SAFETY: as above, for the uid.
                    unsafe { libc::setfsuid(uid) };
                }
                if let Err(e) = sentry.worker().run() {
                    eprintln!("rvisor: sentry worker failed: {e}");
                    // Fail closed: without a worker the guest would hang; kill it instead.
                    let _ = nix::sys::signal::kill(init_pid, nix::sys::signal::Signal::SIGKILL);
                }
            });
        }
        // The gofer exits with the guest init's status.
        let ended = signals::supervise(gofer, false);
        if let signals::Ended::Signaled(sig) = ended {
            eprintln!("rvisor: the gofer was killed by {sig}; the guest died with it");
        }
        if spec.stats {
            eprintln!("{}", stats_line(&sentry));
        }
        std::process::exit(ended.code())
    });
    std::process::exit(SETUP_FAILED)
}

fn stats_line(sentry: &Sentry<SeccompNotify>) -> String {
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
    }
}
