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
use super::{caps, clone, fdpass, gofer_tree, idmap, init, signals};

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
    /// The request socket.
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
    // SAFETY: PR_SET_PDEATHSIG takes integers only. If the sentry dies, so do we, and the guest
    // init with us.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    if let Some(fd) = &ch.maps_written {
        let mut byte = [0u8; 1];
        if !matches!(nix::unistd::read(fd.as_raw_fd(), &mut byte), Ok(1)) {
            std::process::exit(SETUP_FAILED);
        }
    }
    match start(spec, prog, &ch, rootless, attach) {
        Ok((init, root, map)) => {
            // The init's end: the sentry sees it close when the init execs the command.
            drop(ch.report);
            serve(init, root, map, ch.requests, spec.container.host_sockets)
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

fn start(
    spec: &SandboxSpec,
    prog: &BpfProgram,
    ch: &Channels,
    rootless: bool,
    attach: &Attach,
) -> Result<(Pid, OwnedFd, IdMap), SandboxError> {
    let tree = gofer_tree::build(spec, rootless)?;
    let (maps_read, maps_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe".into())?;
    // SAFETY: the gofer is single-threaded here; the child only runs `init::main`, which never
    // returns.
    let cloned = unsafe { clone::fork_into(init_flags(spec), "creating the sandbox namespaces")? };
    let init = match cloned {
        clone::Cloned::Parent(pid) => pid,
        clone::Cloned::Child => {
            drop(maps_write);
            // SAFETY: the request socket is ours to close in the child; the guest must not hold it.
            unsafe { libc::close(ch.requests.as_raw_fd()) };
            if let Some(fd) = &ch.maps_written {
                // SAFETY: as above, for the maps pipe inherited from the sentry.
                unsafe { libc::close(fd.as_raw_fd()) };
            }
            // SAFETY: the init takes over the report socket; the gofer's `Channels` are never dropped
            // in this process (init::main never returns), so the fd has one owner.
            let report = unsafe { OwnedFd::from_raw_fd(ch.report.as_raw_fd()) };
            init::main(spec, prog, &tree, maps_read, report, attach);
        }
    };
    drop(maps_read);
    if attach.detached() {
        super::container::release_stdio();
    }
    let map = match &spec.container.id_map {
        Some(map) if !rootless => map.clone(),
        _ => idmap::guest_map(spec.uid, spec.gid, &spec.container.extra_gids, rootless),
    };
    let write = |name: &str, content: String| {
        std::fs::write(format!("/proc/{init}/{name}"), &content).map_err(|e| {
            SandboxError::Invalid(format!("writing /proc/{init}/{name} ({content:?}): {e}"))
        })
    };
    write("uid_map", idmap::lines(&map.uids))?;
    write("gid_map", idmap::lines(&map.gids))?;
    nix::unistd::write(&maps_write, &[1]).ctx(|| "releasing the guest init".into())?;
    // Confine ourselves to the tree: from now on "/" is the sandbox root.
    nix::unistd::chdir(&tree).ctx(|| "entering the tree".into())?;
    pivot_here()?;
    let root = super::mount_api::hold(Path::new("/"))?;
    Ok((init, root, map))
}

/// `host_sockets`: `--host-uds=open`.
fn serve(init: Pid, root: OwnedFd, map: IdMap, requests: OwnedFd, host_sockets: bool) -> ! {
    // The sentry learns the init's host pid from us (the init cannot know it).
    let _ = rvisor_protocol::send_frame(requests.as_fd(), &init.as_raw().to_le_bytes(), &[]);
    if let Err(e) = caps::keep_only(&GOFER_CAPS) {
        eprintln!("rvisor: gofer: dropping capabilities: {}", e.desc());
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
        let ended = signals::supervise(init, false);
        std::process::exit(ended.code())
    });
    let _ = started_rx.recv();
    if let Err(e) = gofer::filter::install() {
        eprintln!("rvisor: gofer: {e}");
        std::process::exit(SETUP_FAILED);
    }
    let mut server = gofer::Gofer::new(root, map).with_host_sockets(host_sockets);
    if let Err(e) = server.serve(requests.as_fd()) {
        eprintln!("rvisor: gofer: {e}");
    }
    // The sentry is gone: the guest must not outlive it.
    let _ = nix::sys::signal::kill(init, nix::sys::signal::Signal::SIGKILL);
    std::process::exit(SETUP_FAILED)
}
