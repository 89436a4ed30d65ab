//! The gofer process: builds the sandbox tree in its own mount namespace, creates the guest init
//! (whose namespaces are children of its own, so its rights over the tree cover the guest's),
//! then confines itself to the tree and serves the sentry until the guest is gone.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use gofer::IdMap;
use nix::unistd::Pid;
use sentry::filter::BpfProgram;

use super::container::Attach;
use super::error::{Context, SandboxError};
use super::mount_api::pivot_here;
use super::sentry_proc::SETUP_FAILED;
use super::spec::{Network, SandboxSpec};
use super::{caps, clone, fdpass, gofer_tree, idmap, init, ns_join, signals};

/// Capabilities the gofer keeps: to act as any guest identity on the tree, and to signal the
/// guest init (CAP_CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID, KILL, SETGID, SETUID).
const GOFER_CAPS: [u32; 8] = [0, 1, 2, 3, 4, 5, 6, 7];

/// The channels the gofer is handed.
#[derive(Debug)]
pub struct Channels {
    /// Closed by the sentry once our id maps are written (rootless only).
    pub maps_written: Option<OwnedFd>,
    /// Setup failures, and (from the guest init) the seccomp listener, go to the sentry here.
    pub report: OwnedFd,
    /// The request socket. Its first message, before any request, is the sentry's guard
    /// cgroup (see `unix_guard`) to create the guest init in, or word that there is none.
    pub requests: OwnedFd,
}

/// Runs as the gofer; never returns.
pub fn main(
    spec: &SandboxSpec,
    prog: &BpfProgram,
    ch: Channels,
    rootless: bool,
    attach: &Attach,
) -> ! {
    if !attach.detached() {
        // SAFETY: PR_SET_PDEATHSIG takes integers only. If the sentry dies, so do we, and the
        // guest init with us. (A container's gofer is its caller's child: it sees the sentry go
        // when the request socket closes, and kills the init then.)
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    }
    if let Some(fd) = &ch.maps_written {
        let mut byte = [0u8; 1];
        if !matches!(nix::unistd::read(fd.as_raw_fd(), &mut byte), Ok(1)) {
            std::process::exit(SETUP_FAILED);
        }
    }
    // What the init will inherit from us, as the sentry records it.
    let outside = super::handed_in::objects(3 + spec.container.preserve_fds);
    match start(spec, prog, &ch, rootless, attach) {
        Ok((init, root, map)) => {
            // The init's end: the sentry sees it close when the init execs the command.
            drop(ch.report);
            let server = gofer::Gofer::new(root, map)
                .with_host_sockets(spec.container.host_sockets)
                .with_outside(&outside);
            serve(init, server, ch.requests)
        }
        Err(e) => {
            fdpass::send_failure(ch.report.as_fd(), &e.to_string());
            std::process::exit(SETUP_FAILED)
        }
    }
}

fn init_flags(spec: &SandboxSpec) -> libc::c_int {
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

/// The guest init, as the gofer holds it.
struct Init {
    pid: Pid,
    /// Set when the init is not our child (a container's is its runtime caller's, for the
    /// caller's reaper to collect its status): how we see it end.
    pidfd: Option<OwnedFd>,
    /// Created in the sentry's guard cgroup.
    in_guard: bool,
}

fn start(
    spec: &SandboxSpec,
    prog: &BpfProgram,
    ch: &Channels,
    rootless: bool,
    attach: &Attach,
) -> Result<(Init, OwnedFd, IdMap), SandboxError> {
    // Opened while /proc and /tmp are still the host's (the tree's staging tmpfs covers /tmp).
    let joins = ns_join::open(&spec.container.joins)?;
    let tree = gofer_tree::build(spec, rootless)?;
    // Made by the sentry while we built the tree.
    let guard = match fdpass::recv(ch.requests.as_fd(), 1) {
        Ok((word, guard)) if !word.is_empty() => guard,
        _ => return Err(SandboxError::Setup("the sentry went away".into())),
    };
    let (maps_read, maps_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe".into())?;
    let mut flags = joins.clone_flags(init_flags(spec));
    // A container's init is its runtime caller's child (so the caller's reaper, containerd's
    // shim, gets its exit status), as the sentry and we are.
    if attach.detached() {
        flags |= libc::CLONE_PARENT;
    }
    let as_init = || {
        // SAFETY: the write end is ours to close in the child; the init only reads.
        unsafe { libc::close(maps_write.as_raw_fd()) };
        // SAFETY: the request socket is ours to close in the child; the guest must not hold it.
        unsafe { libc::close(ch.requests.as_raw_fd()) };
        if let Some(fd) = &ch.maps_written {
            // SAFETY: as above, for the maps pipe inherited from the sentry.
            unsafe { libc::close(fd.as_raw_fd()) };
        }
        if let Some(fd) = &guard {
            // SAFETY: as above, for the guard cgroup's directory (the init is in it already).
            unsafe { libc::close(fd.as_raw_fd()) };
        }
        // SAFETY: the init takes over the report socket; the gofer's `Channels` are never dropped
        // in this process (init::main never returns), so the fd has one owner.
        let report = unsafe { OwnedFd::from_raw_fd(ch.report.as_raw_fd()) };
        // SAFETY: as above, for the maps pipe's read end.
        let maps = unsafe { OwnedFd::from_raw_fd(maps_read.as_raw_fd()) };
        init::main(spec, prog, &tree, maps, report, attach, rootless);
    };
    let init = if joins.is_empty() {
        // SAFETY: the gofer is single-threaded here; the child only runs `init::main`, which
        // never returns.
        match unsafe {
            clone::fork_into_cgroup_with_pidfd(
                flags,
                guard.as_ref().map(|g| g.as_fd()),
                "creating the sandbox namespaces",
            )?
        } {
            (clone::Cloned::Parent(pid), pidfd, in_guard) => Init {
                pid,
                pidfd: pidfd.filter(|_| attach.detached()),
                in_guard,
            },
            (clone::Cloned::Child, _, _) => {
                as_init();
                std::process::exit(SETUP_FAILED)
            }
        }
    } else {
        via_joiner(&joins, flags, attach.detached(), as_init)?
    };
    drop(guard);
    drop(maps_read);
    if attach.detached() {
        super::container::release_stdio();
    }
    let map = match &spec.container.id_map {
        Some(map) if !rootless => map.clone(),
        _ => idmap::guest_map(spec.uid, spec.gid, &spec.container.extra_gids, rootless),
    };
    let pid = init.pid;
    let write = |name: &str, content: String| {
        std::fs::write(format!("/proc/{pid}/{name}"), &content).map_err(|e| {
            SandboxError::Invalid(format!("writing /proc/{pid}/{name} ({content:?}): {e}"))
        })
    };
    // A joined user namespace has its maps already.
    if !joins.joins_user() {
        write("uid_map", idmap::lines(&map.uids))?;
        write("gid_map", idmap::lines(&map.gids))?;
    }
    nix::unistd::write(&maps_write, &[1]).ctx(|| "releasing the guest init".into())?;
    // Confine ourselves to the tree: from now on "/" is the sandbox root.
    nix::unistd::chdir(&tree).ctx(|| "entering the tree".into())?;
    pivot_here()?;
    let root = super::mount_api::hold(Path::new("/"))?;
    Ok((init, root, map))
}

/// Creates the init through a joiner: a process that enters the namespaces to join (and their
/// user namespace), then clones the init with the rest new, reports its pid and exits.
fn via_joiner(
    joins: &ns_join::Opened,
    flags: libc::c_int,
    detached: bool,
    as_init: impl FnOnce(),
) -> Result<Init, SandboxError> {
    let (pid_read, pid_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe".into())?;
    let joiner_flags = if detached { libc::CLONE_PARENT } else { 0 };
    // SAFETY: the gofer is single-threaded here; the joiner only enters namespaces, clones and
    // exits.
    match unsafe { clone::fork_into(joiner_flags, "forking the namespace joiner")? } {
        clone::Cloned::Child => {
            drop(pid_read);
            if let Err(e) = joins.enter() {
                super::report!("rvisor: {e}");
                // SAFETY: _exit takes an integer; nothing of ours must run at exit in a fork.
                unsafe { libc::_exit(SETUP_FAILED) };
            }
            // SAFETY: single-threaded (a fork of the gofer); the child only runs `as_init`.
            match unsafe { clone::fork_into(flags, "creating the sandbox namespaces") } {
                Ok(clone::Cloned::Child) => as_init(),
                Ok(clone::Cloned::Parent(pid)) => {
                    let _ = nix::unistd::write(&pid_write, &pid.as_raw().to_le_bytes());
                }
                Err(e) => super::report!("rvisor: {e}"),
            }
            // SAFETY: as above.
            unsafe { libc::_exit(0) }
        }
        clone::Cloned::Parent(joiner) => {
            drop(pid_write);
            let mut bytes = [0u8; 4];
            let n = nix::unistd::read(pid_read.as_raw_fd(), &mut bytes).unwrap_or(0);
            if !detached {
                let _ = nix::sys::wait::waitpid(joiner, None);
            }
            if n != 4 {
                return Err(SandboxError::Setup(
                    "joining the namespaces failed (see the message above)".into(),
                ));
            }
            let pid = Pid::from_raw(i32::from_le_bytes(bytes));
            // Not reaped before our caller exits: the pid is still the init's.
            let pidfd = clone::pidfd_open(pid)?;
            Ok(Init {
                pid,
                pidfd: detached.then_some(pidfd),
                in_guard: false,
            })
        }
    }
}

/// Serves `server` (the tree, for the sandbox of `init`) on `requests`.
fn serve(init: Init, mut server: gofer::Gofer, requests: OwnedFd) -> ! {
    let Init {
        pid: init,
        pidfd,
        in_guard,
    } = init;
    let killer = pidfd.as_ref().and_then(|fd| fd.try_clone().ok());
    // The sentry learns the init's host pid from us (the init cannot know it), and whether the
    // init was born in the guard cgroup.
    let mut hello = [0u8; 5];
    hello[..4].copy_from_slice(&init.as_raw().to_le_bytes());
    hello[4] = u8::from(in_guard);
    let _ = rvisor_protocol::send_frame(requests.as_fd(), &hello, &[]);
    // A truncate past the guest's RLIMIT_FSIZE, made under that limit, makes the kernel send
    // us SIGXFSZ (the sentry raises the guest's own): it must not end the gofer. The guest
    // init exists already and keeps its own dispositions.
    // SAFETY: signal() with SIG_IGN installs no handler code.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    if let Err(e) = caps::keep_only(&GOFER_CAPS) {
        super::report!("rvisor: gofer: dropping capabilities: {}", e.desc());
        std::process::exit(SETUP_FAILED);
    }
    // SAFETY: PR_SET_DUMPABLE takes integers only; the guest must not ptrace or read us.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0) };
    // The guest init's end is our exit status: a thread waits for it (signals stay blocked in
    // every thread and are taken there).
    // The filter below goes onto every thread at once: the thread must have finished starting
    // (glibc registers rseq and a robust list as it starts).
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = started_tx.send(());
        match &pidfd {
            // Not ours to reap: its status goes to our caller's reaper (and, through the
            // sentry's watch, to the exit file).
            Some(pidfd) => {
                clone::wait_any_exit(&[pidfd]);
                std::process::exit(0)
            }
            None => std::process::exit(signals::supervise(init, false).code()),
        }
    });
    let _ = started_rx.recv();
    // The gofer holds an fd on each Unix socket file it bound for the guest (socket.rs).
    if let Ok((_, hard)) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
    {
        let _ =
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard);
    }
    if let Err(e) = gofer::filter::install() {
        super::report!("rvisor: gofer: {e}");
        std::process::exit(SETUP_FAILED);
    }
    if let Err(e) = server.serve(requests.as_fd()) {
        super::report!("rvisor: gofer: {e}");
    }
    // The sentry is gone: the guest must not outlive it.
    match &killer {
        Some(fd) => clone::pidfd_kill(fd, libc::SIGKILL),
        None => {
            let _ = nix::sys::signal::kill(init, nix::sys::signal::Signal::SIGKILL);
        }
    }
    std::process::exit(SETUP_FAILED)
}
