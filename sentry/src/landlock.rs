//! Holds the guest's own file reads to its root with Landlock.
//!
//! Opens for reading run natively in the guest's read-only view. What a path can reach there is
//! the tree; what a magic link can reach is not: `/proc/self/fd/N` (or `/dev/stderr`, or a
//! symlink the guest makes to either) reopens whatever fd `N` is, and an fd handed in from
//! outside (a log file given write-only as stdout, a FIFO of the runtime's) lies outside the
//! root. A Landlock domain that grants file and directory reads only beneath the guest's root
//! makes the kernel refuse those reopens (EACCES) on every path the guest can spell, without a
//! trap. The domain is inherited by every guest task and cannot be lifted.
//!
//! Where Landlock is missing the filter keeps regular-file opens trapped (see
//! [`crate::filter::ReadOpens`]).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

/// `LANDLOCK_ACCESS_FS_READ_FILE`.
const READ_FILE: u64 = 1 << 2;
/// `LANDLOCK_ACCESS_FS_READ_DIR`.
const READ_DIR: u64 = 1 << 3;
/// `LANDLOCK_CREATE_RULESET_VERSION`.
const RULESET_VERSION: u32 = 1 << 0;
/// `LANDLOCK_RULE_PATH_BENEATH`.
const RULE_PATH_BENEATH: libc::c_int = 1;

/// `struct landlock_ruleset_attr` as of ABI 1 (the kernel accepts a shorter struct).
#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
}

/// `struct landlock_path_beneath_attr` (packed in the kernel's ABI).
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// The Landlock ABI version this kernel offers (0: none, or disabled at boot).
pub fn abi() -> u32 {
    // SAFETY: with a null attribute, size 0 and the VERSION flag the call reads no memory and
    // only returns the ABI version (or fails).
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            RULESET_VERSION,
        )
    };
    u32::try_from(v).unwrap_or(0)
}

/// Whether [`confine_reads_to_root`] can work here.
pub fn available() -> bool {
    abi() >= 1
}

/// Restricts the calling thread, and everything it later starts, to reading files and listing
/// directories beneath its current root (`/`, as the mount tree shows it: mounts under it are
/// included). Needs no_new_privs or CAP_SYS_ADMIN in the caller's user namespace. Other threads
/// of the process are not restricted: call it while single-threaded.
pub fn confine_reads_to_root() -> Result<(), Errno> {
    let attr = RulesetAttr {
        handled_access_fs: READ_FILE | READ_DIR,
    };
    // SAFETY: `attr` is a valid ruleset attribute of the size passed, alive for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            std::mem::size_of::<RulesetAttr>(),
            0u32,
        )
    };
    if rc < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    let ruleset = unsafe { OwnedFd::from_raw_fd(rc as i32) };
    let root = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let beneath = PathBeneathAttr {
        allowed_access: READ_FILE | READ_DIR,
        parent_fd: root.as_raw_fd(),
    };
    // SAFETY: `beneath` is a valid path-beneath attribute naming an fd we hold open for the
    // call; the ruleset fd is ours.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            RULE_PATH_BENEATH,
            &beneath as *const PathBeneathAttr,
            0u32,
        )
    };
    if rc < 0 {
        return Err(Errno::last());
    }
    // SAFETY: takes an fd we own and flags only.
    let rc = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0u32) };
    if rc < 0 {
        return Err(Errno::last());
    }
    Ok(())
}
