//! Calls refused on policy that first check their arguments as Linux does: a program probing
//! for a feature (an io_uring flag, a filesystem type) gets the errno its arguments deserve,
//! and only a well-formed request meets the refusal (logged as a denial).

use nix::errno::Errno;

use rvisor_protocol::Request;

use super::fs_path::{ask, locate, proc_link, value, Target};
use super::fs_stat::statx_of;
use super::{Action, Arg, Ctx, Def};
use crate::guest::MAX_STRING;
use crate::platform::Reply;
use crate::task::cap;

pub(super) const DEFS: &[Def] = &[
    Def {
        name: "mount",
        action: Action::Emulated(mount),
        args: &[Arg::Str, Arg::Str, Arg::Str, Arg::Hex, Arg::Ptr],
    },
    Def {
        name: "umount2",
        action: Action::Emulated(umount2),
        args: &[Arg::Str, Arg::Hex],
    },
    Def {
        name: "io_uring_setup",
        action: Action::Emulated(io_uring_setup),
        args: &[Arg::Int, Arg::Ptr],
    },
    Def {
        name: "io_uring_enter",
        action: Action::Emulated(io_uring_enter),
        args: &[Arg::Int, Arg::Int, Arg::Int, Arg::Hex, Arg::Ptr],
    },
    Def {
        name: "io_uring_register",
        action: Action::Emulated(io_uring_register),
        args: &[Arg::Int, Arg::Int, Arg::Ptr, Arg::Int],
    },
    // A new root would make the kernel resolve exec and every continued path from somewhere the
    // gofer did not check.
    Def {
        name: "chroot",
        action: Action::Emulated(chroot),
        args: &[Arg::Str],
    },
    Def {
        name: "pivot_root",
        action: Action::Emulated(pivot_root),
        args: &[Arg::Str, Arg::Str],
    },
    Def {
        name: "setns",
        action: Action::Emulated(setns),
        args: &[Arg::Int, Arg::Hex],
    },
    Def {
        name: "swapon",
        action: Action::Emulated(swapon),
        args: &[Arg::Str, Arg::Hex],
    },
    Def {
        name: "swapoff",
        action: Action::Emulated(swapoff),
        args: &[Arg::Str],
    },
    Def {
        name: "acct",
        action: Action::Emulated(acct),
        args: &[Arg::Str],
    },
    Def {
        name: "reboot",
        action: Action::Emulated(reboot),
        args: &[Arg::Hex, Arg::Hex, Arg::Hex, Arg::Ptr],
    },
    Def {
        name: "bpf",
        action: Action::Emulated(bpf),
        args: &[Arg::Int, Arg::Ptr, Arg::Int],
    },
    Def {
        name: "perf_event_open",
        action: Action::Emulated(perf_event_open),
        args: &[Arg::Ptr, Arg::Int, Arg::Int, Arg::Int, Arg::Hex],
    },
    Def {
        name: "userfaultfd",
        action: Action::Emulated(userfaultfd),
        args: &[Arg::Hex],
    },
];

/// Whether the caller holds `cap` as the kernel's `capable()` means it, in the initial user
/// namespace: the sandbox's root is the host's root only when the guest's root maps to it (a
/// root sandbox); a rootless or remapped one has its capabilities in its own namespace only.
fn host_capable(ctx: &Ctx<'_>, cap: u32) -> Result<bool, Errno> {
    let creds = ctx.creds()?;
    Ok(creds.has_cap(cap) && creds.host.uid == 0)
}

/// Whether the caller holds `cap` in the sandbox's user namespace (`ns_capable` there).
fn ns_capable(ctx: &Ctx<'_>, cap: u32) -> Result<bool, Errno> {
    Ok(ctx.creds()?.has_cap(cap))
}

/// Capability numbers only these handlers check.
const CAP_SYS_CHROOT: u32 = 18;
const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_PACCT: u32 = 20;
const CAP_SYS_BOOT: u32 = 22;

/// The mode of what `addr` names (following symlinks), with the path walk's errors; None for
/// the guest's own pseudo filesystems.
fn mode_of(ctx: &Ctx<'_>, addr: u64) -> Result<Option<u32>, Errno> {
    match locate(ctx, libc::AT_FDCWD, addr, 0)? {
        Target::Gofer(at) => Ok(Some(u32::from(statx_of(ctx, at, 0)?.stx_mode))),
        Target::Native | Target::Fd(_) => Ok(None),
    }
}

/// A directory lookup as `LOOKUP_DIRECTORY` does it: the walk's errors, then ENOTDIR.
fn directory(ctx: &Ctx<'_>, addr: u64) -> Result<(), Errno> {
    match mode_of(ctx, addr)? {
        Some(mode) if mode & libc::S_IFMT != libc::S_IFDIR => Err(Errno::ENOTDIR),
        _ => Ok(()),
    }
}

/// What the caller's fd `fd` is, as its `/proc/<tid>/fd` link reads; EBADF when not open.
fn fd_kind<'a>(ctx: &Ctx<'a>, fd: u64) -> Result<&'a [u8], Errno> {
    let fd = i32::try_from(fd as i64).map_err(|_| Errno::EBADF)?;
    if fd < 0 {
        return Err(Errno::EBADF);
    }
    proc_link(ctx, format_args!("fd/{fd}")).map_err(|_| Errno::EBADF)
}

/// An fd that is an io_uring instance (which the guest cannot make, but might inherit).
const IO_URING: &[u8] = b"anon_inode:[io_uring]";

/// The fd of io_uring_enter and io_uring_register: EBADF unless open, EOPNOTSUPP unless an
/// io_uring instance (which is refused).
fn uring_fd(ctx: &mut Ctx<'_>, fd: u64, registered: bool) -> Result<Reply, Errno> {
    // A registered ring's index: the caller has registered none (it has no ring).
    if registered {
        return Err(Errno::EINVAL);
    }
    if fd_kind(ctx, fd)? != IO_URING {
        return Err(Errno::EOPNOTSUPP);
    }
    ctx.refuse(Errno::EPERM)
}

/// io_uring_enter(2): unknown flags (EINVAL), then the fd.
fn io_uring_enter(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    const ENTER_FLAGS: u64 = 0xff;
    const REGISTERED_RING: u64 = 1 << 4;
    let flags = ctx.arg(3) & 0xffff_ffff;
    if flags & !ENTER_FLAGS != 0 {
        return Err(Errno::EINVAL);
    }
    uring_fd(ctx, ctx.arg(0) & 0xffff_ffff, flags & REGISTERED_RING != 0)
}

/// io_uring_register(2): an opcode past the last (EINVAL), then the fd.
fn io_uring_register(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    const USE_REGISTERED_RING: u64 = 1 << 31;
    /// `IORING_REGISTER_LAST` of Linux 6.18.
    const LAST: u64 = 36;
    let opcode = ctx.arg(1) & 0xffff_ffff;
    if opcode & !USE_REGISTERED_RING >= LAST {
        return Err(Errno::EINVAL);
    }
    let fd = ctx.arg(0) & 0xffff_ffff;
    // fd -1 registers "blind" (no ring): only IORING_REGISTER_SEND_MSG_RING exists.
    if fd == 0xffff_ffff {
        return if opcode & !USE_REGISTERED_RING == 31 {
            ctx.refuse(Errno::EPERM)
        } else {
            Err(Errno::EINVAL)
        };
    }
    uring_fd(ctx, fd, opcode & USE_REGISTERED_RING != 0)
}

/// chroot(2): the directory lookup (ENOENT, ENOTDIR), search permission on it (EACCES), then
/// CAP_SYS_CHROOT (EPERM); what passes is refused.
fn chroot(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    if let Target::Gofer(at) = locate(ctx, libc::AT_FDCWD, ctx.arg(0), 0)? {
        if u32::from(statx_of(ctx, at, 0)?.stx_mode) & libc::S_IFMT != libc::S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        value(ask(
            ctx,
            &Request::Access {
                at,
                mode: libc::X_OK as u32,
                flags: 0,
            },
        )?)?;
    }
    if !ns_capable(ctx, CAP_SYS_CHROOT)? {
        return Err(Errno::EPERM);
    }
    ctx.refuse(Errno::EPERM)
}

/// pivot_root(2): the mount privilege first (EPERM), then both directories' lookups.
fn pivot_root(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    if !ns_capable(ctx, cap::SYS_ADMIN)? {
        return Err(Errno::EPERM);
    }
    directory(ctx, ctx.arg(0))?;
    directory(ctx, ctx.arg(1))?;
    ctx.refuse(Errno::EPERM)
}

/// The `CLONE_NEW*` flag of a namespace file, by the name its fd link shows (`uts:[N]`).
fn ns_type(link: &[u8]) -> Option<u64> {
    let name = &link[..link.iter().position(|&b| b == b':')?];
    if !link[name.len()..].starts_with(b":[") {
        return None;
    }
    Some(match name {
        b"mnt" => libc::CLONE_NEWNS,
        b"uts" => libc::CLONE_NEWUTS,
        b"ipc" => libc::CLONE_NEWIPC,
        b"net" => libc::CLONE_NEWNET,
        b"pid" => libc::CLONE_NEWPID,
        b"user" => libc::CLONE_NEWUSER,
        b"cgroup" => libc::CLONE_NEWCGROUP,
        b"time" => 0x80,
        _ => return None,
    } as u64)
}

/// setns(2): the fd (EBADF), then its kind: a namespace of the type asked for, or a pidfd
/// with namespace flags; anything else is EINVAL.
fn setns(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    const ALL_NS: u64 = (libc::CLONE_NEWNS
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWUSER
        | libc::CLONE_NEWCGROUP) as u64
        | 0x80;
    let flags = ctx.arg(1) & 0xffff_ffff;
    let link = fd_kind(ctx, ctx.arg(0) & 0xffff_ffff)?;
    let ok = if let Some(kind) = ns_type(link) {
        flags == 0 || flags == kind
    } else if link == b"anon_inode:[pidfd]" {
        flags != 0 && flags & !ALL_NS == 0
    } else {
        false
    };
    if !ok {
        return Err(Errno::EINVAL);
    }
    ctx.refuse(Errno::EPERM)
}

/// swapon(2): unknown flags (EINVAL), then CAP_SYS_ADMIN over the machine (EPERM), then the
/// file's lookup.
fn swapon(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    const SWAP_FLAGS_VALID: u64 = 0x7ffff;
    if ctx.arg(1) & 0xffff_ffff & !SWAP_FLAGS_VALID != 0 {
        return Err(Errno::EINVAL);
    }
    if !host_capable(ctx, cap::SYS_ADMIN)? {
        return Err(Errno::EPERM);
    }
    mode_of(ctx, ctx.arg(0))?;
    ctx.refuse(Errno::EPERM)
}

/// swapoff(2): CAP_SYS_ADMIN over the machine (EPERM), then the file's lookup (opened for
/// writing: a directory is EISDIR).
fn swapoff(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    if !host_capable(ctx, cap::SYS_ADMIN)? {
        return Err(Errno::EPERM);
    }
    if mode_of(ctx, ctx.arg(0))?.is_some_and(|m| m & libc::S_IFMT == libc::S_IFDIR) {
        return Err(Errno::EISDIR);
    }
    ctx.refuse(Errno::EPERM)
}

/// acct(2): CAP_SYS_PACCT over the machine (EPERM), then the file: its lookup, EISDIR for a
/// directory, EACCES for anything but a regular file.
fn acct(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    if !host_capable(ctx, CAP_SYS_PACCT)? {
        return Err(Errno::EPERM);
    }
    if ctx.arg(0) != 0 {
        match mode_of(ctx, ctx.arg(0))?.map(|m| m & libc::S_IFMT) {
            Some(libc::S_IFDIR) => return Err(Errno::EISDIR),
            Some(libc::S_IFREG) | None => {}
            Some(_) => return Err(Errno::EACCES),
        }
    }
    ctx.refuse(Errno::EPERM)
}

/// reboot(2): CAP_SYS_BOOT over the sandbox's pid namespace (EPERM), then the magic numbers
/// (EINVAL).
fn reboot(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    const MAGIC1: u64 = 0xfee1_dead;
    const MAGIC2: [u64; 4] = [0x2812_1969, 0x0512_1996, 0x1604_1998, 0x2011_2000];
    if !ns_capable(ctx, CAP_SYS_BOOT)? {
        return Err(Errno::EPERM);
    }
    if ctx.arg(0) & 0xffff_ffff != MAGIC1 || !MAGIC2.contains(&(ctx.arg(1) & 0xffff_ffff)) {
        return Err(Errno::EINVAL);
    }
    ctx.refuse(Errno::EPERM)
}

/// bpf(2): the attribute's size (E2BIG past a page) and bytes (EFAULT), then the command
/// (EINVAL for one no kernel defines).
fn bpf(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    /// `sizeof(union bpf_attr)` is well under this; the kernel reads at most that much.
    const ATTR_READ: usize = 144;
    /// The commands of Linux 6.18 (`BPF_MAP_CREATE` .. `BPF_PROG_STREAM_READ_BY_FD`).
    const LAST_CMD: u64 = 37;
    let size = (ctx.arg(2) & 0xffff_ffff) as usize;
    if size > 4096 {
        return Err(Errno::E2BIG);
    }
    let mut attr = [0u8; ATTR_READ];
    let n = size.min(ATTR_READ);
    if n > 0 {
        ctx.guest.read_exact(ctx.arg(1), &mut attr[..n])?;
    }
    if ctx.arg(0) & 0xffff_ffff > LAST_CMD {
        return Err(Errno::EINVAL);
    }
    ctx.refuse(Errno::EPERM)
}

/// perf_event_open(2): unknown flags (EINVAL), then the attribute's size word (EFAULT) and size
/// (E2BIG), then its bytes (EFAULT); what passes is refused as an unprivileged caller is.
fn perf_event_open(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    const FLAG_ALL: u64 = 0xf;
    const ATTR_SIZE_VER0: usize = 64;
    if ctx.arg(4) & !FLAG_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    let addr = ctx.arg(0);
    let mut word = [0u8; 4];
    ctx.guest.read_exact(addr.wrapping_add(4), &mut word)?;
    let size = match u32::from_ne_bytes(word) as usize {
        0 => ATTR_SIZE_VER0,
        s if !(ATTR_SIZE_VER0..=4096).contains(&s) => return Err(Errno::E2BIG),
        s => s,
    };
    let mut attr = vec![0u8; size];
    ctx.guest.read_exact(addr, &mut attr)?;
    ctx.refuse(Errno::EACCES)
}

/// userfaultfd(2): allowed to user-mode-only faults, by the host's sysctl, or with
/// CAP_SYS_PTRACE over the machine (EPERM otherwise); then the flags (EINVAL).
fn userfaultfd(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    const USER_MODE_ONLY: u64 = 1;
    let flags = ctx.arg(0) & 0xffff_ffff;
    let sysctl = format!("{}sys/vm/unprivileged_userfaultfd", crate::procfs::prefix());
    let allowed = flags & USER_MODE_ONLY != 0
        || std::fs::read(sysctl).is_ok_and(|v| v.first() == Some(&b'1'))
        || host_capable(ctx, CAP_SYS_PTRACE)?;
    if !allowed {
        return Err(Errno::EPERM);
    }
    let known = (libc::O_CLOEXEC | libc::O_NONBLOCK) as u64 | USER_MODE_ONLY;
    if flags & !known != 0 {
        return Err(Errno::EINVAL);
    }
    ctx.refuse(Errno::EPERM)
}

/// The kernel's old mount magic in the flags' top half (discarded).
const MS_MGC_MSK: u64 = 0xffff_0000;
const MS_MGC_VAL: u64 = 0xc0ed_0000;
/// Flags that change an existing mount rather than make one of a filesystem type.
const NOT_NEW: u64 = libc::MS_REMOUNT
    | libc::MS_BIND
    | libc::MS_MOVE
    | libc::MS_SHARED
    | libc::MS_PRIVATE
    | libc::MS_SLAVE
    | libc::MS_UNBINDABLE;

/// Errors of looking the mount point up, as the kernel's path walk would give them.
fn look_up(ctx: &Ctx<'_>, addr: u64, flags: u32) -> Result<(), Errno> {
    match locate(ctx, libc::AT_FDCWD, addr, flags)? {
        Target::Gofer(at) => statx_of(ctx, at, flags).map(|_| ()),
        // The guest's own /proc, /sys and /dev: nothing a refusal needs to tell apart.
        Target::Native | Target::Fd(_) => Ok(()),
    }
}

/// Whether the host kernel knows a filesystem type of this name.
fn known_fs_type(name: &[u8]) -> bool {
    let path = format!("{}filesystems", crate::procfs::prefix());
    std::fs::read(path).is_ok_and(|list| {
        list.split(|&b| b == b'\n')
            .filter_map(|line| line.split(|&b| b == b'\t').next_back())
            .any(|t| t == name)
    })
}

/// mount(2) in the kernel's order: the strings (EFAULT), the mount point, MS_NOUSER, the
/// privilege (EPERM without CAP_SYS_ADMIN), then for a new mount the type (EINVAL for none,
/// ENODEV for one the kernel does not know). What passes is refused: the guest's mount table
/// is fixed at start.
fn mount(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let fstype = match ctx.arg(2) {
        0 => None,
        addr => Some(ctx.guest.read_cstr(ctx.arena, addr, MAX_STRING)?),
    };
    if ctx.arg(0) != 0 {
        ctx.guest.read_cstr(ctx.arena, ctx.arg(0), MAX_STRING)?;
    }
    look_up(ctx, ctx.arg(1), 0)?;
    let mut flags = ctx.arg(3);
    if flags & MS_MGC_MSK == MS_MGC_VAL {
        flags &= !MS_MGC_MSK;
    }
    if flags & libc::MS_NOUSER != 0 {
        return Err(Errno::EINVAL);
    }
    let privileged = ctx.creds()?.has_cap(cap::SYS_ADMIN);
    if privileged && flags & NOT_NEW == 0 {
        match fstype {
            None => return Err(Errno::EINVAL),
            Some(t) if !known_fs_type(t) => return Err(Errno::ENODEV),
            Some(_) => {}
        }
    }
    ctx.refuse(Errno::EPERM)
}

/// umount2(2): unknown flags (EINVAL) and the mount point's lookup first, then the privilege,
/// then EINVAL for what is no mount's root (as the gofer's view of the tree shows it) and for
/// MNT_EXPIRE with MNT_FORCE or MNT_DETACH; what passes is refused.
fn umount2(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    const KNOWN: u64 =
        (libc::MNT_FORCE | libc::MNT_DETACH | libc::MNT_EXPIRE | libc::UMOUNT_NOFOLLOW) as u64;
    let flags = ctx.arg(1);
    if flags & !KNOWN != 0 {
        return Err(Errno::EINVAL);
    }
    let nofollow = if flags & libc::UMOUNT_NOFOLLOW as u64 != 0 {
        libc::AT_SYMLINK_NOFOLLOW as u32
    } else {
        0
    };
    let found = match locate(ctx, libc::AT_FDCWD, ctx.arg(0), nofollow)? {
        Target::Gofer(at) => Some(statx_of(ctx, at, nofollow)?),
        Target::Native | Target::Fd(_) => None,
    };
    // `can_umount`: the privilege, then whether a mount's root is named, then `do_umount`'s
    // MNT_EXPIRE (which takes neither of the other two).
    if !ns_capable(ctx, cap::SYS_ADMIN)? {
        return ctx.refuse(Errno::EPERM);
    }
    let mount_root = |x: &libc::statx| {
        x.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT == 0
            || x.stx_attributes & STATX_ATTR_MOUNT_ROOT != 0
    };
    if found.is_some_and(|x| !mount_root(&x)) {
        return Err(Errno::EINVAL);
    }
    if flags & libc::MNT_EXPIRE as u64 != 0
        && flags & (libc::MNT_FORCE | libc::MNT_DETACH) as u64 != 0
    {
        return Err(Errno::EINVAL);
    }
    ctx.refuse(Errno::EPERM)
}

/// `STATX_ATTR_MOUNT_ROOT`: the file is the root of a mount.
const STATX_ATTR_MOUNT_ROOT: u64 = 0x2000;

/// `struct io_uring_params`: 10 words, then the two 40-byte offset structs.
const PARAMS_LEN: usize = 120;
/// Setup flags this kernel generation knows (IORING_SETUP_IOPOLL .. bit 18).
const SETUP_FLAGS: u32 = (1 << 19) - 1;
const SETUP_CLAMP: u32 = 1 << 4;
const MAX_ENTRIES: u32 = 32768;

/// io_uring_setup(2): the parameters are checked as the kernel does (EFAULT, reserved words,
/// unknown flags, entry count), then refused: io_uring would run I/O the sentry never sees.
fn io_uring_setup(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    let mut raw = [0u8; PARAMS_LEN];
    ctx.guest.read_exact(ctx.arg(1), &mut raw)?;
    let word =
        |i: usize| u32::from_ne_bytes([raw[4 * i], raw[4 * i + 1], raw[4 * i + 2], raw[4 * i + 3]]);
    let flags = word(2);
    let entries = ctx.arg(0) as u32;
    if (7..10).any(|i| word(i) != 0)
        || flags & !SETUP_FLAGS != 0
        || entries == 0
        || (entries > MAX_ENTRIES && flags & SETUP_CLAMP == 0)
    {
        return Err(Errno::EINVAL);
    }
    ctx.refuse(Errno::EPERM)
}
