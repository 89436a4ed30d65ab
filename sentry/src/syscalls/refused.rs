//! Calls refused on policy that first check their arguments as Linux does: a program probing
//! for a feature (an io_uring flag, a filesystem type) gets the errno its arguments deserve,
//! and only a well-formed request meets the refusal (logged as a denial).

use nix::errno::Errno;

use super::fs_path::{locate, Target};
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
];

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
    let privileged = ctx
        .sandbox
        .tasks
        .creds(ctx.trap.tid)?
        .has_cap(cap::SYS_ADMIN);
    if privileged && flags & NOT_NEW == 0 {
        match fstype {
            None => return Err(Errno::EINVAL),
            Some(t) if !known_fs_type(t) => return Err(Errno::ENODEV),
            Some(_) => {}
        }
    }
    ctx.refuse(Errno::EPERM)
}

/// umount2(2): unknown flags (EINVAL) and the mount point's lookup first, then the refusal.
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
    look_up(ctx, ctx.arg(0), nofollow)?;
    ctx.refuse(Errno::EPERM)
}

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
