//! The sandbox tree, built by the gofer in its own mount namespace before it creates the guest:
//! the root under an overlay whose upper layer is memory (or the root itself: writable with
//! `--overlay=rootfs`, a container's writes reaching its bundle; read-only with
//! `--overlay=none`), fresh `/tmp` and `/run` (host daemon sockets live under `/run` and stay
//! out of reach) unless the root is written through, and the volumes. The gofer's mounts are
//! writable, nosuid and nodev; the guest gets a read-only clone.
//!
//! Everything the guest writes to memory lives in one tmpfs, the staging one, sized to the
//! sandbox's budget (`--overlay-size`): the overlay's upper and work directories (one pair per
//! top-level directory when the root is composed), the composed root itself, `/tmp`, `/run` and
//! the guest's `/dev/shm` are directories of it, so a guest that fills them gets ENOSPC and the
//! host gives no more than the budget, however the writes are spread.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use super::container::{Device, GuestMount, Tmpfs};
use super::error::{Context, SandboxError};
use super::mount_api::{
    bind, bind_at, fd_path, hold, make_private, mount_fs, restrict_tree, MOUNT_ATTR_NODEV,
    MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY, SAFE,
};
use super::mount_point::{self, Make};
use super::spec::{Overlay, SandboxSpec, Volume};

/// Where the tree is assembled, inside a private staging tmpfs.
pub const STAGING: &str = "/tmp";
/// The assembled tree.
pub const TREE: &str = "/tmp/rvisor-root";
/// The guest's `/dev/shm`, bound there by the guest init (whose mount namespace is a copy of the
/// gofer's), so that it shares the budget.
pub const SHM: &str = "/tmp/shm";
/// The spec's binds into the guest's pseudo filesystems, staged as `<n>` (the n-th bind of
/// `guest_mounts`), restricted, for the guest init to bind where they go.
pub const GUEST_BINDS: &str = "/tmp/guest-binds";
/// The spec's device nodes, `<n>` for the n-th, on a tmpfs of their own: the one mount rvisor
/// makes without nodev, holding nothing but the nodes the spec lists.
pub const DEVICES: &str = "/tmp/devices";

/// The staging tmpfs's options for a budget of `bytes`: its size, and one inode per 4 KiB of it
/// (at least 4096), since empty files cost kernel memory that `size=` does not count (tmpfs's
/// own default is one per two pages of the host's memory).
fn staging_options(bytes: u64) -> String {
    format!(
        "mode=0700,size={bytes},nr_inodes={}",
        (bytes / 4096).max(4096)
    )
}

/// A directory of the staging tmpfs with `mode`, held for a bind mount.
fn staged_dir(name: &str, mode: u32) -> Result<OwnedVolume, SandboxError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = Path::new(STAGING).join(name);
    mkdir(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
        .map_err(|e| SandboxError::Invalid(format!("chmod {}: {e}", dir.display())))?;
    hold(&dir)
}

/// Builds the tree at [`TREE`]. Runs in the gofer, in its new mount namespace.
pub fn build(spec: &SandboxSpec, rootless: bool) -> Result<PathBuf, SandboxError> {
    make_private()?;
    // Held before the staging tmpfs can hide them (a root or volume may live under /tmp).
    let root = hold(&spec.root)?;
    let volumes: Vec<(OwnedVolume, &Volume)> = spec
        .volumes
        .iter()
        .map(|v| Ok((hold(&v.source)?, v)))
        .collect::<Result<_, SandboxError>>()?;
    let guest_binds: Vec<(OwnedVolume, &Volume)> = spec
        .container
        .guest_mounts
        .iter()
        .filter_map(|m| match m {
            GuestMount::Bind(v) => Some(v),
            _ => None,
        })
        .map(|v| Ok((hold(&v.source)?, v)))
        .collect::<Result<_, SandboxError>>()?;
    mount_fs(
        "tmpfs",
        STAGING,
        SAFE,
        Some(&staging_options(spec.overlay.budget())),
    )?;
    let tree = Path::new(TREE);
    mkdir(tree)?;
    let mut covered = false;
    match spec.overlay {
        Overlay::Memory { .. } => overlay_root(&root, tree, rootless)?,
        // Writable here only: the guest's view of it is a read-only clone.
        Overlay::Rootfs => bind(&root, tree, true)?,
        Overlay::None => {
            // The root's own filesystem, as the memory overlay shows it: a recursive bind of the
            // host's `/` would bring its /proc (other processes' environment), /sys, /dev/shm
            // and every other mount into the gofer's tree, where the guest reaches them by
            // path (the guest's own /proc, /sys and /dev are mounted over them; a symlink to
            // them resolves here).
            match bind(&root, tree, false) {
                Ok(()) => {}
                // In a user namespace the kernel refuses a bind that would leave out the
                // submounts it locked (it would uncover what they hide): bind them all, and
                // cover the host's pseudo filesystems below instead.
                Err(_) if rootless => {
                    bind(&root, tree, true)?;
                    covered = true;
                }
                Err(e) => return Err(e),
            }
            restrict_tree(libc::AT_FDCWD, tree, MOUNT_ATTR_RDONLY)
                .ctx(|| "making the root read-only".into())?;
        }
    }
    // The gofer opens files for the guest on these mounts: a device node or a set-id file that a
    // hostile image (or the host's root) holds must give the guest no more than its own view
    // (nodev, nosuid) would.
    restrict_tree(libc::AT_FDCWD, tree, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)
        .ctx(|| "making the root nosuid, nodev".into())?;
    // Mount points are looked up (and made) inside the tree from here on, never by host path.
    let top = hold(tree)?;
    if covered {
        let empty = staged_dir("covered", 0o555)?;
        for dir in ["proc", "sys", "dev"] {
            let Ok(target) = mount_point::find(&top, Path::new(dir), None) else {
                continue;
            };
            if is_dir(&target) {
                bind_at(&empty, &target, MOUNT_ATTR_RDONLY)
                    .ctx(|| format!("covering the host's /{dir}"))?;
            }
        }
    }
    // A written-through root keeps its own /tmp and /run, as with runc (they are part of the
    // container's snapshot); elsewhere they are fresh, and hide the host's daemon sockets.
    if spec.overlay != Overlay::Rootfs {
        for (dir, mode) in [("tmp", 0o1777), ("run", 0o755)] {
            let Ok(target) = mount_point::find(&top, Path::new(dir), None) else {
                continue;
            };
            if is_dir(&target) {
                bind_at(&staged_dir(dir, mode)?, &target, 0)
                    .ctx(|| format!("mounting a fresh /{dir}"))?;
            }
        }
    }
    drop(staged_dir("shm", 0o1777)?);
    // runc makes a container's missing working directory in its rootfs.
    if spec.overlay == Overlay::Rootfs && spec.cwd.is_absolute() {
        mount_point::find(&top, &spec.cwd, Some(Make::Dir))
            .ctx(|| format!("the working directory {}", spec.cwd.display()))?;
    }
    // In the spec's order: each tmpfs after the volumes that come before it.
    let mut tmpfs = spec.container.tmpfs.iter().peekable();
    for (i, (held, v)) in volumes.iter().enumerate() {
        while let Some(t) = tmpfs.next_if(|t| t.after_volumes <= i) {
            mount_tmpfs(&top, t)?;
        }
        mount_volume(&top, held, v)?;
    }
    for t in tmpfs {
        mount_tmpfs(&top, t)?;
    }
    stage_guest_binds(&guest_binds)?;
    make_devices(&spec.container.devices)?;
    Ok(tree.to_path_buf())
}

fn is_dir(fd: &OwnedVolume) -> bool {
    nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(fd))
        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

fn mount_tmpfs(top: &OwnedVolume, t: &Tmpfs) -> Result<(), SandboxError> {
    let target = mount_point::find(top, &t.dest, Some(Make::Dir))
        .ctx(|| format!("the mount point {}", t.dest.display()))?;
    let mut flags = SAFE;
    if t.readonly {
        flags |= MsFlags::MS_RDONLY;
    }
    nix::mount::mount(
        Some("tmpfs"),
        fd_path(&target).as_str(),
        Some("tmpfs"),
        flags,
        Some(t.data.as_str()),
    )
    .ctx(|| format!("mounting tmpfs on {}", t.dest.display()))
}

/// Binds each of the spec's binds into the guest's pseudo filesystems at [`GUEST_BINDS`]`/<n>`,
/// nosuid, nodev and as read-only or noexec as the spec says; the guest init (whose mount
/// namespace is a copy of ours) binds them on.
fn stage_guest_binds(binds: &[(OwnedVolume, &Volume)]) -> Result<(), SandboxError> {
    if binds.is_empty() {
        return Ok(());
    }
    let dir = Path::new(GUEST_BINDS);
    mkdir(dir)?;
    for (n, (held, v)) in binds.iter().enumerate() {
        let target = dir.join(n.to_string());
        if is_dir(held) {
            mkdir(&target)?;
        } else {
            std::fs::File::create(&target).map_err(|e| {
                SandboxError::Invalid(format!("creating {}: {e}", target.display()))
            })?;
        }
        bind(held, &target, true)?;
        restrict_tree(libc::AT_FDCWD, &target, volume_attrs(v))
            .ctx(|| format!("restricting {}", v.dest.display()))?;
    }
    Ok(())
}

/// Creates the spec's device nodes at [`DEVICES`]`/<n>`, owned and moded as the spec says. The
/// tmpfs is nosuid and noexec, and reachable only through the nodes the init binds.
fn make_devices(devices: &[Device]) -> Result<(), SandboxError> {
    if devices.is_empty() {
        return Ok(());
    }
    mkdir(Path::new(DEVICES))?;
    mount_fs(
        "tmpfs",
        DEVICES,
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some(&format!(
            "mode=0700,size=4k,nr_inodes={}",
            devices.len() + 1
        )),
    )?;
    for (n, d) in devices.iter().enumerate() {
        let node = Path::new(DEVICES).join(n.to_string());
        let fail = |e: nix::errno::Errno| {
            SandboxError::Invalid(format!(
                "creating device {}: {}",
                d.path.display(),
                e.desc()
            ))
        };
        let kind = nix::sys::stat::SFlag::from_bits_truncate(d.mode & libc::S_IFMT);
        let perm = nix::sys::stat::Mode::from_bits_truncate(d.mode & 0o777);
        nix::sys::stat::mknod(
            &node,
            kind,
            perm,
            libc::makedev(d.major as u32, d.minor as u32),
        )
        .map_err(fail)?;
        // mknod honoured the umask; the spec's mode is exact.
        nix::sys::stat::fchmodat(
            None,
            &node,
            perm,
            nix::sys::stat::FchmodatFlags::NoFollowSymlink,
        )
        .map_err(fail)?;
        nix::unistd::chown(
            &node,
            Some(nix::unistd::Uid::from_raw(d.uid)),
            Some(nix::unistd::Gid::from_raw(d.gid)),
        )
        .map_err(fail)?;
    }
    Ok(())
}

fn volume_attrs(v: &Volume) -> u64 {
    let mut attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    if v.readonly {
        attrs |= MOUNT_ATTR_RDONLY;
    }
    if v.noexec {
        attrs |= MOUNT_ATTR_NOEXEC;
    }
    attrs
}

type OwnedVolume = std::os::fd::OwnedFd;

/// Directories whose content the guest init replaces with its own pseudo filesystems.
const PSEUDO: [&str; 3] = ["proc", "sys", "dev"];

fn overlay(
    lower: &str,
    upper: &Path,
    work: &Path,
    target: &Path,
    rootless: bool,
) -> Result<(), nix::errno::Errno> {
    let mut opts = format!(
        "lowerdir={lower},upperdir={},workdir={}",
        upper.display(),
        work.display()
    );
    if rootless {
        // trusted.* xattrs need host privilege; an unprivileged overlay keeps its metadata in
        // user.* xattrs.
        opts.push_str(",userxattr");
    }
    nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.as_str()),
    )
}

/// The root under a memory overlay. One overlay over the whole root where the kernel allows it;
/// in a user namespace it does not (the host's submounts under `/` are locked, and an overlay
/// lower layer may not hide them), so the root is composed instead: a `/` holding one overlay
/// per top-level directory, the top-level symlinks, and a read-only bind of whatever still has
/// locked submounts. That `/` is the tree's own directory of the staging tmpfs, bound onto
/// itself, and every upper layer is a directory there too: one budget for all of them.
fn overlay_root(root: &OwnedVolume, tree: &Path, rootless: bool) -> Result<(), SandboxError> {
    let staging = Path::new(STAGING);
    let (upper, work) = (staging.join("upper"), staging.join("work"));
    mkdir(&upper)?;
    mkdir(&work)?;
    match overlay(&fd_path(root), &upper, &work, tree, rootless) {
        Ok(()) => return Ok(()),
        Err(nix::errno::Errno::EINVAL) => {}
        Err(e) => return Err(e).ctx(|| "mounting the memory overlay over the root".into()),
    }
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tree, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| SandboxError::Invalid(format!("chmod {}: {e}", tree.display())))?;
    }
    // A mount point of its own (to pivot into and to clone), in the staging tmpfs.
    bind(&hold(tree)?, tree, false)?;
    let lower = PathBuf::from(fd_path(root));
    let entries = std::fs::read_dir(&lower)
        .map_err(|e| SandboxError::Invalid(format!("reading the root: {e}")))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let (src, dst) = (lower.join(&name), tree.join(&name));
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_symlink() {
            if let Ok(to) = std::fs::read_link(&src) {
                let _ = std::os::unix::fs::symlink(to, &dst);
            }
        } else if kind.is_dir() {
            mkdir(&dst)?;
            if PSEUDO.iter().any(|p| name == *p) {
                continue;
            }
            let (up, wk) = (upper.join(&name), work.join(&name));
            mkdir(&up)?;
            mkdir(&wk)?;
            if overlay(&src.to_string_lossy(), &up, &wk, &dst, rootless).is_err() {
                bind(&hold(&src)?, &dst, true)?;
                restrict_tree(libc::AT_FDCWD, &dst, MOUNT_ATTR_RDONLY)
                    .ctx(|| format!("making {} read-only", dst.display()))?;
            }
        } else if kind.is_file() {
            std::fs::File::create(&dst)
                .map_err(|e| SandboxError::Invalid(format!("creating {}: {e}", dst.display())))?;
            bind(&hold(&src)?, &dst, false)?;
            restrict_tree(libc::AT_FDCWD, &dst, MOUNT_ATTR_RDONLY)
                .ctx(|| format!("making {} read-only", dst.display()))?;
        }
    }
    Ok(())
}

fn mkdir(p: &Path) -> Result<(), SandboxError> {
    std::fs::create_dir_all(p)
        .map_err(|e| SandboxError::Invalid(format!("creating {}: {e}", p.display())))
}

/// The mount point for `v` (its source held as `held`) inside the tree, made if the tree is
/// writable there.
fn volume_target(
    top: &OwnedVolume,
    held: &OwnedVolume,
    v: &Volume,
) -> Result<OwnedVolume, SandboxError> {
    // Asked of the held fd, not the path: a source under /tmp is hidden by the staging tmpfs.
    let make = if is_dir(held) { Make::Dir } else { Make::File };
    mount_point::find(top, &v.dest, Some(make)).map_err(|e| {
        let hint = if e == nix::errno::Errno::EROFS {
            "; with --overlay=none the root is read-only, so the destination must exist or lie \
             under /tmp"
        } else {
            ""
        };
        SandboxError::Invalid(format!(
            "volume {}: cannot create {} in the sandbox ({e}){hint}",
            v.source.display(),
            v.dest.display()
        ))
    })
}

fn mount_volume(top: &OwnedVolume, held: &OwnedVolume, v: &Volume) -> Result<(), SandboxError> {
    let target = volume_target(top, held, v)?;
    bind_at(held, &target, volume_attrs(v)).ctx(|| format!("mounting volume {}", v.dest.display()))
}
