//! Launching a sandbox: the runtime (this process) forks the sentry, which creates the gofer,
//! which creates the guest.
//!
//! ```text
//! rvisor (runtime) ── sentry ── gofer ── guest init (PID 1, new user/pid/mount/uts/ipc/net ns) ── command
//!                       ▲  ▲ requests ┘        │ seccomp listener
//!                       │  └────────────────────┘
//! ```
//! Each link is tied to its parent's life: if the runtime, the sentry or the gofer dies, the
//! guest dies.

mod caps;
mod clone;
mod confine;
mod console;
pub mod container;
pub mod control;
pub mod error;
mod fd_table;
mod fdpass;
mod gofer_proc;
mod gofer_tree;
mod guest_root;
mod handed_in;
pub mod hooks;
mod identity;
pub mod idmap;
mod init;
pub mod join;
mod mount_api;
mod mount_point;
pub mod ns_join;
mod relay;
mod sentry_proc;
pub mod signals;
pub mod spec;
pub(crate) mod unix_guard;

/// `eprintln!` that never panics: a sandbox process reporting an error on a stderr that fails
/// (closed, a full disk) loses the line but keeps its exit code.
macro_rules! report {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use report;

use std::io::Write;

use nix::unistd::{fork, ForkResult, Pid};
use sentry::filter;

pub use container::{Attach, CapSets, ContainerSettings, Device, GuestMount, Rlimit, Tmpfs};
pub use error::SandboxError;
pub use spec::{Network, Overlay, PlatformKind, SandboxSpec, Volume};

use error::Context;

fn validate(spec: &SandboxSpec) -> Result<(), SandboxError> {
    if spec.args.is_empty() {
        return Err(SandboxError::Invalid("no command given".into()));
    }
    if !spec.root.is_dir() {
        return Err(SandboxError::Invalid(format!(
            "root {} is not a directory",
            spec.root.display()
        )));
    }
    for v in &spec.volumes {
        if !v.source.exists() {
            return Err(SandboxError::Invalid(format!(
                "volume source {} does not exist",
                v.source.display()
            )));
        }
    }
    if !spec.cwd.is_absolute() {
        return Err(SandboxError::Invalid(format!(
            "working directory {} is not absolute",
            spec.cwd.display()
        )));
    }
    Ok(())
}

/// Runs `spec` in a new sandbox and returns its exit code (128+N for death by signal N).
pub fn run(spec: &SandboxSpec, strace: Option<Box<dyn Write + Send>>) -> Result<i32, SandboxError> {
    validate(spec)?;
    let prog = filter::compile(spec.platform.trap_return(), filter::ReadOpens::here())?;
    signals::block().ctx(|| "blocking signals".into())?;
    let runtime = nix::unistd::getpid();
    // SAFETY: the runtime is single-threaded here; the child only runs `sentry_proc::main`.
    match unsafe { fork() }.ctx(|| "forking the sentry".into())? {
        ForkResult::Child => sentry_proc::main(
            spec,
            &prog,
            strace,
            sentry_proc::Role::Attached { runtime },
            Attach::default(),
        ),
        ForkResult::Parent { child } => Ok(wait_sentry(child)),
    }
}

/// Waits for the sentry (forwarding signals to it); returns the sandbox's exit code.
pub fn wait_sentry(sentry: Pid) -> i32 {
    match signals::supervise(sentry, false) {
        signals::Ended::Exited(code) => code,
        signals::Ended::Signaled(sig) => {
            report!("rvisor: the sentry was killed by {sig}; the guest died with it");
            128 + sig as i32
        }
    }
}

/// The processes of a created sandbox, as host pids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Created {
    /// The sentry: the sandbox's top process, which exits with the container's status.
    pub sentry: Pid,
    /// The gofer.
    pub gofer: Pid,
    /// The guest init (the container's process, once started).
    pub init: Pid,
}

/// Creates a sandbox that outlives the caller: built, supervised from `start` on, and waiting
/// for `start` on `attach.control`. `prelude` runs first in the sentry (joining the cgroup);
/// `forked` is told the sentry's pid as soon as it exists.
pub fn create(
    spec: &SandboxSpec,
    strace: Option<Box<dyn Write + Send>>,
    mut attach: Attach,
    prelude: &dyn Fn() -> Result<(), String>,
    forked: &dyn Fn(Pid),
) -> Result<Created, SandboxError> {
    validate(spec)?;
    let prog = filter::compile(spec.platform.trap_return(), filter::ReadOpens::here())?;
    signals::block().ctx(|| "blocking signals".into())?;
    let (report_read, report_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe".into())?;
    attach.created = Some(report_write);
    // SAFETY: the runtime is single-threaded here; the child only runs `sentry_proc::main`.
    let sentry = match unsafe { fork() }.ctx(|| "forking the sentry".into())? {
        ForkResult::Child => {
            drop(report_read);
            sentry_proc::main(
                spec,
                &prog,
                strace,
                sentry_proc::Role::Detached { prelude },
                attach,
            )
        }
        ForkResult::Parent { child } => child,
    };
    forked(sentry);
    drop(attach);
    // One line: the sentry keeps the pipe open (EOF means it died).
    let mut line = String::new();
    let _ = std::io::BufRead::read_line(
        &mut std::io::BufReader::new(std::fs::File::from(report_read)),
        &mut line,
    );
    let text = line.trim_end();
    if let Some(pids) = text.strip_prefix("ok ") {
        let mut it = pids.split(' ').filter_map(|p| p.parse::<i32>().ok());
        if let (Some(init), Some(gofer)) = (it.next(), it.next()) {
            return Ok(Created {
                sentry,
                gofer: Pid::from_raw(gofer),
                init: Pid::from_raw(init),
            });
        }
    }
    let _ = nix::sys::signal::kill(sentry, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(sentry, None);
    Err(SandboxError::Invalid(match text.strip_prefix("err ") {
        Some(message) => message.to_string(),
        None => "the sandbox died during setup".into(),
    }))
}
