//! Errors of launching and supervising a sandbox.

use nix::errno::Errno;

/// Why a sandbox could not be started or supervised.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A system call made while setting up failed.
    #[error("{what}: {errno}")]
    Sys {
        /// What was being done.
        what: String,
        /// The kernel's answer.
        errno: Errno,
    },
    /// The spec asks for something that cannot be done.
    #[error("{0}")]
    Invalid(String),
    /// The guest init reported a failure before running the command.
    #[error("sandbox setup failed: {0}")]
    Setup(String),
    /// The seccomp filter could not be built.
    #[error(transparent)]
    Filter(#[from] sentry::filter::FilterError),
}

/// Attaches a description to an errno.
pub trait Context<T> {
    /// Wraps the error with `what` was being done.
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, SandboxError>;
}

impl<T> Context<T> for Result<T, Errno> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, SandboxError> {
        self.map_err(|errno| SandboxError::Sys {
            what: what(),
            errno,
        })
    }
}
