//! Calls the guest may not make. Each fails with the errno Linux gives an unprivileged process,
//! and each denial is logged.

use nix::errno::Errno;

use super::{Action, Arg, Cond, Ctx, Def};
use crate::platform::Reply;

const fn denied(name: &'static str, errno: Errno, args: &'static [Arg]) -> Def {
    Def {
        name,
        action: Action::Denied(errno),
        args,
    }
}

const HEX3: &[Arg] = &[Arg::Hex, Arg::Hex, Arg::Hex];

/// `TIOCSTI` pushes bytes into a terminal's input: with the host's tty that is a sandbox escape.
const TIOCSTI: u64 = 0x5412;
/// `TIOCLINUX` can do the same on a virtual console.
const TIOCLINUX: u64 = 0x541C;
/// `FS_IOC_SETFLAGS`: inode flags (chattr: immutable, append-only, ...). (The 32-bit forms are
/// ENOTTY for a 64-bit caller, and other ABIs are killed.)
const FS_IOC_SETFLAGS: u64 = 0x4008_6602;
/// `FS_IOC_SETVERSION`: the inode's generation number.
const FS_IOC_SETVERSION: u64 = 0x4008_7602;
/// `FS_IOC_FSSETXATTR`: the same flags, project id and extent hints.
const FS_IOC_FSSETXATTR: u64 = 0x401C_5820;
/// Inode changes through an fd. The kernel checks only ownership (or CAP_FOWNER over a mapped
/// owner) and that the mount is writable, not how the fd was opened: as root in an identity
/// mapped namespace the guest could set the flags of a host file it was handed read-only (its
/// stdin), found by the hostile-guest review. The tree's own files are the gofer's to change.
const INODE_CHANGES: [u64; 3] = [FS_IOC_SETFLAGS, FS_IOC_SETVERSION, FS_IOC_FSSETXATTR];

pub(super) const DEFS: &[Def] = &[
    // Mounts and the root: the guest's mount namespace is fixed at start (mount, umount2,
    // pivot_root, setns and chroot check their arguments first: refused.rs).
    denied("fsopen", Errno::EPERM, &[Arg::Str, Arg::Hex]),
    denied(
        "fsconfig",
        Errno::EPERM,
        &[Arg::Int, Arg::Int, Arg::Str, Arg::Ptr, Arg::Int],
    ),
    denied("fsmount", Errno::EPERM, HEX3),
    denied("fspick", Errno::EPERM, &[Arg::Int, Arg::Str, Arg::Hex]),
    denied(
        "move_mount",
        Errno::EPERM,
        &[Arg::Int, Arg::Str, Arg::Int, Arg::Str, Arg::Hex],
    ),
    denied("open_tree", Errno::EPERM, &[Arg::Int, Arg::Str, Arg::Hex]),
    denied(
        "open_tree_attr",
        Errno::EPERM,
        &[Arg::Int, Arg::Str, Arg::Hex],
    ),
    denied(
        "mount_setattr",
        Errno::EPERM,
        &[Arg::Int, Arg::Str, Arg::Hex],
    ),
    // The machine: kernel code, quotas, the kernel log, port I/O (swap, reboot and accounting
    // check their arguments first: refused.rs).
    denied("kexec_load", Errno::EPERM, HEX3),
    denied("kexec_file_load", Errno::EPERM, HEX3),
    denied("init_module", Errno::EPERM, &[Arg::Ptr, Arg::Int, Arg::Str]),
    denied(
        "finit_module",
        Errno::EPERM,
        &[Arg::Int, Arg::Str, Arg::Hex],
    ),
    denied("delete_module", Errno::EPERM, &[Arg::Str, Arg::Hex]),
    denied(
        "quotactl",
        Errno::EPERM,
        &[Arg::Hex, Arg::Str, Arg::Int, Arg::Ptr],
    ),
    denied("quotactl_fd", Errno::EPERM, HEX3),
    denied("syslog", Errno::EPERM, &[Arg::Int, Arg::Ptr, Arg::Int]),
    denied("vhangup", Errno::EPERM, &[]),
    denied("iopl", Errno::EPERM, &[Arg::Int]),
    denied("ioperm", Errno::EPERM, HEX3),
    // Kernel interfaces that bypass interception or widen the attack surface (bpf,
    // perf_event_open, userfaultfd and io_uring check their arguments first: refused.rs).
    denied(
        "keyctl",
        Errno::EPERM,
        &[Arg::Int, Arg::Hex, Arg::Hex, Arg::Hex, Arg::Hex],
    ),
    denied(
        "add_key",
        Errno::EPERM,
        &[Arg::Str, Arg::Str, Arg::Ptr, Arg::Int, Arg::Int],
    ),
    denied(
        "request_key",
        Errno::EPERM,
        &[Arg::Str, Arg::Str, Arg::Str, Arg::Int],
    ),
    denied(
        "open_by_handle_at",
        Errno::EPERM,
        &[Arg::Int, Arg::Ptr, Arg::Hex],
    ),
    Def {
        name: "seccomp",
        action: Action::Guarded {
            allow_when: &[Cond::MaskedEq {
                arg: 1,
                mask: NEW_LISTENER,
                value: 0,
            }],
            handler: deny_listener,
        },
        args: &[Arg::Int, Arg::Hex, Arg::Ptr],
    },
    Def {
        name: "ioctl",
        action: Action::Guarded {
            allow_when: &[
                Cond::Ne {
                    arg: 1,
                    value: TIOCSTI,
                },
                Cond::Ne {
                    arg: 1,
                    value: TIOCLINUX,
                },
                Cond::Ne {
                    arg: 1,
                    value: INODE_CHANGES[0],
                },
                Cond::Ne {
                    arg: 1,
                    value: INODE_CHANGES[1],
                },
                Cond::Ne {
                    arg: 1,
                    value: INODE_CHANGES[2],
                },
            ],
            handler: deny_tty_injection_and_inode_changes,
        },
        args: &[Arg::Int, Arg::Hex, Arg::Ptr],
    },
];

/// `SECCOMP_SET_MODE_FILTER`.
const SET_MODE_FILTER: u64 = 1;
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`.
const NEW_LISTENER: u64 = 1 << 3;

/// A guest may stack filters of its own (they can only refuse more), but not a listener: a
/// user-notify filter outranks SECCOMP_RET_TRACE, so on the ptrace platform its supervisor,
/// not ours, would answer the calls we trap. The kernel already refuses a second listener under
/// seccomp-notify (EBUSY); this makes both platforms say the same.
fn deny_listener(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    if ctx.arg(0) != SET_MODE_FILTER {
        return Err(Errno::EINVAL);
    }
    ctx.refuse(Errno::EBUSY)
}

/// Reached only for TIOCSTI/TIOCLINUX.
/// Both refused with EPERM: terminal input injection, and inode flag changes (the sandbox's
/// root holds no host capability; README "Compatibility").
fn deny_tty_injection_and_inode_changes(ctx: &mut Ctx<'_>) -> Result<Reply, Errno> {
    ctx.refuse(Errno::EPERM)
}
