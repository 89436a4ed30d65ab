//! The guest's view, built by the guest init in its own mount namespace (a copy of the gofer's):
//! a recursive clone of the gofer's tree, made read-only, nosuid and nodev, with a fresh
//! read-only procfs for the new pid namespace, a read-only sysfs and a minimal `/dev` on top (with
//! the spec's device nodes), then the spec's mounts inside those in its order, then pivoted into.
//! Writes reach the tree only through the gofer.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;

use super::container::{ContainerSettings, Device, GuestMount};
use super::error::{Context, SandboxError};
use super::mount_api::{
    attach_over_root, bind, clone_tree, hold, mount_fs, pivot_here, restrict_tree,
    MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY, SAFE,
};

/// Device nodes bound from the host into the guest's `/dev`.
const DEV_NODES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Builds the guest's root from the gofer's `tree` and pivots into it.
/// `as_builder` runs once the tree is cloned, before anything is created in the view.
pub fn build(
    tree: &Path,
    settings: &ContainerSettings,
    as_builder: impl FnOnce() -> Result<(), SandboxError>,
) -> Result<(), SandboxError> {
    // Host device nodes, held before the new /dev hides them.
    let devs: Vec<(&str, OwnedFd)> = DEV_NODES
        .iter()
        .filter_map(|n| Some((*n, hold(Path::new(&format!("/dev/{n}"))).ok()?)))
        .chain(console_node().map(|fd| ("console", fd)))
        .collect();
    let host_sys = hold(Path::new("/sys")).ok();
    // The gofer's staging tmpfs is still visible here (this mount namespace is a copy of its).
    let shm = hold(Path::new(super::gofer_tree::SHM))?;
    let staged = |dir: &str, n: usize| hold(&Path::new(dir).join(n.to_string()));
    let nodes: Vec<(&Device, OwnedFd)> = (settings.devices.iter().enumerate())
        .map(|(n, d)| Ok((d, staged(super::gofer_tree::DEVICES, n)?)))
        .collect::<Result<_, SandboxError>>()?;
    let mut binds = Vec::new();
    for m in &settings.guest_mounts {
        if let GuestMount::Bind(_) = m {
            binds.push(staged(super::gofer_tree::GUEST_BINDS, binds.len())?);
        }
    }
    let view = clone_tree(tree).ctx(|| "cloning the sandbox tree".into())?;
    restrict_tree(
        view.as_raw_fd(),
        Path::new(""),
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
    )
    .ctx(|| "making the root read-only, nosuid, nodev".into())?;
    attach_over_root(&view).ctx(|| "attaching the root".into())?;
    nix::unistd::fchdir(view.as_raw_fd()).ctx(|| "entering the root".into())?;
    as_builder()?;
    // From here, "./x" is the guest's "/x".
    if Path::new("./proc").is_dir() {
        // Writable just long enough to set the spec's sysctls.
        mount_fs("proc", "./proc", SAFE | MsFlags::MS_NOEXEC, None)?;
        set_sysctls(&settings.sysctls)?;
        nix::mount::mount(
            None::<&str>,
            "./proc",
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | SAFE | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .ctx(|| "making /proc read-only".into())?;
    }
    // A fresh sysfs needs the network namespace to be ours; with --network=host the host's
    // /sys is bound instead, read-only.
    if Path::new("./sys").is_dir()
        && mount_fs(
            "sysfs",
            "./sys",
            SAFE | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY,
            None,
        )
        .is_err()
    {
        if let Some(sys) = &host_sys {
            bind(sys, Path::new("./sys"), true)?;
            restrict_tree(
                libc::AT_FDCWD,
                Path::new("./sys"),
                MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
            )
            .ctx(|| "making /sys read-only".into())?;
        }
    }
    if Path::new("./dev").is_dir() {
        mount_dev(&devs, &shm)?;
        for (device, fd) in &nodes {
            bind_node(fd, &device.path)?;
        }
    }
    guest_mounts(&settings.guest_mounts, binds)?;
    let null = devs.iter().find(|(n, _)| *n == "null").map(|(_, fd)| fd);
    for path in &settings.masked_paths {
        mask(path, null)?;
    }
    for path in &settings.readonly_paths {
        make_readonly(path)?;
    }
    pivot_here()
}

/// The spec's mounts in the guest's own proc, sys and dev, in its order, on top of what the
/// sandbox made there. `binds` are the staged sources of the binds among them, in order.
fn guest_mounts(mounts: &[GuestMount], binds: Vec<OwnedFd>) -> Result<(), SandboxError> {
    let mut binds = binds.into_iter();
    for m in mounts {
        let dest = m.dest();
        let target = relative(dest);
        refuse_links(dest)?;
        let exists = std::fs::symlink_metadata(&target).is_ok();
        let create = |dir: bool| -> Result<(), SandboxError> {
            let made = if dir {
                std::fs::create_dir_all(&target)
            } else {
                Path::new(&target)
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| std::fs::File::create(&target).map(drop))
            };
            made.map_err(|e| {
                SandboxError::Invalid(format!("mount destination {}: {e}", dest.display()))
            })
        };
        match m {
            GuestMount::Tmpfs(t) => {
                if !exists {
                    create(true)?;
                }
                let mut flags = SAFE;
                if t.readonly {
                    flags |= MsFlags::MS_RDONLY;
                }
                mount_fs("tmpfs", &target, flags, Some(&t.data))?;
            }
            GuestMount::Bind(_) => {
                let Some(fd) = binds.next() else {
                    return Err(SandboxError::Setup("a staged bind is missing".into()));
                };
                if !exists {
                    let dir = nix::sys::stat::fstat(fd.as_raw_fd())
                        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR);
                    create(dir)?;
                }
                // The gofer restricted it (nosuid, nodev, ro and noexec as asked); a copy keeps
                // those flags, locked in our user namespace.
                bind(&fd, Path::new(&target), true)?;
            }
            GuestMount::Mqueue(_) => {
                if !exists {
                    create(true)?;
                }
                mount_fs("mqueue", &target, SAFE | MsFlags::MS_NOEXEC, None)?;
            }
        }
    }
    Ok(())
}

/// Binds the node `fd` holds at `path` in the new `/dev`: read-only, so that the guest can
/// change neither its mode nor its owner or times (a host node's are the host's), which does
/// not stop reads and writes of the device itself.
fn bind_node(fd: &OwnedFd, path: &Path) -> Result<(), SandboxError> {
    refuse_links(path)?;
    let target = relative(path);
    if std::fs::symlink_metadata(&target).is_err() {
        Path::new(&target)
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::File::create(&target).map(drop))
            .map_err(|e| SandboxError::Invalid(format!("creating {}: {e}", path.display())))?;
    }
    bind(fd, Path::new(&target), false)?;
    restrict_tree(
        libc::AT_FDCWD,
        Path::new(&target),
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
    )
    .ctx(|| format!("making {} read-only", path.display()))
}

/// Refuses a mount target with a symbolic link on its way (`/dev/fd`, sysfs's links): mount(2)
/// would follow it out of the view being built.
fn refuse_links(path: &Path) -> Result<(), SandboxError> {
    let target = PathBuf::from(relative(path));
    for at in target.ancestors().take_while(|a| *a != Path::new(".")) {
        if std::fs::symlink_metadata(at).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(SandboxError::Invalid(format!(
                "mount destination {}: {} is a symbolic link",
                path.display(),
                at.display().to_string().trim_start_matches('.')
            )));
        }
    }
    Ok(())
}

/// `/a/b` as `./a/b`: the root being built is the working directory.
fn relative(path: &Path) -> String {
    format!(".{}", path.display())
}

fn set_sysctls(sysctls: &[(String, String)]) -> Result<(), SandboxError> {
    for (key, value) in sysctls {
        let file = format!("./proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&file, value)
            .map_err(|e| SandboxError::Invalid(format!("sysctl {key}={value}: {e}")))?;
    }
    Ok(())
}

/// Hides `path`: a directory under an empty read-only tmpfs, a file under /dev/null.
fn mask(path: &Path, null: Option<&OwnedFd>) -> Result<(), SandboxError> {
    let target = relative(path);
    match std::fs::metadata(&target) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => mount_fs(
            "tmpfs",
            &target,
            SAFE | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY,
            Some("size=0"),
        ),
        Ok(_) => match null {
            Some(fd) => bind(fd, Path::new(&target), false),
            None => Ok(()),
        },
    }
}

fn make_readonly(path: &Path) -> Result<(), SandboxError> {
    let target = relative(path);
    if std::fs::symlink_metadata(&target).is_err() {
        return Ok(());
    }
    bind(&hold(Path::new(&target))?, Path::new(&target), true)?;
    restrict_tree(
        libc::AT_FDCWD,
        Path::new(&target),
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
    )
    .ctx(|| format!("making {} read-only", path.display()))
}

/// A terminal on stdio is the host's pty, invisible in the new `/dev`: it is bound as
/// `/dev/console` so that `ttyname` finds it, as runc does. The fd itself was opened in the parent
/// mount namespace and cannot be a bind source here, so the node is reopened by path and checked
/// to be the same device.
fn console_node() -> Option<OwnedFd> {
    let fd = (0..3).find(|&fd| nix::unistd::isatty(fd).unwrap_or(false))?;
    let path = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
    let node = hold(&path).ok()?;
    let same = nix::sys::stat::fstat(fd).ok()?.st_rdev
        == nix::sys::stat::fstat(node.as_raw_fd()).ok()?.st_rdev;
    same.then_some(node)
}

/// `/dev`: a small tmpfs of its own (it holds nodes, links and mount points; the guest may
/// write to it, so it is bounded too) with the host's harmless nodes, devpts, and `/dev/shm`
/// from the gofer's staging tmpfs (`shm`), inside the sandbox's one memory budget.
fn mount_dev(devs: &[(&str, OwnedFd)], shm: &OwnedFd) -> Result<(), SandboxError> {
    // nodev holds for the tmpfs itself; the bound nodes below are mounts of their own.
    mount_fs(
        "tmpfs",
        "./dev",
        SAFE | MsFlags::MS_NOEXEC,
        Some("mode=0755,size=1m,nr_inodes=4096"),
    )?;
    for (name, fd) in devs {
        bind_node(fd, &Path::new("/dev").join(name))?;
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
    bind(shm, Path::new("./dev/shm"), false)?;
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
