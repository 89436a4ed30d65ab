//! Unix sockets the guest reaches by path (connect, sendto): only those the sandbox made.
//!
//! A volume, or the root with `--overlay=none`, exposes the host's own sockets (a container
//! engine's, an agent's, a desktop bus). The gofer remembers every socket it binds for the guest
//! and hands out a handle only to those, unless the user opened host sockets (`--host-uds=open`,
//! as runsc). The handle is an O_PATH fd on the very inode checked: the sentry connects through
//! it, so a rename between check and use changes nothing.

use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{fstat, fstatat, SFlag};
use rvisor_protocol::Loc;

use crate::server::{Gofer, Outcome};

/// Records the socket just bound at `path` (from the working directory) as the sandbox's own.
pub(crate) fn record_bound(g: &mut Gofer, path: &[u8]) {
    let Ok(path) = std::ffi::CString::new(path) else {
        return;
    };
    if let Ok(st) = fstatat(None, path.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
        g.bound.insert((st.st_dev, st.st_ino));
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
    if !g.host_sockets && !g.bound.contains(&(st.st_dev, st.st_ino)) {
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
