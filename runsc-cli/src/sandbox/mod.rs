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
pub mod error;
mod fdpass;
mod gofer_proc;
mod gofer_tree;
mod guest_root;
pub mod idmap;
mod init;
mod mount_api;
mod sentry_proc;
pub mod signals;
pub mod spec;

use std::io::Write;

use nix::unistd::{fork, ForkResult};
use sentry::filter::{self, TrapReturn};

pub use error::SandboxError;
pub use spec::{Network, Overlay, SandboxSpec, Volume};

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
    let prog = filter::compile(TrapReturn::UserNotif)?;
    signals::block().ctx(|| "blocking signals".into())?;
    let runtime = nix::unistd::getpid();
    // SAFETY: the runtime is single-threaded here; the child only runs `sentry_proc::main`.
    match unsafe { fork() }.ctx(|| "forking the sentry".into())? {
        ForkResult::Child => sentry_proc::main(spec, &prog, strace, runtime),
        ForkResult::Parent { child } => match signals::supervise(child, false) {
            signals::Ended::Exited(code) => Ok(code),
            signals::Ended::Signaled(sig) => {
                eprintln!("rvisor: the sentry was killed by {sig}; the guest died with it");
                Ok(128 + sig as i32)
            }
        },
    }
}
