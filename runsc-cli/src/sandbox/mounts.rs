//! The guest's filesystem view, built inside its new mount namespace before it runs anything.
//!
//! The root (host `/` or `--root`) is cloned recursively, made read-only, nosuid and nodev, and
//! pivoted into. On top: a fresh read-only procfs for the new pid namespace, a read-only sysfs,
//! tmpfs `/tmp` and `/run` (host daemon sockets live under `/run`: they stay out of reach), a
//! minimal `/dev`, and the volumes.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;

use super::error::{Context, SandboxError};
use super::spec::{SandboxSpec, Volume};

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// Device nodes bound from the host into the guest's `/dev`.
const DEV_NODES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

/// A detached recursive copy of the mount tree at `path`.
fn clone_tree(path: &Path) -> Result<OwnedFd, Errno> {
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
fn restrict_tree(fd: libc::c_int, path: &Path, attrs: u64) -> Result<(), Errno> {
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

/// Attaches the detached tree `fd` on top of `/`.
fn attach_over_root(fd: &OwnedFd) -> Result<(), Errno> {
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

fn mount_fs(
    fstype: &str,
    target: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), SandboxError> {
    mount(Some(fstype), target, Some(fstype), flags, data)
        .ctx(|| format!("mounting {fstype} on {}", target.trim_start_matches('.')))
}

const SAFE: MsFlags = MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV);

/// Builds the guest's root and pivots into it. Runs in the guest init, in its new user and mount
/// namespaces, before the seccomp filter exists.
pub fn build_root(spec: &SandboxSpec) -> Result<(), SandboxError> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .ctx(|| "making / private".into())?;
    // Host device nodes, held before the new /dev hides them.
    let devs: Vec<(&str, OwnedFd)> = DEV_NODES
        .iter()
        .filter_map(|n| {
            let fd = open(
                format!("/dev/{n}").as_str(),
                OFlag::O_PATH | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ok()?;
            // SAFETY: open just returned this fd; nothing else owns it.
            Some((*n, unsafe { OwnedFd::from_raw_fd(fd) }))
        })
        .chain(console_node().map(|fd| ("console", fd)))
        .collect();
    let tree =
        clone_tree(&spec.root).ctx(|| format!("cloning the root {}", spec.root.display()))?;
    restrict_tree(
        tree.as_raw_fd(),
        Path::new(""),
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
    )
    .ctx(|| "making the root read-only, nosuid, nodev".into())?;
    attach_over_root(&tree).ctx(|| "attaching the root".into())?;
    nix::unistd::fchdir(tree.as_raw_fd()).ctx(|| "entering the root".into())?;
    // From here, "./x" is the guest's "/x".
    mount_special(&devs)?;
    for v in &spec.volumes {
        mount_volume(v)?;
    }
    nix::unistd::pivot_root(".", ".").ctx(|| "pivot_root".into())?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "detaching the host root".into())?;
    nix::unistd::chdir("/").ctx(|| "chdir /".into())?;
    Ok(())
}

fn is_dir(p: &str) -> bool {
    Path::new(p).is_dir()
}

fn mount_special(devs: &[(&str, OwnedFd)]) -> Result<(), SandboxError> {
    if is_dir("./proc") {
        mount_fs(
            "proc",
            "./proc",
            SAFE | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY,
            None,
        )?;
    }
    // A fresh sysfs needs the network namespace to be ours; with --network=host the cloned,
    // read-only host sysfs stays.
    if is_dir("./sys") {
        let _ = mount_fs(
            "sysfs",
            "./sys",
            SAFE | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY,
            None,
        );
    }
    for dir in ["./tmp", "./run"] {
        if is_dir(dir) {
            let mode = if dir == "./tmp" {
                "mode=1777"
            } else {
                "mode=0755"
            };
            mount_fs("tmpfs", dir, SAFE, Some(mode))?;
        }
    }
    if is_dir("./dev") {
        mount_dev(devs)?;
    }
    Ok(())
}

fn mount_dev(devs: &[(&str, OwnedFd)]) -> Result<(), SandboxError> {
    mount_fs(
        "tmpfs",
        "./dev",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("mode=0755"),
    )?;
    for (name, fd) in devs {
        let target = format!("./dev/{name}");
        std::fs::File::create(&target)
            .map_err(|e| SandboxError::Invalid(format!("creating {target}: {e}")))?;
        let source = format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd());
        mount(
            Some(source.as_str()),
            target.as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .ctx(|| format!("binding /dev/{name}"))?;
    }
    for dir in ["./dev/pts", "./dev/shm"] {
        std::fs::create_dir(dir)
            .map_err(|e| SandboxError::Invalid(format!("creating {dir}: {e}")))?;
    }
    mount_fs(
        "devpts",
        "./dev/pts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    mount_fs("tmpfs", "./dev/shm", SAFE, Some("mode=1777"))?;
    for (link, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(to, format!("./dev/{link}"))
            .map_err(|e| SandboxError::Invalid(format!("creating /dev/{link}: {e}")))?;
    }
    Ok(())
}

/// A terminal on stdio is the host's pty, invisible in the new `/dev`: it is bound as
/// `/dev/console` so that `ttyname` finds it, as runc does. The fd itself was opened in the parent
/// mount namespace and cannot be a bind source here, so the node is reopened by path and checked
/// to be the same device.
fn console_node() -> Option<OwnedFd> {
    let fd = (0..3).find(|&fd| nix::unistd::isatty(fd).unwrap_or(false))?;
    let path = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
    let node = open(&path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).ok()?;
    // SAFETY: open just returned this fd; nothing else owns it.
    let node = unsafe { OwnedFd::from_raw_fd(node) };
    let same = nix::sys::stat::fstat(fd).ok()?.st_rdev
        == nix::sys::stat::fstat(node.as_raw_fd()).ok()?.st_rdev;
    same.then_some(node)
}

/// The mount point for `v` inside the new root, created if it lies in a writable mount.
fn volume_target(v: &Volume) -> Result<PathBuf, SandboxError> {
    let target = Path::new(".").join(v.dest.strip_prefix("/").unwrap_or(&v.dest));
    if target.exists() {
        return Ok(target);
    }
    let made = if v.source.is_dir() {
        std::fs::create_dir_all(&target)
    } else {
        target
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::File::create(&target).map(drop))
    };
    made.map_err(|e| {
        SandboxError::Invalid(format!(
            "volume {}: cannot create {} in the sandbox ({e}); the root is read-only, so the \
             destination must exist or lie under /tmp",
            v.source.display(),
            v.dest.display()
        ))
    })?;
    Ok(target)
}

fn mount_volume(v: &Volume) -> Result<(), SandboxError> {
    let target = volume_target(v)?;
    mount(
        Some(&v.source),
        &target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| format!("binding volume {}", v.source.display()))?;
    let mut attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    if v.readonly {
        attrs |= MOUNT_ATTR_RDONLY;
    }
    restrict_tree(libc::AT_FDCWD, &target, attrs)
        .ctx(|| format!("restricting volume {}", v.dest.display()))
}

/// Brings up `lo` in the guest's new network namespace.
pub fn loopback_up() -> Result<(), SandboxError> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ctx(|| "socket for lo".into())?;
    // SAFETY: ifreq is plain data; all-zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and fills ifru_flags in `req`, which we own.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(Errno::last()).ctx(|| "reading lo flags".into());
    }
    // SAFETY: the kernel just initialised the flags member of the union.
    unsafe { req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads `req`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(Errno::last()).ctx(|| "bringing lo up".into());
    }
    Ok(())
}
