//! Taking the sentry's host filesystem away once the sandbox is up.

use std::os::fd::AsRawFd;
use std::path::Path;

use super::error::{Context, SandboxError};
use super::mount_api::{hold, make_private, mount_fs, pivot_here};

/// As root: a private mount namespace, an empty tmpfs as `/`, and the host's procfs (detached) as
/// the working directory, which is then all the sentry can name. Unprivileged, the sentry cannot
/// make a mount namespace without a user namespace of its own (which would cut it off from the
/// guest's), so it keeps the caller's view; its seccomp filter applies either way.
pub fn sentry_filesystem() -> Result<(), SandboxError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let proc_dir = hold(Path::new("/proc"))?;
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .ctx(|| "sentry mount namespace".into())?;
    make_private()?;
    mount_fs(
        "tmpfs",
        "/tmp",
        super::mount_api::SAFE,
        Some("mode=0500,size=4k"),
    )?;
    nix::unistd::chdir("/tmp").ctx(|| "entering the sentry's empty root".into())?;
    pivot_here()?;
    nix::unistd::fchdir(proc_dir.as_raw_fd()).ctx(|| "entering procfs".into())?;
    sentry::procfs::set_confined();
    Ok(())
}
