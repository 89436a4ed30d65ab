//! Thin wrappers over the mount API (open_tree, mount_setattr, move_mount) and mount(2).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};

use super::error::{Context, SandboxError};

/// `MOUNT_ATTR_RDONLY`.
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
/// `MOUNT_ATTR_NOSUID`.
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
/// `MOUNT_ATTR_NODEV`.
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
/// `MOUNT_ATTR_NOEXEC`.
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

pub fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

/// A detached recursive copy of the mount tree at `path`.
pub fn clone_tree(path: &Path) -> Result<OwnedFd, Errno> {
    let p = cstr(path);
    // SAFETY: open_tree takes a valid C string and integer flags and returns a new fd.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            p.as_ptr(),
            OPEN_TREE_CLONE | AT_RECURSIVE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Adds `attrs` to every mount of the tree behind `fd` (or at `path` below it). Never clears a
/// flag, so it also works on mounts whose flags a user namespace has locked.
pub fn restrict_tree(fd: libc::c_int, path: &Path, attrs: u64) -> Result<(), Errno> {
    let p = cstr(path);
    let empty = if path.as_os_str().is_empty() {
        libc::AT_EMPTY_PATH as libc::c_uint
    } else {
        0
    };
    let attr = MountAttr {
        attr_set: attrs,
        attr_clr: 0,
        propagation: libc::MS_PRIVATE,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr reads `attr` (size given) for the tree at fd/path.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            p.as_ptr(),
            empty | AT_RECURSIVE,
            std::ptr::addr_of!(attr),
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// A detached recursive copy of the mount tree behind `source` (an `O_PATH` fd), with `attrs`
/// added to every mount of it, attached on `target` (an `O_PATH` fd): no path is walked, so
/// nothing can be swapped in between.
pub fn bind_at(source: &OwnedFd, target: &OwnedFd, attrs: u64) -> Result<(), Errno> {
    // SAFETY: open_tree takes an fd, a C string and integer flags and returns a new fd.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            source.as_raw_fd(),
            c"".as_ptr(),
            OPEN_TREE_CLONE
                | AT_RECURSIVE
                | libc::AT_EMPTY_PATH as libc::c_uint
                | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel returned a new fd that nothing else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    if attrs != 0 {
        restrict_tree(tree.as_raw_fd(), Path::new(""), attrs)?;
    }
    // SAFETY: move_mount takes fds, C strings and flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Attaches the detached tree `fd` on top of `/`.
pub fn attach_over_root(fd: &OwnedFd) -> Result<(), Errno> {
    // SAFETY: move_mount takes fds, C strings and flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c"/".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

pub fn mount_fs(
    fstype: &str,
    target: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), SandboxError> {
    mount(Some(fstype), target, Some(fstype), flags, data)
        .ctx(|| format!("mounting {fstype} on {}", target.trim_start_matches('.')))
}

/// nosuid and nodev: every mount rvisor makes has at least these.
pub const SAFE: MsFlags = MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV);

/// An O_PATH fd for `path`, for use as a mount source through `/proc/self/fd` after the path
/// itself is hidden.
pub fn hold(path: &Path) -> Result<OwnedFd, SandboxError> {
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("opening {}", path.display()))?;
    // SAFETY: open just returned this fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `/proc/self/fd/N` for a held fd.
pub fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Bind-mounts what `source` holds onto `target`.
pub fn bind(source: &OwnedFd, target: &Path, recursive: bool) -> Result<(), SandboxError> {
    let mut flags = MsFlags::MS_BIND;
    if recursive {
        flags |= MsFlags::MS_REC;
    }
    mount(
        Some(fd_path(source).as_str()),
        target,
        None::<&str>,
        flags,
        None::<&str>,
    )
    .ctx(|| format!("bind-mounting onto {}", target.display()))
}

/// Makes `/` and everything below it private, so nothing we mount propagates to the host.
pub fn make_private() -> Result<(), SandboxError> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .ctx(|| "making / private".into())
}

/// Pivots into the current directory and drops the old root.
pub fn pivot_here() -> Result<(), SandboxError> {
    nix::unistd::pivot_root(".", ".").ctx(|| "pivot_root".into())?;
    nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH)
        .ctx(|| "detaching the old root".into())?;
    nix::unistd::chdir("/").ctx(|| "chdir /".into())
}
