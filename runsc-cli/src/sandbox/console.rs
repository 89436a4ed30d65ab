//! `process.terminal`: a new pty in the guest's own devpts; the slave becomes the command's
//! controlling terminal and stdio, the master goes to the `--console-socket` (as runc does).

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};

use super::error::{Context, SandboxError};
use super::fdpass;

/// Opens a pty in the current `/dev/pts`, sends its master over `console`, and makes its slave
/// this process's controlling terminal and stdio. Runs in the guest's mount namespace.
pub fn attach(console: &OwnedFd) -> Result<(), SandboxError> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .ctx(|| "opening /dev/ptmx".into())?;
    grantpt(&master).ctx(|| "grantpt".into())?;
    unlockpt(&master).ctx(|| "unlockpt".into())?;
    let name = ptsname_r(&master).ctx(|| "ptsname".into())?;
    let slave: OwnedFd = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map(|fd| {
        // SAFETY: open just returned this fd; nothing else owns it.
        unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
    })
    .ctx(|| format!("opening {name}"))?;
    // SAFETY: `master` is an open pty master; the borrow ends with the call.
    let master_fd = unsafe { BorrowedFd::borrow_raw(master.as_raw_fd()) };
    // SAFETY: as above, for the console socket, which the caller owns.
    let console_fd = unsafe { BorrowedFd::borrow_raw(console.as_raw_fd()) };
    fdpass::send(console_fd, name.as_bytes(), Some(master_fd))
        .ctx(|| "sending the pty master to the console socket".into())?;
    drop(master);
    nix::unistd::setsid().ctx(|| "setsid".into())?;
    // SAFETY: TIOCSCTTY takes an integer argument; `slave` is an open tty.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(nix::errno::Errno::last()).ctx(|| "making the pty the controlling tty".into());
    }
    for target in 0..3 {
        nix::unistd::dup2(slave.as_raw_fd(), target).ctx(|| "dup2 of the pty".into())?;
    }
    Ok(())
}
