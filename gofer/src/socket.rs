//! Unix sockets the guest reaches by path (connect, sendto): only those the sandbox made.
//!
//! A volume, or the root with `--overlay=none`, exposes the host's own sockets (a container
//! engine's, an agent's, a desktop bus). The gofer remembers every socket it binds for the guest
//! and hands out a handle only to those, unless the user opened host sockets (`--host-uds=open`,
//! as runsc). The handle is an O_PATH fd on the very inode checked: the sentry connects through
//! it, so a rename between check and use changes nothing.

use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::stat::{fstat, SFlag};
use rvisor_protocol::Loc;

use crate::server::{Gofer, Outcome};

/// Sockets recorded before the unlinked ones are swept out.
const SWEEP_AT: usize = 256;
/// Most sockets recorded at once (each holds an fd of the gofer's).
pub(crate) const MAX_BOUND: usize = 4096;

/// Records the socket just bound at `path` (from the working directory) as the sandbox's own,
/// holding an O_PATH handle on it: while that is open its inode number cannot be given to
/// another file (a host socket made later in a volume, at a number the guest's socket freed,
/// once passed for the guest's). A socket file that is gone (no link left) no longer needs one.
pub(crate) fn record_bound(g: &mut Gofer, path: &[u8]) {
    if g.bound.len() >= SWEEP_AT {
        g.bound
            .retain(|_, pin| fstat(pin.as_raw_fd()).is_ok_and(|st| st.st_nlink > 0));
    }
    if g.bound.len() >= MAX_BOUND {
        tracing::warn!(
            "gofer: {MAX_BOUND} Unix socket files of the sandbox exist; a new one is not \
             connectable by path"
        );
        return;
    }
    let Ok(path) = std::ffi::CString::new(path) else {
        return;
    };
    let Ok(pin) = crate::resolve::openat2(
        libc::AT_FDCWD,
        &path,
        (libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) as u64,
        0,
        0,
    ) else {
        return;
    };
    if let Ok(st) = fstat(pin.as_raw_fd()) {
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFSOCK {
            g.bound.insert((st.st_dev, st.st_ino), pin);
        }
    }
}

/// An O_PATH handle on the socket `at` names (symlinks followed inside the root), if the guest
/// may reach it: ENOENT where nothing is, ECONNREFUSED for a non-socket (as connect says) and for
/// a socket the sandbox did not make.
pub fn reachable(g: &mut Gofer, at: &Loc<'_>) -> Result<Outcome, Errno> {
    let pin = g.root.lookup(&mut g.scratch, at, false)?;
    let st = fstat(pin.as_raw_fd())?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFSOCK {
        return Err(Errno::ECONNREFUSED);
    }
    if !g.host_sockets && !g.bound.contains_key(&(st.st_dev, st.st_ino)) {
        g.refused_sockets += 1;
        if g.refused_sockets.is_power_of_two() {
            tracing::warn!(
                target: "rvisor::denied",
                "refused a host Unix socket at {} ({} so far; the sandbox did not create it, \
                 --host-uds=open allows it)",
                String::from_utf8_lossy(at.path),
                g.refused_sockets
            );
        }
        return Err(Errno::ECONNREFUSED);
    }
    Ok(Outcome::Fd(pin))
}
