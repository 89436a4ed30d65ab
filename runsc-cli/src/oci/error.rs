//! Errors of the OCI layer; each variant's message is what the user sees.

use crate::sandbox::SandboxError;

/// What went wrong with a container command.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The id has a character or length runc would refuse too.
    #[error("invalid container id {0:?}: use 1 to 255 of [A-Za-z0-9_+.-], not starting with '.'")]
    InvalidId(String),
    /// No container has this id.
    #[error("container {0:?} does not exist")]
    NotFound(String),
    /// The id is taken.
    #[error("container {0:?} already exists")]
    Exists(String),
    /// kill on a stopped container (runc's words, which containerd's shim matches to treat the
    /// container as already gone).
    #[error("container not running")]
    NotRunning,
    /// The command is not allowed in the container's state.
    #[error("container {id:?} is {status}: cannot {action}")]
    WrongState {
        /// The container.
        id: String,
        /// Its status.
        status: &'static str,
        /// What was asked.
        action: &'static str,
    },
    /// The bundle's config.json is missing or wrong.
    #[error("{0}")]
    Spec(String),
    /// Something the spec asks for that rvisor does not do.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A cgroup operation failed.
    #[error("cgroup {path}: {message}")]
    Cgroup {
        /// The cgroup.
        path: String,
        /// What failed.
        message: String,
    },
    /// A cgroup could not be made (unprivileged, usually: EACCES).
    #[error("cgroup {path}: cannot create it: {err}")]
    CgroupUnavailable {
        /// The cgroup.
        path: String,
        /// Why.
        err: std::io::Error,
    },
    /// A hook failed.
    #[error("{0}")]
    Hook(String),
    /// A file the caller named (`--pid-file`) could not be written.
    #[error("{path}: {err}")]
    File {
        /// The file.
        path: String,
        /// Why.
        err: std::io::Error,
    },
    /// The state directory could not be read or written.
    #[error("state {path}: {err}")]
    State {
        /// The file or directory.
        path: String,
        /// The error.
        err: std::io::Error,
    },
    /// Starting or talking to the sandbox failed.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}
