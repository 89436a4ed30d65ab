//! Holds the guest's own file opens to its root with Landlock.
//!
//! Opens for reading run natively in the guest's read-only view, and opens under its own `/dev`
//! (a tmpfs, `/dev/shm`, the device nodes) run natively for writing too. What a path can reach
//! there is the tree; what a magic link can reach is not: `/proc/self/fd/N` (or `/dev/stderr`,
//! or a symlink the guest makes to either in `/dev/shm`) reopens whatever fd `N` is, and an fd
//! handed in from outside (a log file given write-only as stdout, a file given read-only as
//! stdin, a directory received over a host socket) lies outside the root. The sentry checks the
//! reopens it sees, but not one the guest's kernel reaches by following a link (or a path a
//! second thread rewrote after the check). A Landlock domain that grants file rights only
//! beneath the guest's root, and to each file handed in only the access its fd has, makes the
//! kernel refuse those reopens (EACCES) on every path the guest can spell, without a trap. The
//! domain is inherited by every guest task and cannot be lifted.
//!
//! Where Landlock is missing the filter keeps regular-file opens trapped (see
//! [`crate::filter::ReadOpens`]); reopens through links in `/dev` then go unchecked
//! (SECURITY.md, residual risks).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;

/// `LANDLOCK_ACCESS_FS_*`: the rights a ruleset can handle (ABI 1 unless noted).
const WRITE_FILE: u64 = 1 << 1;
const READ_FILE: u64 = 1 << 2;
const READ_DIR: u64 = 1 << 3;
const REMOVE_DIR: u64 = 1 << 4;
const REMOVE_FILE: u64 = 1 << 5;
const MAKE_CHAR: u64 = 1 << 6;
const MAKE_DIR: u64 = 1 << 7;
const MAKE_REG: u64 = 1 << 8;
const MAKE_SOCK: u64 = 1 << 9;
const MAKE_FIFO: u64 = 1 << 10;
const MAKE_BLOCK: u64 = 1 << 11;
const MAKE_SYM: u64 = 1 << 12;
/// ABI 2: linking or renaming into another directory (denied by every ruleset unless granted).
const REFER: u64 = 1 << 13;
/// ABI 3: truncating (`truncate`, `O_TRUNC`).
const TRUNCATE: u64 = 1 << 14;
/// `LANDLOCK_CREATE_RULESET_VERSION`.
const RULESET_VERSION: u32 = 1 << 0;
/// `LANDLOCK_RULE_PATH_BENEATH`.
const RULE_PATH_BENEATH: libc::c_int = 1;

/// Everything but executing and device ioctls: reading, writing, truncating, making, removing
/// and moving files, as far as this kernel's Landlock knows them.
fn handled(abi: u32) -> u64 {
    let mut rights = WRITE_FILE
        | READ_FILE
        | READ_DIR
        | REMOVE_DIR
        | REMOVE_FILE
        | MAKE_CHAR
        | MAKE_DIR
        | MAKE_REG
        | MAKE_SOCK
        | MAKE_FIFO
        | MAKE_BLOCK
        | MAKE_SYM;
    if abi >= 2 {
        rights |= REFER;
    }
    if abi >= 3 {
        rights |= TRUNCATE;
    }
    rights
}

/// What the guest's root is, to Landlock (which knows inodes, not mounts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root<'a> {
    /// A tree of the sandbox's own (the memory overlay, a bundle's rootfs): a file handed in
    /// from outside does not lie beneath it. Every right but making symlinks is granted beneath
    /// it.
    Own,
    /// The host's own directories, read-only (`--overlay=none`): a file handed in from outside
    /// may lie beneath it, so only reading is granted there. The sandbox's own `/dev`, `/tmp`
    /// and `/run` (fresh, never the host's) and the `writable` volumes (which the guest writes
    /// through the gofer anyway) get what [`Root::Own`] gets.
    Host {
        /// Where the read-write volumes are in the guest's view.
        writable: &'a [&'a Path],
    },
}

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

/// Whether [`confine_to_root`] can work here.
pub fn available() -> bool {
    abi() >= 1
}

/// Restricts the calling thread, and everything it later starts, to the rights [`Root`] grants
/// beneath its current root (`/`, as the mount tree shows it: mounts under it are included),
/// plus, for each of its fds below `inherited` that is a file, the access that fd has (a file
/// handed in may be reopened through `/proc/self/fd/N` as it was given, never for more). Needs
/// no_new_privs or CAP_SYS_ADMIN in the caller's user namespace. Other threads of the process
/// are not restricted: call it while single-threaded.
pub fn confine_to_root(root: Root<'_>, inherited: u32) -> Result<(), Errno> {
    let abi = abi();
    let all = handled(abi);
    // Symlinks the guest makes natively (only in its own /dev and /dev/shm: the rest of its view
    // is read-only) could point a later path call, which runs natively there, at a magic link:
    // none is granted.
    let granted = all & !MAKE_SYM;
    let attr = RulesetAttr {
        handled_access_fs: all,
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
    match root {
        Root::Own => add_rule(&ruleset, &open_dir(Path::new("/"))?, granted)?,
        Root::Host { writable } => {
            add_rule(&ruleset, &open_dir(Path::new("/"))?, READ_FILE | READ_DIR)?;
            let own = [Path::new("/dev"), Path::new("/tmp"), Path::new("/run")];
            for dir in own.iter().chain(writable) {
                match open_dir(dir) {
                    Ok(dir) => add_rule(&ruleset, &dir, granted)?,
                    // A root without it: nothing to grant.
                    Err(Errno::ENOENT | Errno::ENOTDIR) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    for fd in 0..inherited as i32 {
        if let Some(rights) = handed_in(fd) {
            // SAFETY: `fd` is open (handed_in checked it) for the duration of the call.
            let file = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            // A file with no path (a pipe, a socket) is refused: Landlock never checks those.
            let _ = add_rule(&ruleset, &file, rights & all);
        }
    }
    // SAFETY: takes an fd we own and flags only.
    let rc = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0u32) };
    if rc < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

fn open_dir(path: &Path) -> Result<OwnedFd, Errno> {
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The rights fd `fd` grants, if it is open on something other than a directory (directories
/// and O_PATH handles from outside are replaced with /dev/null before the guest runs), as far as
/// any Landlock knows them (the caller keeps those its kernel's knows).
fn handed_in(fd: i32) -> Option<u64> {
    // SAFETY: F_GETFL reads the flags of an fd number; a closed one fails with EBADF.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || flags & libc::O_PATH != 0 {
        return None;
    }
    let st = nix::sys::stat::fstat(fd).ok()?;
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        return None;
    }
    let mut rights = 0;
    let mode = flags & libc::O_ACCMODE;
    if mode == libc::O_RDONLY || mode == libc::O_RDWR {
        rights |= READ_FILE;
    }
    if mode == libc::O_WRONLY || mode == libc::O_RDWR {
        // A writable fd can be truncated (`ftruncate`) and freed of O_APPEND (`fcntl`) as it is.
        rights |= WRITE_FILE | TRUNCATE;
    }
    (rights != 0).then_some(rights)
}

fn add_rule(ruleset: &OwnedFd, parent: &impl AsRawFd, rights: u64) -> Result<(), Errno> {
    let beneath = PathBeneathAttr {
        allowed_access: rights,
        parent_fd: parent.as_raw_fd(),
    };
    // SAFETY: `beneath` is a valid path-beneath attribute naming an fd held open for the call;
    // the ruleset fd is ours.
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
    Ok(())
}
